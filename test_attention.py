"""Tests of attention.py: each rung of the ladder computes what it says, written out again from
the model's own weights, and no rung lets a position see the future.
Run: python -m pytest -q test_attention.py"""
import contextlib, io, math, re
import pytest
from conftest import put_back
import torch
import torch.nn.functional as F
from test_scripts import SHAKESPEARE, assert_one_line_error, load, load_fails, run

RUNGS = ['bigram', 'average', 'head', 'heads', 'ffwd', 'blocks', 'residual', 'layernorm']
TINY = ['--block_size=8', '--n_embd=16', '--n_head=4', '--n_layer=2', '--batch_size=8',
        '--eval_iters=2', '--max_new_tokens=0']


@pytest.fixture(scope='module')
def text(tmp_path_factory):  # the start of tiny Shakespeare: every run reads it whole
    path = tmp_path_factory.mktemp('text') / 'shakespeare.txt'
    path.write_text(SHAKESPEARE, encoding='utf-8')
    return f'--dataset={path}'


@pytest.fixture(scope='module')
def chapter(text):
    # reaches inside: the classes and the data, to build each rung and write its math out again.
    # One tiny run; each test then builds the rung it needs from the same classes
    with pytest.MonkeyPatch.context() as monkeypatch, put_back(), \
            contextlib.redirect_stdout(io.StringIO()):
        g = load('attention.py', *TINY, text, '--max_iters=2', '--eval_interval=2',
                 monkeypatch=monkeypatch)
    return g['LanguageModel'].__init__.__globals__  # the module's own namespace: rung lives there


def build(chapter, rung, seed=0):
    chapter['rung'] = rung  # the classes read it when they are built, as in a run
    torch.manual_seed(seed)
    model = chapter['LanguageModel']()
    model.eval()
    return model


def inputs(chapter, B=3, T=8):
    generator = torch.Generator().manual_seed(1)
    idx = torch.randint(0, chapter['vocab_size'], (B, T), generator=generator)
    return idx


def embedded(model, idx):  # what the rung's mixing reads: token + position embeddings
    T = idx.shape[1]
    return model.tok_emb(idx) + model.pos_emb(torch.arange(T))


def by_head_formula(head, x):  # softmax(q k^T / sqrt(hs)) under the causal mask, times v
    q = x @ head.query.weight.T
    k = x @ head.key.weight.T
    v = x @ head.value.weight.T
    T, hs = x.shape[1], k.shape[-1]
    scores = q @ k.transpose(1, 2) / math.sqrt(hs)
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    scores = scores.masked_fill(future, float('-inf'))
    return torch.softmax(scores, dim=-1) @ v


def test_bigram_reads_the_next_characters_logits_from_its_row(chapter):
    model = build(chapter, 'bigram')
    idx = inputs(chapter)
    with torch.no_grad():
        logits, _ = model(idx)
    assert torch.equal(logits, model.tok_emb.weight[idx])


def test_average_weights_are_one_over_t_plus_one_on_the_past(chapter):
    model = build(chapter, 'average')
    idx = inputs(chapter)
    with torch.no_grad():
        x = embedded(model, idx)
        weights = model.mix.weights(x)
        logits, _ = model(idx)
    T = idx.shape[1]
    for t in range(T):
        for s in range(T):
            expected = 1 / (t + 1) if s <= t else 0.0
            assert weights[t, s].item() == pytest.approx(expected, abs=1e-7)
    # the output: each position the plain mean of its own and every earlier vector
    means = torch.stack([x[:, :t + 1].mean(dim=1) for t in range(T)], dim=1)
    expected = means @ model.lm_head.weight.T + model.lm_head.bias
    assert torch.allclose(logits, expected, atol=1e-5)


def test_a_head_is_softmax_of_scaled_scores_under_the_mask_times_v(chapter):
    model = build(chapter, 'head')
    idx = inputs(chapter)
    with torch.no_grad():
        x = embedded(model, idx)
        assert model.mix.query.weight.shape[0] == chapter['n_embd']  # one head, as wide as x
        assert torch.allclose(model.mix(x), by_head_formula(model.mix, x), atol=1e-5)
        # and its weights are a weighted average: rows sum to 1, nothing above the diagonal
        weights = model.mix.weights(x)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(3, 8), atol=1e-6)
    assert torch.all(torch.triu(weights, diagonal=1) == 0)


def test_heads_side_by_side_concatenate_in_order_then_project(chapter):
    model = build(chapter, 'heads')
    idx = inputs(chapter)
    mha = model.mix
    assert len(mha.heads) == chapter['n_head']
    with torch.no_grad():
        x = embedded(model, idx)
        outputs = [by_head_formula(head, x) for head in mha.heads]
        assert outputs[0].shape[-1] == chapter['n_embd'] // chapter['n_head']
        expected = torch.cat(outputs, dim=-1) @ mha.proj.weight.T + mha.proj.bias
        assert torch.allclose(mha(x), expected, atol=1e-5)


def mha_by_formula(mha, x):
    outputs = [by_head_formula(head, x) for head in mha.heads]
    return torch.cat(outputs, dim=-1) @ mha.proj.weight.T + mha.proj.bias


def ffwd_by_formula(ffwd, x):
    hidden = torch.relu(x @ ffwd.fc.weight.T + ffwd.fc.bias)
    return hidden @ ffwd.proj.weight.T + ffwd.proj.bias


def layer_norm(ln, x):
    return F.layer_norm(x, (x.shape[-1],), ln.weight, ln.bias)


@pytest.mark.parametrize('rung,depth', [('ffwd', 1), ('blocks', 2), ('residual', 2),
                                        ('layernorm', 2)])
def test_each_block_rung_is_its_parts_in_order(chapter, rung, depth):
    # ffwd: attention then the feed-forward, each replacing x; blocks: n_layer of those;
    # residual: each part adds to x; layernorm: each part reads x normalised, and a last norm
    model = build(chapter, rung)
    idx = inputs(chapter)
    blocks = list(model.mix)
    assert len(blocks) == depth
    with torch.no_grad():
        x = embedded(model, idx)
        for block in blocks:
            if rung in ('ffwd', 'blocks'):
                x = ffwd_by_formula(block.ffwd, mha_by_formula(block.sa, x))
            elif rung == 'residual':
                x = x + mha_by_formula(block.sa, x)
                x = x + ffwd_by_formula(block.ffwd, x)
            else:
                x = x + mha_by_formula(block.sa, layer_norm(block.ln1, x))
                x = x + ffwd_by_formula(block.ffwd, layer_norm(block.ln2, x))
        if rung == 'layernorm':
            x = layer_norm(model.ln_f, x)
        expected = x @ model.lm_head.weight.T + model.lm_head.bias
        logits, _ = model(idx)
    assert torch.allclose(logits, expected, atol=1e-4)


@pytest.mark.parametrize('rung', RUNGS)
def test_no_rung_lets_a_position_see_the_future(chapter, rung):
    model = build(chapter, rung)
    idx = inputs(chapter)
    changed = idx.clone()
    changed[:, 5:] = (idx[:, 5:] + 1) % chapter['vocab_size']  # a different future
    with torch.no_grad():
        before, _ = model(idx)
        after, _ = model(changed)
    assert torch.equal(before[:, :5], after[:, :5])  # positions 0-4 cannot tell
    if rung != 'bigram':  # and position 5 reads the change (the bigram reads its own character)
        assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_from_average_on_each_rung_keeps_every_part_of_the_one_before(chapter):
    counts = []
    for rung in RUNGS[1:]:  # the bigram's table is vocab_size wide: another model altogether
        model = build(chapter, rung)
        counts.append(sum(p.numel() for p in model.parameters()))
    # each rung has every part of the one before it: never fewer weights (residual and
    # layernorm only add a +, and two norms)
    assert counts == sorted(counts)
    assert counts[RUNGS.index('residual') - 1] == counts[RUNGS.index('blocks') - 1]


def test_a_run_trains_and_writes_text(run_tiny):
    rc, out, err = run_tiny
    assert rc == 0, err
    evals = [float(v) for v in re.findall(r'\| val (\d+\.\d+)', out)]
    assert evals[-1] < math.log(65) - 0.5  # from uniform over 65 characters, the loss fell
    text = out.split('final: ', 1)[1].split('\n', 1)[1]
    assert len(text.rstrip('\n')) >= 30


@pytest.fixture(scope='module')
def run_tiny(text):
    return run('attention.py', *TINY[:-1], text, '--rung=heads', '--max_iters=60',
               '--eval_interval=30', '--learning_rate=1e-2', '--max_new_tokens=30')


@pytest.mark.parametrize('flag,words', [('--rung=transformer', 'one of bigram, average'),
                                        ('--n_head=3', 'divides 64'),
                                        ('--block_size=0', 'an integer >= 1')])
def test_a_bad_value_is_one_line(flag, words, monkeypatch, capsys):
    rc, out, err = load_fails('attention.py', flag, monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, words)
