"""
Tests of docs/journey.py, the one command that runs every chapter and draws the journey: its
quick mode end to end (every chapter for a few steps, pictures into a temporary folder), the
reading of what the chapters print, and the README's journey table against docs/journey.md.
"""
import hashlib
import importlib.util
import json
import os
import struct
import subprocess
import sys

import pytest

from conftest import needs

ROOT = os.path.dirname(os.path.abspath(__file__))
JOURNEY = os.path.join(ROOT, 'docs', 'journey.py')
PICTURES = ['journey.png', 'bigram_table.png', 'attention.png']


def load_journey():  # docs/journey.py as a module: importing it runs nothing and draws nothing
    spec = importlib.util.spec_from_file_location('journey', JOURNEY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


journey = load_journey()
# drawing needs matplotlib: the tests that draw skip without it, saying so
needs_matplotlib = needs('matplotlib', 'pip install -r docs/requirements.txt')


def run_journey(*flags):
    command = [sys.executable, JOURNEY] + list(flags)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, encoding='utf-8',
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def snapshot():  # what the quick mode must leave alone: README.md and everything in docs/
    state = {}
    for name in sorted(os.listdir(os.path.join(ROOT, 'docs'))):
        path = os.path.join(ROOT, 'docs', name)
        state[name] = os.stat(path).st_mtime_ns
    with open(os.path.join(ROOT, 'README.md'), 'rb') as f:
        state['README.md'] = hashlib.sha256(f.read()).hexdigest()
    return state


def table_lines(markdown):  # every line of the markdown's tables, as written
    return [line.rstrip() for line in markdown.splitlines() if line.startswith('|')]


def table_rows(markdown):  # the rows of the first markdown table, header and rule left out
    rows = []
    for line in markdown.splitlines():
        if line.startswith('|') and not line.startswith('|---'):
            rows.append([cell.strip() for cell in line.strip().strip('|').split('|')])
    return rows[1:]


@pytest.fixture(scope='module')
def quick(tmp_path_factory):  # one quick run for all the tests below: it takes seconds
    out = tmp_path_factory.mktemp('journey')
    before = snapshot()
    printed = run_journey('--quick', f'--out={out}')
    after = snapshot()
    with open(out / 'journey.json', encoding='utf-8') as f:
        record = json.load(f)
    return {'out': out, 'printed': printed, 'json': record, 'before': before, 'after': after}


@needs_matplotlib
def test_quick_mode_leaves_docs_and_readme_alone(quick):
    assert quick['after'] == quick['before']


@needs_matplotlib
def test_quick_mode_prints_a_progress_line_per_chapter(quick):
    for number, chapter in enumerate(journey.CHAPTERS, start=1):
        assert f'[{number}/{len(journey.CHAPTERS)}] {journey.plain_label(chapter)} |' \
            in quick['printed']
    assert 'left |' in quick['printed']


@needs_matplotlib
def test_quick_pictures_are_small_valid_pngs(quick):
    for name in PICTURES:
        path = quick['out'] / name
        data = path.read_bytes()
        assert data[:8] == b'\x89PNG\r\n\x1a\n', f'{name} is not a PNG'
        assert data[12:16] == b'IHDR'
        width, height = struct.unpack('>II', data[16:24])
        assert width >= 400 and height >= 400, f'{name} is {width}x{height}'
        assert len(data) < 1_000_000, f'{name} has {len(data):,} bytes: it must stay under 1 MB'


@needs_matplotlib
def test_quick_records_every_final_and_evaluation_line(quick):
    chapters = quick['json']['chapters']
    assert [c['key'] for c in chapters] == [c['key'] for c in journey.CHAPTERS]
    for chapter in chapters:
        final = chapter['records']['final']
        assert {'train', 'val', 'params', 'time'} <= final.keys(), chapter['key']
        if chapter['key'] == 'bigram_count':  # counting has no training loop to report
            assert chapter['evals'] == []
            continue
        # eval_interval divides max_iters in quick mode: two evaluations, the last one at the end
        evals = chapter['evals']
        assert len(evals) == 2, chapter['key']
        assert evals[0]['t'] <= evals[1]['t'] <= final['t']
        assert evals[-1]['iter'] == evals[-1]['max_iters']
        assert evals[-1]['val'] == final['val'], chapter['key']
    by_key = {c['key']: c['records'] for c in chapters}
    assert 'test' not in by_key['gpt_text']['final']  # running text has no test split
    assert {'val_acc', 'test_acc'} <= by_key['encoder']['final'].keys()
    assert 'val_acc' in by_key['encoder']['baseline']
    assert 'val_acc' in chapters[-1]['evals'][-1]


@needs_matplotlib
def test_quick_table_has_one_row_per_chapter_from_the_final_lines(quick):
    markdown = (quick['out'] / 'journey.md').read_text(encoding='utf-8')
    rows = table_rows(markdown)
    chapters = quick['json']['chapters']
    assert len(rows) == len(journey.CHAPTERS)
    for row, chapter in zip(rows, chapters):
        final = chapter['records']['final']
        label, val, test, params, seconds, command, machine, date = row
        assert label == chapter['label']
        assert params == f"{final['params']:,}"
        assert command == f"`{chapter['command']}`"
        if chapter['key'] == 'encoder':
            assert val == f"acc {final['val_acc']:.4f} (loss {final['val']:.4f})"
        else:
            assert val == f"{final['val']:.4f}"
        assert test == ('' if 'test' not in final else journey.loss_cell(final, 'test'))
        assert seconds.endswith(' s')
        assert machine == quick['json']['machine'] and 'cores' in machine
        assert date == quick['json']['date']
    assert 'Quick mode' in markdown


@needs_matplotlib
def test_quick_pictures_data(quick):
    bigram = quick['json']['bigram']
    size = len(bigram['itos'])
    assert bigram['itos'][0] == '.' and size == 27
    assert len(bigram['counts']) == size and all(len(row) == size for row in bigram['counts'])
    assert bigram['counts'][0][0] == 0  # no empty name: '.' never follows the start '.'
    names = bigram['names']  # names.txt repeats names: the split by line shares some
    assert 0 < names['distinct'] <= names['names']
    assert 0 <= names['val_in_train'] <= names['val']
    assert 0 <= names['test_in_train'] <= names['test']
    attention = quick['json']['attention']
    steps = len(attention['prompt'])
    assert steps == len(journey.PROMPT)
    for head in attention['att']:
        assert len(head) == steps
        for t, row in enumerate(head):
            assert abs(sum(row) - 1) < 1e-3  # each character's attention is a distribution
            assert all(weight == 0 for weight in row[t + 1:])  # and never reaches the future


@needs_matplotlib
def test_the_json_alone_holds_the_table(quick):  # what --redraw draws from
    with open(quick['out'] / 'journey.json', encoding='utf-8') as f:
        reloaded = json.load(f)
    markdown = (quick['out'] / 'journey.md').read_text(encoding='utf-8')
    assert journey.journey_markdown(reloaded) == markdown


@needs_matplotlib
def test_redraw_without_a_run_says_what_to_do(tmp_path):
    result = subprocess.run([sys.executable, JOURNEY, '--redraw', f'--out={tmp_path}'],
                            cwd=ROOT, capture_output=True, text=True, encoding='utf-8', timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"journey: {tmp_path / 'journey.json'} not found: run python docs/journey.py first"]


def test_a_failing_chapter_stops_the_run_with_one_line():
    # a script that is not there: python exits 2 at once, with no torch to import first
    chapter = dict(journey.CHAPTERS[0], script='no_such_chapter.py', label='`no_such_chapter.py`')
    with pytest.raises(SystemExit) as stopped:
        journey.run_chapter(chapter, ['--max_iters=1'])
    message = str(stopped.value)
    assert message.startswith('journey: stopped at no_such_chapter.py: it exited with code 2 (')
    assert 'no_such_chapter.py' in message.partition('(')[2] and '\n' not in message
    assert message.endswith('try it alone: python no_such_chapter.py --max_iters=1')


def test_reading_the_lines_the_chapters_print():
    assert journey.parse_record(
        'final: train=2.0612 val=2.0934 test=2.0950 params=11897 time=42.1s') == (
        'final', {'train': 2.0612, 'val': 2.0934, 'test': 2.095, 'params': 11897, 'time': 42.1})
    name, fields = journey.parse_record('final: train=1.6 val=1.79 params=818241 time=93.4s')
    assert name == 'final' and 'test' not in fields
    name, fields = journey.parse_record(
        'final: train=0.3 val=0.33 test=0.33 train_acc=0.9 val_acc=0.85 test_acc=0.85 '
        'params=117746 time=124.1s')
    assert fields['val_acc'] == 0.85 and fields['params'] == 117746
    name, fields = journey.parse_record(
        'baseline (length and bigram log-likelihood only): val=0.45 test=0.46 val_acc=0.7796')
    assert name == 'baseline' and fields['val_acc'] == 0.7796
    # a key the chapter adds one day is kept, not a reason to fail
    assert journey.parse_record('final: val=2.1 new_key=3 time=1.0s')[1]['new_key'] == 3
    for other in ['input.txt: mode=text (running text), 65 distinct characters', 'emma',
                  'most likely after .: a 0.14', 'p(real) 0.912  real  emma', '']:
        assert journey.parse_record(other) is None, other
    assert journey.parse_eval('iter 2000/6000 | train 2.1234 | val 2.2345') == {
        'iter': 2000, 'max_iters': 6000, 'train': 2.1234, 'val': 2.2345}
    assert journey.parse_eval(
        'iter 1750/3500 | train 0.41 | val 0.42 | val_acc 0.8123')['val_acc'] == 0.8123
    assert journey.parse_eval('iter 200/3000 | loss 2.1 | 3.4 ms/iter | eta 9 s') is None


def test_the_table_goes_between_the_markers_and_nowhere_else(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text(f'# title\n\n{journey.START_MARK}\nold table\n{journey.END_MARK}\n\nrest\n',
                      encoding='utf-8')
    journey.update_readme('| a | b |\n|---|---|\n| 1 | 2 |', path=str(readme))
    assert readme.read_text(encoding='utf-8') == (
        f'# title\n\n{journey.START_MARK}\n| a | b |\n|---|---|\n| 1 | 2 |\n'
        f'{journey.END_MARK}\n\nrest\n')
    readme.write_text('no markers here\n', encoding='utf-8')
    journey.update_readme('| a |', path=str(readme))
    assert readme.read_text(encoding='utf-8') == 'no markers here\n'


def test_readme_journey_table_is_docs_journey_md():
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        readme = f.read()
    start = readme.find(journey.START_MARK)
    end = readme.find(journey.END_MARK)
    assert start >= 0 and end >= 0, (f'README.md has lost its {journey.START_MARK} / '
                                     f'{journey.END_MARK} markers: docs/journey.py cannot put its '
                                     f'table there')
    assert start < end, 'the journey markers are in the wrong order in README.md'
    path = os.path.join(ROOT, 'docs', 'journey.md')
    assert os.path.isfile(path), 'docs/journey.md is missing: run python docs/journey.py'
    with open(path, encoding='utf-8') as f:
        generated = f.read()
    between = readme[start + len(journey.START_MARK):end]
    assert table_lines(between), 'no table between the journey markers in README.md'
    assert table_lines(between) == table_lines(generated), \
        'README.md and docs/journey.md disagree: run python docs/journey.py --redraw'
