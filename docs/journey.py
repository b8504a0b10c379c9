"""
The journey in one command: run every chapter with its defaults, one after the other, as a
user would, record what each one prints, and draw it.

  python docs/journey.py                  # the full run: about 20 minutes on 2 CPU cores
  python docs/journey.py --redraw         # table and pictures again, from docs/journey.json
  python docs/journey.py --quick --out=/tmp/journey   # every chapter for a few steps, two at
                                                      # a time: about 20 s (the tests use it)

It writes, into docs/ (or --out): journey.json (every `final:` line and evaluation line, with
the second it appeared), journey.md (the journey table), journey.png (val loss per chapter
beside the blog's and the lectures' figures; val loss against training seconds),
bigram_table.png (chapter 1's count table) and attention.png (gpt.py's last block on a
Shakespeare prompt). The full run also copies the table into README.md, between the lines
<!-- journey:start --> and <!-- journey:end -->.
Drawing needs matplotlib (pip install -r docs/requirements.txt); the chapters need only torch.
"""
import argparse
import concurrent.futures
import contextlib
import datetime
import importlib.util
import io
import json
import math
import os
import re
import runpy
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, 'docs')
README = os.path.join(ROOT, 'README.md')
START_MARK = '<!-- journey:start -->'
END_MARK = '<!-- journey:end -->'
PROMPT = 'ROMEO:\nBut soft! what light'  # attention.png reads this prompt (a newline included)

# the chapters, in reading order: the README's commands. `seconds` is a full run's typical wall
# time on 2 CPU cores, `quick_seconds` the same for --quick: the progress line's estimate.
# `quick` holds the flags that make a run take seconds: few steps, frequent evaluations.
GPT_NAMES_RECIPE = ['--dataset=names.txt', '--n_layer=4', '--batch_size=128', '--block_size=16',
                    '--n_embd=96', '--max_iters=6000', '--eval_interval=1500',
                    '--warmup_iters=1550', '--lr_decay=0.0', '--dropout=0.1']
ATTENTION_QUICK = ['--max_iters=20', '--eval_interval=10', '--eval_iters=2', '--max_new_tokens=20']
CHAPTERS = [
    {'key': 'bigram_count', 'label': '`bigram_count.py`', 'script': 'bigram_count.py',
     'args': [], 'quick': ['--num_samples=2'],
     'seconds': 3, 'quick_seconds': 2},
    {'key': 'bigram_nn', 'label': '`bigram_nn.py`', 'script': 'bigram_nn.py',
     'args': [], 'quick': ['--max_iters=20', '--eval_interval=10', '--num_samples=2'],
     'seconds': 14, 'quick_seconds': 2},
    {'key': 'mlp', 'label': '`mlp.py`', 'script': 'mlp.py',
     'args': [], 'quick': ['--max_iters=40', '--eval_interval=20', '--num_samples=2'],
     'seconds': 58, 'quick_seconds': 3},
    {'key': 'wavenet', 'label': '`wavenet.py`', 'script': 'wavenet.py',
     'args': [], 'quick': ['--max_iters=40', '--eval_interval=20', '--num_samples=2'],
     'seconds': 138, 'quick_seconds': 4},
    {'key': 'rnn', 'label': '`rnn.py` (tanh cell)', 'script': 'rnn.py',
     'args': [], 'quick': ['--max_iters=20', '--eval_interval=10', '--num_samples=2'],
     'seconds': 58, 'quick_seconds': 4},
    {'key': 'gru', 'label': '`rnn.py` (GRU cell)', 'script': 'rnn.py',
     'args': ['--cell=gru'], 'quick': ['--max_iters=20', '--eval_interval=10', '--num_samples=2'],
     'seconds': 123, 'quick_seconds': 5},
    {'key': 'rung_bigram', 'label': '`attention.py --rung=bigram`', 'script': 'attention.py',
     'args': ['--rung=bigram'], 'quick': ATTENTION_QUICK,
     'seconds': 5, 'quick_seconds': 2},
    {'key': 'rung_average', 'label': '`attention.py --rung=average`', 'script': 'attention.py',
     'args': ['--rung=average'], 'quick': ATTENTION_QUICK,
     'seconds': 12, 'quick_seconds': 2},
    {'key': 'rung_head', 'label': '`attention.py --rung=head`', 'script': 'attention.py',
     'args': ['--rung=head'], 'quick': ATTENTION_QUICK,
     'seconds': 15, 'quick_seconds': 2},
    {'key': 'rung_heads', 'label': '`attention.py --rung=heads`', 'script': 'attention.py',
     'args': ['--rung=heads'], 'quick': ATTENTION_QUICK,
     'seconds': 30, 'quick_seconds': 2},
    {'key': 'rung_ffwd', 'label': '`attention.py --rung=ffwd`', 'script': 'attention.py',
     'args': ['--rung=ffwd'], 'quick': ATTENTION_QUICK,
     'seconds': 33, 'quick_seconds': 2},
    {'key': 'rung_blocks', 'label': '`attention.py --rung=blocks`', 'script': 'attention.py',
     'args': ['--rung=blocks'], 'quick': ATTENTION_QUICK,
     'seconds': 58, 'quick_seconds': 2},
    {'key': 'rung_residual', 'label': '`attention.py --rung=residual`', 'script': 'attention.py',
     'args': ['--rung=residual'], 'quick': ATTENTION_QUICK,
     'seconds': 58, 'quick_seconds': 2},
    {'key': 'rung_layernorm', 'label': '`attention.py --rung=layernorm`', 'script': 'attention.py',
     'args': ['--rung=layernorm'], 'quick': ATTENTION_QUICK,
     'seconds': 60, 'quick_seconds': 2},
    {'key': 'gpt_names', 'label': '`gpt.py` on names', 'script': 'gpt.py',
     'args': GPT_NAMES_RECIPE, 'ckpt': 'journey_gpt_names.pt',
     'quick': ['--max_iters=20', '--eval_interval=10', '--warmup_iters=5', '--n_layer=2',
               '--n_embd=32', '--n_head=2', '--num_samples=2'],
     'seconds': 575, 'quick_seconds': 3.5},
    {'key': 'gpt_text', 'label': '`gpt.py` on Shakespeare', 'script': 'gpt.py',
     'args': [], 'ckpt': 'journey_gpt.pt',
     'quick': ['--max_iters=20', '--eval_interval=10', '--eval_iters=2', '--n_layer=2',
               '--n_embd=32', '--n_head=2', '--block_size=32', '--max_new_tokens=20'],
     'seconds': 100, 'quick_seconds': 3},
    {'key': 'encoder', 'label': '`encoder.py`', 'script': 'encoder.py',
     'args': [], 'quick': ['--max_iters=20', '--eval_interval=10', '--num_show=1'],
     'seconds': 190, 'quick_seconds': 6},
]
NAMES_CHAPTERS = ['bigram_count', 'bigram_nn', 'mlp', 'wavenet', 'rnn', 'gru', 'gpt_names']

# what learners compare against. The blog ("From Bigrams to Transformers: A Complete Journey
# Through Language Modeling Evolution") claims these (val loss, params); it gives the RNN's size
# both as 2,923 and as 200K, and its CNN and RNN scores come from 2,000 sampled val rows.
BLOG = {'bigram_count': (2.46, 729), 'bigram_nn': (2.47, 729), 'mlp': (2.11, 11897),
        'wavenet': (1.87, 76579), 'rnn': (1.6, 200_000), 'gpt_names': (1.5, 1_200_000)}
# Karpathy's figures: the makemore lectures on the same names.txt (the two bigrams are the mean
# NLL over all names, not a val split), makemore's default transformer (test, not val) and
# nanoGPT's shakespeare_char config (val, on an A100)
KARPATHY = {'bigram_count': [(2.4765, 'all names')], 'bigram_nn': [(2.4818, 'all names')],
            'mlp': [(2.1701, 'part 2'), (2.1048, 'part 3, BatchNorm')],
            'wavenet': [(1.993, 'part 5')], 'gpt_names': [(1.92, 'makemore, test')],
            'gpt_text': [(1.4697, 'nanoGPT, A100')]}
# the lecture "Let's build GPT" on tiny Shakespeare, val at each step as reported from the video
# (its sizes: 8 characters of context, 32 channels, 5,000 steps); it trained no plain average
# and gave no figure for the deep stack without residuals
LECTURE = {'rung_bigram': 2.49, 'rung_head': 2.4, 'rung_heads': 2.28, 'rung_ffwd': 2.27,
           'rung_residual': 2.09, 'rung_layernorm': 2.076}
RUNGS = ['bigram', 'average', 'head', 'heads', 'ffwd', 'blocks', 'residual', 'layernorm']
SHORT_NAMES = {'bigram_count': 'count\nbigram', 'bigram_nn': 'neural\nbigram', 'mlp': 'MLP',
               'wavenet': 'WaveNet', 'rnn': 'RNN\n(tanh)', 'gru': 'RNN\n(GRU)',
               'gpt_names': 'GPT\nnames', 'gpt_text': 'GPT\nShakespeare'}


# -----------------------------------------------------------------------------
# reading what a chapter prints
def parse_value(raw):  # '2.0612' -> 2.0612, '11897' -> 11897, '42.1s' -> 42.1; else the text
    number = re.fullmatch(r'([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)([a-z%]*)', raw)
    if number is None:
        return raw
    text = number.group(1)
    if re.fullmatch(r'[-+]?[0-9]+', text):
        return int(text)
    return float(text)


def parse_record(line):
    """'final: train=2.06 val=2.09 params=11897 time=42.1s' -> ('final', {...}).
    Any line whose part after the first ': ' is nothing but key=value pairs counts, so a new key
    or a reordering in a chapter's output changes nothing here. None for any other line."""
    head, sep, rest = line.strip().partition(': ')
    tokens = rest.split()
    if not sep or not head or not tokens:
        return None
    fields = {}
    for token in tokens:
        key, eq, raw = token.partition('=')
        if not eq or not key:
            return None
        fields[key] = parse_value(raw)
    name = head.split()[0]  # 'baseline (length and ...)' -> 'baseline'
    return name, fields


def parse_eval(line):
    """'iter 2000/6000 | train 2.1 | val 2.2 | val_acc 0.8' -> {'iter': 2000, 'max_iters': 6000,
    'train': 2.1, ...}; None for a progress line (no val) or any other line."""
    parts = [part.strip() for part in line.strip().split(' | ')]
    step = re.fullmatch(r'iter (\d+)/(\d+)', parts[0])
    if step is None:
        return None
    fields = {'iter': int(step.group(1)), 'max_iters': int(step.group(2))}
    for part in parts[1:]:
        key, _, raw = part.partition(' ')
        fields[key] = parse_value(raw.strip())
    if not isinstance(fields.get('val'), (int, float)):
        return None
    return fields


# -----------------------------------------------------------------------------
# running the chapters
def machine_name():  # 'AMD EPYC, 2 cores, no GPU': the CPU from /proc/cpuinfo, where there is one
    cpu = 'unknown CPU'
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu = line.partition(':')[2].strip()
                    break
    except OSError:
        pass
    for noise in ('(R)', '(TM)', ' CPU'):
        cpu = cpu.replace(noise, '')
    cpu = ' '.join(cpu.split())
    gpu = 'no GPU'
    try:
        import torch
        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f'{cpu}, {os.cpu_count()} cores, {gpu}'


def clock(seconds):  # 1234.5 -> '20 min 35 s'
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes == 0:
        return f'{secs} s'
    return f'{minutes} min {secs:02d} s'


def quick_names(out):
    """Every 10th line of names.txt, for --quick: evaluating on whole splits of 32,000 names
    takes seconds per chapter, on 3,200 a tenth of that, and the pipeline is the same."""
    path = os.path.join(out, 'quick_names.txt')
    source = os.path.join(ROOT, 'names.txt')
    if not os.path.isfile(source):  # the full run downloads it; the quick one is for tests
        sys.exit(f'journey: --quick reads {source}: run python bigram_count.py once to fetch it')
    with open(source, encoding='utf-8') as f:
        names = f.read().splitlines()
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(names[::10]) + '\n')
    return path


def from_root(path):  # docs/journey_gpt.pt, not /home/you/...: journey.json is committed
    relative = os.path.relpath(path, ROOT)
    if relative.startswith(os.pardir):
        return path
    return relative


def chapter_flags(chapter, quick, out):
    flags = list(chapter['args'])
    if quick:
        flags += chapter['quick'] + ['--device=cpu']
        if chapter['key'] != 'gpt_text' and chapter['script'] != 'attention.py':  # on names
            flags.append('--dataset=' + from_root(os.path.join(out, 'quick_names.txt')))
    if 'ckpt' in chapter:  # gpt.py saves checkpoints: keep them away from the user's own gpt.pt
        flags.append('--ckpt_path=' + from_root(os.path.join(out, chapter['ckpt'])))
    return flags


def plain_label(chapter):  # '`rnn.py` (GRU cell)' -> 'rnn.py (GRU cell)', for the terminal
    return chapter['label'].replace('`', '')


def shown_command(chapter):  # the command a reader types: the defaults, no checkpoint path
    return ' '.join(['python', chapter['script']] + chapter['args'])


def run_chapter(chapter, flags, terminal=None):
    """Run one chapter as a subprocess from the repository root and read its output line by line
    as it comes (python -u: no buffering), so every evaluation line gets the second it appeared.
    Its evaluation and final lines are echoed to terminal (default: sys.stdout)."""
    terminal = terminal or sys.stdout
    command = [sys.executable, '-u', chapter['script']] + flags
    env = dict(os.environ, PYTHONIOENCODING='utf-8')  # the chapters print shading like '█'
    started = time.time()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, encoding='utf-8',
                            errors='replace')
    record = {'key': chapter['key'], 'label': chapter['label'], 'command': shown_command(chapter),
              'flags': flags, 'evals': [], 'records': {}}
    last_line = ''
    for line in proc.stdout:
        seconds = round(time.time() - started, 2)
        if line.strip():
            last_line = line.strip()
        evaluation = parse_eval(line)
        if evaluation is not None:
            evaluation['t'] = seconds
            record['evals'].append(evaluation)
            print(f'      {seconds:7.1f} s  {line.strip()}', file=terminal, flush=True)
            continue
        parsed = parse_record(line)
        if parsed is not None:
            name, fields = parsed
            record['records'][name] = dict(fields, t=seconds)
            if name == 'final':
                print(f'      {seconds:7.1f} s  {line.strip()}', file=terminal, flush=True)
    code = proc.wait()
    record['wall_s'] = round(time.time() - started, 2)
    if code != 0:
        sys.exit(f"journey: stopped at {plain_label(chapter)}: it exited with code {code} "
                 f"({last_line}); try it alone: python {' '.join([chapter['script']] + flags)}")
    if 'final' not in record['records']:
        sys.exit(f"journey: stopped at {plain_label(chapter)}: it printed no 'final:' line; "
                 f"its last line was: {last_line}")
    return record


def run_in_process(script, argv):
    """Run a chapter inside this process, as `python script argv...` would, and return its
    globals: that is how the pictures get chapter 1's counts and gpt.py's attention weights."""
    saved_argv = sys.argv
    saved_cwd = os.getcwd()
    sys.argv = [script] + argv
    os.chdir(ROOT)  # the chapters read their data from the working directory
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return runpy.run_path(os.path.join(ROOT, script), run_name='__main__')
    except SystemExit as e:  # a chapter refuses bad input with one line on stderr and exit(code)
        sys.exit(f'journey: {script} {" ".join(argv)} stopped with exit code {e.code}')
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)


def bigram_counts():
    """Chapter 1's table: counts (V, V) of the train split, itos with '.' at index 0; and, from
    the same run's split, how many val and test names also occur in train: names.txt repeats
    some names, so a split by line shares them, in every chapter, as in the lectures."""
    found = run_in_process('bigram_count.py', ['--num_samples=0'])
    bigram = {'itos': list(found['itos']), 'counts': found['counts'].tolist()}
    splits = found.get('splits')
    if isinstance(splits, dict) and {'train', 'val', 'test'} <= splits.keys():
        train = set(splits['train'])
        everything = splits['train'] + splits['val'] + splits['test']
        bigram['names'] = {'names': len(everything), 'distinct': len(set(everything))}
        for split in ('val', 'test'):
            bigram['names'][split] = len(splits[split])
            bigram['names'][f'{split}_in_train'] = sum(name in train for name in splits[split])
    return bigram


def attention_weights(ckpt_path):  # every head of gpt.py's last block, reading PROMPT
    found = run_in_process('gpt.py', ['--sample_only=True', '--show_attention=True',
                                      '--prompt=' + PROMPT, '--max_new_tokens=1',
                                      '--ckpt_path=' + ckpt_path, '--device=cpu'])
    att = found['att'].float().cpu()  # (n_head, T, T)
    chars = found['prompt'][-att.size(-1):]  # gpt.py reads at most block_size characters
    rounded = [[[round(w, 5) for w in row] for row in head] for head in att.tolist()]
    return {'prompt': chars, 'n_layer': found.get('n_layer'), 'att': rounded}


def ladder_weights(quick):
    """The attention chapter's weights on PROMPT's last block_size characters: the average
    rung's (fixed: 1/(t+1) over the past) beside the head rung's, trained as the ladder trains
    it (a few steps in --quick)."""
    argv = ['--rung=head', '--max_new_tokens=0', '--device=cpu']
    if quick:
        argv += ATTENTION_QUICK[:3]
    found = run_in_process('attention.py', argv)
    import torch
    model = found['model']
    chars = PROMPT[-found['block_size']:]
    idx = torch.tensor([found['encode'](chars)])  # (1, T)
    with torch.no_grad():
        x = model.tok_emb(idx) + model.pos_emb(torch.arange(idx.shape[1]))  # (1, T, C)
        head = model.mix.weights(x)[0]               # (T, T), learned
        average = found['Average']().weights(x)      # (T, T), fixed
    rounded = []
    for weights in (average, head):
        rounded.append([[round(w, 5) for w in row] for row in weights.tolist()])
    return {'prompt': chars, 'average': rounded[0], 'head': rounded[1]}


def run_journey(quick, out, only=None):
    budget = 'quick_seconds' if quick else 'seconds'
    total_typical = sum(chapter[budget] for chapter in CHAPTERS)
    # the real run goes one chapter at a time, so that no chapter's time is shared with another;
    # the quick runs measure nothing, and two at a time (one per core) halve the wait
    workers = 2 if quick else 1
    if quick:
        quick_names(out)
    began = time.time()
    done = []  # the typical seconds of every chapter finished so far
    # the pictures' data is read in this process, with the chapters' own output silenced: the
    # chapters running beside it print to the terminal as it was
    terminal = sys.stdout

    failed = threading.Event()  # set by the first chapter that fails: none starts after it

    def run_one(number, chapter):
        if failed.is_set():
            return None
        elapsed = time.time() - began
        done_typical = sum(done)
        # the typical times, scaled by how this machine has done so far
        pace = elapsed * workers / done_typical if done_typical > 0 else 1.0
        left = pace * (total_typical - done_typical) / workers
        print(f"[{number}/{len(CHAPTERS)}] {plain_label(chapter)} | elapsed "
              f"{clock(elapsed)} | about {clock(left)} left | {shown_command(chapter)}",
              file=terminal, flush=True)
        try:
            record = run_chapter(chapter, chapter_flags(chapter, quick, out), terminal)
        except BaseException:  # its one-line message reaches the user through .result() below
            failed.set()
            raise
        done.append(chapter[budget])
        return record

    numbered = list(enumerate(CHAPTERS, start=1))
    if quick:  # the longest first, so the two workers finish together
        numbered.sort(key=lambda pair: -pair[1][budget])
    gpt_text = next(number for number, c in numbered if c['key'] == 'gpt_text')
    ckpt_path = from_root(os.path.join(out, CHAPTERS[gpt_text - 1]['ckpt']))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {number: pool.submit(run_one, number, chapter) for number, chapter in numbered}
        if quick:  # nothing is timed: read the pictures' data while the chapters run
            bigram = bigram_counts()
            ladder = ladder_weights(quick)
            if futures[gpt_text].result() is not None:  # its checkpoint is written
                attention = attention_weights(ckpt_path)
        records = [futures[number].result() for number in sorted(futures)]  # reading order
    total = time.time() - began
    print(f'all {len(CHAPTERS)} chapters done in {clock(total)}', flush=True)
    if not quick:  # after the chapters: nothing may share the CPU with a timed run
        bigram = bigram_counts()
        attention = attention_weights(ckpt_path)
        ladder = ladder_weights(quick)
    return {'quick': quick, 'machine': machine_name(), 'date': datetime.date.today().isoformat(),
            'total_s': round(total, 1), 'chapters': records, 'bigram': bigram,
            'attention': attention, 'ladder': ladder}


def run_ladder_only(journey):
    """--only=attention: the attention chapter's rungs alone, one after the other, each record
    saying its own machine and date; every other chapter's record is kept as it was."""
    began = time.time()
    rungs = [chapter for chapter in CHAPTERS if chapter['script'] == 'attention.py']
    fresh = {}
    for number, chapter in enumerate(rungs, start=1):
        print(f"[{number}/{len(rungs)}] {plain_label(chapter)} | elapsed "
              f"{clock(time.time() - began)} | {shown_command(chapter)}", flush=True)
        record = run_chapter(chapter, chapter_flags(chapter, False, DOCS))
        record['machine'] = machine_name()
        record['date'] = datetime.date.today().isoformat()
        fresh[chapter['key']] = record
    kept = {record['key']: record for record in journey['chapters']}
    kept.update(fresh)
    for record in kept.values():  # a record from the earlier run keeps that run's machine
        record.setdefault('machine', journey['machine'])
        record.setdefault('date', journey['date'])
    journey['chapters'] = [kept[c['key']] for c in CHAPTERS if c['key'] in kept]
    journey['total_s'] = round(sum(record['wall_s'] for record in journey['chapters']), 1)
    journey['ladder'] = ladder_weights(False)
    return journey


# -----------------------------------------------------------------------------
# the journey table
def loss_cell(final, split):
    if split not in final:
        return ''
    if f'{split}_acc' in final:  # the encoder classifies: accuracy first, its loss in brackets
        return f"acc {final[f'{split}_acc']:.4f} (loss {final[split]:.4f})"
    return f'{final[split]:.4f}'


def time_cell(seconds):
    if seconds < 0.05:
        return '< 0.1 s'
    return f'{seconds:.1f} s'


def journey_table(journey):
    lines = ['| script | val | test | params | time | command | machine | date |',
             '|---|---|---|---|---|---|---|---|']
    for record in journey['chapters']:
        final = record['records']['final']
        cells = [record['label'], loss_cell(final, 'val'), loss_cell(final, 'test'),
                 f"{final['params']:,}", time_cell(final['time']), f"`{record['command']}`",
                 record.get('machine', journey['machine']), record.get('date', journey['date'])]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def journey_markdown(journey):
    if journey['quick']:
        how = ('**Quick mode** (`python docs/journey.py --quick`): every chapter ran for a few '
               'steps on every 10th name, two at a time, to test the pipeline; these numbers '
               'measure nothing. The flags each run got are in journey.json.')
    else:
        how = ('Every chapter run once with its defaults, one after the other, by '
               '`python docs/journey.py`.')
    notes = [f"- Machine: {journey['machine']}; date: {journey['date']}; all chapters together: "
             f"{clock(journey['total_s'])}.",
             '- `val`, `test`, `params` and `time` (training wall time, evaluations included) '
             'come from the `final:` line each script prints. Names losses are the mean '
             'negative log likelihood per character over the whole split.']
    for record in journey['chapters']:
        baseline = record['records'].get('baseline')
        if baseline and 'val_acc' in baseline:
            notes.append(f"- {record['label']}: accuracy on the whole balanced val and test "
                         f"splits (real names against bigram fakes, chance 0.5), its "
                         f"cross-entropy in brackets. Its baseline, a logistic regression "
                         f"that sees only the name's length and its pairs of characters: "
                         f"val_acc {baseline['val_acc']:.4f}, test_acc "
                         f"{baseline.get('test_acc', float('nan')):.4f}.")
    names = journey['bigram'].get('names')
    if names:
        notes.append(f"- names.txt: {names['names']:,} names, {names['distinct']:,} distinct; "
                     f"{names['val_in_train']:,} of the {names['val']:,} val names and "
                     f"{names['test_in_train']:,} of the {names['test']:,} test names also "
                     f"occur in train (the chapters' split, by line).")
    notes.append('- `journey.py` adds `--ckpt_path` (a file beside journey.json) to the two '
                 '`gpt.py` runs, so that they leave your own `gpt.pt` alone; it changes no number.')
    # markdown paragraphs wrapped like the README's; a table row cannot be
    how = textwrap.fill(how, width=95)
    notes = [textwrap.fill(note, width=95, subsequent_indent='  ') for note in notes]
    return f"""<!-- written by docs/journey.py from journey.json: run it again, do not edit -->
# The journey in numbers

{how}

{journey_table(journey)}

{chr(10).join(notes)}

![val loss per chapter, and against training seconds](journey.png)

![chapter 1's count table](bigram_table.png)

![gpt.py's attention, every head of the last block](attention.png)
"""


def update_readme(table, path=README):  # the README's journey table is this one
    with open(path, encoding='utf-8') as f:
        text = f.read()
    start = text.find(START_MARK)
    end = text.find(END_MARK)
    if start < 0 or end < start:
        print(f'{path} has no {START_MARK} ... {END_MARK}: its table is left as it is')
        return
    before = text[:start + len(START_MARK)]
    after = text[end:]
    with open(path, 'w', encoding='utf-8') as f:
        f.write(before + '\n' + table + '\n' + after)
    print(f'{path}: the journey table replaced')


# -----------------------------------------------------------------------------
# the pictures: matplotlib, written at 100 dpi so each stays well under 1 MB
def seconds_label(value, _):  # 1, 2, 5, 10, 20, 50, ... written plainly, not as 2 x 10^1
    if value <= 0:
        return ''
    leading = value / 10 ** math.floor(math.log10(value) + 1e-9)
    if round(leading) in (1, 2, 5):
        return f'{value:g}'
    return ''


def draw_journey(journey, path, plt):
    from matplotlib.ticker import FuncFormatter
    finals = {r['key']: r['records']['final'] for r in journey['chapters']}
    keys = [key for key in SHORT_NAMES if key in finals]
    x = list(range(len(keys)))
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(15, 6.2), layout='constrained',
                                     gridspec_kw={'width_ratios': [1.25, 1]})

    # (a) val loss per chapter, markers on the left axis; params as bars on a log axis behind
    ax_p = ax_a.twinx()
    ax_a.set_zorder(ax_p.get_zorder() + 1)  # the losses are drawn over the bars
    ax_a.patch.set_visible(False)
    ours_params = [finals[key]['params'] for key in keys]
    blog_params = [BLOG[key][1] if key in BLOG else 0 for key in keys]
    ax_p.bar([i - 0.18 for i in x], ours_params, width=0.34, color='0.85', label='params: ours')
    ax_p.bar([i + 0.18 for i in x], blog_params, width=0.34, color='none', edgecolor='0.6',
             hatch='///', label="params: the blog's")
    ax_p.set_yscale('log')
    ax_p.set_ylim(100, 1e8)  # room above the tallest bar for the losses
    ax_p.set_ylabel('parameters (log scale)')
    # ours: one line through the names chapters; Shakespeare is other data, a point of its own
    ours_val = [finals[key]['val'] for key in keys]
    names_x = [i for i, key in zip(x, keys) if key != 'gpt_text']
    text_x = [i for i, key in zip(x, keys) if key == 'gpt_text']
    ax_a.plot(names_x, [ours_val[i] for i in names_x], 'o-', color='tab:blue', zorder=3,
              label='val: ours')
    ax_a.plot(text_x, [ours_val[i] for i in text_x], 'o', color='tab:blue', zorder=3)
    for i, value in zip(x, ours_val):
        ax_a.annotate(f'{value:.3f}', (i, value), textcoords='offset points', xytext=(-7, -3),
                      ha='right', fontsize=8, color='tab:blue')
    plotted = list(ours_val)
    blog_x = [i for i, key in zip(x, keys) if key in BLOG]
    blog_val = [BLOG[keys[i]][0] for i in blog_x]
    ax_a.plot(blog_x, blog_val, 's', mfc='none', mec='tab:red', mew=1.5, ms=9,
              label="val: the blog's claims")
    plotted += blog_val
    for i, key in zip(x, keys):
        for value, note in KARPATHY.get(key, []):
            ax_a.plot(i, value, '^', color='tab:green', ms=8)
            ax_a.annotate(note, (i, value), textcoords='offset points', xytext=(7, -3),
                          fontsize=7, color='tab:green')
            plotted.append(value)
    ax_a.plot([], [], '^', color='tab:green', ms=8,
              label="Karpathy: makemore lectures (bigrams: all names), makemore, nanoGPT")
    if 'gpt_text' in keys:  # another data set: its losses do not compare with the names ones
        ax_a.axvline(keys.index('gpt_text') - 0.5, color='0.5', ls=':')
    ax_a.set_xticks(x)
    ax_a.set_xticklabels([SHORT_NAMES[key] for key in keys], fontsize=9)
    ax_a.set_ylabel('val loss (nats per character)')
    ax_a.set_ylim(min(plotted) - 0.12, max(plotted) + 0.08)
    ax_a.set_title('(a) val loss per chapter: names, then Shakespeare')
    handles_a, labels_a = ax_a.get_legend_handles_labels()
    handles_p, labels_p = ax_p.get_legend_handles_labels()
    ax_a.legend(handles_a + handles_p, labels_a + labels_p, fontsize=8, ncol=2,
                loc='upper center', bbox_to_anchor=(0.5, -0.13))

    # (b) val loss against training seconds, one curve per names chapter
    for key in NAMES_CHAPTERS:
        record = next((r for r in journey['chapters'] if r['key'] == key), None)
        if record is None:
            continue
        label = SHORT_NAMES[key].replace('\n', ' ')
        points = [(e['t'], e['val']) for e in record['evals']]
        if not points:  # the count table trains in no time: a level to beat, not a curve
            ax_b.axhline(finals[key]['val'], color='0.4', ls=':', label=f'{label} (no training)')
            continue
        seconds, losses = zip(*points)
        ax_b.plot(seconds, losses, 'o-', ms=4, label=label)
    ax_b.set_xscale('log')
    ax_b.xaxis.set_major_formatter(FuncFormatter(seconds_label))
    ax_b.xaxis.set_minor_formatter(FuncFormatter(seconds_label))
    ax_b.set_xlabel('seconds since the chapter started (wall time, log scale)')
    ax_b.set_ylabel('val loss (nats per character)')
    ax_b.set_title('(b) what each idea costs: val loss at every evaluation, names')
    ax_b.legend(fontsize=8)
    ax_b.grid(alpha=0.3)
    run = 'quick mode, a few steps each' if journey['quick'] else "every chapter's defaults"
    fig.suptitle(f"From counting to attention: {run}; {journey['machine']}, {journey['date']}",
                 fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_bigram_table(bigram, path, plt):  # after Karpathy's makemore part 1 picture
    itos = bigram['itos']
    counts = bigram['counts']
    size = len(itos)
    biggest = max(max(row) for row in counts)
    fig, ax = plt.subplots(figsize=(16, 16))
    ax.imshow(counts, cmap='Blues')
    for i in range(size):
        for j in range(size):
            # dark cells get white text, so every count stays readable
            color = 'white' if counts[i][j] > 0.5 * biggest else '0.35'
            ax.text(j, i, f'{itos[i]}{itos[j]}\n{counts[i][j]}', ha='center', va='center',
                    color=color, fontsize=8.5, linespacing=1.4)
    ax.set_title("bigram_count.py's table: how often the second character follows the first "
                 "in the training names ('.' starts and ends a name)", fontsize=13)
    ax.axis('off')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_attention(attention, path, plt):
    att = attention['att']
    visible = {'\n': '⏎', ' ': '␣', '\t': '⇥'}
    chars = [visible.get(c, c) for c in attention['prompt']]
    columns = 2 if len(att) > 1 else 1
    rows = (len(att) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 6 * rows), squeeze=False,
                             layout='constrained')
    for h, ax in enumerate(axes.flat):
        if h >= len(att):
            ax.axis('off')
            continue
        image = ax.imshow(att[h], cmap='Blues', vmin=0, vmax=1)
        ax.set_xticks(range(len(chars)))
        ax.set_xticklabels(chars, fontsize=9)
        ax.set_yticks(range(len(chars)))
        ax.set_yticklabels(chars, fontsize=9)
        ax.xaxis.tick_top()
        ax.set_title(f'head {h}', fontsize=11)
    fig.colorbar(image, ax=axes, shrink=0.5, label='attention weight (each row sums to 1)')
    layer = attention.get('n_layer')
    block = f'block {layer} of {layer}' if layer else 'the last block'
    fig.suptitle(f"gpt.py, {block}: each row is a character of the prompt, each column one it "
                 f"can attend to (dark: much weight; above the diagonal: the future, weight 0)",
                 fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_ladder(journey, path, plt):
    """The attention chapter's val per rung, the lecture's figure beside each it reported."""
    finals = {r['key']: r['records']['final'] for r in journey['chapters']}
    keys = [f'rung_{rung}' for rung in RUNGS if f'rung_{rung}' in finals]
    x = list(range(len(keys)))
    fig, ax = plt.subplots(figsize=(11, 5.5), layout='constrained')
    ours = [finals[key]['val'] for key in keys]
    ax.bar([i - 0.2 for i in x], ours, width=0.4, color='tab:blue', label='attention.py (ours)')
    lecture = [(i, LECTURE[key]) for i, key in enumerate(keys) if key in LECTURE]
    ax.bar([i + 0.2 for i, _ in lecture], [v for _, v in lecture], width=0.4, color='tab:gray',
           label="the lecture (Let's build GPT)")
    for i, value in enumerate(ours):
        ax.text(i - 0.2, value + 0.02, f'{value:.3f}', ha='center', fontsize=9)
    for i, value in lecture:
        ax.text(i + 0.2, value + 0.02, f'{value:g}', ha='center', fontsize=9, color='dimgray')
    ax.set_xticks(x)
    ax.set_xticklabels([key[len('rung_'):] for key in keys])
    ax.set_ylim(1.5, max(ours + [v for _, v in lecture]) + 0.2)
    ax.set_ylabel('val loss on tiny Shakespeare (lower is better)')
    ax.set_title('attention.py, one part a rung: each rung adds one part to the one before '
                 '(same sizes, same steps)')
    ax.legend(loc='upper right')
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_ladder_weights(ladder, path, plt):
    """The average rung's fixed weights beside the trained head's, for one prompt."""
    visible = {'\n': '⏎', ' ': '␣', '\t': '⇥'}
    chars = [visible.get(c, c) for c in ladder['prompt']]
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.5), layout='constrained')
    titles = ['average: 1/(t+1) over the past, fixed', 'head: weights learned from the data']
    for ax, key, title in zip(axes, ('average', 'head'), titles):
        image = ax.imshow(ladder[key], cmap='Blues', vmin=0, vmax=1)
        ax.set_xticks(range(len(chars)))
        ax.set_xticklabels(chars, fontsize=9)
        ax.set_yticks(range(len(chars)))
        ax.set_yticklabels(chars, fontsize=9)
        ax.xaxis.tick_top()
        ax.set_title(title, fontsize=11)
    fig.colorbar(image, ax=axes, shrink=0.6, label='weight (each row sums to 1)')
    fig.suptitle('attention.py: each row is a character of the prompt, each column one it reads '
                 '(above the diagonal: the future, weight 0)', fontsize=10)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(journey, out, update_the_readme):
    import matplotlib
    matplotlib.use('Agg')  # files only: no window, works without a display
    import matplotlib.pyplot as plt
    with open(os.path.join(out, 'journey.md'), 'w', encoding='utf-8') as f:
        f.write(journey_markdown(journey))
    draw_journey(journey, os.path.join(out, 'journey.png'), plt)
    draw_bigram_table(journey['bigram'], os.path.join(out, 'bigram_table.png'), plt)
    draw_attention(journey['attention'], os.path.join(out, 'attention.png'), plt)
    draw_ladder(journey, os.path.join(out, 'ladder.png'), plt)
    draw_ladder_weights(journey['ladder'], os.path.join(out, 'ladder_weights.png'), plt)
    print(f'wrote journey.md, journey.png, bigram_table.png, attention.png, ladder.png, '
          f'ladder_weights.png in {out}')
    if update_the_readme:
        update_readme(journey_table(journey))


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--quick', action='store_true',
                        help='a few steps per chapter, to test the pipeline (needs --out or '
                             'writes to a new temporary folder; never touches docs/ or README)')
    parser.add_argument('--redraw', action='store_true',
                        help='draw the table and pictures from journey.json only, running nothing')
    parser.add_argument('--out', help='folder for journey.json, journey.md and the pictures '
                                      '(default: docs/)')
    parser.add_argument('--only', choices=['attention'],
                        help="run the attention chapter's rungs alone and keep every other "
                             "record of docs/journey.json as it was")
    args = parser.parse_args()
    out = args.out
    if out is None and args.quick and not args.redraw:
        out = tempfile.mkdtemp(prefix='journey-')
    if out is None:
        out = DOCS
    out = os.path.abspath(out)
    if args.quick:
        # quick runs measure nothing; one thread each keeps them from fighting whatever else
        # runs on the cores (on a busy 2-core machine, 2 threads made a 3 s run take 50 s)
        os.environ['OMP_NUM_THREADS'] = '1'
    # the README holds the real run's table only: never a quick one, never one from elsewhere
    is_docs = os.path.samefile(out, DOCS) if os.path.isdir(out) else False
    if args.quick and is_docs:
        sys.exit('journey: --quick writes numbers that measure nothing: give it another --out')
    if importlib.util.find_spec('matplotlib') is None:  # found out now, not after 20 minutes
        sys.exit('journey: drawing needs matplotlib: pip install -r docs/requirements.txt')
    os.makedirs(out, exist_ok=True)
    json_path = os.path.join(out, 'journey.json')
    if args.redraw:
        if not os.path.isfile(json_path):
            sys.exit(f'journey: {json_path} not found: run python docs/journey.py first')
        with open(json_path, encoding='utf-8') as f:
            journey = json.load(f)
    elif args.only:
        with open(json_path, encoding='utf-8') as f:
            journey = run_ladder_only(json.load(f))
        with open(json_path, 'w', encoding='utf-8') as f:
            json.dump(journey, f)
    else:
        try:
            journey = run_journey(args.quick, out)
        except KeyboardInterrupt:  # Ctrl-C reaches the running chapter too, and stops it
            sys.exit('journey: interrupted; nothing written')
        with open(json_path, 'w', encoding='utf-8') as f:
            json.dump(journey, f)
    write_outputs(journey, out, update_the_readme=is_docs and not journey['quick'])


if __name__ == '__main__':
    main()
