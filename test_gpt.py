"""Tests of gpt.py, round two (issues 25, 28, 29): what the model computes, which parameters the
optimizer decays, the schedule at its ends, what sampling draws from, the settings only a GPU, a
notebook meets, and files and numbers from outside. Run from the repository
root: python -m pytest -q test_gpt.py. Most runs are in-process on 20,000 characters of
Shakespeare; the tests that reach inside say why."""
import ast, builtins, contextlib, io, os, re, runpy, shutil, sys, types
import urllib.request
import pytest
import torch
import torch.nn.functional as F
from test_scripts import (ROOT, GPT_TINY, NEW_LINE, SHAKESPEARE, run, load, load_fails,
                          after_final, assert_one_line_error, few_names, trained)

GPT = os.path.join(ROOT, 'gpt.py')
GPU_SIZES = {'batch_size': 64, 'block_size': 256, 'n_layer': 6, 'n_head': 6, 'n_embd': 384,
             'dropout': 0.2, 'eval_interval': 500, 'eval_iters': 200, 'learning_rate': 1e-3}


def blocks_of(g):
    return [m for m in g['model'].modules() if isinstance(m, g['Block'])]


def attention_written_out(sa, x, n_head):  # the lecture's attention, one operation at a time
    B, T, C = x.shape
    hs = C // n_head
    q = sa.query(x).view(B, T, n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
    k = sa.key(x).view(B, T, n_head, hs).transpose(1, 2)
    v = sa.value(x).view(B, T, n_head, hs).transpose(1, 2)
    att = q @ k.transpose(-2, -1) / hs ** 0.5                # (B, nh, T, T)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    att = F.softmax(att.masked_fill(future, float('-inf')), dim=-1)
    y = (att @ v).transpose(1, 2).reshape(B, T, C)           # the heads side by side
    return sa.proj(y)


def random_x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------- what the model computes

def test_gpt_block_is_pre_norm_attention_then_feed_forward(trained):
    # reaches inside: a Block of the trained model against the pre-norm block written out here
    # with the block's own parts: each branch reads a normalised x and adds into the raw x
    for block in blocks_of(trained.g):
        block.eval()
        x = random_x(3, 16, 32)
        with torch.no_grad():
            h = x + block.sa(block.ln1(x))
            expected = h + block.ffwd(block.ln2(h))
            assert torch.allclose(block(x), expected, atol=1e-5)


def test_gpt_dropout_acts_in_training_only(trained, monkeypatch):
    # reaches inside: the model built with --dropout=0.5, in eval mode and in training mode
    with contextlib.redirect_stdout(io.StringIO()) as out:
        g = load('gpt.py', *trained.args, '--sample_only=True', '--dropout=0.5',
                 monkeypatch=monkeypatch)
    assert out.getvalue().endswith(trained.text)  # sampling: the text of the model without dropout
    model = g['model'].eval()
    x = torch.randint(g['vocab_size'], (2, 16), generator=torch.Generator().manual_seed(0))
    h = random_x(2, 16, 32)
    with torch.no_grad():
        logits, _ = model(x)
        again, _ = model(x)
        assert torch.equal(logits, again)
        for block in blocks_of(g):
            expected = attention_written_out(block.sa, h, g['n_head'])
            assert torch.allclose(block.sa(h), expected, atol=1e-5)
        model.train()
        dropped, _ = model(x)
        dropped_again, _ = model(x)
    model.eval()
    assert not torch.allclose(dropped, logits) and not torch.allclose(dropped, dropped_again)


def test_gpt_learning_rate_warms_up_then_decays_to_lr_decay_of_its_peak(trained):
    # reaches inside: the schedule is a function of the step
    g = trained.g
    lr_at, lr, decay = g['lr_at'], g['learning_rate'], g['lr_decay']
    warmup, last = g['warmup_iters'], g['max_iters']  # 2 and 20: step 11 is half way down
    assert (lr, decay) == (0.01, 0.2)
    assert lr_at(1) == pytest.approx(lr / warmup)
    assert lr_at(warmup) == pytest.approx(lr)
    assert lr_at(11) == pytest.approx(lr * (1 + decay) / 2)  # cos = 0: half way to the floor
    assert lr_at(last) == pytest.approx(decay * lr)
    rates = [lr_at(it) for it in range(1, last + 1)]
    assert rates[:warmup] == sorted(rates[:warmup]) and rates[warmup - 1:] == sorted(
        rates[warmup - 1:], reverse=True)
    for group in g['optimizer'].param_groups:  # the last step ran at the schedule's end
        assert group['lr'] == pytest.approx(decay * lr)


def test_gpt_weight_decay_falls_on_weight_matrices_only(trained):
    # reaches inside: the optimizer's parameter groups say which parameters decay
    model, optimizer = trained.g['model'], trained.g['optimizer']
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults['betas'] == (0.9, 0.99)
    decay_of = {}
    for group in optimizer.param_groups:
        for p in group['params']:
            assert id(p) not in decay_of          # each parameter in one group only
            decay_of[id(p)] = group['weight_decay']
    expected = {}
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
            expected[id(module.weight)] = 0.05    # the --weight_decay of the run
        if isinstance(module, torch.nn.LayerNorm):
            expected[id(module.weight)] = 0.0     # a gain decayed to 0 would undo the norm
        if isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm)) and module.bias is not None:
            expected[id(module.bias)] = 0.0
    assert {id(p) for p in model.parameters()} == set(expected)  # all of them, and no other kind
    assert decay_of == expected


def test_gpt_float16_clipping_measures_the_true_gradient(trained, tmp_path, monkeypatch):
    # reaches inside: the gradient the optimizer is handed is caught on its way into AdamW.step.
    # A fused AdamW unscales inside the step: the scaler hands it the scale as grad_scale
    handed = []
    real_step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        grads = [p.grad for group in self.param_groups for p in group['params']]
        norm = torch.linalg.vector_norm(torch.cat([grad.flatten() for grad in grads])).item()
        scale = getattr(self, 'grad_scale', None)
        handed.append(norm if scale is None else norm / scale.item())
        return real_step(self, *args, **kwargs)
    monkeypatch.setattr(torch.optim.AdamW, 'step', spy)
    g = load('gpt.py', *trained.args, '--dtype=float16', '--grad_clip=0.001', '--max_iters=3',
             f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    assert g['scaler'].is_enabled() and g['scaler'].get_scale() > 1  # float16 gradients scaled
    # every true gradient is far longer than 0.001: clipped, each step's is 0.001 exactly
    assert len(handed) == 3 and handed == pytest.approx([0.001] * 3, rel=1e-3)


def test_gpt_text_split_trains_on_the_first_90_percent_and_validates_on_the_rest(tmp_path,
                                                                                 monkeypatch):
    # reaches inside: get_batch, drawn from many times. The file's first 90% is lower case, the
    # last 10% upper case: a window shows which part it came from, and where in it
    rng = torch.Generator().manual_seed(0)
    letters = 'abcdefghijklmnopqrstuvwxyz'
    head = ''.join(letters[i] for i in torch.randint(26, (180,), generator=rng))
    head = '\n'.join(head[i:i + 30] for i in range(0, 180, 30))[:180]
    tail = ''.join(letters[i].upper() for i in torch.randint(26, (20,), generator=rng))
    (tmp_path / 'split.txt').write_text(head + tail)
    g = load('gpt.py', *GPT_TINY, '--max_iters=1', '--eval_interval=1', '--max_new_tokens=1',
             '--batch_size=64', '--mode=text', f'--dataset={tmp_path / "split.txt"}',
             f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    torch.manual_seed(0)
    for split, part in [('train', head), ('val', tail)]:
        windows = set()
        for _ in range(40):
            x, y = g['get_batch'](split)
            assert torch.equal(x[:, 1:], y[:, :-1])  # the target: the input shifted by one
            for row, last in zip(x.tolist(), y[:, -1].tolist()):
                windows.add(g['decode'](row + [last]))
        assert all(w in part for w in windows)       # each window inside its own part
        assert part[:17] in windows and part[-17:] in windows  # block_size + 1: first to last


# ---------------------------------------------------------------- what sampling draws from

@pytest.mark.parametrize('temperature,top_k', [(0.5, 0), (2.0, 0), (0.5, 3)])
def test_gpt_samples_from_the_softmax_of_the_logits_over_the_temperature(temperature, top_k,
                                                                        trained, monkeypatch):
    # reaches inside: torch.multinomial is watched, to see the distribution each character is
    # drawn from, and the model gives the logits to compare it with
    drawn = []
    real = torch.multinomial

    def spy(probs, *args, **kwargs):
        drawn.append(probs.detach().clone())
        return real(probs, *args, **kwargs)
    monkeypatch.setattr(torch, 'multinomial', spy)
    monkeypatch.setattr(torch.Tensor, 'multinomial', spy, raising=False)
    g = load('gpt.py', *trained.args, '--sample_only=True', '--max_new_tokens=1',
             f'--temperature={temperature}', f'--top_k={top_k}', monkeypatch=monkeypatch)
    with torch.no_grad():
        logits, _ = g['model'].eval()(torch.tensor([g['encode']('\n')]))  # the default prompt
    logits = logits[0, -1] / temperature
    if top_k:
        logits[logits < logits.topk(top_k).values[-1]] = float('-inf')
    assert len(drawn) == 1
    assert torch.allclose(drawn[0].flatten(), F.softmax(logits, dim=-1), atol=1e-6)
    assert (drawn[0] > 0).sum() == (top_k or g['vocab_size'])


def test_gpt_a_temperature_below_what_float32_holds_is_greedy(trained):
    texts = {}
    for temperature in ['0', '1e-40', '1e-50']:  # 1e-40: below float32's smallest normal
        rc, out, err = run('gpt.py', *trained.args, '--sample_only=True',
                           f'--temperature={temperature}')
        assert rc == 0, err
        texts[temperature] = out[-len(trained.text):]
    assert texts['1e-40'] == texts['1e-50'] == texts['0'] != trained.text


# ---------------------------------------------------------------- a notebook, a GPU, a Windows pipe

class Stopped(BaseException):  # what a test raises to stop a run where it wants to look
    pass


def fake_gpu(monkeypatch, tmp_path, capability=(8, 0)):
    """A machine with one CUDA GPU, as far as the size choice can tell (a real CUDA call fails
    here); the working directory holds a short input.txt."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'get_device_capability', lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    (tmp_path / 'input.txt').write_text(SHAKESPEARE, encoding='utf-8')
    monkeypatch.chdir(tmp_path)


def run_like_jupyter(namespace, source, monkeypatch, argv):
    """exec gpt.py's source in a namespace, as a kernel runs a pasted cell (no __file__) or %run
    (with __file__), until it has printed its first two lines (the values that run, the data):
    by then the sizes are chosen and said, and nothing has touched the GPU."""
    real_print = builtins.print

    def print_until_the_data_line(*args, **kwargs):
        real_print(*args, **kwargs)
        if args and 'distinct characters' in str(args[0]):
            raise Stopped
    monkeypatch.setattr(builtins, 'print', print_until_the_data_line)
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(Stopped):
        exec(compile(source, GPT, 'exec'), namespace)


def sizes_as_written(source):  # the laptop sizes: the hyperparameters as the file writes them
    hyperparameters = source.split('\nclass ')[0]  # the lines above the model
    pairs = re.findall(r"^(\w+) = ([^#\n]+?)\s*(?:#|$)", hyperparameters, flags=re.M)
    return {k: ast.literal_eval(v) for k, v in pairs if k in [*GPU_SIZES, 'dtype', 'max_iters']}


def test_gpt_first_line_says_the_laptop_sizes_apply_on_a_cpu(trained):
    first = trained.out.splitlines()[0]
    assert first.startswith('sizes: laptop') and 'device cpu' in first and 'cell' not in first


def test_gpt_a_cell_pasted_into_a_notebook_on_a_gpu_runs_what_it_says(tmp_path, monkeypatch,
                                                                      capsys):
    # reaches inside: the globals the cell runs with, read when it has said them
    fake_gpu(monkeypatch, tmp_path)
    source = open(GPT, encoding='utf-8').read()
    source, edits = re.subn(r'^max_iters = \d+', 'max_iters = 3', source, flags=re.M)
    assert edits == 1
    namespace = {'__name__': '__main__'}
    run_like_jupyter(namespace, source, monkeypatch,
                     ['ipykernel_launcher.py', '-f', '/tmp/kernel-1.json'])
    written = sizes_as_written(source)
    assert written['max_iters'] == 3 and len(written) == len(GPU_SIZES) + 2
    assert {k: namespace[k] for k in written} == written  # the edit, and every laptop size
    first = (capsys.readouterr().out + '\n').splitlines()[0]
    assert first.startswith('sizes: laptop') and 'cell' in first and 'device cuda' in first


@pytest.mark.parametrize('capability,dtype', [((8, 0), 'bfloat16'), ((7, 5), 'float16')])
def test_gpt_run_from_a_file_on_a_gpu_takes_nanogpts_sizes_but_not_over_a_flag(
        capability, dtype, tmp_path, monkeypatch, capsys):
    # reaches inside: the sizes chosen, read when the run has said them
    fake_gpu(monkeypatch, tmp_path, capability)
    namespace = {'__name__': '__main__', '__file__': GPT}
    run_like_jupyter(namespace, open(GPT, encoding='utf-8').read(), monkeypatch,
                     ['gpt.py', '--max_iters=3'])  # as %run gpt.py --max_iters=3 does
    chosen = {k: namespace[k] for k in [*GPU_SIZES, 'max_iters', 'dtype']}
    assert chosen == dict(GPU_SIZES, max_iters=3, dtype=dtype)
    first = (capsys.readouterr().out + '\n').splitlines()[0]
    assert first.startswith('sizes: gpu') and 'device cuda' in first and 'max_iters' in first


@pytest.mark.parametrize('nccl,backend', [(True, 'nccl'), (False, 'gloo')])
def test_gpt_torchrun_on_gpus_uses_nccl_only_where_it_exists(nccl, backend, tmp_path, monkeypatch):
    # reaches inside: CUDA is faked, and the process group is caught as it is started (a
    # Windows torch has no NCCL: gloo there)
    fake_gpu(monkeypatch, tmp_path)
    started = []

    def start(*args, **kwargs):
        started.append(kwargs.get('backend', args[0] if args else None))
        raise Stopped
    monkeypatch.setattr(torch.cuda, 'set_device', lambda device: None)
    monkeypatch.setattr(torch.distributed, 'is_nccl_available', lambda: nccl)
    monkeypatch.setattr(torch.distributed, 'init_process_group', start)
    for key in ['RANK', 'LOCAL_RANK']:  # what torchrun gives process 0 of 1
        monkeypatch.setenv(key, '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    # float32: no CUDA autocast to build (building one fails here, before the process group)
    monkeypatch.setattr(sys, 'argv', ['gpt.py', '--max_iters=3', '--dtype=float32'])
    with pytest.raises(Stopped):
        runpy.run_path(GPT, run_name='__main__')
    assert started == [backend]


def no_download(*args, **kwargs):
    raise AssertionError(f'a download was tried: {args}')


def test_gpt_samples_from_the_checkpoint_alone_in_text_mode(trained, tmp_path, monkeypatch):
    # a folder with only the checkpoint: the dataset it was trained on is not on this machine
    # (hidden for the test), none in the folder, and no download tried
    monkeypatch.setattr(urllib.request, 'urlopen', no_download)
    shutil.copy(trained.ckpt, tmp_path / 'c.pt')
    flags = [f for f in trained.args if not f.startswith(('--dataset=', '--ckpt_path='))]
    hidden = trained.dataset.with_suffix('.hidden')
    os.replace(trained.dataset, hidden)
    try:
        rc, out, err = run('gpt.py', *flags, '--ckpt_path=c.pt', '--sample_only=True',
                           cwd=tmp_path)
    finally:
        os.replace(hidden, trained.dataset)
    assert rc == 0, err
    assert out.endswith(trained.text) and os.listdir(tmp_path) == ['c.pt']


def test_gpt_samples_from_the_checkpoint_alone_in_names_mode(few_names, tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, 'urlopen', no_download)
    (tmp_path / 'alone').mkdir()
    ckpt = tmp_path / 'alone' / 'c.pt'
    shutil.copy(few_names.split('=', 1)[1], tmp_path / 'list.txt')
    rc, out, err = run('gpt.py', *GPT_TINY, f'--dataset={tmp_path / "list.txt"}',
                       '--max_iters=2', '--eval_interval=2', '--num_samples=5',
                       f'--ckpt_path={ckpt}')
    assert rc == 0, err
    names = after_final(out)[:-1]
    (tmp_path / 'list.txt').unlink()              # the list it was trained on is gone
    rc, alone, err = run('gpt.py', '--ckpt_path=c.pt', '--sample_only=True', '--num_samples=5',
                         cwd=tmp_path / 'alone')
    assert rc == 0, err
    assert alone.splitlines()[-5:] == names and NEW_LINE not in alone  # no names to compare with
    assert os.listdir(tmp_path / 'alone') == ['c.pt']
    rc, out, err = run('gpt.py', few_names, f'--ckpt_path={ckpt}', '--sample_only=True',
                       '--num_samples=5')                  # the same list, given: as before
    assert rc == 0 and out.splitlines()[-6:-1] == names and out.endswith(f' {NEW_LINE}\n'), err


# ---------------------------------------------------------------- files and numbers from elsewhere

def test_gpt_a_text_without_newlines_runs_with_the_default_prompt(tmp_path):
    text = SHAKESPEARE[:3000].replace('\n', ' ')  # one long line: '\n' is not in its vocabulary
    (tmp_path / 'line.txt').write_text(text)
    args = [*GPT_TINY, '--max_iters=1', '--eval_interval=1', f'--dataset={tmp_path / "line.txt"}',
            f'--ckpt_path={tmp_path / "c.pt"}']
    rc, out, err = run('gpt.py', *args)
    assert rc == 0, err
    sample = out.split('final:')[1].split('\n', 1)[1]
    assert sample.startswith(text[0]) and len(sample) == 1 + 40 + 1  # its first character
    rc, out, err = run('gpt.py', *args, '--prompt=ë')  # a prompt asked for is still checked
    assert_one_line_error(rc, out, err, "'ë'", 'vocabulary')
    assert 'iter ' not in out


def test_gpt_an_empty_checkpoint_path_is_refused_before_training():
    before = [f for f in os.listdir(ROOT) if f.endswith('.tmp')]
    rc, out, err = run('gpt.py', *GPT_TINY, '--ckpt_path=')
    assert_one_line_error(rc, out, err, 'ckpt_path')
    assert 'iter ' not in out and [f for f in os.listdir(ROOT) if f.endswith('.tmp')] == before


def test_gpt_a_byte_order_mark_is_not_text(tmp_path):
    # Notepad starts a UTF-8 file with a BOM: the same text with and without it, the same run
    outs = []
    for folder, start in [('plain', ''), ('bom', '\ufeff')]:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / 't.txt').write_text(start + SHAKESPEARE[:3000], encoding='utf-8')
        rc, out, err = run('gpt.py', *GPT_TINY, '--max_iters=2', '--eval_interval=2',
                           '--dataset=t.txt', '--ckpt_path=c.pt', cwd=tmp_path / folder)
        assert rc == 0, err
        outs.append(re.sub(r'[\d.]+ ms/iter|eta \d+ s|time=[\d.]+s', '', out))  # not timings
    assert outs[0] == outs[1]




# ---------------------------------------------------------------- what a tidy-up could slip in


def test_gpt_residual_branches_start_smaller_by_the_square_root_of_twice_the_depth(trained):
    # reaches inside: a freshly built model, before any step
    g = trained.g
    torch.manual_seed(0)
    model = g['GPT']()
    residual, other = [], []
    for name, p in model.named_parameters():
        if name.endswith('sa.proj.weight') or name.endswith('ffwd.proj.weight'):
            residual.append(p.flatten())  # the two layers each block adds into x through
        elif p.dim() == 2:
            other.append(p.flatten())
        elif 'ln' not in name:
            assert (p == 0).all(), name  # biases start at 0
    expected = 0.02 / (2 * g['n_layer']) ** 0.5
    assert torch.cat(residual).std().item() == pytest.approx(expected, rel=0.05)
    assert torch.cat(other).std().item() == pytest.approx(0.02, rel=0.05)


def test_gpt_forward_is_embeddings_then_blocks_then_the_final_norm_and_head(trained):
    # reaches inside: the trained model against its forward pass written out with its own parts
    g = trained.g
    model = g['model'].eval()
    rng = torch.Generator().manual_seed(0)
    idx = torch.randint(g['vocab_size'], (3, g['block_size']), generator=rng)
    targets = torch.randint(g['vocab_size'], (3, g['block_size']), generator=rng)
    targets[:, -4:] = -1  # padding: no loss
    with torch.no_grad():
        x = model.tok_emb(idx) + model.pos_emb(torch.arange(g['block_size']))  # position t: row t
        for block in model.blocks:
            x = block(x)
        expected = model.lm_head(model.ln_f(x))
        logits, loss = model(idx, targets)
    assert torch.allclose(logits, expected, atol=1e-5)
    kept = targets != -1
    assert loss.item() == pytest.approx(F.cross_entropy(logits[kept], targets[kept]).item(),
                                        rel=1e-5)


def test_gpt_greedy_text_continues_the_last_block_size_characters(trained, monkeypatch):
    # reaches inside: the model, to redo each greedy choice. The prompt and the text are longer
    # than block_size: each character must follow from the last block_size characters before it
    prompt = 'First Citizen:\nBefore we proceed any further'  # 44 characters: more than 16
    with contextlib.redirect_stdout(io.StringIO()) as out:
        g = load('gpt.py', *trained.args, '--sample_only=True', '--temperature=0',
                 f'--prompt={prompt}', '--max_new_tokens=30', monkeypatch=monkeypatch)
    text = out.getvalue().split('\n', 2)[2]  # after the sizes and data lines
    assert text.startswith(prompt) and len(text) == len(prompt) + 30 + 1
    ids = [g['stoi'][c] for c in text[:-1]]
    model, block_size = g['model'].eval(), g['block_size']
    with torch.no_grad():
        for t in range(len(prompt), len(ids)):
            context = torch.tensor([ids[t - block_size:t]])  # (1, block_size)
            assert model(context)[0][0, -1].argmax().item() == ids[t], t


def test_gpt_losses_are_estimated_without_dropout(trained, monkeypatch):
    # reaches inside: estimate_loss of the trained weights, in a model built with --dropout=0.5
    estimates = []
    for dropout in ['0.0', '0.5']:
        with contextlib.redirect_stdout(io.StringIO()):
            g = load('gpt.py', *trained.args, '--sample_only=True', '--max_new_tokens=1',
                     f'--dropout={dropout}', monkeypatch=monkeypatch)
        estimates.append(g['estimate_loss']())
    assert estimates[1] == pytest.approx(estimates[0], abs=1e-5)  # dropout acts in training only


def test_gpt_val_loss_is_measured_on_the_val_text(trained, monkeypatch):
    # reaches inside: the val part of the text is replaced in the run's own dict of splits
    with contextlib.redirect_stdout(io.StringIO()):
        g = load('gpt.py', *trained.args, '--sample_only=True', '--max_new_tokens=1',
                 monkeypatch=monkeypatch)
    splits = g['text_ids']
    before = g['estimate_loss']()
    splits['val'] = splits['train'].clone()  # val is the train text: the same windows, same loss
    same = g['estimate_loss']()
    assert same['val'] == pytest.approx(same['train'], abs=1e-6)
    splits['val'] = torch.full((1000,), g['stoi']['e'])  # a text of one letter: another loss
    other = g['estimate_loss']()
    assert other['train'] == before['train'] and abs(other['val'] - before['val']) > 0.1


def test_gpt_accumulated_micro_batches_give_the_gradient_of_their_mean_loss(trained, tmp_path,
                                                                           monkeypatch):
    # reaches inside: every micro-batch gets the same windows (torch.randint fixed), so the mean
    # of the accum losses is that one loss; the gradient handed to AdamW.step at step 1 must not
    # depend on how many micro-batches were added up
    handed = []
    real_step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        grads = [p.grad.flatten() for group in self.param_groups for p in group['params']]
        handed.append(torch.cat(grads).clone())
        return real_step(self, *args, **kwargs)
    monkeypatch.setattr(torch.optim.AdamW, 'step', spy)
    monkeypatch.setattr(torch, 'randint', lambda high, size, **kwargs: torch.arange(size[0]) * 7)
    for accum in [1, 3]:
        with contextlib.redirect_stdout(io.StringIO()):
            load('gpt.py', *trained.args, '--max_iters=1', '--eval_interval=1', '--grad_clip=0',
                 '--max_new_tokens=1', f'--gradient_accumulation_steps={accum}',
                 f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    assert len(handed) == 2 and handed[0].norm() > 0
    assert torch.allclose(handed[1], handed[0], rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------- text of any size (issue 27)

@pytest.mark.parametrize('extra,dtype', [(0, torch.uint8), (300, torch.int16),
                                         (33000, torch.int32)])
def test_gpt_ids_are_kept_in_the_smallest_type_and_drawn_as_int64(extra, dtype, tmp_path,
                                                                   monkeypatch):
    # reaches inside: the stored ids and get_batch. Shakespeare's 65 characters, and `extra`
    # more (from U+4E00 on): up to 256 fit a byte, up to 32,768 an int16
    text = SHAKESPEARE + ''.join(chr(0x4E00 + i) for i in range(extra))
    (tmp_path / 't.txt').write_text(text, encoding='utf-8')
    g = load('gpt.py', *GPT_TINY, '--max_iters=1', '--eval_interval=1', '--max_new_tokens=1',
             f'--dataset={tmp_path / "t.txt"}', f'--ckpt_path={tmp_path / "c.pt"}',
             monkeypatch=monkeypatch)
    itos = sorted(set(text))  # the vocabulary and the encoding, written out
    stoi = {c: i for i, c in enumerate(itos)}
    direct = torch.tensor([stoi[c] for c in text])
    stored = torch.cat([g['text_ids']['train'], g['text_ids']['val']])
    assert stored.dtype == dtype and torch.equal(stored.long(), direct)
    x, y = g['get_batch']('train')
    assert x.dtype == y.dtype == torch.int64  # what an embedding takes
    train_text = text[:int(0.9 * len(text))]
    for row, last in zip(x.tolist(), y[:, -1].tolist()):
        assert ''.join(itos[i] for i in row + [last]) in train_text  # a window of the text


def test_gpt_text_ids_hold_one_byte_a_character_for_up_to_256_characters(trained):
    # reaches inside: the memory behind the ids of both splits (the same storage counted once)
    storages = {}
    for ids in trained.g['text_ids'].values():
        storages[ids.untyped_storage().data_ptr()] = ids.untyped_storage().nbytes()
    assert sum(storages.values()) <= len(SHAKESPEARE)


def test_gpt_names_become_padded_rows_of_dot_name_and_name_dot(tmp_path, monkeypatch):
    # reaches inside: every padded row, against its name written out here
    names = ['Anna', 'Jo', 'Zoë', 'Mary Ann', 'Li', 'Émile', 'Bo', 'Ann-Marie', 'Kai', 'Ra',
             'Oskar', 'Ida']
    (tmp_path / 'n.txt').write_text('\n'.join(f'  {n} \n' for n in names), encoding='utf-8')
    g = load('gpt.py', *GPT_TINY, '--max_iters=1', '--eval_interval=1', '--num_samples=1',
             f'--dataset={tmp_path / "n.txt"}', f'--ckpt_path={tmp_path / "c.pt"}',
             monkeypatch=monkeypatch)
    itos = ['.'] + sorted(set(''.join(names)))
    stoi = {c: i for i, c in enumerate(itos)}
    width = max(len(n) for n in names) + 1
    seen = []
    for split, (X, Y, lens) in g['rows'].items():
        for name, x, y, n in zip(g['splits'][split], X.tolist(), Y.tolist(), lens.tolist()):
            ids = [stoi[c] for c in name]
            pad = width - 1 - len(ids)
            assert x == [0] + ids + [0] * pad and y == ids + [0] + [-1] * pad and n == len(ids) + 1
            seen.append(name)
    assert g['itos'] == itos and sorted(seen) == sorted(names)


def test_gpt_each_run_writes_its_checkpoint_through_a_temporary_file_of_its_own(trained,
                                                                              tmp_path,
                                                                              monkeypatch):
    # two runs given one --ckpt_path must never write the same temporary file: the name of the
    # file torch.save writes is caught (reaches inside: the path is not printed anywhere)
    written = []
    real_save = torch.save

    def save(obj, path, *args, **kwargs):
        written.append(str(path))
        return real_save(obj, path, *args, **kwargs)
    monkeypatch.setattr(torch, 'save', save)
    ckpt = tmp_path / 'c.pt'
    load('gpt.py', *trained.args, '--max_iters=2', '--eval_interval=2', f'--ckpt_path={ckpt}',
         monkeypatch=monkeypatch)
    assert written == [f'{ckpt}.{os.getpid()}.tmp'] and ckpt.exists()
    assert sorted(os.listdir(tmp_path)) == ['c.pt']  # renamed into place: nothing left over
