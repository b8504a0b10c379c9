"""Tests of what encoder.py computes: its attention, blocks and classifier against the formulas
written out here with the model's own weights, and its edges (a cp1252 console, a batch too large).
The runs and the behaviour a user sees are tested in test_scripts.py's encoder section."""
import io, math, os, sys
import pytest
from conftest import put_back
import torch
import torch.nn.functional as F
from test_scripts import ENC_TINY, ROOT, assert_one_line_error, load, load_fails, names_in

# a tiny run on 400 names, with dropout on: in eval mode it must be off, in train mode on
ENC_ONE = [*ENC_TINY, '--max_iters=2', '--eval_interval=2', '--dropout=0.5', '--num_show=2']


@pytest.fixture(scope='module')
def few_400(tmp_path_factory):  # the first 400 names: fakes and baseline in a blink
    path = tmp_path_factory.mktemp('data') / 'few400.txt'
    path.write_text('\n'.join(names_in(os.path.join(ROOT, 'names.txt'))[:400]))
    return f'--dataset={path}'


@pytest.fixture(scope='module')
def enc(few_400):
    """The globals of one tiny run (in-process: the tests need its model and its functions)."""
    with pytest.MonkeyPatch.context() as mp, put_back():
        mp.setattr(sys, 'stdout', io.StringIO())
        g = load('encoder.py', *ENC_ONE, few_400, monkeypatch=mp)
    g['model'].eval()
    return g


def name_batch(g, names):  # '.' + name + '.', padded with '.': (B, T) and the lengths (B,)
    T = max(map(len, names)) + 2
    X = torch.zeros(len(names), T, dtype=torch.long)
    for i, w in enumerate(names):
        X[i, 1:len(w) + 1] = torch.tensor(g['encode'](w))
    lens = torch.tensor([len(w) + 2 for w in names])
    return X, lens


def attention(sa, x, pad, n_head):  # multi-head attention written out with the module's weights
    B, T, C = x.shape
    hs = C // n_head
    heads = []
    weights = []
    for h in range(n_head):
        part = slice(h * hs, (h + 1) * hs)
        q = x @ sa.query.weight[part].T + sa.query.bias[part]  # (B, T, hs)
        k = x @ sa.key.weight[part].T + sa.key.bias[part]
        v = x @ sa.value.weight[part].T + sa.value.bias[part]
        scores = q @ k.transpose(1, 2) / math.sqrt(hs)          # scaled by the head's size
        scores = scores.masked_fill(pad[:, None, :], float('-inf'))  # no key past the end
        att = scores.softmax(-1)                                # (B, T, T)
        weights.append(att)
        heads.append(att @ v)
    y = torch.cat(heads, -1) @ sa.proj.weight.T + sa.proj.bias
    return y, torch.stack(weights, 1)                           # (B, T, C), (B, nh, T, T)


def test_encoder_attention_is_the_formula_scaled_by_the_head_size(enc):
    g = enc
    block = g['model'].encoder.blocks[0]
    torch.manual_seed(0)
    x = torch.randn(2, 7, g['n_embd'])
    pad = torch.arange(7) >= torch.tensor([[7], [4]])           # the second name ends at 4
    with torch.no_grad():
        y = block.sa(x, pad)
        att = block.sa.weights(x, pad)
        y_formula, att_formula = attention(block.sa, x, pad, g['n_head'])
    assert torch.allclose(att, att_formula, atol=1e-6)
    assert torch.allclose(y[0], y_formula[0], atol=1e-5)
    assert torch.allclose(y[1, :4], y_formula[1, :4], atol=1e-5)  # the name's own positions


def test_encoder_block_is_pre_norm_attention_then_feed_forward(enc):
    g = enc
    block = g['model'].encoder.blocks[1]
    torch.manual_seed(1)
    x = torch.randn(3, 6, g['n_embd'])
    pad = torch.zeros(3, 6, dtype=torch.bool)
    with torch.no_grad():
        out = block(x, pad)
        a, _ = attention(block.sa, F.layer_norm(x, (g['n_embd'],), block.ln1.weight,
                                                block.ln1.bias), pad, g['n_head'])
        x1 = x + a                                              # the residual stream, added to
        ffwd = block.ffwd
        h = F.gelu(F.layer_norm(x1, (g['n_embd'],), block.ln2.weight, block.ln2.bias)
                   @ ffwd.fc.weight.T + ffwd.fc.bias)           # (B, T, 4C)
        x2 = x1 + h @ ffwd.proj.weight.T + ffwd.proj.bias
    assert torch.allclose(out, x2, atol=1e-5)


def test_encoder_classifies_the_mean_of_its_encodings(enc):
    g = enc
    model = g['model']
    X, lens = name_batch(g, ['emma', 'maximilian', 'al'])
    X[0, 6:] = 5                                                # whatever sits in the padding
    pad = torch.arange(X.size(1)) >= lens[:, None]
    Y = torch.tensor([1, 0, 1])
    with torch.no_grad():
        logp, loss = model(X, lens, Y)
        e = model.encoder
        x = e.tok_emb(X) + e.pos_emb(torch.arange(X.size(1)))   # what and where
        for block in e.blocks:
            x = block(x, pad)
        x = e.ln_f(x)
        mean = torch.stack([x[i, :n].mean(0) for i, n in enumerate(lens.tolist())])  # (B, C)
        c = model.classifier
        logits = c.head(torch.relu(c.fc(mean)))
    assert torch.allclose(logp, logits.log_softmax(-1), atol=1e-5)
    assert torch.allclose(logp.exp().sum(1), torch.ones(3), atol=1e-5)  # fake and real: 1
    assert torch.allclose(loss, -logp[torch.arange(3), Y].mean(), atol=1e-6)
    assert model(X, lens)[1] is None                            # no targets, no loss


def test_encoder_attention_maps_are_the_model_s_own(enc):
    g = enc
    model = g['model']
    X, lens = name_batch(g, ['olivia', 'ava'])
    pad = torch.arange(X.size(1)) >= lens[:, None]
    maps = model.attention_maps(X, lens)
    assert len(maps) == g['n_layer']
    x = model.encoder.tok_emb(X) + model.encoder.pos_emb(torch.arange(X.size(1)))
    with torch.no_grad():
        for block, att in zip(model.encoder.blocks, maps):
            _, expected = attention(block.sa, block.ln1(x), pad, g['n_head'])
            assert torch.allclose(att, expected, atol=1e-6)
            x = block(x, pad)


def test_encoder_dropout_works_in_training_only(enc):
    g = enc
    model = g['model']
    X, lens = name_batch(g, ['sophia', 'mia', 'charlotte'])
    with torch.no_grad():
        a, _ = model(X, lens)
        b, _ = model(X, lens)
        model.train()
        torch.manual_seed(2)
        c, _ = model(X, lens)
        model.eval()
    assert torch.equal(a, b)                                    # eval: the same, every time
    assert not torch.allclose(a, c, atol=1e-4)                  # --dropout=0.5 drops in training


def test_encoder_training_batch_is_half_real_half_fakes_of_the_same_lengths(enc):
    g = enc
    X, lens, Y = g['get_batch']()
    half = g['batch_size'] // 2
    assert X.shape[0] == lens.shape[0] == g['batch_size']
    assert Y.tolist() == [1] * half + [0] * half
    names = [g['decode'](x[1:n - 1].tolist()) for x, n in zip(X, lens.tolist())]
    assert set(names[:half]) <= set(g['splits']['train'])       # real: from train only
    assert sorted(map(len, names[:half])) == sorted(map(len, names[half:]))
    assert (X[torch.arange(len(X)), lens - 1] == 0).all()       # each ends with its '.'


def test_encoder_drawing_falls_back_to_ascii_on_a_cp1252_console(enc, monkeypatch, capsys):
    # a Windows pipe writes cp1252: the drawing must be printable there, in ASCII shades
    g = enc
    att = torch.tensor([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.1, 0.3, 0.6]]])  # (1 head, 3, 3)
    g['draw_attention']('a b', att)
    utf8 = capsys.readouterr().out
    raw = io.BytesIO()
    console = io.TextIOWrapper(raw, encoding='cp1252', errors='strict')
    monkeypatch.setattr(sys, 'stdout', console)
    g['draw_attention']('a b', att)
    console.flush()
    cp1252 = raw.getvalue().decode('ascii').replace('\r\n', '\n')  # plain ASCII, whole
    assert '█' in utf8 and '?' not in cp1252
    assert len(cp1252.splitlines()) == len(utf8.splitlines()) == 5
    for line_utf8, line_ascii in zip(utf8.splitlines()[2:], cp1252.splitlines()[2:]):
        assert len(line_utf8) == len(line_ascii)                # the same cells, in ASCII
        assert [i for i, c in enumerate(line_utf8) if c == ' '] == \
               [i for i, c in enumerate(line_ascii) if c == ' ']  # the same blanks (weight 0)


@pytest.mark.parametrize('size', [10_000_000, 642])
def test_encoder_refuses_a_batch_larger_than_twice_the_training_names(size, few_400,
                                                                       monkeypatch, capsys):
    # 400 names: 320 train, so half a batch of at most 320 real names: 640
    rc, out, err = load_fails('encoder.py', *ENC_TINY, few_400, f'--batch_size={size}',
                              monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, f'--batch_size={size}', '320 training names',
                          'at most 640')
    assert 'fakes' not in out                                   # refused before drawing them


def test_encoder_dropout_drops_attention_weights_and_the_output(enc):
    # --dropout=0.5 in training: the output loses whole channels (zeros) and the rest is scaled by
    # 2; if the attention weights lost some too, what is left is not 2 x the eval-mode output
    g = enc
    sa = g['model'].encoder.blocks[0].sa
    torch.manual_seed(3)
    x = torch.randn(4, 8, g['n_embd'])
    pad = torch.zeros(4, 8, dtype=torch.bool)
    with torch.no_grad():
        y_eval = sa(x, pad)
        sa.train()
        y_train = sa(x, pad)
        sa.eval()
    kept = y_train != 0
    assert 0.3 < kept.float().mean() < 0.7                      # about half the output dropped
    assert not torch.allclose(y_train[kept], 2 * y_eval[kept], atol=1e-4)


def test_encoder_baseline_features_are_the_pairs_and_the_bigram_log_likelihood(enc):
    g = enc
    names = ['emma', 'al', 'maximilian']
    X, lens = name_batch(g, names)
    bag, ll = g['pair_features'](X, lens)
    V = g['vocab_size']
    logP = g['P'].log()
    for i, w in enumerate(names):
        ids = [0] + g['encode'](w) + [0]
        pairs = list(zip(ids, ids[1:]))                         # len(w) + 1 pairs, end included
        counts = torch.zeros(V * V)
        for a, b in pairs:
            counts[a * V + b] += 1
        assert torch.equal(bag[i], counts)
        total = sum(logP[a, b] for a, b in pairs)
        assert torch.allclose(ll[i], torch.stack([total / 10, total / len(pairs)]), atol=1e-5)
