"""The README's promises about how a run ends, each met in a process of its own, as a user meets it:
a closed pipe (`| head`) in all eight chapters, Ctrl-C in every training chapter, SIGTERM and SIGHUP
in gpt.py, running out of memory under a memory limit, Ctrl-C under torchrun and a clean end under
torchrun, a stopped run resumed with --resume=True alone, a Windows pipe (cp1252), and the suite
where POSIX signals do not exist. Each test checks the exit code, stdout and stderr of a real
process.

A python started afresh spends 2-3 s of CPU importing torch: thirty of them would double the
suite's time. So the runs start together, forked from one python that has imported torch once (a
zygote, as Android starts its apps). Each run is still a process of its own: its own pipes, signal
handlers, memory limit, environment, excepthook and exit code, the same as `python script.py`
would have; only its `import torch` finds torch already loaded. torchrun's workers are fresh
pythons, as always. Where there is no fork (Windows) each run is a fresh python instead, and the
tests that need POSIX signals skip, saying why."""
import contextlib, functools, io, json, os, re, signal, socket, subprocess, sys, threading
import pytest
import torch
from test_scripts import ROOT, TINY, GPT_TINY, ENC_LEARN, SHAKESPEARE, WRAP, evals, final, names_in

POSIX = all(hasattr(signal, s) for s in ('SIGPIPE', 'SIGHUP')) and hasattr(os, 'killpg') \
    and hasattr(os, 'fork')
POSIX_ONLY = pytest.mark.skipif(not POSIX, reason='needs POSIX signals, fork and process groups '
                                                  '(not on Windows)')

ZYGOTE = r'''
import gc, json, os, resource, runpy, select, socket, sys
import torch, torch._dynamo, torch.distributed.run  # once for every run forked below (an
# optimizer imports torch._dynamo when it is built: 2 s more)
gc.freeze()  # what is loaded stays shared: a run's collections and exit leave it alone
control = socket.socket(fileno=int(sys.argv[1]))
running = set()
while True:
    if select.select([control], [], [], 0.02)[0]:
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 2)
        if not message:
            break
        run = json.loads(message)
        pid = os.fork()
        if pid == 0:  # the run: a process of its own, in a process group of its own
            control.close()
            os.setsid()
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(fds[0], 1)
            os.dup2(fds[1], 2)
            os.closerange(3, 1024)
            os.chdir(run['cwd'])
            os.environ.update(run['env'])
            if run['encoding']:  # what PYTHONIOENCODING does as a python starts
                sys.stdout.reconfigure(encoding=run['encoding'])
                sys.stderr.reconfigure(encoding=run['encoding'])
            if run['memory']:
                resource.setrlimit(resource.RLIMIT_AS, (run['memory'], run['memory']))
            sys.argv = run['argv']
            if run['module']:
                runpy.run_module(run['module'], run_name='__main__', alter_sys=True)
            else:
                sys.path[0] = os.path.dirname(run['argv'][0])
                runpy.run_path(run['argv'][0], run_name='__main__')
            sys.exit(0)  # what python does at the end of a script; an error goes to excepthook
        for fd in fds:
            os.close(fd)
        running.add(pid)
        control.send(f'started {pid}'.encode())
    while running:
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid == 0:
            break
        running.discard(pid)
        cpu = usage.ru_utime + usage.ru_stime
        control.send(f'ended {pid} {os.waitstatus_to_exitcode(status)} {cpu}'.encode())
'''


class Zygote:
    """Starts runs as processes forked from one python with torch imported; tells their exit codes
    (as Popen.returncode: -N for a process killed by signal N)."""

    def __init__(self, log):
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # its stdout and stderr are pipes, as a run's are: a fork keeps the sys.stdout made for them
        self.process = subprocess.Popen([sys.executable, '-c', ZYGOTE, str(theirs.fileno())],
                                        pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        env=dict(os.environ, PYTHONUNBUFFERED='1',  # lines as made
                                                 OMP_NUM_THREADS='1'))
        theirs.close()
        threading.Thread(target=lambda: log.write(self.process.stdout.read().decode()),
                         daemon=True).start()
        self.codes, self.started, self.cpu = {}, [], {}
        self.news = threading.Condition()
        self.one_at_a_time = threading.Lock()
        self.listener = threading.Thread(target=self.listen, daemon=True)
        self.listener.start()

    def listen(self):
        while True:
            message = self.control.recv(256).decode()
            with self.news:
                if not message:
                    return
                kind, pid, *code = message.split()
                if kind == 'started':
                    self.started.append(int(pid))
                else:
                    self.codes[int(pid)] = int(code[0])
                    self.cpu[int(pid)] = float(code[1])
                self.news.notify_all()

    def start(self, run):
        """-> (pid, stdout, stderr): the run's pid, and its output as text files to read."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        with self.one_at_a_time, self.news:  # the pid that comes back is this run's
            socket.send_fds(self.control, [json.dumps(run).encode()], [out_w, err_w])
            os.close(out_w)
            os.close(err_w)
            assert self.news.wait_for(lambda: self.started, timeout=60), 'the zygote is gone'
            pid = self.started.pop()
        encoding = run['encoding'] or 'utf-8'
        return pid, open(out_r, encoding=encoding), open(err_r, encoding=encoding)

    def wait(self, pid, timeout=90):  # -> its exit code; None: still running after timeout
        with self.news:
            self.news.wait_for(lambda: pid in self.codes, timeout=timeout)
            return self.codes.get(pid)

    def close(self):
        self.control.shutdown(socket.SHUT_RDWR)  # the zygote reads the end, and ends
        self.process.wait(timeout=30)
        self.listener.join(timeout=30)  # it has read the end too: closing now cannot cut its recv
        self.control.close()


class Fresh:
    """Where there is no fork (Windows): each run a fresh python, as Zygote's interface has it."""

    def __init__(self):
        self.processes, self.cpu = {}, {}

    def start(self, run):
        if run['module']:  # python -m module, then what follows the program's name
            command = [sys.executable, '-m', run['module'], *run['argv'][1:]]
        else:
            command = [sys.executable, *run['argv']]
        env = dict(os.environ, **run['env'], OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
        env['PYTHONIOENCODING'] = run['encoding'] or 'utf-8'
        p = subprocess.Popen(command, cwd=run['cwd'], stdin=subprocess.DEVNULL, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.processes[p.pid] = p
        encoding = run['encoding'] or 'utf-8'
        return p.pid, io.TextIOWrapper(p.stdout, encoding), io.TextIOWrapper(p.stderr, encoding)

    def wait(self, pid, timeout=90):
        try:
            return self.processes[pid].wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self):
        pass


def children(pid):
    """The processes whose parent is pid (torchrun's workers), from /proc."""
    kids = []
    for entry in os.listdir('/proc'):
        try:
            stat = open(f'/proc/{entry}/stat').read()
        except OSError:
            continue
        if entry.isdigit() and int(stat.rsplit(')', 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def drive(zygote, run, result):
    """One run from start to end: closes its stdout at once (a reader that is gone), or on the
    first stdout line that starts with run['at'] sends it run['signal'] (the moment is known: the
    run has printed it). Stores its exit code, stdout and stderr in result; then starts the run
    that follows it (run['then']), if any, its result in result['then']."""
    run = dict({'module': None, 'memory': None, 'cwd': ROOT, 'env': {}, 'encoding': None}, **run)
    follower = run.pop('then', None)
    pid, out, err = zygote.start(run)
    try:
        result['out'] = follow(pid, out, run)
        result['err'] = err.read()
        result['code'] = zygote.wait(pid)
        result['cpu'] = zygote.cpu.get(pid)   # seconds of CPU it took, for a slow run's report
    finally:
        out.close()
        err.close()
        if result.get('code') is None and hasattr(os, 'killpg'):  # it failed on its way, or hangs
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    if follower and result.get('code') is not None:
        result['then'] = {}
        drive(zygote, follower, result['then'])


def follow(pid, out, run):
    """Reads the run's stdout, doing to it what run asks; -> what it printed."""
    if run.get('at') == 'close':
        out.close()                                        # | head, gone before the first line
        return ''
    lines = []
    for line in out:
        lines.append(line)
        if run.get('at') and line.startswith(run['at']):
            target = pid
            if run.get('worker'):                          # one torchrun worker alone
                target = max(children(pid))
            os.kill(target, run['signal'])
            break
    lines.append(out.read())
    return ''.join(lines)


GPT_LONG = [*GPT_TINY, '--max_iters=100000', '--eval_interval=10']   # a progress line every step
NAMES_LONG = {'bigram_nn.py': ['--max_iters=100000', '--eval_interval=10'],
              'mlp.py': [*TINY['mlp.py'], '--max_iters=100000', '--eval_interval=10'],
              'wavenet.py': [*TINY['wavenet.py'], '--max_iters=100000', '--eval_interval=10'],
              'rnn.py': [*TINY['rnn.py'], '--max_iters=100000', '--eval_interval=10'],
              'encoder.py': [*TINY['encoder.py'], '--max_iters=100000', '--eval_interval=10'],
              'attention.py': [*TINY['attention.py'], '--max_iters=100000', '--eval_interval=10']}
GPT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP']
HUGE = 10 ** 12   # a batch of 10^12: its first tensor alone wants terabytes
OUT_OF_MEMORY = {'mlp.py': [f'--batch_size={HUGE}'], 'wavenet.py': [f'--batch_size={HUGE}'],
                 'rnn.py': [f'--batch_size={HUGE}'], 'encoder.py': ['--n_embd=1048576'],
                 'gpt.py': [*GPT_TINY, f'--batch_size={HUGE}'],
                 'attention.py': [f'--batch_size={HUGE}']}


def virtual_memory():  # this process's address space, in bytes: a fork starts with as much
    status = open('/proc/self/status').read()
    return int(re.search(r'VmSize:\s+(\d+) kB', status)[1]) * 1024


RESUMED = [*GPT_TINY, '--max_iters=100', '--eval_interval=15', '--learning_rate=0.005',
           '--dropout=0.1', '--warmup_iters=7', '--seed=7']  # none of them the default
CP1252_PROMPT = 'I am\nRO'


def torchrun(folder, *args):  # torchrun, 2 processes, running gpt.py through the wrapper WRAP
    folder.mkdir()
    (folder / 'wrap.py').write_text(f'FOLDER, GPT = {str(folder)!r}, '
                                    f'{os.path.join(ROOT, "gpt.py")!r}\n' + WRAP)
    return ['torchrun', '--standalone', '--nproc_per_node=2', str(folder / 'wrap.py'),
            '--device=cpu', *GPT_TINY, '--gradient_accumulation_steps=2',
            f'--ckpt_path={folder / "c.pt"}', *args]


def start_runs(folder):
    """Every run of this file, started at once and driven side by side by threads of this process;
    -> a function that waits for them all and returns their results by name."""
    few = folder / 'few.txt'
    few.write_text('\n'.join(names_in(os.path.join(ROOT, 'names.txt'))[:2000]))
    text = folder / 'text.txt'
    text.write_text(SHAKESPEARE, encoding='utf-8')
    plan = {}

    def script(name, *args):
        return [os.path.join(ROOT, name), '--device=cpu', *args]
    plan['torchrun clean'] = {'argv': torchrun(folder / 'clean'), 'module': 'torch.distributed.run'}
    plan['encoder learns'] = {'argv': script('encoder.py', *ENC_LEARN)}  # on all the names
    cp1252 = folder / 'cp1252.pt'  # a checkpoint, then a sampling from it into a Windows pipe
    plan['cp1252'] = {'argv': script('gpt.py', *GPT_TINY, '--max_iters=2', f'--ckpt_path={cp1252}'),
                      'then': {'argv': script('gpt.py', f'--ckpt_path={cp1252}', '--sample_only=True',
                                              '--show_attention=True', f'--prompt={CP1252_PROMPT}',
                                              '--max_new_tokens=5'),
                               'encoding': 'cp1252'}}
    if POSIX:
        for name in TINY:
            data = [f'--ckpt_path={folder / "pipe.pt"}'] if name == 'gpt.py' else [f'--dataset={few}']
            plan[f'pipe {name}'] = {'argv': script(name, *TINY[name], *data), 'at': 'close'}
        for name in NAMES_LONG:
            plan[f'ctrl-c {name}'] = {'argv': script(name, *NAMES_LONG[name], f'--dataset={few}'),
                                      'at': 'iter 1/', 'signal': signal.SIGINT}
        for kind in GPT_SIGNALS:
            plan[f'{kind} gpt.py'] = {'argv': script('gpt.py', *GPT_LONG,
                                                     f'--ckpt_path={folder / kind}.pt'),
                                      'at': 'iter 1/', 'signal': getattr(signal, kind)}
        memory = virtual_memory() + 2 * 2 ** 30   # room for a run, none for a terabyte
        for name, args in OUT_OF_MEMORY.items():
            data = [] if name == 'gpt.py' else [f'--dataset={few}']
            plan[f'oom {name}'] = {'argv': script(name, *args, *data), 'memory': memory}
        plan['torchrun ctrl-c'] = {'argv': torchrun(folder / 'ctrl-c', '--max_iters=5000',
                                                    '--eval_interval=100'),
                                   'module': 'torch.distributed.run', 'at': 'iter 10/5000',
                                   'signal': signal.SIGINT, 'worker': True}
        resumed = folder / 'resumed.pt'  # a run stopped by Ctrl-C, then resumed with one flag
        plan['resume: stopped'] = {'argv': script('gpt.py', *RESUMED, f'--dataset={text}',
                                                  f'--ckpt_path={resumed}'),
                                   'at': 'iter 1/100 |', 'signal': signal.SIGINT,
                                   'then': {'argv': script('gpt.py', f'--ckpt_path={resumed}',
                                                           '--resume=True')}}
        plan['resume: whole'] = {'argv': script('gpt.py', *RESUMED, f'--dataset={text}',
                                                f'--ckpt_path={folder / "whole.pt"}')}
        plan['no posix signals'] = {'argv': ['pytest', '-q', '-rs', '-p', 'no:cacheprovider',
                                             'test_scripts.py', '-k', 'unknown_key and bigram '
                                             'or sigint_handler_is_restored'],
                                    'module': 'pytest', 'env': {'SIMULATE_WINDOWS': '1'}}
    log = open(folder / 'zygote.log', 'w')
    zygote = Zygote(log) if POSIX else Fresh()
    results = {name: {} for name in plan}
    threads = [threading.Thread(target=drive, args=(zygote, plan[name], results[name]), daemon=True)
               for name in plan]
    for t in threads:
        t.start()

    @functools.cache  # once: the fixture below, or the session's end if no test asked
    def finish():
        for t in threads:
            t.join()
        zygote.close()
        log.close()
        for name, result in results.items():
            while result:
                assert result.get('code') is not None, f'{name} did not finish: {result}; ' + \
                    'zygote: ' + (folder / 'zygote.log').read_text()[-2000:]
                result = result.get('then')
        return dict(results, folder=folder)
    return finish


EARLY = None  # the runs, when conftest has started them as the session started


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """The results of every run of this file, by name. conftest starts the runs as the session
    starts, so that they go on the second core while the in-process tests run (this module's tests
    come last); a session without conftest's fixture starts them here."""
    finish = EARLY or start_runs(tmp_path_factory.mktemp('processes'))
    return finish()


@POSIX_ONLY
@pytest.mark.parametrize('script', list(TINY))
def test_a_closed_pipe_ends_the_run_quietly_as_unix_tools_do(script, runs):
    # `python script.py | head`: the reader is gone; the next write kills the run by SIGPIPE, as
    # it kills cat or grep (the shell shows 141): no BrokenPipeError traceback, nothing on stderr
    run = runs[f'pipe {script}']
    assert (run['code'], run['err']) == (-signal.SIGPIPE, ''), run


@POSIX_ONLY
@pytest.mark.parametrize('script', NAMES_LONG)
def test_ctrl_c_stops_a_training_chapter_in_one_line_with_code_130(script, runs):
    run = runs[f'ctrl-c {script}']
    assert (run['code'], run['err']) == (130, 'error: stopped by Ctrl-C\n'), run
    assert 'final:' not in run['out'], run


@POSIX_ONLY
@pytest.mark.parametrize('kind', GPT_SIGNALS)
def test_gpt_ctrl_c_sigterm_and_sighup_finish_the_step_save_and_exit(kind, runs):
    # Ctrl-C, a job scheduler's SIGTERM, a closed terminal's SIGHUP: the step ends, the checkpoint
    # holds it, and the exit code is the shell's for that signal (128 + its number)
    run = runs[f'{kind} gpt.py']
    path = runs['folder'] / f'{kind}.pt'
    stopped = re.findall(r'^interrupted at iter (\d+): checkpoint saved to (.+); continue with '
                         r'--resume=True$', run['out'], re.M)
    assert (run['code'], run['err']) == (128 + getattr(signal, kind), ''), run
    assert len(stopped) == 1 and stopped[0][1] == str(path), run['out'][-2000:]
    assert 'final:' not in run['out']
    assert torch.load(path, weights_only=True)['iter'] == int(stopped[0][0]) >= 1


@POSIX_ONLY
@pytest.mark.parametrize('script', OUT_OF_MEMORY)
def test_running_out_of_memory_is_one_line_naming_what_to_lower_and_code_1(script, runs):
    # a real allocation that fails: the process may not grow past its limit (RLIMIT_AS, as
    # `ulimit -v`), and a batch of 10^12 wants terabytes
    run = runs[f'oom {script}']
    keys = {'mlp.py': ['batch_size', 'block_size', 'n_embd', 'n_hidden'],
            'wavenet.py': ['batch_size', 'block_size', 'n_embd', 'n_hidden'],
            'rnn.py': ['batch_size', 'n_embd', 'n_hidden'],
            'encoder.py': ['batch_size', 'block_size', 'n_embd'],
            'gpt.py': ['batch_size', 'block_size', 'n_embd'],
            'attention.py': ['batch_size', 'block_size', 'n_embd']}[script]
    assert run['code'] == 1 and 'final:' not in run['out'], run
    assert run['err'].startswith('error: out of memory on cpu: lower --'), run
    assert run['err'].count('\n') == 1 and re.findall(r'--(\w+)=', run['err']) == keys, run


@POSIX_ONLY
def test_torchrun_ctrl_c_stops_every_process_at_one_step_with_one_checkpoint_and_exits_1(runs):
    # Ctrl-C reaches torchrun's processes; they may see it at different steps, yet all must stop
    # at the same one, and process 0 alone saves. The hard case: one process alone gets it (the
    # other would wait for it forever). torchrun then reports the failed process and exits 1
    run = runs['torchrun ctrl-c']
    folder = runs['folder'] / 'ctrl-c'
    stopped = re.findall(r'interrupted at iter (\d+)', run['out'])
    assert len(stopped) == 1, run['out'] + run['err'][-3000:]
    assert run['code'] == 1, run['err'][-3000:]
    assert sorted(os.listdir(folder)) == ['c.pt', 'rank0.w', 'rank1.w', 'wrap.py']  # one save
    r0, r1 = (torch.load(folder / f'rank{r}.w', weights_only=True) for r in (0, 1))
    assert r0['it'] == r1['it'] == int(stopped[0])                  # the same step everywhere
    assert torch.load(folder / 'c.pt', weights_only=True)['iter'] == int(stopped[0])
    assert all(torch.equal(r0['model'][k], r1['model'][k]) for k in r0['model'])


def test_gpt_trains_data_parallel_with_torchrun_and_ends_clean(runs):
    # reaches inside: the wrapper saves each process's weights and one batch when training ends
    run = runs['torchrun clean']
    folder = runs['folder'] / 'clean'
    assert run['code'] == 0, run['err'][-3000:]
    # both processes end clean: none aborts at exit, none is killed by a signal (issue 33)
    for sign in ['terminate called', 'SIGABRT', 'Signal ', 'exitcode', 'Traceback']:
        assert sign not in run['err'], run['err'][-3000:]
    assert run['out'].count('final:') == 1 and run['out'].count('input.txt: mode=') == 1  # rank 0
    vals = evals(run['out'])
    assert len(vals) == 2 and vals[1] < vals[0]                              # the loss falls
    assert sorted(os.listdir(folder)) == ['c.pt', 'rank0.w', 'rank1.w', 'wrap.py']
    r0, r1 = (torch.load(folder / f'rank{r}.w', weights_only=True) for r in (0, 1))
    assert all(torch.equal(r0['model'][k], r1['model'][k]) for k in r0['model'])  # identical
    assert not torch.equal(r0['batch'], r1['batch'])                             # own batches


def masked(out):  # the final line and the samples, the training time masked
    return re.sub(r'time=[\d.]+s', 'time=', out.split('final:')[1])


@POSIX_ONLY
def test_gpt_resume_alone_continues_the_run_that_was_started(runs):
    # separate processes: the run that is stopped knows nothing of the one that resumes it, which
    # is given --resume=True alone; the whole run is the same settings never stopped
    stopped_run, whole = runs['resume: stopped'], runs['resume: whole']
    assert stopped_run['code'] == 130 and 'continue with --resume=True' in stopped_run['out'], \
        stopped_run['err']
    stopped = int(re.search(r'interrupted at iter (\d+)', stopped_run['out'])[1])
    assert 0 < stopped < 100
    resumed = stopped_run['then']
    assert resumed['code'] == 0, resumed['err']
    first = resumed['out'].splitlines()[0]
    assert first.startswith(f"resuming {runs['folder'] / 'resumed.pt'} from step {stopped},"), first
    assert 'changed by flags' not in first
    assert f'iter {stopped + 1}/100' in resumed['out']  # on from where it stopped, to max_iters 100
    assert whole['code'] == 0, whole['err']
    assert masked(resumed['out']) == masked(whole['out'])  # the same result and samples


def test_gpt_attention_drawing_survives_a_cp1252_pipe(runs):
    # a Windows pipe writes cp1252, which has none of the drawing's shades
    trained, p = runs['cp1252'], runs['cp1252']['then']
    assert trained['code'] == 0, trained['err']
    assert p['code'] == 0 and 'Traceback' not in p['err'], p['err']
    lines = p['out'].splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith('attention in block'))
    drawing = lines[i + 1:i + 2 + 2 * (1 + len(CP1252_PROMPT))]  # a legend, then per head: a
    assert all(line.isascii() and '?' not in line for line in drawing), drawing  # header, 7 rows
    for h in range(2):
        header = drawing[1 + h * (1 + len(CP1252_PROMPT))]
        shown = header.split()[2:]                 # the prompt, blanks made visible in ASCII
        assert header.split()[:2] == ['head', str(h)] and len(shown) == len(CP1252_PROMPT)
        assert ''.join(shown[:1] + shown[2:4] + shown[5:]) == 'IamRO' and shown[1] != shown[4]
        for t, c in enumerate(shown):
            row = drawing[2 + h * (1 + len(CP1252_PROMPT)) + t]
            assert row[:8].strip() == c and row[11:].strip()  # the character, then its shades


@POSIX_ONLY
def test_the_suite_runs_where_posix_signals_do_not_exist(runs):
    # Windows has no SIGALRM, alarm, SIGPIPE or killpg: conftest removes them under
    # SIMULATE_WINDOWS=1; in-process runs must still work, and signal tests skip, saying why
    p = runs['no posix signals']
    assert p['code'] == 0, p['out'][-3000:]
    assert re.search(r'\n2 passed, 1 skipped', p['out']) and 'needs POSIX signals' in p['out'], \
        p['out']


def test_encoder_beats_the_pairs_and_length_baseline_on_whole_splits(runs):
    # not about how a run ends: the longest run of the suite (its baseline fits on all 64,000
    # names and fakes), here to go beside the in-process tests on the second core
    run = runs['encoder learns']
    assert run['code'] == 0, run['err']
    numbers = final(run['out'])
    baseline = re.search(r'^baseline \(.*\): val=[\d.]+ test=[\d.]+ val_acc=([\d.]+) '
                         r'test_acc=([\d.]+)$', run['out'], re.M)
    assert float(baseline[1]) <= 0.55 and float(baseline[2]) <= 0.55  # pairs and length: chance
    assert numbers['val_acc'] > float(baseline[1]) + 0.05             # attention sees more
    assert numbers['test_acc'] > float(baseline[2]) + 0.05
