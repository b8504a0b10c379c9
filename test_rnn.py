from test_scripts import run, load, final, assert_one_line_error
# tests for rnn.py, to be merged into test_scripts.py; run: python -m pytest -q test_rnn.py
import re
import pytest
import torch
import torch.nn.functional as F

TINY = ['--max_iters=6', '--eval_interval=3', '--batch_size=16', '--n_embd=8', '--n_hidden=16', '--num_samples=3']


@pytest.mark.parametrize('cell', ['rnn', 'gru'])
def test_rnn_runs_and_learns(cell, monkeypatch, capsys):
    g = load('rnn.py', *TINY, f'--cell={cell}', '--learning_rate=0.03', monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    vals = [float(v) for v in re.findall(r'\| val ([\d.]+)', out)]
    assert len(vals) == 2 and vals[1] < vals[0] < 3.3          # evaluated twice, and the loss falls
    train, val, test, params = final(out)
    assert params == sum(p.numel() for p in g['model'].parameters())
    tail = out.split('final:')[1].strip().splitlines()[1:]
    assert len(tail) == 3 + 1 and tail[-1].endswith('samples are new (not in the training names)')
    assert 'ms/iter' in out and 'eta' in out


def test_rnn_loss_is_the_whole_split_mean_and_padding_is_masked(monkeypatch, capsys):
    g = load('rnn.py', *TINY, monkeypatch=monkeypatch)
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
def test_rnn_hidden_state_carries_information(cell, monkeypatch, capsys):
    g = load('rnn.py', '--max_iters=1', '--eval_interval=1', '--num_samples=1', f'--cell={cell}', monkeypatch=monkeypatch)
    X = torch.tensor([g['encode']('.emmanuel')])
    X2 = X.clone()
    X2[0, 2] = g['stoi']['z']                                  # change the character at step t-3 = 2
    with torch.no_grad():
        a, b = g['model'].eval()(X)[0], g['model'](X2)[0]
    assert torch.equal(a[0, :2], b[0, :2])                     # the past cannot see the future
    assert not torch.allclose(a[0, 5], b[0, 5], atol=1e-4)     # step 5 still remembers step 2


def test_rnn_same_seed_same_numbers(monkeypatch, capsys):
    outs = []
    for seed in [1, 1, 2]:
        load('rnn.py', *TINY, f'--seed={seed}', monkeypatch=monkeypatch)
        outs.append(re.sub(r'time=[\d.]+s|.*ms/iter.*', '', capsys.readouterr().out))  # all but timings
    assert outs[0] == outs[1] and outs[0] != outs[2]


def test_rnn_unknown_cell_is_refused(monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        load('rnn.py', '--cell=lstm', monkeypatch=monkeypatch)
    out, err = capsys.readouterr()
    assert_one_line_error(e.value.code, out, err, 'cell', 'gru')
