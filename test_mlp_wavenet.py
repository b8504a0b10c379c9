from test_scripts import run, load, final, assert_one_line_error
# tests for mlp.py and wavenet.py, to be merged into test_scripts.py; run: python -m pytest -q test_mlp_wavenet.py
import math, os, re
import pytest
import torch
import torch.nn.functional as F

TINY = ['--max_iters=30', '--eval_interval=15', '--batch_size=32', '--n_embd=8', '--n_hidden=32', '--num_samples=3']
NETS = ['mlp.py', 'wavenet.py']


@pytest.fixture
def few_names(tmp_path):  # the first 2,000 names: builds in a blink, for tests that need no real losses
    path = tmp_path / 'few.txt'
    path.write_text('\n'.join(open(os.path.join(os.path.dirname(__file__), 'names.txt')).read().split()[:2000]))
    return f'--dataset={path}'


@pytest.mark.parametrize('script', NETS)
def test_net_runs_as_a_user_would(script, few_names):
    rc, out, err = run(script, *TINY, few_names)
    assert rc == 0, err
    final(out)
    tail = out.split('final:')[1].strip().splitlines()[1:]
    assert len(tail) == 3 + 1 and tail[-1].endswith('samples are new (not in the training names)')
    assert all(re.fullmatch('[a-z]*', name) for name in tail[:3])
    assert 'ms/iter' in out and 'eta' in out


@pytest.mark.parametrize('script', NETS)
def test_net_learns_and_reports_whole_split_losses(script, monkeypatch, capsys):
    g = load(script, *TINY, monkeypatch=monkeypatch)
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
        load(script, *TINY, few_names, f'--seed={seed}', monkeypatch=monkeypatch)
        outs.append(re.sub(r'time=[\d.]+s|.*ms/iter.*', '', capsys.readouterr().out))  # all but timings
    assert outs[0] == outs[1] and outs[0] != outs[2]


def test_wavenet_fuses_pairs_in_a_tree(few_names, monkeypatch, capsys):
    g = load('wavenet.py', *TINY, few_names, '--block_size=16', '--max_iters=1', monkeypatch=monkeypatch)
    model = g['model']
    assert type(model).__name__ == 'WaveNet' and len(model.levels) == 4  # 16 -> 8 -> 4 -> 2 -> 1
    x = g['data']['train'][0][:5]
    with torch.no_grad():
        h = model.wte(x)
        for level, T in zip(model.levels, [8, 4, 2, 1]):
            h = level(h)
            assert h.shape == (5, T, g['n_hidden'])  # each level halves the positions


def test_wavenet_block_size_must_be_a_power_of_two():
    rc, out, err = run('wavenet.py', '--block_size=6')
    assert_one_line_error(rc, out, err, 'block_size', 'power of 2')
    assert rc == 2
