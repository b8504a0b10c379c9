"""The tests read names.txt and input.txt from the repository root. On a fresh clone they are
fetched here the way the scripts fetch them (the same URLs, into a file of this process's own that
is renamed into place), so `python -m pytest -q` is the whole set-up; without a network the session
stops at once, in one line, instead of every test failing with a traceback of its own.

SIMULATE_WINDOWS=1 removes the POSIX-only calls (SIGALRM, alarm, SIGPIPE, killpg) before any
test module is imported: the suite must then still pass, the tests that need them skipped with a
reason."""
import os, signal, urllib.request

import pytest

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


def pytest_configure(config):
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
    """A slow test runs only when -m names slow (`python -m pytest -q -m slow`, CI's optional step):
    the README's test command stays within its time."""
    if 'slow' in (config.option.markexpr or ''):
        return
    for item in items:
        if 'slow' in item.keywords:
            item.add_marker(pytest.mark.skip(reason='slow: python -m pytest -q -m slow runs it'))
