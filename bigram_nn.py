"""
Chapter 2: the same bigram model, learned by gradient descent instead of counted. A 27x27
weight matrix W holds one row of logits per previous character; softmax turns a row into
P(next char), and we nudge W downhill on the mean negative log likelihood of the training
pairs. A small L2 penalty pulls W toward 0 (uniform rows), just as smoothing did.
Run: python bigram_nn.py   (override anything: python bigram_nn.py --max_iters=100)
Result with defaults, 2 CPU cores: val 2.4599 (counting gave 2.4533), test 2.4655, 6.8 s.
"""
import ast, math, os, random, signal, sys, time, urllib.request
import torch
import torch.nn.functional as F

# %%
# hyperparameters
dataset = 'names.txt'     # one name per line, in the working directory (downloaded on first use)
max_iters = 400           # full-batch gradient steps
eval_interval = 100       # report train/val loss every this many steps
learning_rate = 50.0      # big steps are fine: the loss is convex in W and the batch is exact
reg = 0.01                # L2 penalty on W: the gradient-descent version of smoothing
device = ('cuda' if torch.cuda.is_available() else   # the fastest device there is
          'mps' if torch.backends.mps.is_available() else 'cpu')
seed = 1337               # seeds the initial weights and the sampling
num_samples = 20          # how many names to generate at the end

# %%
# =================================================================================================
# the shared machinery: the same, word for word, in every chapter, and none of it is about
# language models (the command line, the device, printing, stopping early, the data file). Skip it
# on a first reading: the chapter goes on at its range checks, right after the closing banner.
def fail(message, code=2):  # one line, no traceback; exit 2: a bad flag, 1: bad data or a bad run
    print(f'error: {message}', file=sys.stderr)
    sys.exit(code)

# command-line overrides, e.g. --max_iters=200 --device=cpu: each value is a Python literal of the
# default's type. Flags apply when this file is what was run, which puts it in sys.argv[0]: python,
# torchrun, %run in Jupyter or IPython, Spyder's and PyCharm's run-file. In a notebook's kernel (a
# pasted cell, VS Code's Interactive Window, a cell run alone) sys.argv holds the kernel's own
# launch arguments (ipykernel_launcher.py -f kernel-1234.json), never flags: the globals as written
# are what runs
hyperparameters = [k for k, v in globals().items()
                   if not k.startswith('_') and type(v) in (int, float, bool, str)]
what_ran = os.path.basename(sys.argv[0])  # this file, or a kernel's launcher ('' in a console)
run_as_file = '__file__' in globals() and what_ran == os.path.basename(__file__)
flags = sys.argv[1:] if run_as_file else []
for flag in flags:
    key, eq, raw = flag[2:].partition('=')
    if not (flag.startswith('--') and eq and key in hyperparameters):
        fail(f'unknown option {flag!r}; use --key=value with a key from: '
             f"{', '.join(hyperparameters)}")
    default = globals()[key]
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # a bare word such as cpu is a string
    if isinstance(default, str) and not isinstance(value, str):
        value = raw  # strings need no quotes
    if type(default) is float and type(value) is int:
        value = float(value)
    if type(value) is not type(default):
        fail(f'--{key} must be of type {type(default).__name__}, got {raw!r}; '
             f"valid keys: {', '.join(hyperparameters)}")
    globals()[key] = value
flagged = [flag[2:].partition('=')[0] for flag in flags]  # the keys set on the command line

def check(key, ok, allowed):  # every value is checked before any work: a bad one costs a line
    if not ok:
        fail(f'--{key}={globals()[key]} is out of range: it must be {allowed}')

# the device: one that exists here. An Apple GPU (mps) needs torch 2.5 or newer for these chapters
# (older versions have no autocast there, and before 2.3 drew wrong samples): with an older torch
# the default falls back to the CPU, and says so
known_device = device in ('cpu', 'cuda', 'mps') or device[:5] == 'cuda:' and device[5:].isdigit()
check('device', known_device, 'cpu, cuda, cuda:N or mps')
if device.startswith('cuda') and not torch.cuda.is_available():
    fail(f'--device={device}, but torch sees no CUDA GPU here (on Colab: Runtime > '
         f'Change runtime type > GPU); run on the CPU with --device=cpu')
if device[:5] == 'cuda:' and int(device[5:]) >= torch.cuda.device_count():
    fail(f'--device={device}, but torch sees {torch.cuda.device_count()} CUDA GPU(s) here, '
         f'numbered from 0')
if device == 'mps' and not torch.backends.mps.is_available():
    fail('--device=mps, but torch sees no Apple GPU here; run on the CPU with --device=cpu')
if device == 'mps' and torch.__version__ < '2.5':
    if 'device' in flagged:
        fail(f'--device=mps needs torch 2.5 or newer, this is {torch.__version__}: '
             f'pip install -U torch, or run on the CPU with --device=cpu')
    print(f'device: cpu, not mps: torch {torch.__version__} is older than 2.5, which these '
          f'chapters need on an Apple GPU (pip install -U torch)')
    device = 'cpu'

# printing: a character the console cannot encode (a Windows console or pipe writes cp1252)
# prints as '?' instead of ending the run in a UnicodeEncodeError
if hasattr(sys.stdout, 'reconfigure'):
    sys.stdout.reconfigure(errors='replace')

# a run that ends early, in a terminal: Ctrl-C ends it in one line; a closed pipe (a run piped
# into head) ends it quietly, as Unix tools do; running out of memory (a step's activations grow
# with the batch and the model's sizes) ends it in one line that names what to lower, not in an
# allocator's traceback. A notebook keeps its own handling of all three
def stop_at_ctrl_c(signum, frame):
    fail('stopped by Ctrl-C', 130)

def out_of_memory(kind, error, traceback):  # Python calls it with an error nothing caught
    message = str(error)
    if 'out of memory' not in message and 'tried to allocate' not in message:
        sys.__excepthook__(kind, error, traceback)  # any other error: its usual traceback
        return
    settings = []
    for key in ('batch_size', 'block_size', 'n_embd', 'n_hidden'):
        if key in hyperparameters:
            settings.append(f'--{key}={globals()[key]}')
    print(f"error: out of memory on {device}: lower {' or '.join(settings) or 'the data'}",
          file=sys.stderr)

if 'IPython' not in sys.modules:
    signal.signal(signal.SIGINT, stop_at_ctrl_c)
    if hasattr(signal, 'SIGPIPE'):  # Windows has none
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.excepthook = out_of_memory

# the data file is read from the working directory; the two files the chapters use are downloaded
# on first use, into a file of this process's own that is then renamed: never a half-written one
github = 'https://raw.githubusercontent.com/karpathy'
urls = {'names.txt': f'{github}/makemore/master/names.txt',
        'input.txt': f'{github}/char-rnn/master/data/tinyshakespeare/input.txt'}

def download(path):
    if path not in urls:
        fail(f'dataset file {path!r} not found (pass --dataset=path/to/file.txt)', 1)
    partial = f'{path}.{os.getpid()}.tmp'
    try:
        with urllib.request.urlopen(urls[path], timeout=30) as response:
            downloaded = response.read()
        with open(partial, 'wb') as f:
            f.write(downloaded)
        os.replace(partial, path)
    except OSError as e:
        if os.path.exists(partial):
            os.remove(partial)
        fail(f'{path} is missing and downloading it failed ({e}); '
             f'get {urls[path]} and put it in {os.getcwd()}', 1)

def read_text(path):  # the whole file as one string, '\n' ending every line (Windows' too)
    if not os.path.isfile(path):
        download(path)
    try:
        with open(path, encoding='utf-8-sig') as f:  # -sig: a BOM (Notepad writes one) is not text
            return f.read()
    except UnicodeDecodeError:
        fail(f'cannot read {path}: it is not UTF-8 text (save it as UTF-8)', 1)
    except OSError as e:
        fail(f'cannot read {path}: {e.strerror}', 1)
# end of the shared machinery =====================================================================

# %%
# range checks: this chapter's values, each checked before any data is read
check('max_iters', max_iters >= 1, 'an integer >= 1')
check('eval_interval', eval_interval >= 1, 'an integer >= 1')
check('learning_rate', math.isfinite(learning_rate) and learning_rate > 0, 'a number > 0')
check('reg', 0 <= reg <= torch.finfo(torch.float32).max,
      'a number >= 0 and <= 3.4e38 (the penalty is float32, and float32 ends there)')
check('seed', 0 <= seed < 2 ** 63, 'an integer >= 0 and < 2**63')
check('num_samples', num_samples >= 0, 'an integer >= 0')

# %%
# data: one name per line; blank lines and the spaces around a name are dropped
lines = read_text(dataset).splitlines()
words = [line.strip() for line in lines if line.strip()]
if len(words) < 10:
    fail(f'{dataset} has too few lines ({len(words)}): it needs at least 10 (one name per line) '
         f'so that train, val and test are not empty', 1)

# the vocabulary: '.' (index 0) marks both the start and the end of a name
itos = ['.'] + sorted(set(''.join(words)) - {'.'})
stoi = {ch: i for i, ch in enumerate(itos)}
vocab_size = len(itos)

def encode(s):
    return [stoi[c] for c in s]

def decode(ids):
    return ''.join(itos[i] for i in ids)

# the same shuffle and split in every names chapter, so their losses compare
random.seed(42)
random.shuffle(words)
n1 = int(0.8 * len(words))
n2 = int(0.9 * len(words))
splits = {'train': words[:n1], 'val': words[n1:n2], 'test': words[n2:]}
max_len = max(len(w) for w in words)  # a sample stops at '.', or at the longest name's length

def build_dataset(names):  # every (previous character, next character) pair, '.' at both ends
    xs, ys = [], []
    for w in names:
        ids = [0] + encode(w) + [0]
        xs += ids[:-1]
        ys += ids[1:]
    return torch.tensor(xs, device=device), torch.tensor(ys, device=device)

data = {split: build_dataset(names) for split, names in splits.items()}

# %%
# model: one weight matrix, logits = one_hot(x) @ W. A one-hot row times W just selects row x
# of W, so evaluation and sampling read W[x] directly: the same numbers without the zeros (an
# embedding table is exactly this lookup). Training keeps the matmul: its gradient
# one_hot.T @ dlogits sums in the same order on every run (the lookup's scatter-add may not):
# same seed, same numbers.
torch.manual_seed(seed)
W = (0.01 * torch.randn(vocab_size, vocab_size)).to(device).requires_grad_()

# W is the counted table in disguise: a logit is a log-count. exp(W) gives positive 'counts',
# and dividing each row by its sum gives the probabilities P, just as counting normalised its
# counts. Exponentiate, then normalise: that is the softmax, written out. First each row's
# largest logit is subtracted: that divides the whole row of counts by one number, which the
# normalisation cancels, and no logit is then large enough for exp to overflow float32 to inf
def probabilities():  # the V x V table P that W stands for: row a is P(next char | a)
    logits = W.detach()                                         # (V, V): log-counts
    shifted = logits - logits.max(dim=1, keepdim=True).values   # each row's largest is now 0
    counts = shifted.exp()                                      # (V, V): the table's 'counts'
    return counts / counts.sum(dim=1, keepdim=True)             # (V, V): each row sums to 1

# The loss is the counted table's too: -log P[a, b] for each pair (a, b), averaged, which is
# -P[x, y].log().mean(). F.cross_entropy(W[x], y) computes the same in one call (with the same
# subtraction, in a different float order), so training and evaluation use it; sampling draws
# from the P written out above

# %%
# evaluation: the exact mean negative log likelihood per character over every pair of a split
@torch.no_grad()
def estimate_loss():
    out = {}
    for split, (x, y) in data.items():
        out[split] = F.cross_entropy(W[x], y).item()  # (N, V) logits, N targets -> a number
    return out

def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from it
    if not math.isfinite(loss):
        fail(f'training diverged: the loss is {loss} at iter {it}; '
             f'lower --learning_rate (it is {learning_rate})', 1)

# %%
# training: every step sees all training pairs at once (full batch), so no get_batch is needed
xs, ys = data['train']
xenc = F.one_hot(xs, vocab_size).float()  # (N, V): all zeros but a 1 at column xs[i]
log_interval = max(1, eval_interval // 10)  # a progress line ten times per evaluation
t0 = time.time()
for it in range(1, max_iters + 1):
    logits = xenc @ W  # (N, V) @ (V, V) -> (N, V): a row per pair
    # the loss minimised is the fit plus the L2 pull toward uniform rows. That is why the
    # progress line's loss is higher than the evaluation line's train: loss includes the pull,
    # reg * mean(W^2), and is measured before this step's update; train is the fit alone, after
    loss = F.cross_entropy(logits, ys) + reg * (W ** 2).mean()
    check_finite(loss.item(), it)
    W.grad = None
    loss.backward()
    W.data -= learning_rate * W.grad  # plain gradient descent
    if it % log_interval == 0 or it == max_iters:
        dt = time.time() - t0
        eta = dt / it * (max_iters - it)
        print(f'iter {it}/{max_iters} | loss {loss.item():.4f} | {1000 * dt / it:.1f} ms/iter '
              f'| eta {eta:.0f} s')
    if it % eval_interval == 0 or it == max_iters:
        losses = estimate_loss()
        check_finite(sum(losses.values()), it)  # the sum: a nan in any split makes it nan
        print(f"iter {it}/{max_iters} | train {losses['train']:.4f} | val {losses['val']:.4f}")
train_time = time.time() - t0
print(f"final: train={losses['train']:.4f} val={losses['val']:.4f} test={losses['test']:.4f} "
      f'params={W.numel()} time={train_time:.1f}s')

# %%
# sample: start at '.', draw the next character from its row of P, stop when '.' comes back
P = probabilities()
g = torch.Generator(device=device).manual_seed(seed)
samples = []
for _ in range(num_samples):
    out = []
    ix = 0
    while len(out) < max_len:
        ix = torch.multinomial(P[ix], 1, generator=g).item()
        if ix == 0:
            break
        out.append(ix)
    samples.append(decode(out))
print('\n'.join(samples))
new = sum(s not in set(splits['train']) for s in samples)
print(f'{new}/{num_samples} samples are new (not in the training names)')
