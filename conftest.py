"""Stop the test session at once, in one line, when the data files are missing (offline, a fresh
clone): every test reads them, so without them each would fail on its own with a traceback."""
import os

import pytest

ROOT = os.path.dirname(os.path.abspath(__file__))
GITHUB = 'https://raw.githubusercontent.com/karpathy'
DATA = {'names.txt': f'{GITHUB}/makemore/master/names.txt',
        'input.txt': f'{GITHUB}/char-rnn/master/data/tinyshakespeare/input.txt'}


def pytest_configure(config):
    for name, url in DATA.items():
        if not os.path.isfile(os.path.join(ROOT, name)):
            pytest.exit(f'error: {name} is missing: the tests need it; get {url} and put it in '
                        f'{ROOT} (CI copies it from ../shared/data/)', returncode=1)
