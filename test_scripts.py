"""Tests for the six scripts. Run from the repository root, with names.txt and input.txt there:
    python -m pytest -q
Each test runs a script with tiny settings, either as a subprocess (what a user sees: exit
code, printed lines) or in-process with runpy (to inspect the tensors it leaves behind)."""
import ast, os, re, runpy, subprocess, sys
import pytest
import torch

ROOT = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ['bigram_count.py', 'bigram_nn.py', 'mlp.py', 'wavenet.py', 'rnn.py', 'gpt.py']
FINAL = re.compile(r'^final: train=([\d.]+) val=([\d.]+)(?: test=([\d.]+))? params=(\d+) time=[\d.]+s$', re.M)


def run(script, *args, cwd=ROOT, env=None):
    """Run a script as a user would; return (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, script), '--device=cpu', *args], cwd=cwd,
                       capture_output=True, text=True, timeout=120, env=env)
    return p.returncode, p.stdout, p.stderr


def load(script, *args, monkeypatch):
    """Run a script in-process and return its globals, so a test can look at its tensors."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, 'argv', [script, '--device=cpu', *args])
    return runpy.run_path(os.path.join(ROOT, script), run_name='__main__')


def final(stdout):
    """The numbers of the `final:` line: train, val, test (or None), params."""
    m = FINAL.search(stdout)
    assert m, f'no final: line in\n{stdout[-2000:]}'
    return float(m[1]), float(m[2]), m[3] and float(m[3]), int(m[4])


def assert_one_line_error(rc, out, err, *words):
    assert rc != 0
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err


# ---------------------------------------------------------------- every script

@pytest.mark.parametrize('script', SCRIPTS)
def test_scripts_import_only_torch_and_stdlib(script):
    if not os.path.exists(os.path.join(ROOT, script)):
        pytest.skip(f'{script} not written yet')
    tree = ast.parse(open(os.path.join(ROOT, script), encoding='utf-8').read())
    local = {os.path.splitext(s)[0] for s in SCRIPTS}
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ''] if isinstance(node, ast.ImportFrom) else []
        for name in names:
            top = name.split('.')[0]
            assert top not in local, f'{script} imports {name}: scripts must stand alone'
            assert top == 'torch' or top in sys.stdlib_module_names, f'{script} imports {name}'


# ---------------------------------------------------------------- bad input (same code in every file)

def test_unknown_key_is_refused():
    rc, out, err = run('bigram_count.py', '--no_such_key=3')
    assert_one_line_error(rc, out, err, 'no_such_key', 'smoothing')  # names the valid keys
    assert rc == 2


def test_wrong_type_is_refused():
    rc, out, err = run('bigram_count.py', '--num_samples=2.5')
    assert_one_line_error(rc, out, err, 'num_samples', 'int')
    assert rc == 2


def test_missing_dataset_is_refused(tmp_path):
    rc, out, err = run('bigram_count.py', f'--dataset={tmp_path / "nope.txt"}')
    assert_one_line_error(rc, out, err, 'not found')


def test_empty_dataset_is_refused(tmp_path):
    (tmp_path / 'empty.txt').write_text('\n  \n')
    rc, out, err = run('bigram_count.py', f'--dataset={tmp_path / "empty.txt"}')
    assert_one_line_error(rc, out, err, 'empty.txt')


def test_offline_download_names_the_url(tmp_path):
    # no names.txt in this directory, and a proxy that refuses: the download must fail fast
    env = dict(os.environ, https_proxy='http://127.0.0.1:9', HTTPS_PROXY='http://127.0.0.1:9')
    rc, out, err = run('bigram_count.py', cwd=tmp_path, env=env)
    assert_one_line_error(rc, out, err, 'https://raw.githubusercontent.com/karpathy/makemore/master/names.txt')
    assert not os.listdir(tmp_path), 'a failed download must leave no file behind'


def test_notebook_kernel_arguments_are_ignored(monkeypatch):
    # pasted into a Jupyter/Colab cell, sys.argv holds the kernel's flags: run with defaults
    monkeypatch.setitem(sys.modules, 'ipykernel', sys)
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, 'argv', ['ipykernel_launcher.py', '-f', '/tmp/kernel-1234.json'])
    g = runpy.run_path(os.path.join(ROOT, 'bigram_count.py'), run_name='__main__')
    assert g['smoothing'] == 1.0


def test_other_line_formats_work(tmp_path, monkeypatch):
    # blank lines, surrounding spaces, Windows line endings, capitals and accents
    (tmp_path / 'firms.txt').write_bytes('Acme Corp\r\n\r\n  Zoë Ltd  \r\nacme\r\n'.encode('utf-8') * 20)
    g = load('bigram_count.py', f'--dataset={tmp_path / "firms.txt"}', monkeypatch=monkeypatch)
    assert g['itos'][0] == '.' and ' ' in g['stoi'] and 'ë' in g['stoi'] and 'A' in g['stoi']
    assert '\r' not in g['stoi'] and len(g['words']) == 60


# ---------------------------------------------------------------- bigram_count.py

@pytest.mark.parametrize('script,args', [('bigram_count.py', []), ('bigram_nn.py', ['--max_iters=2'])])
def test_bigram_scripts_run_as_a_user_would(script, args):
    rc, out, err = run(script, '--num_samples=4', *args)
    assert rc == 0, err
    final(out)
    tail = out.split('final:')[1].strip().splitlines()[1:]
    assert len(tail) == 5 and tail[-1].endswith('samples are new (not in the training names)')
    assert all(re.fullmatch('[a-z]*', name) for name in tail[:4])


def test_bigram_count_table(monkeypatch, capsys):
    g = load('bigram_count.py', monkeypatch=monkeypatch)
    P = g['P']
    assert P.shape == (27, 27)
    assert torch.allclose(P.sum(dim=1), torch.ones(27))  # every row is a distribution
    assert (P > 0).all()                                 # smoothing leaves no impossible pair
    assert g['counts'].sum() == sum(len(w) + 1 for w in g['splits']['train'])
    out = capsys.readouterr().out
    train, val, test, params = final(out)
    assert 2.40 < val < 2.50 and params == 729
    assert len(out.split('final:')[1].strip().splitlines()) == 1 + g['num_samples'] + 1


def test_bigram_count_same_seed_same_samples():
    outs = [run('bigram_count.py', '--seed=7', '--num_samples=5')[1] for _ in range(2)]
    assert outs[0] == outs[1]
    assert outs[0] != run('bigram_count.py', '--seed=8', '--num_samples=5')[1]


# ---------------------------------------------------------------- bigram_nn.py

def test_bigram_nn_learns_the_count_table(monkeypatch, capsys):
    count_val = final(run('bigram_count.py', '--num_samples=1')[1])[1]
    g = load('bigram_nn.py', '--max_iters=100', '--eval_interval=50', monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    vals = [float(v) for v in re.findall(r'\| val ([\d.]+)', out)]
    assert len(vals) == 2 and vals[1] < vals[0]          # the loss falls
    assert abs(final(out)[1] - count_val) < 0.03         # and heads for the counted table's loss
    assert torch.allclose(g['P'].sum(dim=1), torch.ones(27))
    assert 'ms/iter' in out and 'eta' in out


def test_bigram_nn_same_seed_same_numbers(monkeypatch, capsys):
    outs = []
    for seed in [1, 1, 2]:
        load('bigram_nn.py', '--max_iters=3', '--eval_interval=3', f'--seed={seed}', monkeypatch=monkeypatch)
        outs.append(re.sub(r'time=[\d.]+s|.*ms/iter.*', '', capsys.readouterr().out))  # all but timings
    assert outs[0] == outs[1] and outs[0] != outs[2]
