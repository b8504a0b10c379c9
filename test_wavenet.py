"""Tests of wavenet.py, round two: what the tree computes, not only that it runs and learns.
Run: python -m pytest -q test_wavenet.py"""
import contextlib, io
import pytest
from conftest import put_back
import torch
import torch.nn.functional as F
from test_scripts import NET_TINY, after_final, few_names, load, names_in

TREE = [*NET_TINY, '--num_samples=0']  # 30 steps: enough for greedy choices to differ


@pytest.fixture(scope='module')
def tree(few_names):
    # reaches inside: the model (its embedding, levels and head) is what the tests look at; a
    # module fixture runs the script once for the tests that only read the model
    # and its two greedy samples (1e-50 is 0 in float32: greedy too, not a division by 0)
    with pytest.MonkeyPatch.context() as monkeypatch, put_back(), \
            contextlib.redirect_stdout(io.StringIO()) as out:
        g = load('wavenet.py', *TREE, few_names, '--block_size=8', '--num_samples=2',
                 '--temperature=1e-50', monkeypatch=monkeypatch)
    g['stdout'] = out.getvalue()
    g['model'].eval()  # BatchNorm on its running statistics: every row on its own
    return g


def contexts(g, n=6):  # n contexts of block_size characters, none of them '.'
    generator = torch.Generator().manual_seed(0)
    return torch.randint(1, g['vocab_size'], (n, g['block_size']), generator=generator)


def test_each_level_fuses_neighbours_and_the_output_is_the_tree_written_out(tree):
    # the tree by hand: at every level, position i of the next level is the pair (2i, 2i+1) side
    # by side, through that level's Linear, BatchNorm (eval: running statistics) and tanh
    model, x = tree['model'], contexts(tree)
    with torch.no_grad():
        h = model.tok_emb(x)                                    # (B, 8, n_embd)
        for level in model.levels:
            pairs = torch.cat([h[:, 0::2], h[:, 1::2]], dim=-1)  # (B, T/2, 2C): neighbours
            pre = pairs @ level.fc.weight.T                       # (B, T/2, n_hidden)
            bn = level.bn
            normed = (pre - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
            h = torch.tanh(normed * bn.weight + bn.bias)
        assert h.shape == (len(x), 1, tree['n_hidden'])
        expected = h[:, 0] @ model.lm_head.weight.T + model.lm_head.bias  # (B, V)
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_a_tree_node_sees_exactly_its_own_span_of_characters(tree):
    # behaviour, whatever the layout: node j of level k depends on characters j*2^k .. j*2^k+2^k-1
    # and on no other; a tree fusing t with t + T/2 sees a scattered set instead
    model, x = tree['model'], contexts(tree)
    assert len(model.levels) == 3                                # 8 -> 4 -> 2 -> 1
    with torch.no_grad():
        base = [model.tok_emb(x)]
        for level in model.levels:
            base.append(level(base[-1]))
        for p in range(tree['block_size']):
            x2 = x.clone()
            x2[:, p] = x2[:, p] % (tree['vocab_size'] - 1) + 1   # another character, not '.'
            h = model.tok_emb(x2)
            for k, level in enumerate(model.levels, 1):
                h = level(h)
                changed = ~torch.isclose(h, base[k], atol=1e-6).all(dim=2).all(dim=0)  # (T/2^k,)
                expected = torch.arange(len(changed)) == p // 2 ** k
                assert torch.equal(changed, expected), (p, k, changed)


def test_batchnorm_in_training_pools_every_pair_of_a_level(tree):
    # train mode: one level's statistics are the mean and (biased) variance over batch AND
    # position, B * T/2 rows, as the Fuse comment says; not one set per position
    model, x = tree['model'], contexts(tree, n=16)
    level = model.levels[0]
    with torch.no_grad():
        h = model.tok_emb(x)
        pre = torch.cat([h[:, 0::2], h[:, 1::2]], dim=-1) @ level.fc.weight.T  # (B, 4, n_hidden)
        rows = pre.flatten(0, 1)                                                 # (B*4, n_hidden)
        normed = (pre - rows.mean(0)) / torch.sqrt(rows.var(0, unbiased=False) + level.bn.eps)
        expected = torch.tanh(normed * level.bn.weight + level.bn.bias)
        saved = {k: v.clone() for k, v in level.bn.state_dict().items()}
        level.train()
        try:
            out = level(h)
        finally:
            level.eval()
            level.bn.load_state_dict(saved)  # the running statistics as they were
    assert torch.allclose(out, expected, atol=1e-5)


def test_greedy_sampling_slides_the_window_one_character_on(tree, few_names):
    # greedy sampling written out: from '.'s, the likeliest character, the window slid on by one.
    # Reaches inside to replay the model
    g = tree
    samples = after_final(g['stdout'])[:-1]
    model = g['model']
    longest = max(len(w) for w in names_in(few_names.split('=', 1)[1]))  # the cap
    context, out = [0] * g['block_size'], []
    with torch.no_grad():
        while len(out) < longest:
            ix = model(torch.tensor([context])).argmax(-1).item()
            if ix == 0:
                break
            out.append(ix)
            context = context[1:] + [ix]
    assert samples == [g['decode'](out)] * 2


def test_every_row_is_the_block_size_characters_before_its_target(tree):
    # the rows written out from the val names: '.'s, then the name, a window sliding on by one;
    # reaches inside for the split's rows, which no output shows
    X, Y = tree['data']['val']
    rows, targets = [], []
    for name in tree['splits']['val']:
        ids = [0] * tree['block_size'] + tree['encode'](name) + [0]
        for t in range(tree['block_size'], len(ids)):
            rows.append(ids[t - tree['block_size']:t])
            targets.append(ids[t])
    assert torch.equal(X, torch.tensor(rows)) and torch.equal(Y, torch.tensor(targets))


def test_sampling_draws_from_softmax_of_the_logits_over_the_temperature(tree):
    # pick() at temperature 0.5 on three logits, 4,000 draws, against softmax(logits / 0.5);
    # reaches inside: pick reads the script's temperature and generator
    logits = torch.tensor([0.0, 1.0, 2.0])
    names = tree['pick'].__globals__
    saved = names['temperature']
    names['temperature'] = 0.5
    try:
        draws = torch.tensor([tree['pick'](logits) for _ in range(4000)])
    finally:
        names['temperature'] = saved
    frequencies = torch.bincount(draws, minlength=3) / len(draws)
    assert torch.allclose(frequencies, F.softmax(logits / 0.5, dim=0), atol=0.03), frequencies
