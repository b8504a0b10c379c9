"""Tests for the eight scripts. Run from the repository root, with names.txt and input.txt there:
    python -m pytest -q
Most tests run a script as a user would, its flags in sys.argv, and look at what a user sees (exit
code, printed lines, files written), in this process (run, below). Some look at a tensor it leaves
behind (the model, the split): each of those says why it has to reach inside. What only a process
of its own shows (signals, pipes, memory limits, torchrun) is in test_processes.py."""
import ast, contextlib, functools, http.server, io, math, os, random, re
import runpy, shutil, signal, subprocess, sys, threading, types, urllib.request
import pytest
import torch
import torch.nn.functional as F

import conftest
from conftest import needs

ROOT = os.path.dirname(os.path.abspath(__file__))
NAMES_SCRIPTS = ['bigram_count.py', 'bigram_nn.py', 'mlp.py', 'wavenet.py', 'rnn.py']
SCRIPTS = NAMES_SCRIPTS + ['gpt.py', 'encoder.py', 'attention.py']  # attention.py: text, last here
NEW_LINE = 'samples are new (not in the training names)'


def run(script, *args, cwd=ROOT, seconds=120):
    """Run a script as a user would and return (exit code, stdout, stderr). It runs in this
    process: a fresh python would spend 2-3 s importing torch, on every one of a hundred runs.
    A run that is not done after `seconds` fails the test (a sampler that never ends, say)."""
    out, err = io.StringIO(), io.StringIO()
    old_argv, old_cwd, code = sys.argv, os.getcwd(), 0
    sys.argv = [script, '--device=cpu', *args]
    os.chdir(cwd)
    try:
        with deadline(seconds), own_signals(), contextlib.redirect_stdout(out), \
                contextlib.redirect_stderr(err):
            runpy.run_path(os.path.join(ROOT, script), run_name='__main__')
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    return code, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def deadline(seconds):
    """A TimeoutError after `seconds`, where the system has SIGALRM. Windows has none: there a
    run that never ends hangs the suite instead of failing one test, and nothing else changes."""
    if not hasattr(signal, 'SIGALRM'):
        yield
        return

    def too_long(signum, frame):
        raise TimeoutError(f'still running after {seconds} s')
    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def own_signals():
    """A script run in this process installs its Ctrl-C and closed-pipe handlers here: put pytest's
    back afterwards, so that Ctrl-C still stops the suite."""
    names = [name for name in ('SIGINT', 'SIGPIPE', 'SIGTERM') if hasattr(signal, name)]
    saved = {name: signal.getsignal(getattr(signal, name)) for name in names}
    try:
        yield
    finally:
        for name, handler in saved.items():
            signal.signal(getattr(signal, name), handler)


POSIX_ONLY = pytest.mark.skipif(not hasattr(os, 'killpg') or not hasattr(signal, 'SIGALRM'),
                                reason='needs POSIX signals and process groups (not on Windows)')


def load(script, *args, monkeypatch):
    """Run a script in-process and return its globals, for a test that must look at a tensor."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, 'argv', [script, '--device=cpu', *args])
    with own_signals():
        return runpy.run_path(os.path.join(ROOT, script), run_name='__main__')


def load_fails(script, *args, monkeypatch, capsys):
    """Run a script in-process that must stop; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as e:
        load(script, *args, monkeypatch=monkeypatch)
    return (e.value.code, *capsys.readouterr())


def final(stdout):
    """The key=value pairs of the one `final:` line, as floats (time without its 's')."""
    lines = [line for line in stdout.splitlines() if line.startswith('final: ')]
    assert len(lines) == 1, f'expected one final: line in\n{stdout[-2000:]}'
    pairs = dict(item.split('=') for item in lines[0][len('final: '):].split())
    return {k: float(v.rstrip('s')) for k, v in pairs.items()}


def after_final(stdout):
    """The lines printed after the final: line (the samples, then the 'N/M samples are new' line)."""
    return stdout.split('final: ', 1)[1].split('\n', 1)[1].splitlines()


def evals(stdout, key='val'):
    """The values of `key` on the evaluation lines, in order."""
    return [float(v) for v in re.findall(rf'\| {key} ([\d.]+)', stdout)]


def assert_one_line_error(rc, out, err, *words):
    assert rc != 0
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err


def names_in(path):
    return [w.strip() for w in open(path, encoding='utf-8').read().splitlines() if w.strip()]


def expected_split(path):
    """The split STYLE.md promises, computed here without any script: seed 42, shuffle, 80/10/10."""
    words = names_in(path)
    random.Random(42).shuffle(words)  # the same permutation as random.seed(42); random.shuffle
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return {'train': words[:n1], 'val': words[n1:n2], 'test': words[n2:]}


@pytest.fixture(scope='session')
def few_names(tmp_path_factory):  # the first 2,000 names: builds in a blink, for tests of behaviour
    path = tmp_path_factory.mktemp('data') / 'few.txt'
    path.write_text('\n'.join(names_in(os.path.join(ROOT, 'names.txt'))[:2000]))
    return f'--dataset={path}'


NET_TINY = ['--max_iters=30', '--eval_interval=15', '--batch_size=32', '--n_embd=8', '--n_hidden=32',
            '--num_samples=3']
RNN_TINY = ['--max_iters=6', '--eval_interval=3', '--batch_size=16', '--n_embd=8', '--n_hidden=16',
            '--num_samples=3']
GPT_TINY = ['--n_layer=2', '--n_head=2', '--n_embd=32', '--block_size=16', '--batch_size=8',
            '--max_iters=20', '--eval_interval=10', '--eval_iters=2', '--learning_rate=0.01',
            '--warmup_iters=2', '--max_new_tokens=40']
ENC_TINY = ['--n_embd=16', '--n_head=2', '--n_layer=2', '--batch_size=64', '--max_iters=60',
            '--eval_interval=30', '--learning_rate=0.01', '--num_show=4']
TINY = {'bigram_count.py': ['--num_samples=3'],
        'bigram_nn.py': ['--max_iters=30', '--eval_interval=15', '--num_samples=3'],
        'mlp.py': NET_TINY, 'wavenet.py': NET_TINY, 'rnn.py': RNN_TINY,
        'gpt.py': GPT_TINY + ['--num_samples=3'], 'encoder.py': ENC_TINY,
        'attention.py': ['--n_layer=2', '--n_embd=16', '--block_size=8', '--batch_size=8',
                         '--max_iters=20', '--eval_interval=10', '--eval_iters=2',
                         '--max_new_tokens=40']}


# ---------------------------------------------------------------- every script: how it is written

@pytest.mark.parametrize('script', SCRIPTS)
def test_scripts_import_only_torch_and_the_standard_library(script):
    tree = ast.parse(open(os.path.join(ROOT, script), encoding='utf-8').read())
    local = {os.path.splitext(s)[0] for s in SCRIPTS}
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ''] if isinstance(node, ast.ImportFrom) else []
        for name in names:
            top = name.split('.')[0]
            assert top not in local, f'{script} imports {name}: scripts must stand alone'
            assert top == 'torch' or top in sys.stdlib_module_names, f'{script} imports {name}'


def one_line_compounds(tree):
    """Statements whose body starts on their own header line (`if x: y`), and statements that share
    a line (`a; b`). A short guard `if ...: fail(...)` is the one allowed one-liner."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.FunctionDef,
                             ast.ClassDef, ast.ExceptHandler)):
            body = node.body[0]
            guard = (isinstance(node, ast.If) and not node.orelse and len(node.body) == 1
                     and isinstance(body, ast.Expr) and isinstance(body.value, ast.Call)
                     and getattr(body.value.func, 'id', '') == 'fail')
            if body.lineno == node.lineno and not guard:
                found.append(node.lineno)
        for field in ('body', 'orelse', 'finalbody'):
            stmts = getattr(node, field, None)
            if isinstance(stmts, list):
                lines = [s.lineno for s in stmts if isinstance(s, ast.stmt)]
                found += [n for i, n in enumerate(lines) if n in lines[:i]]
    return found


@pytest.mark.parametrize('script', SCRIPTS)
def test_every_line_is_short_and_holds_one_statement(script):
    source = open(os.path.join(ROOT, script), encoding='utf-8').read()
    long = [i for i, line in enumerate(source.splitlines(), 1) if len(line) > 100]
    assert not long, f'{script}: lines over 100 characters: {long}'
    crammed = one_line_compounds(ast.parse(source))
    assert not crammed, f'{script}: more than one statement on lines {crammed}'


# ---------------------------------------------------------------- every script: bad input

@pytest.mark.parametrize('script', SCRIPTS)
def test_unknown_key_and_wrong_type_are_refused_in_one_line(script):
    rc, out, err = run(script, '--no_such_key=3')
    assert_one_line_error(rc, out, err, "unknown option '--no_such_key=3'", 'seed', 'device')
    assert rc == 2
    rc, out, err = run(script, '--seed=2.5')
    assert_one_line_error(rc, out, err, '--seed must be of type int', "'2.5'")
    assert rc == 2


RANGE_ERRORS = [  # (scripts, flag, the whole line it must print): the same words in every file
    (SCRIPTS, '--device=tpu', '--device=tpu is out of range: it must be cpu, cuda, cuda:N or mps'),
    (SCRIPTS[1:], '--max_iters=0', '--max_iters=0 is out of range: it must be an integer >= 1'),
    (SCRIPTS[1:], '--eval_interval=0', '--eval_interval=0 is out of range: it must be an integer >= 1'),
    (SCRIPTS[1:], '--learning_rate=-0.1', '--learning_rate=-0.1 is out of range: it must be a number > 0'),
    (SCRIPTS[1:], '--learning_rate=1e999', '--learning_rate=inf is out of range: it must be a number > 0'),
    (SCRIPTS[:6], '--num_samples=-1', '--num_samples=-1 is out of range: it must be an integer >= 0'),
    (['mlp.py', 'wavenet.py', 'rnn.py', 'gpt.py'], '--temperature=-1',
     '--temperature=-1.0 is out of range: it must be a number >= 0'),
    (['rnn.py', 'gpt.py'], '--batch_size=0', '--batch_size=0 is out of range: it must be an integer >= 1'),
    (['mlp.py', 'wavenet.py'], '--batch_size=1', '--batch_size=1 is out of range: it must be an integer >= 2'
     ' (BatchNorm normalises over the batch: one example has no spread)'),
    (['wavenet.py', 'rnn.py', 'gpt.py', 'encoder.py'], '--dropout=1.5',
     '--dropout=1.5 is out of range: it must be a number >= 0 and < 1'),
    (['bigram_count.py'], '--smoothing=-1', '--smoothing=-1.0 is out of range: it must be a number from 0 '
     'to 1e30 (the table is float32, whose row sums end near 3e38)'),
    (['bigram_count.py'], '--smoothing=1e40', '--smoothing=1e+40 is out of range: it must be a number from 0 '
     'to 1e30 (the table is float32, whose row sums end near 3e38)'),
    (['gpt.py'], '--block_size=0', '--block_size=0 is out of range: it must be an integer >= 1'),
    (['gpt.py'], '--eval_iters=0', '--eval_iters=0 is out of range: it must be an integer >= 1'),
    (['gpt.py'], '--gradient_accumulation_steps=0',
     '--gradient_accumulation_steps=0 is out of range: it must be an integer >= 1'),
    (['gpt.py'], '--top_k=-1', '--top_k=-1 is out of range: it must be an integer >= 0'),
]


@pytest.mark.parametrize('scripts,flag,line', RANGE_ERRORS, ids=[f for _, f, _ in RANGE_ERRORS])
def test_values_out_of_range_are_refused_before_any_work(scripts, flag, line, monkeypatch, capsys):
    # in-process (no python start-up per script): with a dataset that does not exist, the range
    # check must come first, since it runs before any data is read
    for script in scripts:
        rc, out, err = load_fails(script, flag, '--dataset=no/such/file.txt',
                                  monkeypatch=monkeypatch, capsys=capsys)
        assert (rc, out, err) == (2, '', f'error: {line}\n'), script


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a CUDA GPU')
@pytest.mark.parametrize('script', SCRIPTS)
def test_cuda_asked_for_on_a_machine_without_it_says_how_to_use_the_cpu(script, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, 'argv', [script, '--device=cuda'])  # (load() adds --device=cpu)
    with pytest.raises(SystemExit) as e:
        runpy.run_path(os.path.join(ROOT, script), run_name='__main__')
    out, err = capsys.readouterr()
    assert_one_line_error(e.value.code, out, err, 'no CUDA GPU', '--device=cpu')


@pytest.mark.parametrize('script', SCRIPTS)
def test_missing_or_empty_dataset_is_refused_in_one_line(script, tmp_path, monkeypatch, capsys):
    (tmp_path / 'empty.txt').write_text('\n  \n')
    for name, words in [('nope.txt', ['nope.txt', 'not found']), ('empty.txt', ['empty.txt'])]:
        rc, out, err = load_fails(script, f'--dataset={tmp_path / name}',
                                  monkeypatch=monkeypatch, capsys=capsys)
        assert_one_line_error(rc, out, err, *words)
        assert rc == 1


def test_offline_download_names_the_url_and_leaves_no_file(tmp_path, monkeypatch, capsys):
    # no names.txt in this directory, and a proxy that refuses: the download must fail fast
    monkeypatch.setenv('https_proxy', 'http://127.0.0.1:9')
    monkeypatch.setenv('HTTPS_PROXY', 'http://127.0.0.1:9')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['bigram_count.py'])
    with pytest.raises(SystemExit) as e:
        runpy.run_path(os.path.join(ROOT, 'bigram_count.py'), run_name='__main__')
    rc, (out, err) = e.value.code, capsys.readouterr()
    url = 'https://raw.githubusercontent.com/karpathy/makemore/master/names.txt'
    assert_one_line_error(rc, out, err, url, str(tmp_path))
    assert not os.listdir(tmp_path), 'a failed download must leave no file behind'


def losses_of(numbers):  # the losses of a final: line, without its time
    return {k: v for k, v in numbers.items() if k != 'time'}


def losses(stdout):
    return losses_of(final(stdout))


@functools.lru_cache
def bigram_count_defaults():
    """The losses of `python bigram_count.py` run here. Compared only with runs on this machine,
    exactly: the README's figures agree with another machine's to about 0.01 (see readme_val)."""
    rc, out, err = run('bigram_count.py', '--num_samples=0')
    return losses(out)


def paste_into_a_kernel(script, edits, monkeypatch):
    """The source of a script as a cell pasted into Jupyter or Colab, with `edits` (old line -> new
    line) made to its globals, run as a kernel runs it: no __file__, the kernel's own sys.argv,
    ipykernel and IPython imported. Returns the cell's namespace."""
    source = open(os.path.join(ROOT, script), encoding='utf-8').read()
    for old, new in edits.items():
        assert old in source, old
        source = source.replace(old, new)
    monkeypatch.setitem(sys.modules, 'ipykernel', type(sys)('ipykernel'))
    monkeypatch.setitem(sys.modules, 'IPython', sys.modules.get('IPython', type(sys)('IPython')))
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, 'argv', ['ipykernel_launcher.py', '-f', '/tmp/kernel-1234.json'])
    namespace = {'__name__': '__main__'}
    exec(compile(source, '<cell>', 'exec'), namespace)
    return namespace


def test_a_pasted_cell_runs_its_edited_globals_and_ignores_the_kernel_arguments(monkeypatch,
                                                                                 capsys):
    cell = paste_into_a_kernel('bigram_count.py', {'smoothing = 1.0': 'smoothing = 0.5',
                                                   'device = (': "device = 'cpu' or ("},
                               monkeypatch)
    assert cell['smoothing'] == 0.5                    # the edit ran; '-f' was not taken as a flag
    edited = final(capsys.readouterr().out)
    rc, out, err = run('bigram_count.py', '--smoothing=0.5')
    assert rc == 0 and losses(out) == losses_of(edited) != bigram_count_defaults()


@needs('IPython', 'pip install ipython')
def test_percent_run_in_a_notebook_applies_the_flags(tmp_path):
    # Jupyter's %run (ipykernel loaded) and IPython's: the flags after the file name apply
    (tmp_path / 'run.ipy').write_text(
        "import sys, types\n"
        "sys.modules['ipykernel'] = types.ModuleType('ipykernel')\n"
        f"%cd {ROOT}\n"
        "%run bigram_count.py --smoothing=0.5 --num_samples=1 --device=cpu\n")
    p = subprocess.run([sys.executable, '-m', 'IPython', '--quick', '--no-banner',
                        '--colors=NoColor', str(tmp_path / 'run.ipy')], capture_output=True,
                       text=True, encoding='utf-8', timeout=120,
                       env=dict(os.environ, PYTHONIOENCODING='utf-8'))
    assert p.returncode == 0, p.stderr[-2000:]
    rc, out, err = run('bigram_count.py', '--smoothing=0.5', '--num_samples=1')
    assert losses(p.stdout) == losses(out) != bigram_count_defaults()


def test_the_shared_machinery_is_the_same_in_every_chapter():
    blocks = {}
    for script in SCRIPTS:
        source = open(os.path.join(ROOT, script), encoding='utf-8').read()
        assert source.count('# the shared machinery:') == 1, script
        start = source.index('# ====', source.index('# hyperparameters'))
        end = source.index('# end of the shared machinery', start)
        blocks[script] = source[start:end]
    assert len(set(blocks.values())) == 1, {k: len(v) for k, v in blocks.items()}


def is_hyperparameter(node):  # `name = literal  # comment`, or the device's choice
    if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
        return False
    try:
        ast.literal_eval(node.value)
    except ValueError:
        return node.targets[0].id == 'device'
    return True


@pytest.mark.parametrize('script', SCRIPTS)
def test_the_model_comes_right_after_the_hyperparameters_and_before_the_shared_machinery(script):
    # STYLE.md: the hyperparameters, then the model (its classes), then the banner. Chapters 1-2
    # have no class: nothing may stand between their hyperparameters and the banner
    source = open(os.path.join(ROOT, script), encoding='utf-8').read()
    lines = source.splitlines()
    top = next(i for i, line in enumerate(lines, 1) if line.startswith('# hyperparameters'))
    banner = next(i for i, line in enumerate(lines, 1) if line.startswith('# ====') and i > top)
    tree = ast.parse(source)
    before = [node for node in tree.body if top < node.lineno < banner]
    after = [node for node in tree.body if node.lineno > banner]
    model = [node for node in before if not is_hyperparameter(node)]
    assert all(isinstance(node, (ast.ClassDef, ast.FunctionDef)) for node in model), \
        f'{script}: only the model may stand between the hyperparameters and the shared machinery'
    built = [node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id[0].isupper()
             and any(isinstance(c, ast.ClassDef) and c.name == node.func.id and
                     any('Module' in ast.unparse(base) for base in c.bases) for c in tree.body)]
    modules_after = [node.name for node in after if isinstance(node, ast.ClassDef)
                     and any('Module' in ast.unparse(base) for base in node.bases)]
    assert not modules_after, f'{script}: {modules_after} come after the shared machinery'
    if script in ('bigram_count.py', 'bigram_nn.py'):
        assert not model and not built, f'{script}: {[ast.unparse(n)[:40] for n in model]}'
    else:
        assert built and set(built) <= {node.name for node in model}, (script, built)


def on_a_mac(version, monkeypatch):
    """This machine made into a Mac with an Apple GPU and the given torch, up to the first tensor
    put on that GPU: what the scripts decide from `torch.backends.mps` and `torch.__version__`."""
    monkeypatch.setattr(torch.backends.mps, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch, '__version__', torch.torch_version.TorchVersion(version))
    monkeypatch.chdir(ROOT)


def test_an_apple_gpu_is_used_only_with_a_torch_known_good_there(monkeypatch, capsys):
    on_a_mac('2.4.1', monkeypatch)
    monkeypatch.setattr(sys, 'argv', ['bigram_count.py', '--num_samples=1'])  # the default device
    with own_signals():
        g = runpy.run_path(os.path.join(ROOT, 'bigram_count.py'), run_name='__main__')
    out = capsys.readouterr().out
    assert g['device'] == 'cpu' and out.splitlines()[0] == (
        'device: cpu, not mps: torch 2.4.1 is older than 2.5, which these chapters need on an '
        'Apple GPU (pip install -U torch)')
    assert final(out)['val'] == final(run('bigram_count.py', '--num_samples=1')[1])['val']
    monkeypatch.setattr(sys, 'argv', ['bigram_count.py', '--device=mps'])  # asked for by name
    with pytest.raises(SystemExit) as e, own_signals():
        runpy.run_path(os.path.join(ROOT, 'bigram_count.py'), run_name='__main__')
    assert_one_line_error(e.value.code, *capsys.readouterr(), '--device=mps needs torch 2.5')
    # a good torch keeps mps: the run stops at its missing data file (this machine has no Apple
    # GPU), and the device it would have used is read there, from the script's globals
    devices = {}
    real_exit = sys.exit

    def exit_reading_the_device(code):
        devices[script] = sys._getframe(1).f_globals['device']  # fail()'s globals: the script's
        real_exit(code)
    monkeypatch.setattr(sys, 'exit', exit_reading_the_device)
    for script in SCRIPTS:
        on_a_mac('2.5.0', monkeypatch)
        monkeypatch.setattr(sys, 'argv', [script, '--dataset=no/such/file.txt'])
        with pytest.raises(SystemExit), own_signals():
            runpy.run_path(os.path.join(ROOT, script), run_name='__main__')
        out, err = capsys.readouterr()
        assert 'not mps' not in out and 'not found' in err, script
    assert devices == dict.fromkeys(SCRIPTS, 'mps')


def test_gpt_float16_on_an_apple_gpu_needs_torch_2_8(monkeypatch, capsys):
    on_a_mac('2.7.1', monkeypatch)
    monkeypatch.setattr(sys, 'argv', ['gpt.py', '--device=mps', '--dtype=float16'])
    with pytest.raises(SystemExit) as e, own_signals():
        runpy.run_path(os.path.join(ROOT, 'gpt.py'), run_name='__main__')
    out, err = capsys.readouterr()
    assert_one_line_error(e.value.code, '', err, '--dtype=float16', 'torch 2.8')


@pytest.mark.parametrize('script', SCRIPTS)
def test_in_a_notebook_ctrl_c_and_pipes_stay_the_kernels(script, monkeypatch, capsys):
    # the handlers a run installs, caught on their way to signal.signal (the run stops at its
    # missing data file, after the shared machinery): in a notebook the kernel's own Ctrl-C stays
    # (it stops the cell), and so does its pipe. Outside one, test_processes.py sends the signals
    monkeypatch.setitem(sys.modules, 'IPython', type(sys)('IPython'))
    calls = []  # (signal, handler) as installed: only the test harness, putting back
    monkeypatch.setattr(signal, 'signal', lambda signum, handler: calls.append((signum, handler)))
    load_fails(script, '--dataset=no/such/file.txt', monkeypatch=monkeypatch, capsys=capsys)
    for signum, handler in calls:
        assert handler == signal.getsignal(signum), signum


OUT_OF_MEMORY = [torch.cuda.OutOfMemoryError('CUDA out of memory. Tried to allocate 20.00 GiB'),
                 RuntimeError('MPS backend out of memory (MPS allocated: 9 GB)')]


@pytest.mark.parametrize('script', SCRIPTS)
def test_running_out_of_memory_is_one_line_naming_what_to_lower(script, monkeypatch, capsys):
    # what a run leaves as the handler of an error nothing caught. Called here with the errors
    # a CUDA GPU and an Apple GPU raise (test_processes.py runs out of the CPU's memory for real)
    monkeypatch.delitem(sys.modules, 'IPython', raising=False)
    monkeypatch.setattr(sys, 'excepthook', sys.excepthook)  # put back afterwards
    load_fails(script, '--dataset=no/such/file.txt', monkeypatch=monkeypatch, capsys=capsys)
    handler = sys.excepthook
    keys = handler.__globals__['hyperparameters']  # reaches inside: the keys this script has
    for error in OUT_OF_MEMORY:
        handler(type(error), error, None)
        out, err = capsys.readouterr()
        assert_one_line_error(1, out, err, 'error: out of memory on cpu: lower ')
        for key in ('batch_size', 'block_size', 'n_embd', 'n_hidden'):
            assert (f'--{key}=' in err) == (key in keys), err
    error = ValueError('not about memory')
    try:
        raise error
    except ValueError as e:
        handler(type(e), e, e.__traceback__)
    assert 'ValueError: not about memory' in capsys.readouterr().err   # its usual traceback


def test_scripts_and_tests_fetch_missing_data_the_same_way(tmp_path, monkeypatch, capsys):
    served = tmp_path / 'served'
    served.mkdir()
    (served / 'names.txt').write_text('\n'.join(names_in(os.path.join(ROOT, 'names.txt'))[:500]))
    # the tests' fetch: from a file:// URL to the path, whole; a failed one leaves nothing behind
    conftest.fetch((served / 'names.txt').as_uri(), tmp_path / 'copy.txt')
    assert (tmp_path / 'copy.txt').read_bytes() == (served / 'names.txt').read_bytes()
    with pytest.raises(OSError):
        conftest.fetch((served / 'none.txt').as_uri(), tmp_path / 'none.txt')
    assert sorted(os.listdir(tmp_path)) == ['copy.txt', 'served']
    # the scripts' download: the same URL as conftest's, served here over HTTP by a local server
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    real_urlopen = urllib.request.urlopen

    def local(url, timeout):
        assert url == conftest.DATA['names.txt']
        return real_urlopen(f'http://127.0.0.1:{server.server_port}/names.txt', timeout=timeout)
    monkeypatch.setattr(urllib.request, 'urlopen', local)
    work = tmp_path / 'work'
    work.mkdir()
    try:
        rc, out, err = run('bigram_count.py', '--num_samples=1', cwd=work)
    finally:
        server.shutdown()
        server.server_close()
    assert rc == 0, err
    assert os.listdir(work) == ['names.txt'] and 'final:' in out
    assert (work / 'names.txt').read_bytes() == (served / 'names.txt').read_bytes()


def test_what_a_script_changes_in_this_interpreter_is_put_back_after_every_test(request,
                                                                                tmp_path,
                                                                                monkeypatch):
    # most runs are in pytest's own process: gpt.py installs its excepthook and signal handlers,
    # asks for 'high' matmul precision, reconfigures stdout and draws random numbers. The autouse
    # fixture (conftest.restore_interpreter) puts all of it back; here its put_back() is run
    # around a real run on a console of its own, the way it wraps every test
    assert 'restore_interpreter' in request.fixturenames      # it wraps every test
    console = io.TextIOWrapper(io.BytesIO(), encoding='utf-8', errors='strict')
    monkeypatch.setattr(sys, 'stdout', console)  # a console, as a terminal or `pytest -s` has
    before = conftest.interpreter_state()
    with conftest.put_back():
        sys.argv = ['gpt.py', '--device=cpu', *GPT_TINY, '--max_iters=1', '--eval_iters=1',
                    '--max_new_tokens=1', f'--ckpt_path={tmp_path / "c.pt"}']
        os.chdir(ROOT)
        runpy.run_path(os.path.join(ROOT, 'gpt.py'), run_name='__main__')
        torch.set_default_dtype(torch.float64)    # no script does these three yet; one may
        torch.set_num_threads(torch.get_num_threads() + 1)
        random.random()
        during = conftest.interpreter_state()
    after = conftest.interpreter_state()
    assert set(conftest.changed(before, during)) == set(before) - {'cwd', 'stdout'}  # the rest
    assert during['stdout_errors'] == 'replace'
    assert conftest.changed(before, after) == [] and console.errors == 'strict'


# ---------------------------------------------------------------- every names chapter

@pytest.mark.parametrize('script', NAMES_SCRIPTS + ['gpt.py', 'encoder.py'])
def test_every_names_chapter_uses_the_same_split_and_vocabulary(script, tmp_path, monkeypatch,
                                                                 capsys):
    # the split and the vocabulary are inside the script: only its globals show them. STYLE.md:
    # '.' (index 0), then the file's characters sorted, capitals and accents too
    names = names_in(os.path.join(ROOT, 'names.txt'))[:400]
    path = tmp_path / 'mixed.txt'
    path.write_text('\n'.join(names[:200] + ['Zoë', 'José', 'Ann-Marie', 'Åsa'] + names[200:]),
                    encoding='utf-8')
    args = [*TINY[script], f'--dataset={path}', '--num_samples=0']
    if script != 'bigram_count.py':
        args += ['--max_iters=1', '--eval_interval=1']
    if script == 'gpt.py':
        args += [f'--ckpt_path={tmp_path / "c.pt"}']
    if script == 'encoder.py':
        args = [*ENC_TINY, f'--dataset={path}', '--max_iters=1', '--eval_interval=1']
    g = load(script, *args, monkeypatch=monkeypatch)
    assert g['splits'] == expected_split(path)
    assert g['itos'] == ['.'] + sorted(set(''.join(names_in(path))))
    assert all(g['stoi'][c] == i for i, c in enumerate(g['itos']))


@pytest.mark.parametrize('script', NAMES_SCRIPTS + ['gpt.py'])
def test_samples_are_capped_and_the_new_count_is_true(script, few_names, tmp_path):
    # --temperature=0 on an untrained model: greedy decoding that may never pick '.', so only the
    # length cap ends a sample; the count of new samples is checked against the train split
    args = {'bigram_count.py': ['--smoothing=1000'], 'bigram_nn.py': ['--max_iters=1']}.get(
        script, ['--max_iters=1', '--eval_interval=1', '--temperature=0'])
    extra = [f'--ckpt_path={tmp_path / "c.pt"}', '--dataset=names.txt'] if script == 'gpt.py' else [few_names]
    size = {'mlp.py': NET_TINY[2:5], 'wavenet.py': NET_TINY[2:5], 'rnn.py': RNN_TINY[2:5],
            'gpt.py': GPT_TINY[:5]}.get(script, [])
    rc, out, err = run(script, *size, *args, *extra, '--num_samples=8', seconds=60)
    assert rc == 0, err
    *samples, count = after_final(out)
    path = os.path.join(ROOT, 'names.txt') if script == 'gpt.py' else few_names.split('=', 1)[1]
    longest = max(map(len, names_in(path)))
    assert len(samples) == 8 and all(len(s) <= longest for s in samples), samples
    train = set(expected_split(path)['train'])
    assert count == f'{sum(s not in train for s in samples)}/8 {NEW_LINE}'


@pytest.mark.parametrize('script', NAMES_SCRIPTS + ['encoder.py'])
def test_too_few_names_are_refused_in_one_line_and_ten_are_enough(script, tmp_path, monkeypatch,
                                                                  capsys):
    # the 80/10/10 split of 2 names leaves val empty; from 10 on no split is empty
    names = names_in(os.path.join(ROOT, 'names.txt'))
    for n in [2, 1, 9]:
        (tmp_path / f'n{n}.txt').write_text('\n'.join(names[:n]))
        rc, out, err = load_fails(script, *TINY[script], f'--dataset={tmp_path / f"n{n}.txt"}',
                                  monkeypatch=monkeypatch, capsys=capsys)
        assert_one_line_error(rc, out, err, f'n{n}.txt', f'too few lines ({n})', 'at least 10')
        assert rc == 1 and out == ''
    (tmp_path / 'n10.txt').write_text('\n'.join(names[:10]))
    # encoder.py: half of a batch is real training names, at most the 8 there are
    small = ['--batch_size=16'] if script == 'encoder.py' else []
    load(script, *TINY[script], *small, f'--dataset={tmp_path / "n10.txt"}',
         monkeypatch=monkeypatch)
    assert 'test' in final(capsys.readouterr().out)


@pytest.mark.parametrize('script', NAMES_SCRIPTS[1:] + ['encoder.py'])
def test_a_diverged_run_stops_in_one_line_with_no_final_line_and_no_samples(script, few_names,
                                                                           monkeypatch, capsys):
    # rnn.py, 4 steps: the 4th step's training loss is still finite, the evaluation after it is
    # inf, so this also checks that evaluations are checked: no final line with inf or nan
    args = [*RNN_TINY, '--max_iters=4', '--eval_interval=4'] if script == 'rnn.py' else TINY[script]
    rc, out, err = load_fails(script, *args, few_names, '--learning_rate=1e12',
                              monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, 'training diverged', 'learning_rate')
    assert rc == 1 and all(line.startswith(('iter ', 'baseline', 'fakes')) or 'fakes' in line
                           for line in out.splitlines())  # no final:, no samples
    assert 'nan' not in out and 'inf' not in out


@pytest.mark.parametrize('script', NAMES_SCRIPTS + ['encoder.py', 'attention.py'])
def test_same_seed_same_numbers(script, few_names, monkeypatch, capsys):
    outs = []
    short = ['--max_iters=20', '--eval_interval=10'] if script == 'encoder.py' else []
    for seed in [1, 1, 2]:  # attention.py reads the names as running text: any text will do
        load(script, *TINY[script], few_names, *short, f'--seed={seed}', monkeypatch=monkeypatch)
        outs.append(re.sub(r'time=[\d.]+s|.*ms/iter.*', '', capsys.readouterr().out))  # not timings
    assert outs[0] == outs[1] and outs[0] != outs[2]


# ---------------------------------------------------------------- bigram_count.py

def readme_figures(command):
    """The val and test losses the README's journey table gives for a command, as floats."""
    readme = open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read()
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if f'`{command}`' in cells:
            return {'val': float(cells[1]), 'test': float(cells[2])}
    raise AssertionError(f'no row for {command!r} in the README journey table')


def test_bigram_count_defaults_give_the_readme_figures(monkeypatch, capsys):
    # the whole default run (under a second). Its losses agree with the README's to about 0.01,
    # as the README says another machine's will; the table is the model, in the script's globals
    g = load('bigram_count.py', '--num_samples=50', monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    readme = readme_figures('python bigram_count.py')
    for split in ['val', 'test']:
        assert final(out)[split] == pytest.approx(readme[split], abs=0.01), split
    assert final(out)['params'] == 729
    P, counts = g['P'], g['counts']
    assert torch.allclose(P.sum(dim=1), torch.ones(27)) and (P > 0).all()  # smoothed rows
    train = expected_split(os.path.join(ROOT, 'names.txt'))['train']
    assert counts.sum() == sum(len(w) + 1 for w in train)
    assert counts[g['stoi']['q'], g['stoi']['u']] == sum(w.count('qu') for w in train)
    # a bigram model writes some names of the training set, and some new ones: the count is true
    *samples, count = after_final(out)
    new = sum(s not in set(train) for s in samples)
    assert len(samples) == 50 and 0 < new < 50 and count == f'{new}/50 {NEW_LINE}'


# ---------------------------------------------------------------- mlp.py and wavenet.py

NETS = ['mlp.py', 'wavenet.py']


@pytest.mark.parametrize('script', NETS)
def test_net_learns_and_reports_whole_split_losses(script, monkeypatch, capsys):
    # reaches inside: the model and the val rows, to recompute the loss in one pass
    g = load(script, *NET_TINY, monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    vals = evals(out)
    assert len(vals) == 2 and vals[1] < vals[0] < math.log(27)  # below uniform, and falling
    assert final(out)['params'] == sum(p.numel() for p in g['model'].parameters())
    model, (X, Y) = g['model'], g['data']['val']
    assert X.shape == (len(Y), g['block_size'])
    assert len(Y) == sum(len(w) + 1 for w in expected_split(os.path.join(ROOT, 'names.txt'))['val'])
    model.eval()
    with torch.no_grad():
        logits = model(X)
        assert logits.shape == (len(Y), g['vocab_size'])              # (B, V)
        # one pass equals the chunked estimate; that needs eval mode in estimate_loss, since in
        # train mode BatchNorm would use each chunk's own statistics
        assert abs(F.cross_entropy(logits, Y).item() - final(out)['val']) < 1e-4
        assert torch.allclose(model(X[:1]), logits[:1], atol=1e-5)    # alone = inside a batch
    *samples, count = after_final(out)
    assert len(samples) == 3 and count.endswith(NEW_LINE) and 'ms/iter' in out and 'eta' in out


def test_wavenet_block_size_must_be_a_power_of_two(monkeypatch, capsys):
    rc, out, err = load_fails('wavenet.py', '--block_size=6', monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, 'block_size=6', 'power of 2')
    assert rc == 2


# ---------------------------------------------------------------- rnn.py

@pytest.mark.parametrize('cell', ['rnn', 'gru'])
def test_rnn_learns_and_its_loss_is_the_whole_split_mean_with_padding_masked(cell, few_names,
                                                                           monkeypatch, capsys):
    # reaches inside: the padded val rows and the model, to recompute the loss in one pass
    g = load('rnn.py', *RNN_TINY, few_names, f'--cell={cell}', '--learning_rate=0.03',
             monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    vals = evals(out)
    assert len(vals) == 2 and vals[1] < vals[0] < 3.3          # evaluated twice, and the loss falls
    assert final(out)['params'] == sum(p.numel() for p in g['model'].parameters())
    *samples, count = after_final(out)
    assert len(samples) == 3 and count.endswith(NEW_LINE)
    val = final(out)['val']
    model, (X, Y) = g['model'].eval(), g['data']['val']  # eval(): dropout off
    pad = Y < 0
    assert pad.any() and (X[pad] == 0).all()
    with torch.no_grad():
        loss = F.cross_entropy(model(X)[0].flatten(0, 1), Y.flatten(), ignore_index=-1)
        assert abs(val - loss.item()) < 1e-4    # the chunked, length-sorted evaluation: one pass
        X2 = X.clone()
        X2[pad] = torch.randint(1, g['vocab_size'], (int(pad.sum()),))  # whatever sits in padding
        loss2 = F.cross_entropy(model(X2)[0].flatten(0, 1), Y.flatten(), ignore_index=-1)
    assert torch.allclose(loss, loss2)
    assert (Y >= 0).sum() == sum(len(w) + 1 for w in g['splits']['val'])  # every char + the end


def test_rnn_training_loss_skips_the_padding(few_names, monkeypatch, capsys):
    # a batch of names is padded to its longest; the padding must not be trained as if it were
    # text. Reaches inside: every loss the script computes is watched on its way to
    # F.cross_entropy, which must see the padded targets (-1) and be told to skip them
    seen = []
    real_cross_entropy = F.cross_entropy

    def watch(logits, targets, *args, **kwargs):
        seen.append((targets.clone(), kwargs.get('ignore_index')))
        return real_cross_entropy(logits, targets, *args, **kwargs)
    monkeypatch.setattr(F, 'cross_entropy', watch)
    load('rnn.py', *RNN_TINY, few_names, monkeypatch=monkeypatch)
    assert len(seen) > 6                                   # 6 training steps, then evaluations
    assert all(ignore_index == -1 for _, ignore_index in seen)
    assert all((targets == -1).any() for targets, _ in seen[:3])  # the first batches are padded


def test_rnn_unknown_cell_is_refused(monkeypatch, capsys):
    rc, out, err = load_fails('rnn.py', '--cell=lstm', monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, '--cell=lstm', 'rnn, gru')
    assert rc == 2


# ---------------------------------------------------------------- gpt.py

SHAKESPEARE = open(os.path.join(ROOT, 'input.txt'), encoding='utf-8').read()[:20000]


@pytest.fixture(scope='session')
def trained(tmp_path_factory):
    """One tiny finished gpt.py run on 20,000 characters of Shakespeare, shared by every test of
    gpt.py that needs a trained model: its globals, output, checkpoint and flags. Never written to:
    tests copy the checkpoint (the ckpt fixture) or only read it (--sample_only). Val improves at
    the last evaluation, so the checkpoint holds the end of the run. The decay settings are off
    their defaults, so a default written in place of the flag shows."""
    folder = tmp_path_factory.mktemp('gpt')
    (folder / 'text.txt').write_text(SHAKESPEARE, encoding='utf-8')
    args = [*GPT_TINY, f'--dataset={folder / "text.txt"}', f'--ckpt_path={folder / "c.pt"}']
    # reaches inside: the model, the optimizer and the schedule are looked at, not printed
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()) as out, \
            conftest.put_back():
        g = load('gpt.py', *args, '--weight_decay=0.05', '--lr_decay=0.2', monkeypatch=mp)
    text = out.getvalue().split('final:')[1].split('\n', 1)[1]  # the prompt, 40 characters, '\n'
    return types.SimpleNamespace(g=g, args=args, out=out.getvalue(), text=text,
                                 ckpt=folder / 'c.pt', dataset=folder / 'text.txt')


@pytest.fixture
def ckpt(trained, tmp_path):
    path = tmp_path / 'c.pt'
    shutil.copy(trained.ckpt, path)
    return path


def test_gpt_runs_and_streams_the_requested_characters(trained):
    out, path = trained.out, trained.ckpt
    numbers = final(out)
    assert 'test' not in numbers and numbers['val'] < math.log(65)  # no test split; it learned
    vals = evals(out)
    assert len(vals) == 2 and vals[1] < vals[0]
    text = out.split('final:')[1].split('\n', 1)[1]  # after the final line: prompt + 40 characters
    assert len(text) == 1 + 40 + 1 and text[0] == '\n' and text[-1] == '\n'
    assert 'ms/iter' in out and 'eta' in out
    assert torch.load(path, weights_only=True)['iter'] == 20


def test_gpt_resuming_a_finished_run_prints_its_result_and_samples(trained, ckpt):
    rc, out, err = run('gpt.py', *GPT_TINY, f'--ckpt_path={ckpt}', '--resume=True')
    assert rc == 0, err
    assert 'iter ' not in out                                   # no step left to take
    strip = lambda out: re.sub(r'time=[\d.]+s', '', out.split('final:')[1])
    assert strip(out) == strip(trained.out)   # the run's own result, then the same samples


def test_gpt_sample_only_reproduces_the_text_and_top_k_1_is_greedy(trained, ckpt):
    texts = {}
    for name, flags in [('again', []), ('top1', ['--top_k=1']), ('greedy', ['--temperature=0']),
                        ('top1b', ['--top_k=1', '--seed=5'])]:
        rc, out, err = run('gpt.py', *GPT_TINY, f'--ckpt_path={ckpt}', '--sample_only=True', *flags)
        assert rc == 0, err
        assert 'final:' not in out and 'iter ' not in out       # no training
        texts[name] = out.split('\n', 2)[2]                     # after the sizes and data lines
    assert texts['again'] == trained.text                       # same seed, same text
    assert texts['top1'] == texts['greedy'] == texts['top1b']   # only the likeliest: no chance
    assert texts['greedy'] != trained.text


def test_gpt_attention_is_causal(ckpt, monkeypatch, capsys):
    # reaches inside: the model, to feed it sequences that differ in one position
    g = load('gpt.py', *GPT_TINY, f'--ckpt_path={ckpt}', '--sample_only=True',
             '--max_new_tokens=1', monkeypatch=monkeypatch)
    model = g['model'].eval()
    x = torch.randint(g['vocab_size'], (3, 16))
    with torch.no_grad():
        a = model(x)[0]
        for t in [0, 7, 14]:                             # change token t+1: positions <= t must not notice
            x2 = x.clone()
            x2[:, t + 1] = (x2[:, t + 1] + 1) % g['vocab_size']
            b = model(x2)[0]
            assert torch.allclose(a[:, :t + 1], b[:, :t + 1], atol=1e-6)
            assert not torch.allclose(a[:, t + 1:], b[:, t + 1:], atol=1e-4)
        maps = model.attention_maps(x)
        sa = model.blocks[0].sa                          # block 0's attention, redone from its map
        h = model.blocks[0].ln1(model.tok_emb(x) + model.pos_emb(torch.arange(16)))
        by_map = sa.proj((maps[0] @ sa.heads(sa.value(h))).transpose(1, 2).reshape(3, 16, 32))
        assert torch.allclose(sa(h), by_map, atol=1e-5)  # the same math, two ways
    assert len(maps) == 2
    for att in maps:
        assert att.shape == (3, 2, 16, 16)                  # (B, n_head, T, T)
        assert torch.allclose(att.sum(-1), torch.ones(3, 2, 16), atol=1e-6)  # each row a distribution
        past = torch.ones(16, 16, dtype=torch.bool).tril()
        assert (att[..., ~past] == 0).all() and (att[..., past] > 0).all()  # no future, all the past


def test_gpt_can_overfit_one_batch(ckpt, monkeypatch, capsys):
    # reaches inside: a fresh model and one batch, trained here for 200 steps
    g = load('gpt.py', *GPT_TINY, f'--ckpt_path={ckpt}', '--sample_only=True', '--batch_size=4',
             '--max_new_tokens=1', monkeypatch=monkeypatch)
    torch.manual_seed(0)
    model, (x, y) = g['GPT'](), g['get_batch']('train')
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(200):
        loss = model(x, y)[1]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3, loss.item()           # 64 characters memorised: from ~4.2 to near 0


@pytest.mark.parametrize('args,words', [(['--n_embd=30', '--n_head=4'], ['n_embd=30', 'n_head=4']),
                                        (['--prompt=Zoë'], ["'ë'", 'vocabulary']),
                                        (['--prompt='], ['prompt', 'empty']),
                                        (['--attention_layer=2'], ['attention_layer=2']),
                                        (['--attention_layer=-3'], ['attention_layer=-3']),
                                        (['--mode=poem'], ['--mode=poem', 'names'])])
def test_gpt_refuses_bad_settings_in_one_line(args, words, tmp_path):
    rc, out, err = run('gpt.py', *GPT_TINY, *args, f'--ckpt_path={tmp_path / "c.pt"}')
    assert_one_line_error(rc, out, err, *words)
    assert rc == 2 and not (tmp_path / 'c.pt').exists() and 'iter' not in out


def test_gpt_refuses_a_checkpoint_path_it_cannot_write_before_training(tmp_path):
    rc, out, err = run('gpt.py', *GPT_TINY, f'--ckpt_path={tmp_path / "no" / "such" / "dir" / "c.pt"}')
    assert_one_line_error(rc, out, err, str(tmp_path / 'no' / 'such' / 'dir'))
    assert 'iter ' not in out


class RunsCode:  # a pickle that, when loaded without weights_only, makes a folder: code ran
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_gpt_bad_checkpoints_are_refused_in_one_line(ckpt, tmp_path):
    rc, out, err = run('gpt.py', *GPT_TINY, f'--ckpt_path={ckpt}', '--resume=True', '--n_embd=64')
    assert_one_line_error(rc, out, err, 'n_embd', 'resume')  # a different shape cannot be resumed
    good = torch.load(ckpt, weights_only=True)
    (tmp_path / 'cut.pt').write_bytes(ckpt.read_bytes()[:5000])
    (tmp_path / 'text.pt').write_text('not a checkpoint')
    torch.save({'weights': torch.zeros(3)}, tmp_path / 'foreign.pt')
    renamed = dict(good, model={k.replace('sa.key', 'sa.k'): v for k, v in good['model'].items()})
    torch.save(renamed, tmp_path / 'renamed.pt')              # every key there, but a module renamed
    torch.save(dict(good, model=RunsCode(str(tmp_path / 'code_ran'))), tmp_path / 'evil.pt')
    old = dict(good)
    del old['scaler']                                         # what the single-Block gpt.py wrote
    torch.save(old, tmp_path / 'old.pt')
    for name in ['cut.pt', 'text.pt', 'foreign.pt', 'missing.pt', 'renamed.pt', 'evil.pt', 'old.pt']:
        rc, out, err = run('gpt.py', *GPT_TINY, f'--ckpt_path={tmp_path / name}', '--sample_only=True')
        assert_one_line_error(rc, out, err, name)
        assert rc == 1 and ('older version' in err) == (name in ('foreign.pt', 'renamed.pt', 'old.pt'))
    assert not (tmp_path / 'code_ran').exists()               # weights_only: loading runs no code


@POSIX_ONLY
def test_gpt_sigint_handler_is_restored_and_a_second_ctrl_c_stops_at_once(tmp_path, monkeypatch,
                                                                          capsys):
    # in a notebook the kernel keeps running after a run: whatever way the run ended, Ctrl-C must
    # work as before. The handler gpt.py installs is caught on its way to signal.signal
    before = signal.getsignal(signal.SIGINT)
    installed = []
    real_signal = signal.signal

    def spy(signum, handler):
        if signum == signal.SIGINT and handler is not before:
            installed.append(handler)
        return real_signal(signum, handler)
    monkeypatch.setattr(signal, 'signal', spy)
    ckpt = f'--ckpt_path={tmp_path / "c.pt"}'
    load('gpt.py', *GPT_TINY, '--max_iters=2', ckpt, monkeypatch=monkeypatch)       # ends well
    assert signal.getsignal(signal.SIGINT) is before and installed
    load_fails('gpt.py', *GPT_TINY, '--learning_rate=1e12', ckpt, monkeypatch=monkeypatch,
               capsys=capsys)                                                      # diverges
    assert signal.getsignal(signal.SIGINT) is before
    handler = [h for h in installed if h.__name__ != 'stop_at_ctrl_c'][-1]  # training's own
    handler(signal.SIGINT, None)                   # the first Ctrl-C only asks to stop
    with pytest.raises(KeyboardInterrupt):
        handler(signal.SIGINT, None)               # the second stops at once


def test_gpt_float16_resume_restores_the_gradient_scaler(ckpt, tmp_path, monkeypatch, capsys):
    # reaches inside: the loss scale lives in the GradScaler; it must come back from the checkpoint
    load('gpt.py', *GPT_TINY, '--dtype=float16', '--max_iters=10', f'--ckpt_path={ckpt}',
         monkeypatch=monkeypatch)
    saved = torch.load(ckpt, weights_only=True)
    assert saved['scaler']['scale'] == 65536.0      # the initial scale: a short CPU run keeps it
    saved['scaler']['scale'] = 1024.0               # as if overflows had lowered it
    torch.save(saved, ckpt)
    capsys.readouterr()
    g = load('gpt.py', *GPT_TINY, '--dtype=float16', '--max_iters=12', f'--ckpt_path={ckpt}',
             '--resume=True', monkeypatch=monkeypatch)
    vals = evals(capsys.readouterr().out)
    assert g['scaler'].is_enabled() and g['scaler'].get_scale() == 1024.0
    assert len(vals) == 1 and vals[0] < math.log(65)


def test_gpt_names_mode_reports_the_exact_whole_split_loss(tmp_path, monkeypatch, capsys):
    # reaches inside: the model and the val split, to recompute the loss in one pass
    g = load('gpt.py', *GPT_TINY, '--dataset=names.txt', '--max_iters=3', '--eval_interval=3',
             '--num_samples=5', f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    numbers = final(out)
    val = expected_split(os.path.join(ROOT, 'names.txt'))['val']
    stoi = g['stoi']
    T = max(map(len, val)) + 1
    X = torch.zeros(len(val), T, dtype=torch.long)
    Y = torch.full((len(val), T), -1)
    for i, w in enumerate(val):
        ids = [0] + [stoi[c] for c in w] + [0]
        X[i, :len(ids) - 1] = torch.tensor(ids[:-1])
        Y[i, :len(ids) - 1] = torch.tensor(ids[1:])
    model = g['model'].eval()
    with torch.no_grad():
        logits = model(X)[0]
    nll = F.cross_entropy(logits.flatten(0, 1), Y.flatten(), ignore_index=-1).item()
    assert abs(nll - numbers['val']) < 1e-4
    *samples, count = after_final(out)
    assert len(samples) == 5 and count.endswith(NEW_LINE)


def test_gpt_text_mode_evaluates_the_same_windows_every_time(ckpt, monkeypatch, capsys):
    # reaches inside: estimate_loss, called twice on the same weights
    g = load('gpt.py', *GPT_TINY, f'--ckpt_path={ckpt}', '--sample_only=True',
             '--max_new_tokens=1', monkeypatch=monkeypatch)
    torch.manual_seed(123)
    first = g['estimate_loss']()
    torch.manual_seed(456)
    assert g['estimate_loss']() == first


@pytest.mark.parametrize('length,mode', [(19, 'names'), (21, 'text')])
def test_gpt_mode_comes_from_the_average_line_length(length, mode, tmp_path):
    # lines averaging under 20 characters are a list, one item a line; 20 or more, running text
    lines = [('abcdefghijklmnopqrstuvwxyz' * 2)[i % 7:i % 7 + length] for i in range(400)]
    (tmp_path / 'lines.txt').write_text('\n'.join(lines))
    rc, out, err = run('gpt.py', *GPT_TINY, '--max_iters=1', '--eval_interval=1', '--num_samples=1',
                       '--block_size=32', f'--dataset={tmp_path / "lines.txt"}',
                       f'--ckpt_path={tmp_path / "c.pt"}')
    assert rc == 0, err
    assert out.splitlines()[1].startswith(f'{tmp_path / "lines.txt"}: mode={mode}')
    assert (NEW_LINE in out) == (mode == 'names')


@pytest.mark.parametrize('lines,mode,words', [
    (['emma', 'olivia'], 'names', ['too few lines (2)', 'at least 10']),
    (['To be, or not to be: that is the question.'] * 3, 'text', ['characters', 'at least 170'])])
def test_gpt_refuses_a_file_too_small_to_split(lines, mode, words, tmp_path):
    (tmp_path / 'small.txt').write_text('\n'.join(lines))
    rc, out, err = run('gpt.py', *GPT_TINY, f'--dataset={tmp_path / "small.txt"}', f'--mode={mode}',
                       f'--ckpt_path={tmp_path / "c.pt"}')
    assert_one_line_error(rc, out, err, 'small.txt', *words)
    assert rc == 1 and 'iter' not in out


def test_gpt_divergence_stops_at_once_and_keeps_the_good_checkpoint(ckpt):
    good = ckpt.read_bytes()
    # fresh, with a progress line every 5 steps and the first evaluation at 50: it stops within
    # one log interval; resumed from the good checkpoint, with an evaluation after every step:
    # every place a checkpoint could be written is reached
    for extra, last in [(['--max_iters=60', '--eval_interval=50'], 5),
                        (['--resume=True', '--max_iters=40', '--eval_interval=1'], 21)]:
        rc, out, err = run('gpt.py', *GPT_TINY, '--learning_rate=1e12', f'--ckpt_path={ckpt}',
                           *extra)
        assert_one_line_error(rc, out, err, 'diverged', 'iter', '--learning_rate')
        assert int(re.search(r'iter (\d+)', err)[1]) <= last
        assert rc == 1 and 'final:' not in out and 'nan' not in out and 'inf' not in out
        assert ckpt.read_bytes() == good


def test_gpt_a_crash_while_saving_leaves_the_old_checkpoint_whole(ckpt, monkeypatch, capsys):
    # the checkpoint is written to a temporary file and renamed into place: a save that dies
    # half-way (disk full, power cut) must leave the previous checkpoint readable
    good = ckpt.read_bytes()
    real_save = torch.save

    def dies_half_way(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        with open(f, 'r+b') as file:
            file.truncate(100)
        raise OSError('no space left on device')
    monkeypatch.setattr(torch, 'save', dies_half_way)
    rc, out, err = load_fails('gpt.py', *GPT_TINY, f'--ckpt_path={ckpt}', '--resume=True',
                              '--max_iters=30', monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, f'cannot write checkpoint {ckpt}', 'no space left',
                          'the last one written is whole')
    assert rc == 1 and 'final:' not in out
    assert ckpt.read_bytes() == good and os.listdir(ckpt.parent) == ['c.pt']  # no .tmp left


def test_gpt_shows_attention_as_it_is(ckpt, monkeypatch, capsys):
    # the drawing is compared with the weights the model gives for the same prompt
    prompt = 'I am\nRO'
    g = load('gpt.py', *GPT_TINY, f'--ckpt_path={ckpt}', '--sample_only=True', f'--prompt={prompt}',
             '--show_attention=True', '--attention_layer=-2', '--max_new_tokens=5',
             monkeypatch=monkeypatch)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert 'attention in block 1 of 2:' in out                # -2: the first of two blocks
    shown = ['I', '␣', 'a', 'm', '⏎', 'R', 'O']              # visible stand-ins for blanks
    idx = torch.tensor([[g['stoi'][c] for c in prompt]])
    with torch.no_grad():
        att = g['model'].eval().attention_maps(idx)[0][0]  # block 1: (n_head, T, T)
    for h in range(2):
        i = lines.index(f'  head {h}   ' + ' '.join(shown))
        for t, c in enumerate(shown):
            row = lines[i + 1 + t]
            assert row.startswith(f'{c:>8}   ')
            cells = row[11::2]
            assert len(cells) == t + 1                        # the future: blank, weight 0
            assert cells[att[h, t, :t + 1].argmax()] == '█'     # the strongest: full
            for w, cell in zip(att[h, t, :t + 1].tolist(), cells):
                assert cell == '·░▒▓█'[round(4 * w / att[h, t].max().item())]  # the rest: shaded


def test_gpt_size_follows_the_device_it_runs_on(tmp_path, monkeypatch, capsys):
    # a GPU machine, and a run asked for on its CPU: the CPU's model size and float32. Reaches
    # inside to pretend there is a GPU and read the size chosen
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    g = load('gpt.py', '--n_layer=1', '--max_iters=1', '--eval_iters=1', '--max_new_tokens=1',
             f'--ckpt_path={tmp_path / "c.pt"}', monkeypatch=monkeypatch)
    assert (g['n_embd'], g['block_size'], g['batch_size'], g['dtype']) == (128, 64, 24, 'float32')


WRAP = '''import os, runpy, sys, torch, torch.distributed as dist
destroy = dist.destroy_process_group
def save_then_destroy():  # when training ends, save this process's weights and one batch
    g = sys._getframe(1).f_globals
    torch.save({'model': g['model'].state_dict(), 'batch': g['get_batch']('train')[0],
                'it': g['it']},
               os.path.join(FOLDER, f"rank{os.environ['RANK']}.w"))
    destroy()
dist.destroy_process_group = save_then_destroy
runpy.run_path(GPT, run_name='__main__')
'''


# ---------------------------------------------------------------- README.md

def valid_keys(script):
    """The flags a script accepts, as it lists them itself when given an unknown one."""
    rc, out, err = run(script, '--no_such_key=1')
    return set(err.split('with a key from: ')[1].split('; ')[0].strip().split(', '))


def readme_commands():
    readme = open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read()
    lines = [l for block in re.findall(r'```\w*\n(.*?)```', readme, re.S) for l in block.splitlines()]
    lines += re.findall(r'`((?:python|torchrun)\b[^`]*)`', readme)  # inline commands, tables too
    return lines


def test_every_flag_in_the_readme_exists_in_its_script():
    keys, checked = {}, 0
    for line in readme_commands():
        for script, flags in re.findall(r'(\w+\.py)((?:\s+--\w+=\S+)*)', line):
            if script not in SCRIPTS:
                continue
            if script not in keys:
                keys[script] = valid_keys(script)
            for key in re.findall(r'--(\w+)=', flags):
                assert key in keys[script], f'README: {line.strip()!r}: --{key} unknown to {script}'
                checked += 1
    assert checked >= 20, checked  # the README's commands were found and read


def journey_rows():
    """(command, params) of every row of the README's journey table."""
    readme = open(os.path.join(ROOT, 'README.md'), encoding='utf-8').read()
    rows = []
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        command = [c for c in cells if re.fullmatch(r'`python \w+\.py[^`]*`', c)]
        params = [c for c in cells if re.fullmatch(r'[\d,]+', c) and ',' in c or c == '729']
        if command and params:
            rows.append((command[0].strip('`'), int(params[0].replace(',', ''))))
    return rows


def test_the_readme_params_column_is_what_each_command_builds(few_names, tmp_path, monkeypatch,
                                                              capsys):
    # each journey command is run for one step, names chapters on 2,000 names (with all 26
    # letters: the size depends on the vocabulary, not on how many names there are): its final
    # line must report the params the README gives
    rows = journey_rows()
    assert len(rows) >= 8, rows
    for command, params in rows:
        script, *flags = command.split()[1:]
        flags = [f for f in flags if not f.startswith(('--max_iters', '--eval_interval'))]
        if script not in ('gpt.py', 'attention.py') or '--dataset=names.txt' in flags:
            flags = [f for f in flags if not f.startswith('--dataset')] + [few_names]
        short = ['--max_iters=1', '--eval_interval=1']
        if script == 'bigram_count.py':
            short = []
        if script == 'gpt.py':
            short += ['--eval_iters=1', '--max_new_tokens=1', f'--ckpt_path={tmp_path / "c.pt"}']
        if script == 'attention.py':  # the size depends on tiny Shakespeare's 65 characters
            short += ['--eval_iters=1', '--max_new_tokens=0']
        got = final_params(script, flags + short, monkeypatch, capsys)
        assert got == params, f'README says {params:,} params for {command!r}; it builds {got:,}'


def final_params(script, flags, monkeypatch, capsys):
    # in-process: nine python start-ups would cost more than the runs
    monkeypatch.chdir(ROOT)
    samples = {'encoder.py': ['--num_show=1'], 'attention.py': []}.get(script, ['--num_samples=0'])
    monkeypatch.setattr(sys, 'argv', [script, '--device=cpu', *samples, *flags])
    runpy.run_path(os.path.join(ROOT, script), run_name='__main__')
    return int(final(capsys.readouterr().out)['params'])


# ---------------------------------------------------------------- encoder.py

ENC_LEARN = ['--n_embd=32', '--n_head=4', '--n_layer=2', '--max_iters=200', '--eval_interval=200',
             '--learning_rate=0.01', '--num_show=4']


@pytest.fixture(scope='module')
def encoder_run(few_names):
    """One short run on 2,000 names, shared by the tests that look at what it left behind
    (in-process: they need the model and the split it was scored on). That it learns, on all the
    names, is test_processes.py's test_encoder_beats_the_pairs_and_length_baseline_on_whole_splits.
    -> its globals, its output, the names file."""
    # (capsys and monkeypatch belong to one test: a shared run captures by hand)
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()) as out, \
            conftest.put_back():
        g = load('encoder.py', *ENC_LEARN, few_names, '--max_iters=20', '--eval_interval=20',
                 monkeypatch=mp)
    g['model'].eval()  # dropout off: the same input gives the same output
    return g, out.getvalue(), few_names.split('=', 1)[1]


def test_encoder_reports_the_exact_whole_split_loss_and_accuracy(encoder_run):
    g, out, _ = encoder_run
    numbers = final(out)
    X, lens, Y = g['data']['val']
    with torch.no_grad():
        logp = g['model'](X, lens)[0]                                 # one pass, the whole split
    assert abs((logp.argmax(1) == Y).float().mean().item() - numbers['val_acc']) < 1e-4
    assert abs(F.nll_loss(logp, Y).item() - numbers['val']) < 1e-4
    assert numbers['params'] == sum(p.numel() for p in g['model'].parameters())
    assert len(re.findall(r'^iter 20/20 \| train [\d.]+ \| val [\d.]+ \| val_acc [\d.]+$',
                          out, re.M)) == 1 and 'ms/iter' in out and 'eta' in out


def test_encoder_fakes_are_chapter_1s_names_with_real_lengths(encoder_run, monkeypatch, capsys):
    g, _, path = encoder_run
    count = load('bigram_count.py', '--num_samples=0', f'--dataset={path}', monkeypatch=monkeypatch)
    assert torch.allclose(g['P'], count['P'])                  # the same table, fitted on train
    split = expected_split(path)
    real_names = set(names_in(path))
    batches = [g['get_batch']() for _ in range(3)]
    for name, (X, lens, Y) in [*g['data'].items(), *[('batch', b) for b in batches]]:
        X, lens, Y = X.cpu(), lens.cpu(), Y.cpu()
        names = [g['decode'](x[1:n - 1].tolist()) for x, n in zip(X, lens)]
        real = [w for w, y in zip(names, Y) if y == 1]
        fakes = [w for w, y in zip(names, Y) if y == 0]
        if name != 'batch':
            assert real == split[name]                         # every name of the split
        assert len(fakes) == len(real) and not set(fakes) & real_names  # no fake is a real name
        # the lengths: the same histogram, within 1% of the names at any length
        longest = max(map(len, real + fakes)) + 1
        hist_real = torch.bincount(torch.tensor([len(w) for w in real]), minlength=longest)
        hist_fake = torch.bincount(torch.tensor([len(w) for w in fakes]), minlength=longest)
        assert (hist_real - hist_fake).abs().max().item() <= 0.01 * len(real), name


def test_encoder_shows_names_and_the_attention_it_paid(encoder_run, ckpt, monkeypatch, capsys):
    g, out, path = encoder_run
    shown = re.findall(r'^p\(real\) ([\d.]+) \(baseline ([\d.]+)\)  (real|fake)  ([a-z]+)$',
                       out, re.M)
    assert len(shown) == 4 and all(0 <= float(p) <= 1 for p, _, _, _ in shown)
    val = expected_split(path)['val']
    assert [kind for _, _, kind, _ in shown] == ['real', 'fake'] * 2  # a name, then its twin
    assert shown[0][3] in val and len(shown[0][3]) == len(shown[1][3])
    drawing = out.split('attention in the last block')[1].splitlines()
    name = shown[0][3]
    assert f"'{name}'" in drawing[0]                              # it draws the first name shown
    heads = [i for i, line in enumerate(drawing) if line.strip().startswith('head ')]
    assert len(heads) == 4 and drawing[heads[0]].split()[2:] == list(f'.{name}.')
    assert heads[1] - heads[0] == len(name) + 3                   # a row per character, '.'s too
    # the same drawing as gpt.py's for the same weights (each file carries its own copy)
    gpt = load('gpt.py', *GPT_TINY, f'--ckpt_path={ckpt}', '--sample_only=True',
               '--max_new_tokens=1', monkeypatch=monkeypatch)
    att = torch.rand(2, 5, 5).tril()
    att = att / att.sum(-1, keepdim=True)
    capsys.readouterr()
    gpt['draw_attention']('a b\nc', att)
    g['draw_attention']('a b\nc', att)
    ours, theirs = capsys.readouterr().out.split('each row')[1:]
    assert ours == theirs


def test_encoder_has_no_causal_mask(encoder_run):
    g, _, _ = encoder_run
    x = torch.tensor([[0] + g['encode']('emmanuel') + [0]])
    x2 = x.clone()
    x2[0, 7] = g['stoi']['z']                                         # change a late character
    pad = torch.zeros(1, x.size(1), dtype=torch.bool)
    with torch.no_grad():
        a = g['model'].encoder(x, pad)                                # (1, T, C): the encodings
        b = g['model'].encoder(x2, pad)
    assert not torch.allclose(a[0, 1], b[0, 1], atol=1e-4)           # the first character sees it


def test_encoder_padding_changes_nothing(encoder_run):
    g, _, _ = encoder_run
    X = torch.zeros(2, 12, dtype=torch.long)
    X[0, :6] = torch.tensor([0] + g['encode']('emma') + [0])
    X[1] = torch.tensor([0] + g['encode']('maximilian') + [0])
    X[0, 6:] = torch.randint(1, g['vocab_size'], (6,))                # whatever sits in padding
    lens = torch.tensor([6, 12])
    with torch.no_grad():
        alone, _ = g['model'](X[:1, :6], lens[:1])
        batch, _ = g['model'](X, lens)
        maps = g['model'].attention_maps(X, lens)
    assert torch.allclose(alone[0], batch[0], atol=1e-5)              # the same log-probs
    assert len(maps) == 2
    for att in maps:                                                  # (B, nh, T, T), per block
        assert torch.allclose(att[0, :, :6].sum(-1), torch.ones(4, 6))  # each real row sums to 1
        assert (att[0, :, :, 6:] == 0).all()                          # the padding gets exactly 0


@pytest.mark.parametrize('args,words,code', [
    (['--block_size=10'], ['block_size=17'], 2),
    (['--n_embd=30', '--n_head=4'], ['n_embd=30', 'n_head=4'], 2),
    (['--batch_size=3'], ['--batch_size=3', 'even'], 2),
    (['--num_show=0'], ['--num_show=0', '>= 1'], 2),
    (['--dataset=FIVE'], ['too few lines (5)', 'at least 10'], 1)])
def test_encoder_refuses_bad_input_in_one_line(args, words, code, tmp_path, monkeypatch, capsys):
    (tmp_path / 'five.txt').write_text('emma\nolivia\nava\nisabella\nsophia\n')
    args = [a.replace('FIVE', str(tmp_path / 'five.txt')) for a in args]
    rc, out, err = load_fails('encoder.py', *ENC_TINY, *args, monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, *words)
    assert rc == code


# ---------------------------------------------------------------- what a refactor could slip in

@pytest.fixture(scope='session')
def names_400(tmp_path_factory):  # the first 400 names: every chapter builds on them in a blink
    path = tmp_path_factory.mktemp('data') / 'names400.txt'
    path.write_text('\n'.join(names_in(os.path.join(ROOT, 'names.txt'))[:400]))
    return path


@pytest.mark.parametrize('script', ['rnn.py', 'gpt.py', 'encoder.py'])
def test_a_batch_of_names_holds_every_name_whole_and_is_cut_to_the_longest(script, names_400,
                                                                          tmp_path, monkeypatch):
    # a batch of padded names is cut to its longest name: cut shorter, long names would never
    # train their ends; not cut, every batch would compute on the padding of the longest name
    # of the whole split. Reaches inside: get_batch, drawn from many times
    extra = {'rnn.py': RNN_TINY, 'gpt.py': [*GPT_TINY, f'--ckpt_path={tmp_path / "c.pt"}'],
             'encoder.py': ENC_TINY}[script]
    g = load(script, *extra, f'--dataset={names_400}', '--max_iters=1', '--eval_interval=1',
             monkeypatch=monkeypatch)
    torch.manual_seed(0)
    for _ in range(20):
        if script == 'encoder.py':
            X, lens, _ = g['get_batch']()
            assert (X[torch.arange(len(X)), lens - 1] == 0).all()   # each name ends with its '.'
            assert X.size(1) == lens.max()                          # and the longest fills it
            continue
        X, Y = g['get_batch']('train')
        ends = (Y == 0).sum(dim=1)                                 # the '.' each name ends with
        assert (ends == 1).all(), 'a name of the batch lost its end'
        assert (Y[:, -1] >= 0).any(), 'the batch is wider than its longest name'
        assert X.shape == Y.shape


def test_gpt_under_torchrun_the_processes_share_the_accumulation_steps(names_400, tmp_path,
                                                                      monkeypatch, capsys):
    # --gradient_accumulation_steps is the whole step's micro-batches, shared among torchrun's
    # processes (as nanoGPT): the batch of a step stays the same however many GPUs there are.
    # Reaches inside: process 0 of 2 in this process, its process group and DDP faked; the
    # micro-batches it runs are counted as its wrapped model is called
    calls = []

    class FakeDDP(torch.nn.Module):  # what DDP does to the forward pass: nothing, here
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, *args):
            calls.append(len(args[0]))
            return self.module(*args)
    for name in ['init_process_group', 'destroy_process_group', 'barrier', 'all_reduce']:
        monkeypatch.setattr(torch.distributed, name, lambda *args, **kwargs: None)
    monkeypatch.setattr(torch.nn.parallel, 'DistributedDataParallel', FakeDDP)
    args = [*GPT_TINY, f'--dataset={names_400}', '--max_iters=2', '--eval_interval=2',
            '--num_samples=0', '--gradient_accumulation_steps=4', f'--ckpt_path={tmp_path / "c.pt"}']
    for world in [2, 4]:
        calls.clear()
        for key, value in [('RANK', '0'), ('LOCAL_RANK', '0'), ('WORLD_SIZE', str(world))]:
            monkeypatch.setenv(key, value)
        load('gpt.py', *args, monkeypatch=monkeypatch)
        assert calls == [8] * (2 * 4 // world), world    # 2 steps of 4 // world micro-batches
    assert 'final:' in capsys.readouterr().out
    # a share that is not whole is refused before joining the others (it would wait forever)
    rc, out, err = load_fails('gpt.py', *args, '--gradient_accumulation_steps=3',
                              monkeypatch=monkeypatch, capsys=capsys)
    assert_one_line_error(rc, out, err, 'gradient_accumulation_steps=3', 'multiple of the 4 processes')
    assert rc == 2


@pytest.mark.parametrize('script,batch', [('mlp.py', 8), ('wavenet.py', 2)])  # 8 rows each
def test_batchnorm_running_statistics_are_the_training_sets(script, batch, names_400,
                                                            monkeypatch):
    # evaluation and sampling normalise with BatchNorm's running statistics: they must stand for
    # the training set, an average over many batches, not the last batch alone. A learning rate
    # so small that the weights stay put, and small batches (wavenet's first level normalises 4
    # pairs a name): the running mean and variance of the first layer against the mean and
    # variance of its pre-activations over every train row
    g = load(script, *NET_TINY, f'--dataset={names_400}', f'--batch_size={batch}', '--max_iters=60',
             '--eval_interval=60', '--learning_rate=1e-7', '--num_samples=0',
             monkeypatch=monkeypatch)
    model, (X, _) = g['model'], g['data']['train']
    with torch.no_grad():
        emb = model.tok_emb(X)                                      # (N, block_size, n_embd)
        if script == 'mlp.py':
            fc, bn = model.fc, model.bn
            pre = fc(emb.flatten(1))                                # (N, n_hidden)
        else:
            fc, bn = model.levels[0].fc, model.levels[0].bn
            pre = fc(emb.reshape(len(X), -1, 2 * g['n_embd'])).flatten(0, 1)  # a row per pair
    mean, std = pre.mean(0), pre.std(0)
    off_mean = ((bn.running_mean - mean).abs() / std).mean().item()  # here: about 0.05
    off_var = (bn.running_var / std ** 2).log().abs().mean().item()  # here: about 0.1
    assert off_mean < 0.15 and off_var < 0.3, (off_mean, off_var)


@pytest.mark.parametrize('script', ['mlp.py', 'wavenet.py', 'rnn.py', 'encoder.py'])
def test_the_one_cycle_schedule_spans_exactly_max_iters(script, names_400, monkeypatch):
    # one-cycle over 10 steps: from learning_rate / 25 up to learning_rate at 30% of the steps
    # (the 3rd), annealed to that / 1e4 at the last step, not before it and not after it.
    # Reaches inside: the rate of every step is read as the optimizer takes it
    rates = []
    real_step = torch.optim.AdamW.step

    def watch(self, *args, **kwargs):
        rates.append(self.param_groups[0]['lr'])
        return real_step(self, *args, **kwargs)
    monkeypatch.setattr(torch.optim.AdamW, 'step', watch)
    load(script, *TINY[script], f'--dataset={names_400}', '--max_iters=10', '--eval_interval=10',
         '--learning_rate=0.001', monkeypatch=monkeypatch)
    assert len(rates) == 10 and max(rates) == rates[2] == pytest.approx(0.001)
    assert rates[0] == pytest.approx(0.001 / 25) and rates[-1] == pytest.approx(0.001 / 25 / 1e4)
