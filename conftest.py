"""The tests read names.txt and input.txt from the repository root. On a fresh clone they are
fetched here the way the scripts fetch them (the same URLs, into a file of this process's own that
is renamed into place), so `python -m pytest -q` is the whole set-up; without a network the session
stops at once, in one line, instead of every test failing with a traceback of its own.

SIMULATE_WINDOWS=1 removes the POSIX-only calls (SIGALRM, alarm, SIGPIPE, killpg) before any
test module is imported: the suite must then still pass, the tests that need them skipped with a
reason.

Most tests run a script in this process (runpy): whatever it changes in the interpreter (the
excepthook, signal handlers, matmul precision, stdout's error handling, the random streams) is put
back after every test, by restore_interpreter below, so that no test sees what another one left.

A test that needs a package requirements.txt does not install (matplotlib, IPython) is marked
`optional` and skips, saying which package and how to get it, where it is missing: the README's
two commands pass on a fresh clone, and `python -m pytest -m optional` runs those tests alone."""
import contextlib, importlib.util, os, random, signal, sys, urllib.request

import pytest
import torch

ROOT = os.path.dirname(os.path.abspath(__file__))
GITHUB = 'https://raw.githubusercontent.com/karpathy'
DATA = {'names.txt': f'{GITHUB}/makemore/master/names.txt',
        'input.txt': f'{GITHUB}/char-rnn/master/data/tinyshakespeare/input.txt'}


def fetch(url, path):
    """Download url to path, never leaving a half-written file; an OSError says why it failed."""
    partial = f'{path}.{os.getpid()}.tmp'
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            downloaded = response.read()
        with open(partial, 'wb') as f:
            f.write(downloaded)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def needs(package, install):
    """A test's marks for an optional package: `optional`, and a skip with the reason where the
    package is not installed."""
    def mark(test):
        missing = importlib.util.find_spec(package) is None
        skip = pytest.mark.skipif(missing, reason=f'needs {package}, which requirements.txt does '
                                                  f'not install ({install})')
        return pytest.mark.optional(skip(test))
    return mark


def interpreter_state():
    """What a script run in this process can change in the interpreter, as it stands now."""
    names = [n for n in ('SIGINT', 'SIGPIPE', 'SIGTERM', 'SIGHUP', 'SIGALRM') if hasattr(signal, n)]
    return {'excepthook': sys.excepthook,
            'signals': {name: signal.getsignal(getattr(signal, name)) for name in names},
            'matmul_precision': torch.get_float32_matmul_precision(),
            'stdout': sys.stdout, 'stdout_errors': getattr(sys.stdout, 'errors', None),
            'default_dtype': torch.get_default_dtype(), 'num_threads': torch.get_num_threads(),
            'python_random': random.getstate(), 'torch_random': torch.get_rng_state(),
            'cwd': os.getcwd(), 'argv': list(sys.argv)}


def changed(before, after):
    """The keys of interpreter_state() whose values differ between two snapshots."""
    keys = []
    for key, value in before.items():
        if key == 'torch_random':
            same = torch.equal(value, after[key])
        elif key in ('excepthook', 'stdout'):
            same = value is after[key]
        else:
            same = value == after[key]
        if not same:
            keys.append(key)
    return keys


@contextlib.contextmanager
def put_back():
    """Whatever the block changes in the interpreter (see interpreter_state) is put back."""
    saved = interpreter_state()
    try:
        yield
    finally:
        sys.excepthook = saved['excepthook']
        for name, handler in saved['signals'].items():
            signal.signal(getattr(signal, name), handler)
        torch.set_float32_matmul_precision(saved['matmul_precision'])
        sys.stdout = saved['stdout']
        errors = saved['stdout_errors']
        if hasattr(sys.stdout, 'reconfigure') and sys.stdout.errors != errors:
            sys.stdout.reconfigure(errors=errors)  # the scripts ask for errors='replace'
        torch.set_default_dtype(saved['default_dtype'])
        torch.set_num_threads(saved['num_threads'])
        random.setstate(saved['python_random'])
        torch.set_rng_state(saved['torch_random'])
        os.chdir(saved['cwd'])
        sys.argv = saved['argv']


@pytest.fixture(scope='session', autouse=True)
def processes_start_first(request, tmp_path_factory):
    """test_processes.py's runs, where any of its tests is selected, start as the session starts:
    they are processes of their own, one thread each, while every other test runs here, in one
    thread too (tiny models gain nothing from a second, and two threads waiting on a core the
    runs hold would stall every step). On 2 cores the suite takes about two thirds of the time."""
    module = next((item.module for item in request.session.items
                   if item.path.name == 'test_processes.py'), None)
    if module is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    module.EARLY = module.start_runs(tmp_path_factory.mktemp('processes'))
    yield
    module.EARLY()  # waited for, and the zygote closed, even if no test asked
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def restore_interpreter():
    with put_back():
        yield


def pytest_configure(config):
    config.addinivalue_line('markers', 'optional: needs a package that requirements.txt does not '
                                       'install; skipped, saying which, where it is missing')
    config.addinivalue_line('markers', 'slow: takes a minute or more (torch.compile); skipped unless '
                            'asked for: python -m pytest -q -m slow')
    if os.environ.get('SIMULATE_WINDOWS') == '1':
        for name in ('SIGALRM', 'alarm', 'SIGPIPE', 'setitimer'):
            if hasattr(signal, name):
                delattr(signal, name)
        if hasattr(os, 'killpg'):
            delattr(os, 'killpg')
    for name, url in DATA.items():
        path = os.path.join(ROOT, name)
        if os.path.isfile(path):
            continue
        try:
            fetch(url, path)
        except OSError as e:
            pytest.exit(f'error: {name} is missing and downloading it failed ({e}); get {url} and '
                        f'put it in {ROOT} (CI copies it from ../shared/data/)', returncode=1)


def pytest_collection_modifyitems(config, items):
    """test_processes.py's tests go last: their runs start first (processes_start_first, above)
    and have the whole session to finish. A slow test runs only when -m names slow (`python -m
    pytest -q -m slow`, CI's optional step): the README's test command stays within its time."""
    items.sort(key=lambda item: item.path.name == 'test_processes.py')  # stable: the rest in order
    if 'slow' in (config.option.markexpr or ''):
        return
    for item in items:
        if 'slow' in item.keywords:
            item.add_marker(pytest.mark.skip(reason='slow: python -m pytest -q -m slow runs it'))
