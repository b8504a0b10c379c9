"""Every chapter runs cell by cell (issue 35): its sections are `# %%` cells, which VS Code, Spyder
and PyCharm run one at a time and jupytext turns into a notebook. The tools are simulated here with
the globals and sys.argv each gives a file: VS Code's Interactive Window and Spyder's run-cell set
__file__ and leave the kernel's own arguments in sys.argv (they are not flags: the globals as
written run); Spyder's runfile with arguments puts the file and its flags in sys.argv (they apply).
The cells run in order in one namespace, as a learner runs them, the hyperparameters edited in the
namespace after their cell, as a learner edits that cell."""
import ast, functools, os, re, subprocess, sys, tempfile, types
import pytest

from conftest import needs
from test_scripts import ROOT, SCRIPTS, TINY, after_final, few_names, run  # noqa: F401 (a fixture)

CHAPTERS = SCRIPTS + [s for s in ['attention.py'] if s not in SCRIPTS]
LAUNCHER = '/home/learner/.venv/lib/python3.12/site-packages/ipykernel_launcher.py'
SPYDER = '/home/learner/.venv/lib/python3.12/site-packages/spyder_kernels/console/__main__.py'
KERNEL = '/home/learner/.local/share/jupyter/runtime/kernel-v2-1234.json'
KERNEL_ARGV = {'vscode --f=': [LAUNCHER, f'--f={KERNEL}'],
               'vscode -f': [LAUNCHER, '-f', KERNEL],
               'spyder run-cell': [SPYDER, '-f', KERNEL]}
# the cell-by-cell runs: one names chapter and one text chapter, at these values
TRAINED = {'mlp.py': TINY['mlp.py'],
           'gpt.py': TINY['gpt.py'] + ['--max_iters=6', '--eval_interval=3', '--max_new_tokens=30']}


def cells(script):
    """The chapter's cells: its text cut before every `# %%` line (the first cell: the docstring
    and the imports). Each is padded with blank lines, so that a traceback names the file's line."""
    source = open(os.path.join(ROOT, script), encoding='utf-8').read()
    parts = re.split(r'^(?=# %%)', source, flags=re.M)
    padded, line = [], 0
    for part in parts:
        padded.append('\n' * line + part)
        line += part.count('\n')
    return padded


def title(cell):  # the cell's first comment line, after its `# %%`
    return cell.lstrip('\n').split('\n')[1] if cell.lstrip('\n').startswith('# %%') else ''


def values(flags):
    """--key=value flags as the globals they set: a Python literal, or a bare word as a string."""
    out = {}
    for flag in flags:
        key, _, raw = flag[2:].partition('=')
        try:
            out[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key] = raw
    return out


def hyperparameters(namespace):
    return {k: v for k, v in namespace.items()
            if not k.startswith('_') and type(v) in (int, float, bool, str)}


def in_a_kernel(argv, cwd, monkeypatch):
    """This process made into an IPython kernel's, as far as the chapters can tell: ipykernel and
    IPython imported, the kernel's own sys.argv, the working directory the tool chose."""
    monkeypatch.setitem(sys.modules, 'ipykernel', types.ModuleType('ipykernel'))
    monkeypatch.setitem(sys.modules, 'IPython',
                        sys.modules.get('IPython', types.ModuleType('IPython')))
    monkeypatch.setattr(sys, 'argv', argv)
    monkeypatch.chdir(cwd)


def run_cells(script, namespace, edits, upto, capsys):
    """Run the chapter's cells in order in `namespace`, up to (not including) cell `upto`, setting
    `edits` right after the hyperparameters cell. A cell that exits fails the test, with its
    line."""
    path = os.path.join(ROOT, script)
    for cell in cells(script)[:upto]:
        try:
            exec(compile(cell, path, 'exec'), namespace)
        except SystemExit as e:
            pytest.fail(f'{script}: the cell {title(cell)!r} exits {e.code}: '
                        f'{capsys.readouterr().err.strip()}')
        if title(cell).startswith('# hyperparameters'):
            namespace.update(edits)
    return namespace


def masked(stdout):
    """The final line, its time masked, and every line after it (the samples)."""
    line = next(line for line in stdout.splitlines() if line.startswith('final: '))
    return re.sub(r'time=\S+', 'time=', line), after_final(stdout)


@functools.lru_cache
def from_the_command_line(script, flags):
    """`python script --device=cpu flags...`, run by the suite's helper in a directory of its own
    (gpt.py writes its checkpoint there): its final line (time masked) and its samples."""
    with tempfile.TemporaryDirectory() as cwd:
        rc, out, err = run(script, *flags, cwd=cwd)
    assert rc == 0, err
    return masked(out)


@pytest.fixture
def dataset(few_names):  # the chapter's flag for a small data file: 2,000 names, or Shakespeare
    return {'mlp.py': few_names, 'gpt.py': f"--dataset={os.path.join(ROOT, 'input.txt')}"}


# ---------------------------------------------------------------- the cells

@pytest.mark.parametrize('script', CHAPTERS)
def test_every_section_is_a_cell_that_starts_with_its_title(script):
    # a `# %%` line alone, then the section's title comment: jupytext would move a title written
    # on the `# %%` line into the cell's metadata, where a notebook does not show it
    chapter = cells(script)
    titles = [title(cell) for cell in chapter[1:]]
    assert all(cell.lstrip('\n').startswith('# %%\n# ') for cell in chapter[1:]), titles
    assert '# -----------' not in ''.join(chapter), f'{script}: a section without its # %%'
    assert titles[0].startswith('# hyperparameters'), titles
    machinery = next(i for i, c in enumerate(chapter) if '# the shared machinery:' in c)
    assert title(chapter[machinery]).startswith('# ====')
    last = chapter[machinery].rstrip().splitlines()[-1]
    assert last.startswith('# end of the shared machinery'), 'the machinery is one cell'
    assert title(chapter[machinery + 1]).startswith('# range checks'), titles
    # the data soon after the banner: the range checks, then the data; gpt.py reads the checkpoint
    # it goes on from in between (the dataset and the mode are the checkpoint's)
    data = next(i for i, cell in enumerate(chapter) if title(cell).startswith('# data'))
    assert data - machinery == (3 if script == 'gpt.py' else 2), titles
    between = ''.join(cell.lstrip('\n') for cell in chapter[machinery + 1:data])  # unpadded
    assert between.count('\n') <= 70, script
    for section in ('# data', '# evaluation'):
        assert any(t.startswith(section) for t in titles), (script, section)
    final = 'attention view' if script == 'encoder.py' else 'sample'
    assert titles[-1].startswith(f'# {final}'), titles


# ---------------------------------------------------------------- a kernel: the globals as written

@pytest.mark.parametrize('argv', KERNEL_ARGV, ids=list(KERNEL_ARGV))
@pytest.mark.parametrize('script', CHAPTERS)
def test_a_kernel_runs_the_cells_with_the_globals_as_written(script, argv, monkeypatch, capsys):
    # VS Code's Interactive Window (a cell, or Run Current File) and Spyder's run-cell: __file__ is
    # the chapter, sys.argv the kernel's. The cells through the range checks, each as written
    path = os.path.join(ROOT, script)
    in_a_kernel(KERNEL_ARGV[argv], ROOT, monkeypatch)
    namespace = {'__name__': '__main__', '__file__': path}
    chapter = cells(script)
    machinery = next(i for i, c in enumerate(chapter) if '# the shared machinery:' in c)
    run_cells(script, namespace, {'device': 'cpu'}, machinery, capsys)
    written = hyperparameters(namespace)
    run_cells(script, namespace, {}, machinery + 2, capsys)  # the machinery, the range checks
    assert namespace['flags'] == [] and not namespace['run_as_file']
    assert {k: namespace[k] for k in written} == written
    assert capsys.readouterr().err == ''


@pytest.mark.parametrize('script', TRAINED)
def test_cells_run_in_order_give_what_python_gives_and_sampling_again_does_not_retrain(
        script, dataset, tmp_path, monkeypatch, capsys):
    # VS Code's Interactive Window, every cell in order, the hyperparameters edited after their
    # cell: the final line and samples of `python script` with those values as flags. Then the
    # samples cell alone, again: samples from the trained model (no training line), the same ones,
    # since the cell seeds its generator
    flags = TRAINED[script] + [dataset[script]]
    in_a_kernel(KERNEL_ARGV['vscode --f='], tmp_path, monkeypatch)
    path = os.path.join(ROOT, script)
    namespace = {'__name__': '__main__', '__file__': path}
    run_cells(script, namespace, values(flags + ['--device=cpu']), None, capsys)
    out = capsys.readouterr().out
    assert masked(out) == from_the_command_line(script, tuple(flags))
    samples = cells(script)[-1]
    assert title(samples).startswith('# sample')
    exec(compile(samples, path, 'exec'), namespace)
    again = capsys.readouterr().out
    assert 'iter ' not in again and again.splitlines() == after_final(out)


def test_spyder_runfile_with_arguments_applies_them(dataset, monkeypatch, capsys):
    # Spyder's runfile(path, args='--max_iters=30 ...'): sys.argv = [path, *args], __file__ = path,
    # in its IPython kernel; the flags apply, as in `python mlp.py --max_iters=30 ...`
    script = 'mlp.py'
    flags = TRAINED[script] + [dataset[script]]
    path = os.path.join(ROOT, script)
    in_a_kernel([path, '--device=cpu', *flags], ROOT, monkeypatch)
    namespace = {'__name__': '__main__', '__file__': path}
    try:
        exec(compile(open(path, encoding='utf-8').read(), path, 'exec'), namespace)
    except SystemExit as e:
        pytest.fail(f'runfile exits {e.code}: {capsys.readouterr().err.strip()}')
    assert namespace['max_iters'] == values(flags)['max_iters']
    assert masked(capsys.readouterr().out) == from_the_command_line(script, tuple(flags))


# ---------------------------------------------------------------- a notebook made by jupytext

@needs('jupytext', 'pip install jupytext')
@pytest.mark.parametrize('script', CHAPTERS)
def test_jupytext_makes_a_notebook_of_the_cells_each_starting_with_its_title(script):
    import jupytext
    notebook = jupytext.read(os.path.join(ROOT, script))
    code = [cell.source for cell in notebook.cells if cell.cell_type == 'code']
    chapter = cells(script)
    assert len(code) == len(chapter) == len(notebook.cells)
    for cell, source in zip(chapter[1:], code[1:]):
        assert source.startswith(title(cell)), (script, title(cell), source[:80])


NOTEBOOK = """import sys, jupytext, nbclient
script, cwd, edits = sys.argv[1:]
notebook = jupytext.read(script)
hyper = next(c for c in notebook.cells if c.source.startswith('# hyperparameters'))
hyper.source += edits
nbclient.NotebookClient(notebook, timeout=120, kernel_name='python3',
                        resources={'metadata': {'path': cwd}}).execute()
for cell in notebook.cells:
    for output in cell.get('outputs', []):
        print(output.get('text', ''), end='')
"""


@needs('nbclient', 'pip install nbclient ipykernel')
@needs('jupytext', 'pip install jupytext')
def test_the_notebook_runs_in_a_kernel_and_gives_what_python_gives(dataset, tmp_path):
    # `jupytext --to notebook mlp.py`, the hyperparameters cell edited, run in a Jupyter kernel.
    # nbclient imports IPython and ipykernel: done in a python of its own, so that no chapter run
    # by a later test in this process takes itself to be in a notebook
    script = 'mlp.py'
    flags = TRAINED[script] + [dataset[script]]
    edits = ''.join(f'\n{k} = {v!r}' for k, v in values(flags + ['--device=cpu']).items())
    p = subprocess.run([sys.executable, '-c', NOTEBOOK, os.path.join(ROOT, script), str(tmp_path),
                        edits], capture_output=True, text=True, encoding='utf-8', timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    assert masked(p.stdout) == from_the_command_line(script, tuple(flags))
