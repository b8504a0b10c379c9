"""The chapters on a GPU, ready for the first machine that has one: each chapter trains a few steps
on `cuda` (gpt.py also in bfloat16 and float16, compiled, and over NCCL with two GPUs), and a
checkpoint moves between a GPU (CUDA or Apple) and the CPU both ways. Every test here is skipped,
with the reason, where no such device exists. Each run is a python of its own, as a user's is:
`python mlp.py --device=cuda`. gpt.py is given --sizes=laptop with tiny sizes: on a CUDA GPU it
would otherwise take nanoGPT's."""
import math, os, re, subprocess, sys
import pytest
import torch
from test_scripts import ROOT, TINY, GPT_TINY, final, evals
from test_compile import why_no_compile

CUDA = torch.cuda.is_available()
NO_CUDA = pytest.mark.skipif(not CUDA, reason='no CUDA GPU here')
LAPTOP_GPT = ['--sizes=laptop', *GPT_TINY, '--num_samples=3']


def run(*args, timeout=600):
    """A script in a python of its own -> (exit code, stdout, stderr)."""
    p = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                       encoding='utf-8', timeout=timeout, env=dict(os.environ, PYTHONIOENCODING='utf-8'))
    return p.returncode, p.stdout, p.stderr


def learned(out, vocab_size):
    """The run ended with its final line, and the model is better than a uniform guess."""
    numbers = final(out)
    return numbers['val'] < math.log(vocab_size), numbers


@NO_CUDA
@pytest.mark.parametrize('script', list(TINY))
def test_every_chapter_trains_on_cuda(script, tmp_path):
    args = TINY[script]
    if script == 'rnn.py':  # its tiny run is 6 steps: a GPU has time for more
        args = [*args, '--max_iters=60', '--eval_interval=30']
    if script == 'gpt.py':
        args = [*LAPTOP_GPT, f'--ckpt_path={tmp_path / "c.pt"}']
    rc, out, err = run(os.path.join(ROOT, script), '--device=cuda', *args)
    assert rc == 0 and err == '', err[-3000:]
    if script == 'encoder.py':  # a classifier: its loss against the coin's ln 2
        assert final(out)['val'] < math.log(2) + 0.05, out[-2000:]
    elif script != 'bigram_count.py':
        ok, numbers = learned(out, 65 if script == 'gpt.py' else 27)
        assert ok, numbers
    if script == 'gpt.py':
        assert out.startswith('sizes: laptop, as written in the file (device cuda, --sizes=laptop')


def bf16():
    return CUDA and torch.cuda.is_bf16_supported()


@NO_CUDA
@pytest.mark.parametrize('dtype', [
    'float32', pytest.param('bfloat16', marks=pytest.mark.skipif(
        not bf16(), reason='this GPU has no bfloat16 (compute capability below 8.0)')), 'float16'])
def test_gpt_trains_on_cuda_in_every_precision_and_resumes(dtype, tmp_path):
    # float16 runs with the gradient scaler, whose state the checkpoint keeps
    ckpt = f'--ckpt_path={tmp_path / "c.pt"}'
    rc, out, err = run('gpt.py', '--device=cuda', *LAPTOP_GPT, f'--dtype={dtype}', ckpt)
    assert rc == 0 and err == '', err[-3000:]
    ok, numbers = learned(out, 65)
    assert ok, numbers
    saved = torch.load(tmp_path / 'c.pt', weights_only=True)
    assert saved['iter'] == 20 and bool(saved['scaler']) == (dtype == 'float16')
    rc, out, err = run('gpt.py', '--device=cuda', *LAPTOP_GPT, f'--dtype={dtype}', ckpt,
                       '--max_iters=30', '--resume=True')
    assert rc == 0 and 'iter 21/30' in out, err[-3000:]
    assert evals(out)[-1] < numbers['val'] + 0.05


@NO_CUDA
@pytest.mark.slow
@pytest.mark.skipif(why_no_compile() is not None, reason=str(why_no_compile()))
def test_gpt_compiled_on_cuda_trains_the_same_model(tmp_path):
    finals = {}
    for compiled in (False, True):
        rc, out, err = run('gpt.py', '--device=cuda', *LAPTOP_GPT, f'--compile={compiled}',
                           f'--ckpt_path={tmp_path / f"{compiled}.pt"}')
        assert rc == 0, err[-3000:]
        finals[compiled] = final(out)
    for key in ('train', 'val'):
        assert finals[True][key] == pytest.approx(finals[False][key], abs=1e-2), finals


WRAP = '''import os, runpy, sys, torch, torch.distributed as dist
destroy = dist.destroy_process_group
def record_then_destroy():  # when training ends: this process's backend, device and weights
    g = sys._getframe(1).f_globals
    weights = {k: v.cpu() for k, v in g['model'].state_dict().items()}
    torch.save({'backend': dist.get_backend(), 'device': g['device'], 'model': weights},
               os.path.join(FOLDER, f"rank{os.environ['RANK']}.w"))
    destroy()
dist.destroy_process_group = record_then_destroy
runpy.run_path(GPT, run_name='__main__')
'''


@pytest.mark.skipif(torch.cuda.device_count() < 2 or not torch.distributed.is_nccl_available(),
                    reason='needs two CUDA GPUs and NCCL')
def test_gpt_trains_on_two_gpus_over_nccl(tmp_path):
    (tmp_path / 'wrap.py').write_text(f'FOLDER, GPT = {str(tmp_path)!r}, '
                                      f'{os.path.join(ROOT, "gpt.py")!r}\n' + WRAP)
    rc, out, err = run('-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
                       str(tmp_path / 'wrap.py'), '--device=cuda', *LAPTOP_GPT,
                       '--gradient_accumulation_steps=2', f'--ckpt_path={tmp_path / "c.pt"}')
    assert rc == 0, err[-3000:]
    assert out.count('final:') == 1                                  # process 0 alone prints
    r0, r1 = (torch.load(tmp_path / f'rank{r}.w', weights_only=True) for r in (0, 1))
    assert (r0['backend'], r1['backend']) == ('nccl', 'nccl')
    assert (r0['device'], r1['device']) == ('cuda:0', 'cuda:1')      # one GPU per process
    assert all(torch.equal(r0['model'][k], r1['model'][k]) for k in r0['model'])
    assert torch.load(tmp_path / 'c.pt', weights_only=True)['iter'] == 20


def gpus():
    found = []
    if torch.cuda.is_available():
        found.append('cuda')
    if torch.backends.mps.is_available() and torch.__version__ >= '2.5':
        found.append('mps')
    return found


@pytest.mark.skipif(not gpus(), reason='no GPU here (CUDA or Apple): one device, the CPU')
@pytest.mark.parametrize('written,sampled', [('cpu', 'gpu'), ('gpu', 'cpu')])
def test_gpt_checkpoint_written_on_one_device_samples_on_another(written, sampled, tmp_path):
    # a checkpoint is loaded onto the CPU first, then onto the device the run asks for: trained
    # on a GPU, sampled on a laptop, and the other way round. Greedy text (top_k=1) is the same
    # on both devices, but for a near tie that float rounding breaks the other way
    gpu = gpus()[0]
    written = gpu if written == 'gpu' else written
    sampled = gpu if sampled == 'gpu' else sampled
    ckpt = f'--ckpt_path={tmp_path / "c.pt"}'
    rc, out, err = run('gpt.py', f'--device={written}', *LAPTOP_GPT, ckpt)
    assert rc == 0, err[-3000:]
    assert torch.load(tmp_path / 'c.pt', weights_only=True)['iter'] == 20
    texts = {}
    for device in (written, sampled):
        rc, out, err = run('gpt.py', f'--device={device}', *LAPTOP_GPT, ckpt, '--sample_only=True',
                           '--prompt=ROMEO:', '--top_k=1')
        assert rc == 0 and err == '', err[-3000:]
        assert 'final:' not in out and re.search(r'^ROMEO:', out, re.M), out[-2000:]
        texts[device] = out.split('ROMEO:', 1)[1]
    assert len(texts[sampled]) == len(texts[written])                # every character asked for
    same = sum(a == b for a, b in zip(texts[sampled], texts[written]))
    assert same >= 0.9 * len(texts[written]), texts
