"""Issue 33: every bad data file is one error line, exit code 1, in every chapter: an empty file,
one of blank lines only, one character, and a single line shorter than any block; gpt.py in each
of its modes. These stop before any training, so each run is quick (in this process)."""
import contextlib, io, os, runpy, signal, sys
import pytest

ROOT = os.path.dirname(os.path.abspath(__file__))
CHAPTERS = ['bigram_count.py', 'bigram_nn.py', 'mlp.py', 'wavenet.py', 'rnn.py', 'attention.py',
            'gpt.py', 'encoder.py']
BAD_FILES = {'empty': '', 'blank_lines': '\n\n  \n\t\n', 'one_character': 'a',
             'one_short_line': 'abc\n'}
CASES = [(script, [], name) for script in CHAPTERS for name in BAD_FILES]
CASES += [('gpt.py', [f'--mode={mode}'], name) for mode in ('text', 'names') for name in BAD_FILES]


def run_in_process(script, *args):
    """Run a script as `python script --device=cpu args` would; return (exit code, stdout, stderr).
    Its Ctrl-C and closed-pipe handlers are put back afterwards."""
    kinds = [getattr(signal, name) for name in ('SIGINT', 'SIGPIPE', 'SIGTERM')
             if hasattr(signal, name)]
    saved = {kind: signal.getsignal(kind) for kind in kinds}
    hook = sys.excepthook
    old_argv = sys.argv
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = [script, '--device=cpu', *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(os.path.join(ROOT, script), run_name='__main__')
    except SystemExit as e:
        code = e.code
    finally:
        sys.argv = old_argv
        sys.excepthook = hook
        for kind, handler in saved.items():
            signal.signal(kind, handler)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize('script,mode,name', CASES)
def test_a_bad_data_file_is_one_error_line(script, mode, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing is read or written beside the repository's files
    (tmp_path / 'bad.txt').write_text(BAD_FILES[name], encoding='utf-8')
    code, out, err = run_in_process(script, '--dataset=bad.txt', *mode)
    assert code == 1, (code, out, err)
    assert 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith('error: bad.txt '), err      # it names the file
    assert 'final:' not in out and 'iter ' not in out   # nothing was trained
