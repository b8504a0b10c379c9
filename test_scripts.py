"""Tests for the seven scripts. Run from the repository root, with names.txt and input.txt there:
    python -m pytest -q
Each test runs a script with tiny settings, either as a subprocess (what a user sees: exit
code, printed lines) or in-process with runpy (to inspect the tensors it leaves behind)."""
import ast, contextlib, io, math, os, re, runpy, signal, subprocess, sys
import pytest
import torch
import torch.nn.functional as F

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


def load_fails(script, *args, monkeypatch, capsys):
    """Run a script in-process that must refuse its input; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        load(script, *args, monkeypatch=monkeypatch)
    return (e.value.code, *capsys.readouterr())


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

@pytest.mark.parametrize('script', SCRIPTS + ['encoder.py'])
def test_scripts_import_only_torch_and_stdlib(script):
    if not os.path.exists(os.path.join(ROOT, script)):
        pytest.skip(f'{script} not written yet')
    tree = ast.parse(open(os.path.join(ROOT, script), encoding='utf-8').read())
    local = {os.path.splitext(s)[0] for s in SCRIPTS + ['encoder.py']}
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


@pytest.mark.parametrize('script', SCRIPTS)
def test_every_script_refuses_bad_input_in_one_line(script, tmp_path, monkeypatch, capsys):
    (tmp_path / 'empty.txt').write_text('\n  \n')
    for args, words, code in [(['--no_such_key=3'], ['no_such_key', 'seed'], 2),  # names the valid keys
                              (['--num_samples=2.5'], ['num_samples', 'int'], 2),
                              ([f'--dataset={tmp_path / "nope.txt"}'], ['nope.txt', 'not found'], 1),
                              ([f'--dataset={tmp_path / "empty.txt"}'], ['empty.txt'], 1)]:
        rc, out, err = load_fails(script, *args, monkeypatch=monkeypatch, capsys=capsys)
        assert_one_line_error(rc, out, err, *words)
        assert rc == code


def test_offline_download_names_the_url(tmp_path, monkeypatch, capsys):
    # no names.txt in this directory, and a proxy that refuses: the download must fail fast
    monkeypatch.setenv('https_proxy', 'http://127.0.0.1:9')
    monkeypatch.setenv('HTTPS_PROXY', 'http://127.0.0.1:9')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['bigram_count.py'])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(os.path.join(ROOT, 'bigram_count.py'), run_name='__main__')
    rc, (out, err) = e.value.code, capsys.readouterr()
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


NAMES_SCRIPTS = ['bigram_count.py', 'bigram_nn.py', 'mlp.py', 'wavenet.py', 'rnn.py']


def tiny_args(script):  # (NET_TINY and RNN_TINY are defined further down, with their tests)
    return {'bigram_count.py': ['--num_samples=3'], 'bigram_nn.py': ['--max_iters=30', '--num_samples=3'],
            'rnn.py': RNN_TINY}.get(script, NET_TINY)


@pytest.mark.parametrize('script', NAMES_SCRIPTS)
def test_too_few_names_are_refused_in_one_line_and_ten_are_enough(script, tmp_path, monkeypatch, capsys):
    # the 80/10/10 split of 2 names leaves val empty (that was a traceback); from 10 on, no split is empty
    names = open(os.path.join(ROOT, 'names.txt')).read().split()
    for n in [2, 1, 9]:
        (tmp_path / f'n{n}.txt').write_text('\n'.join(names[:n]))
        rc, out, err = load_fails(script, *tiny_args(script), f'--dataset={tmp_path / f"n{n}.txt"}',
                                  monkeypatch=monkeypatch, capsys=capsys)
        assert_one_line_error(rc, out, err, f'n{n}.txt', f'too few lines ({n})', 'at least 10')
        assert rc == 1 and out == ''
    (tmp_path / 'n10.txt').write_text('\n'.join(names[:10]))
    load(script, *tiny_args(script), f'--dataset={tmp_path / "n10.txt"}', monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    assert final(out)[2] is not None and out.rstrip().endswith('samples are new (not in the training names)')


@pytest.mark.parametrize('script', NAMES_SCRIPTS[1:])
def test_a_diverged_run_stops_in_one_line_with_no_final_line_and_no_samples(script, few_names, monkeypatch, capsys):
    # rnn.py, 4 steps: the 4th step's training loss is still finite, the evaluation after it is
    # inf, so this also checks that evaluations are checked: no final line with inf or nan
    args = [*RNN_TINY, '--max_iters=4', '--eval_interval=4'] if script == 'rnn.py' else tiny_args(script)
    rc, out, err = load_fails(script, *args, few_names, '--learning_rate=1e12', monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, 'training diverged', 'learning_rate')
    assert rc == 1 and all(line.startswith('iter ') for line in out.splitlines())  # no final:, no samples
    assert 'nan' not in out and 'inf' not in out


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


def test_bigram_count_same_seed_same_samples(monkeypatch, capsys):
    outs = []
    for seed in [7, 7, 8]:
        load('bigram_count.py', f'--seed={seed}', '--num_samples=5', monkeypatch=monkeypatch)
        outs.append(re.sub(r'time=[\d.]+s', '', capsys.readouterr().out))
    assert outs[0] == outs[1] and outs[0] != outs[2]


# ---------------------------------------------------------------- bigram_nn.py

def test_bigram_nn_learns_the_count_table(monkeypatch, capsys):
    load('bigram_count.py', '--num_samples=1', monkeypatch=monkeypatch)
    count_val = final(capsys.readouterr().out)[1]
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


# ---------------------------------------------------------------- mlp.py and wavenet.py

NET_TINY = ['--max_iters=30', '--eval_interval=15', '--batch_size=32', '--n_embd=8', '--n_hidden=32', '--num_samples=3']
NETS = ['mlp.py', 'wavenet.py']


@pytest.fixture
def few_names(tmp_path):  # the first 2,000 names: builds in a blink, for tests that need no real losses
    path = tmp_path / 'few.txt'
    path.write_text('\n'.join(open(os.path.join(os.path.dirname(__file__), 'names.txt')).read().split()[:2000]))
    return f'--dataset={path}'


@pytest.mark.parametrize('script', NETS)
def test_net_prints_progress_final_line_and_samples(script, few_names, monkeypatch, capsys):
    load(script, *NET_TINY, few_names, monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    final(out)
    tail = out.split('final:')[1].strip().splitlines()[1:]
    assert len(tail) == 3 + 1 and tail[-1].endswith('samples are new (not in the training names)')
    assert all(re.fullmatch('[a-z]*', name) for name in tail[:3])
    assert 'ms/iter' in out and 'eta' in out


@pytest.mark.parametrize('script', NETS)
def test_net_learns_and_reports_whole_split_losses(script, monkeypatch, capsys):
    g = load(script, *NET_TINY, monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    vals = [float(v) for v in re.findall(r'\| val ([\d.]+)', out)]
    assert len(vals) == 2 and vals[1] < vals[0] < math.log(27)  # evaluated twice, below uniform, falling
    train, val, test, params = final(out)
    assert params == sum(p.numel() for p in g['model'].parameters())
    model, (X, Y) = g['model'], g['data']['val']
    assert X.shape == (len(Y), g['block_size'])
    assert len(Y) == sum(len(w) + 1 for w in g['splits']['val'])  # every character and the end
    model.eval()
    with torch.no_grad():
        logits = model(X)
        assert logits.shape == (len(Y), g['vocab_size'])  # (B, V)
        assert abs(F.cross_entropy(logits, Y).item() - val) < 1e-4  # one pass = the chunked estimate
        # eval mode: BatchNorm uses its running statistics, so the same input gives the same
        # logits, alone or inside any batch
        assert torch.equal(model(X[:64]), model(X[:64]))
        assert torch.allclose(model(X[:1]), logits[:1], atol=1e-5)


@pytest.mark.parametrize('script', NETS)
def test_net_same_seed_same_numbers(script, few_names, monkeypatch, capsys):
    outs = []
    for seed in [1, 1, 2]:
        load(script, *NET_TINY, few_names, f'--seed={seed}', monkeypatch=monkeypatch)
        outs.append(re.sub(r'time=[\d.]+s|.*ms/iter.*', '', capsys.readouterr().out))  # all but timings
    assert outs[0] == outs[1] and outs[0] != outs[2]


def test_wavenet_fuses_pairs_in_a_tree(few_names, monkeypatch, capsys):
    g = load('wavenet.py', *NET_TINY, few_names, '--block_size=16', '--max_iters=1', monkeypatch=monkeypatch)
    model = g['model']
    assert type(model).__name__ == 'WaveNet' and len(model.levels) == 4  # 16 -> 8 -> 4 -> 2 -> 1
    x = g['data']['train'][0][:5]
    with torch.no_grad():
        h = model.wte(x)
        for level, T in zip(model.levels, [8, 4, 2, 1]):
            h = level(h)
            assert h.shape == (5, T, g['n_hidden'])  # each level halves the positions


def test_wavenet_block_size_must_be_a_power_of_two(monkeypatch, capsys):
    rc, out, err = load_fails('wavenet.py', '--block_size=6', monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, 'block_size', 'power of 2')
    assert rc == 2


# ---------------------------------------------------------------- rnn.py

RNN_TINY = ['--max_iters=6', '--eval_interval=3', '--batch_size=16', '--n_embd=8', '--n_hidden=16', '--num_samples=3']


@pytest.mark.parametrize('cell', ['rnn', 'gru'])
def test_rnn_runs_and_learns(cell, few_names, monkeypatch, capsys):
    g = load('rnn.py', *RNN_TINY, few_names, f'--cell={cell}', '--learning_rate=0.03', monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    vals = [float(v) for v in re.findall(r'\| val ([\d.]+)', out)]
    assert len(vals) == 2 and vals[1] < vals[0] < 3.3          # evaluated twice, and the loss falls
    train, val, test, params = final(out)
    assert params == sum(p.numel() for p in g['model'].parameters())
    tail = out.split('final:')[1].strip().splitlines()[1:]
    assert len(tail) == 3 + 1 and tail[-1].endswith('samples are new (not in the training names)')
    assert 'ms/iter' in out and 'eta' in out


def test_rnn_loss_is_the_whole_split_mean_and_padding_is_masked(few_names, monkeypatch, capsys):
    g = load('rnn.py', *RNN_TINY, few_names, monkeypatch=monkeypatch)
    whole = g['estimate_loss']()['val']                    # (this leaves the model in train mode)
    model, (X, Y) = g['model'].eval(), g['data']['val']  # eval(): dropout off
    pad = Y < 0
    assert pad.any() and (X[pad] == 0).all()
    with torch.no_grad():
        loss = F.cross_entropy(model(X)[0].flatten(0, 1), Y.flatten(), ignore_index=-1)
        # the chunked, length-sorted evaluation gives the same number as one pass over the split
        assert abs(whole - loss.item()) < 1e-5
        # whatever sits in the padding after a name's end, the loss does not move
        X2 = X.clone()
        X2[pad] = torch.randint(1, g['vocab_size'], (int(pad.sum()),))
        loss2 = F.cross_entropy(model(X2)[0].flatten(0, 1), Y.flatten(), ignore_index=-1)
    assert torch.allclose(loss, loss2)
    assert (Y >= 0).sum() == sum(len(w) + 1 for w in g['splits']['val'])  # every char + the end


@pytest.mark.parametrize('cell', ['rnn', 'gru'])
def test_rnn_hidden_state_carries_information(cell, few_names, monkeypatch, capsys):
    g = load('rnn.py', '--max_iters=1', '--eval_interval=1', '--num_samples=1', f'--cell={cell}', few_names,
             monkeypatch=monkeypatch)
    X = torch.tensor([g['encode']('.emmanuel')])
    X2 = X.clone()
    X2[0, 2] = g['stoi']['z']                                  # change the character at step t-3 = 2
    with torch.no_grad():
        a, b = g['model'].eval()(X)[0], g['model'](X2)[0]
    assert torch.equal(a[0, :2], b[0, :2])                     # the past cannot see the future
    assert not torch.allclose(a[0, 5], b[0, 5], atol=1e-4)     # step 5 still remembers step 2


def test_rnn_same_seed_same_numbers(few_names, monkeypatch, capsys):
    outs = []
    for seed in [1, 1, 2]:
        load('rnn.py', *RNN_TINY, few_names, f'--seed={seed}', monkeypatch=monkeypatch)
        outs.append(re.sub(r'time=[\d.]+s|.*ms/iter.*', '', capsys.readouterr().out))  # all but timings
    assert outs[0] == outs[1] and outs[0] != outs[2]


def test_rnn_unknown_cell_is_refused(monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        load('rnn.py', '--cell=lstm', monkeypatch=monkeypatch)
    out, err = capsys.readouterr()
    assert_one_line_error(e.value.code, out, err, 'cell', 'gru')


# ---------------------------------------------------------------- gpt.py

GPT_TINY = ['--n_layer=2', '--n_head=2', '--n_embd=32', '--block_size=16', '--batch_size=8', '--max_iters=20',
            '--eval_interval=10', '--eval_iters=2', '--learning_rate=0.01', '--warmup_iters=2', '--max_new_tokens=40']


def test_gpt_runs_and_streams_the_requested_characters(tmp_path):
    rc, out, err = run('gpt.py', *GPT_TINY, f'--ckpt_path={tmp_path / "c.pt"}')
    assert rc == 0, err
    train, val, test, params = final(out)
    assert test is None and val < math.log(65)        # Shakespeare has no test split; it learned something
    text = out.split('final:')[1].split('\n', 1)[1]  # after the final line: prompt + 40 characters + newline
    assert len(text) == 1 + 40 + 1 and text[0] == '\n' and text[-1] == '\n'
    assert set(text) <= set(open(os.path.join(ROOT, 'input.txt')).read())
    assert 'ms/iter' in out and 'eta' in out and (tmp_path / 'c.pt').exists()


def test_gpt_attention_is_causal_and_generation_stays_in_the_vocabulary(tmp_path, monkeypatch, capsys):
    g = load('gpt.py', *GPT_TINY, '--max_iters=1', f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    model = g['model'].eval()
    x = torch.randint(g['vocab_size'], (3, 16))
    with torch.no_grad():
        a = model(x)[0]
        for t in [0, 7, 14]:                             # change token t+1: positions <= t must not notice
            x2 = x.clone()
            x2[:, t + 1] = (x2[:, t + 1] + 1) % g['vocab_size']
            b = model(x2)[0]
            assert torch.allclose(a[:, :t + 1], b[:, :t + 1], atol=1e-6)
            assert not torch.allclose(a[:, t + 1:], b[:, t + 1:], atol=1e-4)
    cols = list(g['generate'](torch.zeros(2, 1, dtype=torch.long), 50))  # longer than block_size: cropped
    assert len(cols) == 50 and all(0 <= c < g['vocab_size'] for col in cols for c in col)


def test_gpt_can_overfit_one_batch(tmp_path, monkeypatch, capsys):
    g = load('gpt.py', *GPT_TINY, '--max_iters=1', '--batch_size=4', f'--ckpt_path={tmp_path / "c.pt"}',
             monkeypatch=monkeypatch)
    torch.manual_seed(0)
    model, (x, y) = g['GPT'](), g['get_batch']('train')
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(200):
        loss = model(x, y)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3, loss.item()           # 64 characters memorised: from ~4.2 to near 0


@pytest.mark.parametrize('args,words', [(['--n_embd=30', '--n_head=4'], ['n_embd=30', 'n_head=4']),
                                        (['--prompt=Zoë'], ["'ë'", 'vocabulary']),
                                        (['--prompt='], ['prompt', 'empty'])])
def test_gpt_refuses_bad_settings_in_one_line(args, words, tmp_path, monkeypatch, capsys):
    rc, out, err = load_fails('gpt.py', *GPT_TINY, *args, f'--ckpt_path={tmp_path / "c.pt"}',
                              monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, *words)
    assert rc == 2 and not (tmp_path / 'c.pt').exists()


def test_gpt_checkpoint_round_trip(tmp_path, monkeypatch, capsys):
    ckpt = f'--ckpt_path={tmp_path / "c.pt"}'
    load('gpt.py', *GPT_TINY, ckpt, monkeypatch=monkeypatch)
    trained = capsys.readouterr().out
    assert torch.load(tmp_path / 'c.pt', weights_only=True)['iter'] == 20  # val improved at the last eval
    texts = []
    for _ in range(2):
        load('gpt.py', *GPT_TINY, ckpt, '--sample_only=True', monkeypatch=monkeypatch)
        texts.append(capsys.readouterr().out)
    assert 'final:' not in texts[0] and 'iter' not in texts[0]           # no training
    assert texts[0].startswith('input.txt: mode=text')                    # the data line, then the text
    texts = [t.split('\n', 1)[1] for t in texts]
    assert texts[0] == texts[1] == trained.split('final:')[1].split('\n', 1)[1]  # same seed, same text


def test_gpt_bad_checkpoints_are_refused_in_one_line(tmp_path, monkeypatch, capsys):
    path = tmp_path / 'c.pt'
    load('gpt.py', *GPT_TINY, '--max_iters=10', f'--ckpt_path={path}', monkeypatch=monkeypatch)
    capsys.readouterr()
    rc, out, err = load_fails('gpt.py', *GPT_TINY, f'--ckpt_path={path}', '--resume=True', '--n_embd=64',
                              monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, 'n_embd', 'resume')  # a different shape cannot be resumed
    (tmp_path / 'cut.pt').write_bytes(path.read_bytes()[:5000])
    (tmp_path / 'text.pt').write_text('not a checkpoint')
    torch.save({'weights': torch.zeros(3)}, tmp_path / 'foreign.pt')
    for name in ['cut.pt', 'text.pt', 'foreign.pt', 'missing.pt']:
        rc, out, err = load_fails('gpt.py', *GPT_TINY, f'--ckpt_path={tmp_path / name}', '--sample_only=True',
                                  monkeypatch=monkeypatch, capsys=capsys)
        assert_one_line_error(rc, out, err, name)
        assert rc == 1


@pytest.mark.parametrize('dtype', ['float32', 'float16'])  # float16: the gradient scaler's state resumes too
def test_gpt_ctrl_c_saves_and_resume_continues_exactly(dtype, tmp_path, monkeypatch, capsys):
    args = [*GPT_TINY, '--max_iters=150', '--eval_interval=10', f'--dtype={dtype}', f'--ckpt_path={tmp_path / "c.pt"}']
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, 'gpt.py'), '--device=cpu', *args], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONUNBUFFERED='1'))
    for line in p.stdout:
        if line.startswith('iter 1/150'):            # training has started: press Ctrl-C
            p.send_signal(signal.SIGINT)
            break
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and 'interrupted at iter' in out and 'continue with --resume=True' in out, err
    stopped = int(re.search(r'interrupted at iter (\d+)', out)[1])
    assert 0 < stopped < 150
    resumed = load('gpt.py', *args, '--resume=True', monkeypatch=monkeypatch)['losses']
    assert f'iter {stopped + 1}/150' in capsys.readouterr().out      # it went on from where it stopped
    (tmp_path / 'c.pt').unlink()
    whole = load('gpt.py', *args, monkeypatch=monkeypatch)['losses']
    assert abs(resumed['train'] - whole['train']) <= 1e-6 and abs(resumed['val'] - whole['val']) <= 1e-6


def test_gpt_names_mode_uses_the_names_split(tmp_path, monkeypatch, capsys):
    mlp = load('mlp.py', '--max_iters=1', '--num_samples=0', monkeypatch=monkeypatch)
    capsys.readouterr()
    g = load('gpt.py', *GPT_TINY, '--dataset=names.txt', '--max_iters=1', '--num_samples=5',
             f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    assert g['splits'] == mlp['splits'] and g['itos'] == mlp['itos']
    X, Y, lens = g['data']['val']
    assert (Y != -1).sum() == len(mlp['data']['val'][1])  # one target per character and end, as in mlp.py
    out = capsys.readouterr().out
    train, val, test, params = final(out)
    assert test is not None
    tail = out.split('final:')[1].strip().splitlines()[1:]
    assert len(tail) == 5 + 1 and all(re.fullmatch('[a-z]*', s) for s in tail[:5])
    assert tail[-1].endswith('samples are new (not in the training names)')
    load('gpt.py', '--dataset=names.txt', '--sample_only=True', '--num_samples=0',  # no samples: just the count
         f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    assert capsys.readouterr().out.strip().splitlines()[1:] == ['0/0 samples are new (not in the training names)']


def test_gpt_mode_comes_from_the_content_not_the_name(tmp_path, monkeypatch, capsys):
    text = open(os.path.join(ROOT, 'input.txt')).read()[:20000]
    (tmp_path / 'shakes.txt').write_text(text)           # Shakespeare under another name: still running text
    (tmp_path / 'input.txt').write_text('\n'.join(open(os.path.join(ROOT, 'names.txt')).read().split()[:500]))
    for name, mode in [('shakes.txt', 'text'), ('input.txt', 'names')]:  # a list named input.txt: names
        g = load('gpt.py', *GPT_TINY, '--max_iters=2', '--num_samples=2', f'--dataset={tmp_path / name}',
                 f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
        out = capsys.readouterr().out
        assert g['mode'] == mode and out.splitlines()[0].startswith(f'{tmp_path / name}: mode={mode}')
        assert ('samples are new' in out) == (mode == 'names')
    g = load('gpt.py', *GPT_TINY, '--max_iters=1', f'--dataset={tmp_path / "input.txt"}', '--mode=text',
             f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)  # the flag overrides the guess
    assert not g['names'] and 'mode=text' in capsys.readouterr().out
    assert_one_line_error(*load_fails('gpt.py', '--mode=poem', monkeypatch=monkeypatch, capsys=capsys), 'mode', 'names')


@pytest.mark.parametrize('lines,mode,words', [(['emma', 'olivia'], 'names', ['too few lines (2)', 'at least 10']),
                                              (['emma'], 'names', ['too few lines (1)', 'at least 10']),
                                              (['To be, or not to be: that is the question.'] * 3, 'text',
                                               ['characters', 'at least 170'])])
def test_gpt_refuses_a_file_too_small_to_split(lines, mode, words, tmp_path, monkeypatch, capsys):
    (tmp_path / 'small.txt').write_text('\n'.join(lines))
    rc, out, err = load_fails('gpt.py', *GPT_TINY, f'--dataset={tmp_path / "small.txt"}', f'--mode={mode}',
                              f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, 'small.txt', *words)
    assert rc == 1 and 'iter' not in out


def test_gpt_divergence_stops_at_once_and_keeps_the_good_checkpoint(tmp_path, monkeypatch, capsys):
    ckpt = tmp_path / 'c.pt'
    load('gpt.py', *GPT_TINY, '--max_iters=10', f'--ckpt_path={ckpt}', monkeypatch=monkeypatch)
    capsys.readouterr()
    good = ckpt.read_bytes()
    for extra in [[], ['--resume=True', '--max_iters=40']]:  # fresh, and resumed from the good checkpoint
        rc, out, err = load_fails('gpt.py', *GPT_TINY, '--learning_rate=1e12', f'--ckpt_path={ckpt}', *extra,
                                  monkeypatch=monkeypatch, capsys=capsys)
        assert_one_line_error(rc, out, err, 'diverged', 'iter', '--learning_rate')
        assert rc == 1 and 'final:' not in out and 'nan' not in out
        assert out.rstrip().splitlines()[-1].startswith('iter')  # nothing sampled after the last progress line
        assert ckpt.read_bytes() == good


def test_gpt_explicit_and_fused_attention_agree_and_maps_are_causal(tmp_path, monkeypatch, capsys):
    g = load('gpt.py', *GPT_TINY, '--max_iters=5', f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    model = g['model'].eval()
    x = torch.randint(g['vocab_size'], (3, 16))
    with torch.no_grad():
        fused, _, none = model(x)
        explicit, _, maps = model(x, need_weights=True)
    assert none == [None, None] and len(maps) == 2
    assert torch.allclose(fused, explicit, atol=1e-5)      # the same math, two ways
    for att in maps:
        assert att.shape == (3, 2, 16, 16)                  # (B, n_head, T, T)
        assert torch.allclose(att.sum(-1), torch.ones(3, 2, 16), atol=1e-6)  # each row a distribution
        past = torch.ones(16, 16, dtype=torch.bool).tril()
        assert (att[..., ~past] == 0).all() and (att[..., past] > 0).all()  # no future, all of the past


def test_gpt_shows_attention_in_the_terminal(tmp_path, monkeypatch, capsys):
    ckpt = f'--ckpt_path={tmp_path / "c.pt"}'
    load('gpt.py', *GPT_TINY, ckpt, monkeypatch=monkeypatch)
    capsys.readouterr()
    load('gpt.py', *GPT_TINY, ckpt, '--sample_only=True', '--prompt=ROMEO:', '--show_attention=True',
         '--attention_layer=0', monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert 'attention in block 1 of 2:' in out
    for h in range(2):                                       # a grid per head: header, then one row per character
        i = lines.index(f'  head {h}   R O M E O :')
        for t, c in enumerate('ROMEO:'):
            row = lines[i + 1 + t]
            assert row.startswith(f'       {c}   ') and len(row[11:].split(' ')) == t + 1  # row t sees t + 1 columns
            assert set(row[11::2]) <= set('·░▒▓█') and '█' in row  # its strongest column is full
    assert lines[i + 7].startswith('ROMEO:')                # then it writes as usual
    assert_one_line_error(*load_fails('gpt.py', *GPT_TINY, ckpt, '--sample_only=True', '--attention_layer=2',
                                      monkeypatch=monkeypatch, capsys=capsys), 'attention_layer')


def test_gpt_old_checkpoints_are_refused_in_one_line(tmp_path, monkeypatch, capsys):
    load('gpt.py', *GPT_TINY, '--max_iters=10', f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    capsys.readouterr()
    old = torch.load(tmp_path / 'c.pt', weights_only=True)
    del old['scaler']                                        # what the single-Block gpt.py wrote
    old['model'] = {k.replace('sa.key', 'qkv'): v for k, v in old['model'].items()}
    torch.save(old, tmp_path / 'old.pt')
    rc, out, err = load_fails('gpt.py', *GPT_TINY, f'--ckpt_path={tmp_path / "old.pt"}', '--sample_only=True',
                              monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, 'old.pt', 'older version')


def test_gpt_float16_with_a_gradient_scaler_trains(tmp_path, monkeypatch, capsys):
    g = load('gpt.py', *GPT_TINY, '--dtype=float16', f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    vals = [float(v) for v in re.findall(r'\| val ([\d.]+)', capsys.readouterr().out)]
    assert len(vals) == 2 and vals[1] < vals[0] < math.log(65)   # the loss falls
    assert g['scaler'].is_enabled() and g['autocast'].fast_dtype == torch.float16
    saved = torch.load(tmp_path / 'c.pt', weights_only=True)['scaler']
    assert saved['scale'] == g['scaler'].get_scale()  # resume continues with the same loss scale


def test_gpt_trains_data_parallel_with_torchrun(tmp_path):
    # a wrapper runs gpt.py in each of 2 gloo processes and, when training ends, saves that process's weights
    (tmp_path / 'wrap.py').write_text(f'''import os, runpy, sys, torch, torch.distributed as dist
destroy = dist.destroy_process_group
def save_then_destroy():
    g = sys._getframe(1).f_globals  # gpt.py's globals
    torch.save({{'model': g['model'].state_dict(), 'batch': g['get_batch']('train')[0]}}, f"{tmp_path}/rank{{g['rank']}}.w")
    destroy()
dist.destroy_process_group = save_then_destroy
sys.argv = sys.argv[:1] + sys.argv[1:]
runpy.run_path({os.path.join(ROOT, 'gpt.py')!r}, run_name='__main__')
''')
    p = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                        str(tmp_path / 'wrap.py'), '--device=cpu', *GPT_TINY, '--gradient_accumulation_steps=2',
                        f'--ckpt_path={tmp_path / "c.pt"}'], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count('final:') == 1 and p.stdout.count('input.txt: mode=') == 1  # rank 0 alone prints
    vals = [float(v) for v in re.findall(r'\| val ([\d.]+)', p.stdout)]
    assert len(vals) == 2 and vals[1] < vals[0]                              # the loss falls
    assert sorted(os.listdir(tmp_path)) == ['c.pt', 'rank0.w', 'rank1.w', 'wrap.py']  # one checkpoint
    r0, r1 = (torch.load(tmp_path / f'rank{r}.w', weights_only=True) for r in (0, 1))
    assert all(torch.equal(r0['model'][k], r1['model'][k]) for k in r0['model'])  # identical weights
    assert not torch.equal(r0['batch'], r1['batch'])                            # different batches
    rc, out, err = run('gpt.py', '--gradient_accumulation_steps=1', env=dict(os.environ, RANK='0', WORLD_SIZE='2',
                       LOCAL_RANK='0', MASTER_ADDR='127.0.0.1', MASTER_PORT='29555'))
    assert_one_line_error(rc, out, err, 'gradient_accumulation_steps=1', 'multiple of the 2 processes')


# ---------------------------------------------------------------- encoder.py

ENC_TINY = ['--n_embd=16', '--n_head=2', '--n_layer=2', '--batch_size=64', '--max_iters=60',
            '--eval_interval=30', '--learning_rate=0.01', '--num_show=4']
ENC_FINAL = re.compile(r'^final: train=([\d.]+) val=([\d.]+) test=([\d.]+) train_acc=([\d.]+) val_acc=([\d.]+) '
                       r'test_acc=([\d.]+) params=(\d+) time=[\d.]+s$', re.M)


@pytest.fixture(scope='module')
def some_names(tmp_path_factory):  # the first 3,000 names: enough to learn from in a second, built in a blink
    path = tmp_path_factory.mktemp('encoder') / 'some.txt'
    path.write_text('\n'.join(open(os.path.join(ROOT, 'names.txt')).read().split()[:3000]))
    return f'--dataset={path}'


@pytest.fixture(scope='module')
def tiny(some_names):  # one short training run, shared by the tests that only look at what it left behind
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()) as out:
        g = load('encoder.py', *ENC_TINY, some_names, monkeypatch=mp)
    g['model'].eval()  # dropout off: the same input gives the same output
    return g, out.getvalue()


def test_encoder_prints_progress_final_line_names_and_attention(tiny):
    g, out = tiny
    assert 'ms/iter' in out and 'eta' in out
    assert len(re.findall(r'^iter \d+/60 \| train [\d.]+ \| val [\d.]+ \| val_acc [\d.]+$', out, re.M)) == 2
    assert re.search(r'^baseline \(.*\): val=[\d.]+ test=[\d.]+ val_acc=[\d.]+ test_acc=[\d.]+$', out, re.M)
    m = ENC_FINAL.search(out)
    assert m and int(m[7]) == sum(p.numel() for p in g['model'].parameters())
    shown = re.findall(r'^p\(real\) ([\d.]+)  (real|fake)  ([a-z]+)$', out, re.M)
    assert len(shown) == 4 and all(0 <= float(p) <= 1 for p, _, _ in shown)
    assert all(kind == 'fake' or name in g['splits']['val'] for _, kind, name in shown)
    drawing = out.split('attention in the last block')[1].splitlines()
    name = shown[0][2]
    assert f"'{name}'" in drawing[0]                                    # it draws the first name shown
    heads = [i for i, line in enumerate(drawing) if line.strip().startswith('head ')]
    assert len(heads) == 2 and drawing[heads[0]].split()[2:] == list(f'.{name}.')
    assert heads[1] - heads[0] == len(name) + 3                         # one row per character, '.'s included
    X, lens, ix = g['X'], g['lens'], g['ix']                            # the val rows it showed
    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()) as drawn:
        g['draw_attention'](f'.{name}.', g['model'](X[ix], lens[ix])[1][-1][0, :, :len(name) + 2, :len(name) + 2])
    assert drawn.getvalue() in out                                     # every head of the last block


def test_encoder_draws_attention_with_gpts_code():
    def source(script, name):  # the text of one top-level function
        text = open(os.path.join(ROOT, script), encoding='utf-8').read()
        node = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == name)
        return ast.get_source_segment(text, node)
    assert source('encoder.py', 'draw_attention') == source('gpt.py', 'draw_attention')


def test_encoder_learns_above_chance_on_whole_splits(tiny):
    g, out = tiny
    m = ENC_FINAL.search(out)
    train, val, test, train_acc, val_acc, test_acc = map(float, m.groups()[:6])
    assert val_acc > 0.65 and test_acc > 0.65 and val < 0.65, m[0]   # chance: 0.5 and ln 2 = 0.693
    X, lens, Y = g['data']['val']
    with torch.no_grad():
        logp = g['model'](X, lens)[0]                                 # one pass over the whole split
    assert abs((logp.argmax(1) == Y).float().mean().item() - val_acc) < 1e-4
    assert abs(F.nll_loss(logp, Y).item() - val) < 1e-4


def test_encoder_fakes_come_from_chapter_1s_table(tiny, some_names, monkeypatch, capsys):
    g, _ = tiny
    count = load('bigram_count.py', some_names, '--num_samples=0', monkeypatch=monkeypatch)
    assert torch.allclose(g['P'], count['P'])                         # the same table, fitted on train only
    for s, (X, lens, Y) in g['data'].items():
        real = g['splits'][s]
        names = [g['decode'](x[1:n - 1].tolist()) for x, n in zip(X, lens)]
        assert names[:len(real)] == real and len(names) == 2 * len(real)  # every name of the split, as many fakes
        assert Y[:len(real)].all() and not Y[len(real):].any()
        assert all(0 < len(f) <= g['L'] - 2 for f in names[len(real):])   # no empty fake, none too long
    assert len(set(names[len(real):]) - set(g['words'])) > 0.6 * len(real)  # mostly new names, not copies


def test_encoder_has_no_causal_mask(tiny):
    g, _ = tiny
    x = torch.tensor([[0] + g['encode']('emmanuel') + [0]])
    x2 = x.clone()
    x2[0, 7] = g['stoi']['z']                                         # change a late character
    pad = torch.zeros(1, x.size(1), dtype=torch.bool)
    with torch.no_grad():
        a, b = g['model'].encoder(x, pad)[0], g['model'].encoder(x2, pad)[0]   # (1, T, C)
    assert not torch.allclose(a[0, 1], b[0, 1], atol=1e-4)           # the first character sees the change


def test_encoder_padding_changes_nothing(tiny):
    g, _ = tiny
    X = torch.zeros(2, 12, dtype=torch.long)
    X[0, :6], X[1] = torch.tensor([0] + g['encode']('emma') + [0]), torch.tensor([0] + g['encode']('maximilian') + [0])
    X[0, 6:] = torch.randint(1, g['vocab_size'], (6,))                # whatever sits in the padding
    lens = torch.tensor([6, 12])
    with torch.no_grad():
        alone, _ = g['model'](X[:1, :6], lens[:1])
        batch, maps = g['model'](X, lens)
    assert torch.allclose(alone[0], batch[0], atol=1e-5)              # padded in a batch: the same log-probs
    assert len(maps) == 2
    for att in maps:                                                  # (B, nh, T, T), one per block
        assert torch.allclose(att[0, :, :6].sum(-1), torch.ones(2, 6))  # each real row is a distribution
        assert (att[0, :, :, 6:] == 0).all()                          # that gives the padding exactly 0


@pytest.mark.parametrize('args,words,code', [(['--no_such_key=3'], ['no_such_key', 'n_head'], 2),
                                             (['--block_size=10'], ['block_size=17'], 2),
                                             (['--n_embd=30', '--n_head=4'], ['n_embd=30', 'n_head=4'], 2),
                                             (['--dataset=FIVE'], ['too few lines (5)', 'at least 10'], 1)])
def test_encoder_refuses_bad_input_in_one_line(args, words, code, tmp_path, monkeypatch, capsys):
    (tmp_path / 'five.txt').write_text('emma\nolivia\nava\nisabella\nsophia\n')
    args = [a.replace('FIVE', str(tmp_path / 'five.txt')) for a in args]
    rc, out, err = load_fails('encoder.py', *ENC_TINY, *args, monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, *words)
    assert rc == code


def test_encoder_same_seed_same_numbers(some_names, monkeypatch, capsys):
    outs = []
    for seed in [1, 1, 2]:
        load('encoder.py', *ENC_TINY, '--max_iters=10', '--eval_interval=10', some_names, f'--seed={seed}',
             monkeypatch=monkeypatch)
        outs.append(re.sub(r'time=[\d.]+s|.*ms/iter.*', '', capsys.readouterr().out))  # all but timings
    assert outs[0] == outs[1] and outs[0] != outs[2]


# ---------------------------------------------------------------- README.md

def script_keys(script):
    """The hyperparameters a script accepts: the module-level names it assigns before `def fail`."""
    keys = set()
    for node in ast.parse(open(os.path.join(ROOT, script), encoding='utf-8').read()).body:
        if isinstance(node, ast.FunctionDef):
            break
        if isinstance(node, ast.Assign):
            keys |= {t.id for t in node.targets if isinstance(t, ast.Name) and not t.id.startswith('_')}
    return keys


def test_every_flag_in_the_readme_exists_in_its_script():
    readme = open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read()
    lines = [l for block in re.findall(r'```\w*\n(.*?)```', readme, re.S) for l in block.splitlines()]
    lines += re.findall(r'`((?:python|torchrun)\b[^`]*)`', readme)  # inline commands, in tables too
    checked = 0
    for line in lines:
        for script, flags in re.findall(r'(\w+\.py)((?:\s+--\w+=\S+)*)', line):
            assert os.path.exists(os.path.join(ROOT, script)), f'README runs {script}, which does not exist'
            for key in re.findall(r'--(\w+)=', flags):
                assert key in script_keys(script), f'README: {line.strip()!r} uses --{key}, unknown to {script}'
                checked += 1
    assert checked >= 20, checked  # the README's commands were found and read
