"""The README's promises about how a run ends, each met in a process of its own, as a user meets it:
a closed pipe (`| head`) in all eight chapters, Ctrl-C in every training chapter, SIGTERM and SIGHUP
in gpt.py, running out of memory under a memory limit, Ctrl-C under torchrun. Each test checks the
exit code, stdout and stderr of a real process.

A python started afresh spends 2-3 s of CPU importing torch: twenty of them would double the
suite's time. So the runs start together, forked from one python that has imported torch once (a
zygote, as Android starts its apps). Each run is still a process of its own: its own pipes, signal
handlers, memory limit, excepthook and exit code, the same as `python script.py` would have; only
its `import torch` finds torch already loaded. torchrun's workers are fresh pythons, as always."""
import contextlib, json, os, re, signal, socket, subprocess, sys, threading
import pytest
import torch
from test_scripts import ROOT, TINY, GPT_TINY, WRAP, names_in

pytestmark = pytest.mark.skipif(
    not all(hasattr(signal, s) for s in ('SIGPIPE', 'SIGHUP')) or not hasattr(os, 'killpg')
    or not hasattr(os, 'fork'), reason='needs POSIX signals, fork and process groups (not on Windows)')

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

    def start(self, argv, module=None, memory=None, cwd=ROOT):
        """-> (pid, stdout, stderr): the run's pid, and its output as text files to read."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        run = {'argv': argv, 'module': module, 'memory': memory, 'cwd': str(cwd)}
        with self.one_at_a_time, self.news:  # the pid that comes back is this run's
            socket.send_fds(self.control, [json.dumps(run).encode()], [out_w, err_w])
            os.close(out_w)
            os.close(err_w)
            assert self.news.wait_for(lambda: self.started, timeout=60), 'the zygote is gone'
            pid = self.started.pop()
        return pid, open(out_r, encoding='utf-8'), open(err_r, encoding='utf-8')

    def wait(self, pid, timeout=90):  # -> its exit code; None: still running after timeout
        with self.news:
            self.news.wait_for(lambda: pid in self.codes, timeout=timeout)
            return self.codes.get(pid)

    def close(self):
        self.control.shutdown(socket.SHUT_RDWR)  # the zygote reads the end, and ends
        self.process.wait(timeout=30)
        self.listener.join(timeout=30)  # it has read the end too: closing now cannot cut its recv
        self.control.close()


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
    run has printed it). Stores its exit code, stdout and stderr in result."""
    pid, out, err = zygote.start(run['argv'], module=run.get('module'), memory=run.get('memory'))
    try:
        result['out'] = follow(pid, out, run)
        result['err'] = err.read()
        result['code'] = zygote.wait(pid)
        result['cpu'] = zygote.cpu.get(pid)   # seconds of CPU it took, for a slow run's report
    finally:
        out.close()
        err.close()
        if result.get('code') is None:         # this run failed on its way, or hangs: end it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


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


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Every run of this file, started at once and driven side by side; their results by name."""
    folder = tmp_path_factory.mktemp('processes')
    few = folder / 'few.txt'
    few.write_text('\n'.join(names_in(os.path.join(ROOT, 'names.txt'))[:2000]))
    plan = {}

    def script(name, *args):
        return [os.path.join(ROOT, name), '--device=cpu', *args]
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
    torchrun = folder / 'torchrun'
    torchrun.mkdir()
    (torchrun / 'wrap.py').write_text(f'FOLDER, GPT = {str(torchrun)!r}, '
                                      f'{os.path.join(ROOT, "gpt.py")!r}\n' + WRAP)
    plan['torchrun'] = {'argv': ['torchrun', '--standalone', '--nproc_per_node=2',
                                 str(torchrun / 'wrap.py'), '--device=cpu', *GPT_TINY,
                                 '--max_iters=5000', '--eval_interval=100',
                                 '--gradient_accumulation_steps=2',
                                 f'--ckpt_path={torchrun / "c.pt"}'],
                        'module': 'torch.distributed.run', 'at': 'iter 10/5000',
                        'signal': signal.SIGINT, 'worker': True}
    with open(folder / 'zygote.log', 'w') as log:
        zygote = Zygote(log)
        results = {name: {} for name in plan}
        threads = [threading.Thread(target=drive, args=(zygote, plan[name], results[name]))
                   for name in plan]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        zygote.close()
    for name, result in results.items():
        assert result.get('code') is not None, f'{name} did not finish: {result}; zygote: ' + \
            (folder / 'zygote.log').read_text()[-2000:]
    results['folder'] = folder
    return results


@pytest.mark.parametrize('script', list(TINY))
def test_a_closed_pipe_ends_the_run_quietly_as_unix_tools_do(script, runs):
    # `python script.py | head`: the reader is gone; the next write kills the run by SIGPIPE, as
    # it kills cat or grep (the shell shows 141): no BrokenPipeError traceback, nothing on stderr
    run = runs[f'pipe {script}']
    assert (run['code'], run['err']) == (-signal.SIGPIPE, ''), run


@pytest.mark.parametrize('script', NAMES_LONG)
def test_ctrl_c_stops_a_training_chapter_in_one_line_with_code_130(script, runs):
    run = runs[f'ctrl-c {script}']
    assert (run['code'], run['err']) == (130, 'error: stopped by Ctrl-C\n'), run
    assert 'final:' not in run['out'], run


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


def test_torchrun_ctrl_c_stops_every_process_at_one_step_with_one_checkpoint_and_exits_1(runs):
    # Ctrl-C reaches torchrun's processes; they may see it at different steps, yet all must stop
    # at the same one, and process 0 alone saves. The hard case: one process alone gets it (the
    # other would wait for it forever). torchrun then reports the failed process and exits 1
    run = runs['torchrun']
    folder = runs['folder'] / 'torchrun'
    stopped = re.findall(r'interrupted at iter (\d+)', run['out'])
    assert len(stopped) == 1, run['out'] + run['err'][-3000:]
    assert run['code'] == 1, run['err'][-3000:]
    assert sorted(os.listdir(folder)) == ['c.pt', 'rank0.w', 'rank1.w', 'wrap.py']  # one save
    r0, r1 = (torch.load(folder / f'rank{r}.w', weights_only=True) for r in (0, 1))
    assert r0['it'] == r1['it'] == int(stopped[0])                  # the same step everywhere
    assert torch.load(folder / 'c.pt', weights_only=True)['iter'] == int(stopped[0])
    assert all(torch.equal(r0['model'][k], r1['model'][k]) for k in r0['model'])
