"""gpt.py's compile=True (torch.compile) on the CPU. Skipped, with the reason, where torch.compile
cannot run: Windows, a Python this torch does not compile for, no C++ compiler. It takes a minute
or more (inductor compiles C++): it is marked slow and runs with python -m pytest -q -m slow.
test_gpu.py compiles on a CUDA GPU, where there is one."""
import os, shutil, subprocess, sys
import pytest
import torch
from test_scripts import ROOT, GPT_TINY, final

SMALL = [*GPT_TINY, '--max_iters=6', '--eval_interval=3', '--num_samples=3']


def gpt(*args):
    """Run gpt.py in a python of its own (a compile leaves caches behind) -> (code, stdout, err)."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, 'gpt.py'), *args], cwd=ROOT,
                       capture_output=True, text=True, encoding='utf-8', timeout=900,
                       env=dict(os.environ, PYTHONIOENCODING='utf-8'))
    return p.returncode, p.stdout, p.stderr


def why_no_compile():
    """Why torch.compile cannot run here, or None: it needs Linux or a Mac (dynamo's own test),
    a Python this torch supports, and a C++ compiler (inductor writes C++ for the CPU)."""
    if sys.platform == 'win32':
        return 'torch.compile on Windows needs a Visual C++ set-up this suite does not assume'
    try:
        from torch._dynamo.eval_frame import is_dynamo_supported
        supported = is_dynamo_supported()
    except Exception:  # an import error is the same answer
        supported = False
    if not supported:
        return f'torch {torch.__version__} has no torch.compile for Python {sys.version.split()[0]}'
    compilers = [os.environ.get('CXX', ''), 'g++', 'c++', 'clang++']
    if not any(shutil.which(c) for c in compilers if c):
        return 'no C++ compiler (g++, c++, clang++): torch.compile on a CPU compiles C++'
    return None


@pytest.mark.slow
@pytest.mark.skipif(why_no_compile() is not None, reason=str(why_no_compile()))
def test_gpt_compiled_trains_the_same_model_as_written(tmp_path):
    # compile=True runs the training steps through torch.compile: the same model, the same
    # numbers up to float rounding (inductor fuses operations), and the checkpoint is the model's
    runs = {}
    for compiled in (False, True):
        path = tmp_path / f'{compiled}.pt'
        rc, out, err = gpt('--device=cpu', *SMALL, f'--compile={compiled}', f'--ckpt_path={path}')
        assert rc == 0, err[-3000:]
        runs[compiled] = final(out)
    for key in ('train', 'val'):
        assert runs[True][key] == pytest.approx(runs[False][key], abs=2e-3), (key, runs)
    assert runs[True]['params'] == runs[False]['params']
    eager = torch.load(tmp_path / 'False.pt', weights_only=True)['model']
    compiled = torch.load(tmp_path / 'True.pt', weights_only=True)['model']
    assert eager.keys() == compiled.keys()                      # no '_orig_mod.' prefixes
    for k in eager:
        assert torch.allclose(eager[k], compiled[k], atol=1e-3), k
