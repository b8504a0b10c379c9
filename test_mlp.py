"""Tests of mlp.py, round two: what the model computes, what its optimizer and sampler do, not only
that it runs and learns. Run: python -m pytest -q test_mlp.py"""
import contextlib, io
import pytest
from conftest import put_back
import torch
import torch.nn.functional as F
from test_scripts import (NET_TINY, after_final, expected_split, few_names, load, names_in,
                          run)

LONG = 'maximilianbenedict'  # longer than any of the first 2,000 names; it falls in val
# ten small steps (the model stays near its init), evaluated after the 5th and the 10th; greedy
# samples; a weight decay that is not AdamW's own
TINY = [*NET_TINY, '--max_iters=10', '--eval_interval=5', '--num_samples=2', '--temperature=0',
        '--learning_rate=0.001', '--weight_decay=0.05']


@pytest.fixture(scope='module')
def mlp(few_names, tmp_path_factory):
    # reaches inside: the model, the rows, the optimizer's steps and pick() are what the tests
    # look at; a module fixture runs the script once, on the first 2,000 names and LONG
    names = names_in(few_names.split('=', 1)[1])
    path = tmp_path_factory.mktemp('mlp') / 'names.txt'
    path.write_text('\n'.join(names[:1000] + [LONG] + names[1000:]))
    steps = []  # per optimizer step: the learning rate, weight decay and parameter count used

    class AdamW(torch.optim.AdamW):
        def step(self, *args, **kwargs):
            steps.append([(g['lr'], g['weight_decay'], len(g['params']))
                          for g in self.param_groups])
            return super().step(*args, **kwargs)
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(out), put_back():
        monkeypatch.setattr(torch.optim, 'AdamW', AdamW)
        g = load('mlp.py', *TINY, f'--dataset={path}', monkeypatch=monkeypatch)
    g.update(stdout=out.getvalue(), path=str(path), steps=steps)
    return g


def test_greedy_sampling_slides_the_window_one_character_on(mlp):
    # greedy sampling written out: from '.'s, the likeliest character, then the window slid on by
    # one (the oldest character out, the new one in), up to the longest name of ALL the splits
    assert LONG in expected_split(mlp['path'])['val']  # so a cap from train alone is shorter
    samples = after_final(mlp['stdout'])[:-1]
    model = mlp['model'].eval()
    context, out = [0] * mlp['block_size'], []
    with torch.no_grad():
        while len(out) < len(LONG):
            ix = model(torch.tensor([context])).argmax(-1).item()
            if ix == 0:
                break
            out.append(ix)
            context = context[1:] + [ix]
    assert len(out) == len(LONG)  # ten steps: this model never picks '.', the cap ends it
    assert samples == [mlp['decode'](out)] * 2


@pytest.mark.parametrize('temperature', [0.5, 2.0])
def test_sampling_draws_from_softmax_of_the_logits_over_the_temperature(mlp, temperature,
                                                                      monkeypatch):
    # a spy on torch.multinomial sees the probabilities pick() draws from; reaches inside: pick
    # reads the script's temperature, which only its globals hold
    seen = []
    draw = torch.multinomial

    def spy(probs, *args, **kwargs):
        seen.append(probs.clone())
        return draw(probs, *args, **kwargs)
    monkeypatch.setattr(torch, 'multinomial', spy)
    monkeypatch.setitem(mlp['pick'].__globals__, 'temperature', temperature)
    logits = torch.tensor([0.0, 1.0, 3.0, -2.0])
    ix = mlp['pick'](logits)
    assert len(seen) == 1 and 0 <= ix < 4
    assert torch.allclose(seen[0], F.softmax(logits / temperature, dim=-1), atol=1e-6)


def test_every_row_is_the_block_size_characters_before_its_target(mlp):
    # the rows written out from the val names: '.'s, then the name, a window sliding on by one;
    # reaches inside for the split's rows, which no output shows
    X, Y = mlp['data']['val']
    rows, targets = [], []
    for name in expected_split(mlp['path'])['val']:
        ids = [0] * mlp['block_size'] + mlp['encode'](name) + [0]
        for t in range(mlp['block_size'], len(ids)):
            rows.append(ids[t - mlp['block_size']:t])
            targets.append(ids[t])
    assert torch.equal(X, torch.tensor(rows)) and torch.equal(Y, torch.tensor(targets))


def test_the_output_is_the_mlp_written_out(mlp):
    # the embeddings of the context side by side, oldest first, through the Linear, BatchNorm
    # (eval: running statistics, then the learned scale and shift), tanh and the head
    model = mlp['model'].eval()
    x = torch.randint(1, mlp['vocab_size'], (6, mlp['block_size']),
                      generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        emb = torch.cat([model.tok_emb(x[:, t]) for t in range(mlp['block_size'])], dim=1)
        pre = emb @ model.fc.weight.T                                   # (B, n_hidden)
        bn = model.bn
        normed = (pre - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
        h = torch.tanh(normed * bn.weight + bn.bias)
        expected = h @ model.lm_head.weight.T + model.lm_head.bias     # (B, V)
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_a_new_model_predicts_nearly_the_same_for_every_context(mlp):
    # the init the MLP comment promises: a small output layer, so a fresh model's logits hardly
    # move from context to context (a spread of ~0.05; ~0.5 with PyTorch's default init);
    # reaches inside to build a fresh MLP on the script's data
    torch.manual_seed(0)
    model = mlp['MLP']()
    X, Y = mlp['data']['train']
    with torch.no_grad():
        spread = model(X).std(dim=0)  # (V,): each logit's spread over the train rows
    assert spread.max() < 0.15, spread


def test_every_step_uses_the_weight_decay_on_every_weight(mlp):
    # every parameter in the one group, with --weight_decay's value, at every step (the rates:
    # test_scripts.py's one-cycle test, for every chapter)
    params = len(list(mlp['model'].parameters()))
    assert len(mlp['steps']) == 10
    assert all(step == [(step[0][0], 0.05, params)] for step in mlp['steps'])


def test_training_steps_run_in_train_mode_and_evaluation_leaves_batchnorm_alone(mlp):
    # BatchNorm counts the batches it learned its statistics from: one per training step, none
    # from the evaluations (after the 5th step and the 10th) or from sampling
    assert mlp['model'].bn.num_batches_tracked.item() == mlp['max_iters'] == 10


def test_a_batch_draws_from_every_row_of_its_split(mlp, monkeypatch):
    # three rows in the split, 64 draws of 32: each row drawn, and only from that split;
    # reaches inside: get_batch reads the script's data
    X = torch.arange(3).view(3, 1)
    monkeypatch.setitem(mlp['get_batch'].__globals__, 'data', {'val': (X, X[:, 0] + 10)})
    seen = set()
    for _ in range(64):
        xb, yb = mlp['get_batch']('val')
        assert torch.equal(yb, xb[:, 0] + 10)
        seen.update(xb[:, 0].tolist())
    assert seen == {0, 1, 2}


def test_the_count_of_new_samples_is_against_the_train_split(tmp_path):
    # eight names 'ann' in train, 'bo' in val, 'cy' in test (seed 42's shuffle of ten): the
    # model learns 'ann', which is in train, so not new, though it is in no other split
    path = tmp_path / 'ten.txt'
    path.write_text('\n'.join(['bo', 'cy'] + ['ann'] * 8))
    assert expected_split(path)['val'] == ['bo'] and expected_split(path)['test'] == ['cy']
    rc, out, err = run('mlp.py', *NET_TINY, f'--dataset={path}', '--temperature=0',
                       '--max_iters=5', '--eval_interval=5', '--learning_rate=0.1')
    assert rc == 0, err
    assert after_final(out) == ['ann'] * 3 + ['0/3 samples are new (not in the training names)']


def test_samples_are_drawn_from_a_stream_seeded_by_seed_alone(mlp, monkeypatch, capsys):
    # the samples depend on the weights and --seed, not on how many random numbers training drew
    # before them: replayed here from the model's own probabilities and a generator seeded with
    # --seed, at temperature 1 (reaches inside: the trained model)
    g = load('mlp.py', *TINY, f"--dataset={mlp['path']}", '--temperature=1.0', '--seed=7',
             monkeypatch=monkeypatch)
    samples = after_final(capsys.readouterr().out)[:-1]
    model = g['model'].eval()
    stream = torch.Generator().manual_seed(7)
    replayed = []
    with torch.no_grad():
        for _ in samples:
            context, out = [0] * g['block_size'], []
            while len(out) < len(LONG):
                logits = model(torch.tensor([context]))[0]
                probs = F.softmax((logits - logits.max()) / 1.0, dim=-1)  # as pick() at T = 1
                ix = torch.multinomial(probs, 1, generator=stream).item()
                if ix == 0:
                    break
                out.append(ix)
                context = context[1:] + [ix]
            replayed.append(g['decode'](out))
    assert samples == replayed
