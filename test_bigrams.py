"""Tests of what chapters 1 and 2 compute: the counted table against its formula, the learned
table against gradient descent written out here, and the edges (float32, files, signals, pipes).
Each expected value is computed in the test from the file itself, never read from the script."""
import math, os
import pytest
import torch
import torch.nn.functional as F
from test_scripts import (ROOT, load, load_fails, final, after_final, evals,
                          assert_one_line_error, names_in, expected_split, few_names)


def vocabulary(path):  # STYLE.md: '.' first, then the sorted characters of the file
    return ['.'] + sorted(set(''.join(names_in(path))) - {'.'})


def pairs(names, stoi):  # every (previous, next) pair of a list of names, '.' at both ends
    xs, ys = [], []
    for name in names:
        ids = [0] + [stoi[c] for c in name] + [0]
        xs += ids[:-1]
        ys += ids[1:]
    return torch.tensor(xs), torch.tensor(ys)


def counted(path):  # the bigram counts of the training split, counted here one pair at a time
    itos = vocabulary(path)
    stoi = {ch: i for i, ch in enumerate(itos)}
    counts = torch.zeros(len(itos), len(itos), dtype=torch.float64)
    xs, ys = pairs(expected_split(path)['train'], stoi)
    for x, y in zip(xs.tolist(), ys.tolist()):
        counts[x, y] += 1
    return counts, stoi


def nll(P, x, y):  # the mean negative log likelihood of the pairs (x, y) under the table P
    return -P[x, y].log().mean().item()


# ---------------------------------------------------------------- bigram_count.py

@pytest.mark.parametrize('k', [0.25, 3.0])
def test_bigram_count_table_is_counts_plus_smoothing_over_row_sums(k, few_names, monkeypatch,
                                                                   capsys):
    # the table is the model: only the script's globals hold it
    path = few_names.split('=', 1)[1]
    g = load('bigram_count.py', few_names, f'--smoothing={k}', '--num_samples=0',
             monkeypatch=monkeypatch)
    counts, stoi = counted(path)
    P = (counts + k) / (counts + k).sum(dim=1, keepdim=True)
    assert torch.allclose(g['P'].double(), P, rtol=1e-6, atol=0)
    out = capsys.readouterr().out
    for split, names in expected_split(path).items():
        assert final(out)[split] == pytest.approx(nll(P, *pairs(names, stoi)), abs=1.5e-4), split
    itos = vocabulary(path)
    for ch in '.aqx':  # the peek at the table: the three likeliest after each
        probs, ids = P[stoi[ch]].topk(3)
        likeliest = ', '.join(f'{itos[i]!r} {p:.2f}' for p, i in zip(probs.tolist(), ids.tolist()))
        assert f'most likely after {ch!r}: {likeliest}' in out.splitlines()


def test_bigram_count_smoothing_at_its_ends(few_names, monkeypatch, capsys):
    # no smoothing: an unseen val pair has probability 0 and the val loss is inf; a pseudo-count
    # as large as the range allows (1e30) swamps every count: uniform rows, a loss of ln V, samples
    path = few_names.split('=', 1)[1]
    counts, stoi = counted(path)
    V = len(stoi)
    for k in ['0', '1e-50']:  # 1e-50 is 0 in float32: the limit of no smoothing
        load('bigram_count.py', few_names, f'--smoothing={k}', '--num_samples=0',
             monkeypatch=monkeypatch)
        result = final(capsys.readouterr().out)
        train = nll(counts / counts.sum(dim=1, keepdim=True), *pairs(
            expected_split(path)['train'], stoi))
        assert result['train'] == pytest.approx(train, abs=1.5e-4) and result['val'] == math.inf
    load('bigram_count.py', few_names, '--smoothing=1e30', '--num_samples=20',
         monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    assert [final(out)[s] for s in ['train', 'val', 'test']] == [round(math.log(V), 4)] * 3
    assert len(after_final(out)) == 20 + 1


def test_bigram_count_a_character_only_in_val_costs_inf_not_nan(tmp_path, monkeypatch, capsys):
    # with no smoothing, the row of a character never seen in training is empty: 0 / 0
    path = tmp_path / 'z.txt'
    path.write_text('\n'.join(names_in(os.path.join(ROOT, 'names.txt'))[:100]))
    first_val = expected_split(path)['val'][0]
    path.write_text(path.read_text().replace(f'{first_val}\n', f'{first_val}Z\n', 1))
    load('bigram_count.py', f'--dataset={path}', '--smoothing=0', '--num_samples=3',
         monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    assert final(out)['val'] == math.inf and 'nan' not in out


def test_bigram_count_samples_stop_at_the_longest_name_in_any_split(tmp_path, monkeypatch, capsys):
    # nineteen names 'ab' and the alphabet, in train, val or test. Uniform rows (a pseudo-count
    # that swamps the counts) draw '.' once in V characters: many samples run on to the cap
    path = tmp_path / 'long.txt'
    path.write_text('\n'.join(str(i) for i in range(20)))
    split = expected_split(path)  # which of the twenty lines lands in which split
    for where in ['train', 'val', 'test']:
        lines = ['ab'] * 20
        lines[int(split[where][0])] = 'abcdefghijklmnopqrstuvwxyz'
        path.write_text('\n'.join(lines))
        load('bigram_count.py', f'--dataset={path}', '--smoothing=1e30', '--num_samples=30',
             monkeypatch=monkeypatch)
        samples = after_final(capsys.readouterr().out)[:-1]
        assert max(map(len, samples)) == 26, where


def test_bigram_count_samples_follow_the_table(few_names, monkeypatch, capsys):
    # with no smoothing, every pair a sample holds (its '.' start and end included) was seen in
    # training, and a sample that stops early ends with a pair that ends a training name
    path = few_names.split('=', 1)[1]
    counts, stoi = counted(path)
    load('bigram_count.py', few_names, '--smoothing=0', '--num_samples=40', '--seed=3',
         monkeypatch=monkeypatch)
    samples = after_final(capsys.readouterr().out)[:-1]
    longest = max(map(len, names_in(path)))
    assert len(samples) == 40
    for sample in samples:
        ids = [0] + [stoi[c] for c in sample] + ([0] if len(sample) < longest else [])
        assert all(counts[a, b] > 0 for a, b in zip(ids, ids[1:])), sample


@pytest.mark.parametrize('script,args', [('bigram_count.py', []),
                                         ('bigram_nn.py', ['--max_iters=2', '--eval_interval=2'])])
def test_a_windows_file_gives_the_same_table_and_other_encodings_one_line(script, args, few_names,
                                                                          tmp_path, monkeypatch,
                                                                          capsys):
    # Notepad's UTF-8 starts with a BOM and ends lines with CRLF; with blank lines and spaces
    # around names, capitals and accents too, the table is the plain file's. Its UTF-16
    # ('Unicode') and a Latin-1 file are not UTF-8: one line that says so
    names = names_in(few_names.split('=', 1)[1])[:500] + ['Acme Corp', 'Zoë Ltd'] * 20
    text = '\n'.join(names)
    windows = '\r\n'.join(f' {name}  \r\n' for name in names)
    (tmp_path / 'plain.txt').write_text(text, encoding='utf-8')
    (tmp_path / 'bom.txt').write_bytes(b'\xef\xbb\xbf' + windows.encode())
    tables = []
    for path in [tmp_path / 'plain.txt', tmp_path / 'bom.txt']:
        g = load(script, *args, f'--dataset={path}', '--num_samples=0', monkeypatch=monkeypatch)
        tables.append(g['P'])
        assert g['itos'] == ['.'] + sorted(set(text) - {'\n'})  # no BOM, no '\r', the accent kept
    assert torch.equal(tables[0], tables[1])
    capsys.readouterr()
    (tmp_path / 'utf16.txt').write_bytes(text.encode('utf-16'))
    (tmp_path / 'latin1.txt').write_bytes((text + '\nZoë').encode('latin-1'))
    for name in ['utf16.txt', 'latin1.txt']:
        rc, out, err = load_fails(script, f'--dataset={tmp_path / name}',
                                  monkeypatch=monkeypatch, capsys=capsys)
        assert_one_line_error(rc, out, err, name, 'not UTF-8')
        assert rc == 1


# ---------------------------------------------------------------- bigram_nn.py

def test_bigram_nn_is_gradient_descent_on_the_fit_plus_the_penalty(few_names, monkeypatch,
                                                                   capsys):
    # three full-batch steps written out here, from the seeded initial weights: each progress
    # line's loss is the fit plus reg * mean(W^2) before its step, and W is where the steps lead
    path = few_names.split('=', 1)[1]
    lr, reg = 20.0, 0.5
    g = load('bigram_nn.py', few_names, '--max_iters=3', '--eval_interval=10', f'--reg={reg}',
             f'--learning_rate={lr}', '--seed=5', '--num_samples=0', monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    stoi = {ch: i for i, ch in enumerate(vocabulary(path))}
    x, y = pairs(expected_split(path)['train'], stoi)
    torch.manual_seed(5)
    W = 0.01 * torch.randn(len(stoi), len(stoi))
    losses = []
    for _ in range(3):
        W.requires_grad_()
        loss = F.cross_entropy(W[x], y) + reg * (W ** 2).mean()
        loss.backward()
        losses.append(loss.item())
        W = (W - lr * W.grad).detach()
    assert evals(out, 'loss') == pytest.approx(losses, abs=1.5e-4)
    assert torch.allclose(g['W'].detach(), W, atol=1e-5)


def test_bigram_nn_reports_and_samples_the_table_it_learned(few_names, monkeypatch, capsys):
    # every reported loss is the whole split's mean under softmax(W); the samples come from it
    path = few_names.split('=', 1)[1]
    g = load('bigram_nn.py', few_names, '--max_iters=20', '--eval_interval=20',
             '--num_samples=0', monkeypatch=monkeypatch)
    result = final(capsys.readouterr().out)
    P = F.softmax(g['W'].detach().double(), dim=1)
    stoi = {ch: i for i, ch in enumerate(vocabulary(path))}
    for split, names in expected_split(path).items():
        assert result[split] == pytest.approx(nll(P, *pairs(names, stoi)), abs=1.5e-4), split
    assert torch.allclose(g['P'].double(), P, atol=1e-6)


TWO_LETTERS = ['anna', 'ana', 'nan', 'an', 'na', 'a', 'n', 'anan', 'nana', 'aan', 'nna', 'ann']


def test_bigram_nn_learns_the_counted_table_and_the_penalty_flattens_it(tmp_path, monkeypatch,
                                                                        capsys):
    # with no penalty the learned rows head for the counted rows (the maximum likelihood); a
    # penalty large enough pulls every row to uniform, as a huge pseudo-count does
    path = tmp_path / 'an.txt'
    path.write_text('\n'.join(TWO_LETTERS * 3))
    counts, stoi = counted(path)
    g = load('bigram_nn.py', f'--dataset={path}', '--max_iters=60', '--eval_interval=60',
             '--reg=0', '--learning_rate=10.0', '--num_samples=0', monkeypatch=monkeypatch)
    assert torch.allclose(g['P'].double(), counts / counts.sum(dim=1, keepdim=True), atol=0.01)
    capsys.readouterr()
    g = load('bigram_nn.py', f'--dataset={path}', '--max_iters=30', '--eval_interval=30',
             '--reg=1e4', '--learning_rate=5e-4', '--num_samples=0', monkeypatch=monkeypatch)
    assert torch.allclose(g['P'], torch.full((3, 3), 1 / 3), atol=1e-3)
    assert final(capsys.readouterr().out)['val'] == pytest.approx(math.log(3), abs=1e-3)


def test_bigram_nn_samples_follow_a_sharp_table(tmp_path, monkeypatch, capsys):
    # ten names: the eight of the training split are 'abc', val and test hold 'xyz'. Trained, the
    # table is nearly certain of a -> b -> c -> '.', and each sample is a training name
    path = tmp_path / 'abc.txt'
    path.write_text('\n'.join(str(i) for i in range(10)))
    train = expected_split(path)['train']  # which of the ten lines the split trains on
    path.write_text('\n'.join('abc' if str(i) in train else 'xyz' for i in range(10)))
    load('bigram_nn.py', f'--dataset={path}', '--max_iters=50', '--reg=0',
         '--eval_interval=50', '--num_samples=10', monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    assert after_final(out) == ['abc'] * 10 + ['0/10 samples are new (not in the training names)']


def test_bigram_nn_refuses_a_penalty_float32_cannot_hold(monkeypatch, capsys):
    rc, out, err = load_fails('bigram_nn.py', '--reg=1e39', '--dataset=no/such/file.txt',
                              monkeypatch=monkeypatch, capsys=capsys)
    assert (rc, out) == (2, '')
    assert err == ('error: --reg=1e+39 is out of range: it must be a number >= 0 and <= 3.4e38 '
                   '(the penalty is float32, and float32 ends there)\n')
