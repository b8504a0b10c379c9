"""Tests of rnn.py, round two: what the cells compute, not only that they run and learn.
Run: python -m pytest -q test_rnn.py"""
import contextlib, io, os
import pytest
from conftest import put_back
import torch
from test_scripts import (ROOT, RNN_TINY, after_final, assert_one_line_error, few_names, load,
                          load_fails, names_in)

CELL = [*RNN_TINY, '--max_iters=2', '--eval_interval=2', '--num_samples=0']


@pytest.fixture(scope='module', params=['rnn', 'gru'])
def cell(request, few_names):
    # reaches inside: the model's weights, to write the cell's formula out with them; one run per
    # cell, shared by the tests that only read the model
    # and its two greedy samples (1e-50 is 0 in float32: greedy too, not a division by 0)
    with pytest.MonkeyPatch.context() as monkeypatch, put_back(), \
            contextlib.redirect_stdout(io.StringIO()) as out:
        g = load('rnn.py', *CELL, few_names, f'--cell={request.param}', '--num_samples=2',
                 '--max_iters=30', '--eval_interval=30', '--learning_rate=0.03',
                 '--temperature=1e-50', monkeypatch=monkeypatch)
    g['stdout'] = out.getvalue()
    g['model'].eval()  # dropout off
    return g


def by_formula(g, idx, h):
    """The cell written out, step by step, with the model's own weights: idx (B, T), h (B, H) ->
    the states (B, T, H). GRU: r and z gate, n is the candidate that the reset gate r opens onto
    the old state, h_t = (1 - z) * n + z * h_{t-1}; Elman: h_t = tanh(Wx x_t + b + Wh h_{t-1})."""
    model, H = g['model'], g['n_hidden']
    Wx, b, Wh = model.Wx.weight, model.Wx.bias, model.Wh.weight
    states = []
    for t in range(idx.shape[1]):
        x = model.tok_emb(idx[:, t])                               # (B, n_embd)
        if g['cell'] == 'rnn':
            h = torch.tanh(x @ Wx.T + b + h @ Wh.T)
        else:
            r = torch.sigmoid(x @ Wx[:H].T + b[:H] + h @ Wh[:H].T)
            z = torch.sigmoid(x @ Wx[H:2 * H].T + b[H:2 * H] + h @ Wh[H:2 * H].T)
            n = torch.tanh(x @ Wx[2 * H:].T + b[2 * H:] + r * (h @ Wh[2 * H:].T))
            h = (1 - z) * n + z * h
        states.append(h)
    return torch.stack(states, dim=1)


def test_the_cell_computes_its_formula_and_the_head_reads_every_state(cell):
    model = cell['model']
    generator = torch.Generator().manual_seed(0)
    idx = torch.randint(0, cell['vocab_size'], (3, 5), generator=generator)
    h0 = torch.randn(3, cell['n_hidden'], generator=generator)    # a state that is not 0
    with torch.no_grad():
        logits, h = model(idx, h0)
        states = by_formula(cell, idx, h0)                           # (B, T, H)
        assert torch.allclose(h, states[:, -1], atol=1e-5)          # the state it hands on
        expected = states @ model.lm_head.weight.T + model.lm_head.bias  # (B, T, V)
        assert torch.allclose(logits, expected, atol=1e-5)
        # no state given: the recurrence starts from zeros
        assert torch.allclose(model(idx)[0], model(idx, torch.zeros_like(h0))[0])


def test_sampling_feeds_back_the_state_and_one_character(cell, few_names):
    # greedy sampling written out: from '.', the likeliest character, h carried, until '.'.
    # Reaches inside to replay the model
    g = cell
    samples = after_final(g['stdout'])[:-1]
    model = g['model']
    longest = max(len(w) for w in names_in(few_names.split('=', 1)[1]))  # the cap
    h = torch.zeros(1, g['n_hidden'])
    ix, out = 0, []
    with torch.no_grad():
        while len(out) < longest:
            states = by_formula(g, torch.tensor([[ix]]), h)
            h = states[:, -1]
            logits = h @ model.lm_head.weight.T + model.lm_head.bias
            ix = logits.argmax().item()
            if ix == 0:
                break
            out.append(ix)
    assert samples == [g['decode'](out)] * 2


def test_a_paragraph_among_names_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    # one pasted paragraph would pad every batch it is drawn into to its length: refused at once
    names = names_in(os.path.join(ROOT, 'names.txt'))[:2000]
    paragraph = 'It was the best of times, it was the worst of times. ' * 60
    (tmp_path / 'pasted.txt').write_text('\n'.join(names[:700] + [paragraph] + names[700:]))
    rc, out, err = load_fails('rnn.py', *RNN_TINY, f'--dataset={tmp_path / "pasted.txt"}',
                              monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, 'pasted.txt', f'a line of {len(paragraph.strip())} '
                          'characters', "'It was the best of t'", 'one name per line')
    assert rc == 1 and out == ''


def test_names_of_every_length_are_kept_and_trained_on_whole(tmp_path, monkeypatch, capsys):
    # the other side of the refusal: a name six times the typical length is a name, not a
    # paragraph; every split's targets count every character of every name, its end included
    names = ['ab', 'abc', 'abcd', 'bcd', 'cd', 'dab', 'abd', 'bad', 'dcba', 'abcdabcdabcdabcdabc']
    (tmp_path / 'short.txt').write_text('\n'.join(names * 3))
    g = load('rnn.py', *CELL, f'--dataset={tmp_path / "short.txt"}', monkeypatch=monkeypatch)
    for split, (X, Y) in g['data'].items():
        assert (Y >= 0).sum() == sum(len(w) + 1 for w in g['splits'][split])


def test_every_name_is_input_dot_name_and_target_name_dot(cell):
    # the rows written out from the val names: input '.' + name, target name + '.', padded with
    # '.' and -1 to the longest; reaches inside for the split's rows, which no output shows
    X, Y = cell['data']['val']
    names = cell['splits']['val']
    width = max(len(name) for name in names) + 1
    for i, name in enumerate(names):
        ids = cell['encode'](name)
        assert X[i].tolist() == [0] + ids + [0] * (width - 1 - len(ids)), name
        assert Y[i].tolist() == ids + [0] + [-1] * (width - 1 - len(ids)), name


def test_each_step_clips_the_gradient(few_names, monkeypatch, capsys):
    # what AdamW is handed at every step: the gradient's norm (grad_clip, or not clipped at 0)
    # and the weight decay (the rates: test_scripts.py's one-cycle test, for every chapter).
    # Reaches inside: the optimizer's step is watched, since no output shows what it was given
    seen = []
    real_step = torch.optim.AdamW.step

    def watch(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group['params']]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        seen.append((norm.item(), self.param_groups[0]['lr'], self.param_groups[0]['weight_decay']))
        return real_step(self, *args, **kwargs)
    monkeypatch.setattr(torch.optim.AdamW, 'step', watch)
    settings = ['--max_iters=10', '--eval_interval=10', '--learning_rate=0.02', '--weight_decay=0.05']
    for grad_clip in [0.001, 0.0]:
        seen.clear()
        load('rnn.py', *CELL, few_names, *settings, f'--grad_clip={grad_clip}',
             monkeypatch=monkeypatch)
        norms = [norm for norm, _, _ in seen]
        assert len(seen) == 10 and all(decay == 0.05 for _, _, decay in seen)
        if grad_clip:
            assert norms == pytest.approx([grad_clip] * 10, rel=1e-3)
        else:
            assert min(norms) > 0.01  # left as computed: not clipped, and not scaled to 0


def test_dropout_never_touches_the_carried_state(few_names, monkeypatch, capsys):
    # dropout on the way in and out only: in training, half of the inputs and outputs are zeroed,
    # and not one number of the state handed on is
    g = load('rnn.py', *CELL, few_names, '--dropout=0.5', monkeypatch=monkeypatch)
    model = g['model'].train()
    idx = torch.tensor([g['encode']('.emmanuel')] * 4)
    with torch.no_grad():
        logits, h = model(idx)
    assert (h != 0).all()
