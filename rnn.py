"""
Chapter 5: a recurrent network: a hidden state h carried from character to character, so each
prediction can depend on the whole prefix. It trains on padded whole-name rows (every position
at once, padding masked) and clips the gradient's norm: a long chain of steps can blow it up.
A cell maps (x_t, h_{t-1}) -> h_t; cell='rnn' is the plain tanh (Elman) cell, cell='gru'
adds gates that let the state (and its gradient) pass through time unchanged.
Run: python rnn.py   (override anything: python rnn.py --cell=gru)
Result with defaults, 2 CPU cores: val 1.9751, test 1.9770, 90,843 params, 30.8 s;
--cell=gru: val 1.9406, test 1.9452, 255,195 params, 69.1 s.
"""
import ast, math, os, random, signal, sys, time, urllib.request
import torch
import torch.nn as nn
import torch.nn.functional as F

# %%
# hyperparameters
dataset = 'names.txt'     # one name per line, in the working directory (downloaded on first use)
cell = 'rnn'              # 'rnn' (the plain tanh cell, met first) or 'gru' (gated: a lower loss)
batch_size = 128          # names per training step
max_iters = 3000          # training steps
eval_interval = 1000      # report train/val loss every this many steps
learning_rate = 3e-3      # peak learning rate of the one-cycle schedule
weight_decay = 0.01       # AdamW's pull of the weights toward 0
dropout = 0.1             # fraction of embedding and output features zeroed while training
grad_clip = 1.0           # largest allowed gradient norm (0: no clipping)
n_embd = 64               # size of a character's embedding vector
n_hidden = 256            # size of the hidden state h
device = ('cuda' if torch.cuda.is_available() else   # the fastest device there is
          'mps' if torch.backends.mps.is_available() else 'cpu')
seed = 1337               # seeds the initial weights, the batches and the sampling
num_samples = 20          # how many names to generate at the end
temperature = 1.0         # divides the logits when sampling: < 1 safer, > 1 wilder, 0 the likeliest

# %%
# model: embed each character, then run one cell along the sequence, carrying h. No nn.GRU fast
# path: on a CPU it measured no faster than this loop, so what you read is what runs.
# Defining a class does no work: vocab_size comes from the data section below, read when the
# model is built, right before training
class RNN(nn.Module):
    def __init__(self):
        super().__init__()
        gates = 3 if cell == 'gru' else 1  # weight blocks: the GRU's r, z, n; Elman's one
        self.tok_emb = nn.Embedding(vocab_size, n_embd)  # one learned vector per character
        self.Wx = nn.Linear(n_embd, gates * n_hidden)  # x_t's share of every block (and the bias)
        self.Wh = nn.Linear(n_hidden, gates * n_hidden, bias=False)  # h_{t-1}'s share
        self.lm_head = nn.Linear(n_hidden, vocab_size)  # h_t -> logits for the next character
        self.drop = nn.Dropout(dropout)  # on the way in and out only: the carried state stays clean

    def step(self, xw, h):  # one time step: (B, gates*H) input part, (B, H) state -> (B, H)
        hw = self.Wh(h)  # (B, gates*H)
        if cell == 'rnn':
            # Elman: h_t = tanh(Wx x_t + Wh h_{t-1}). Backprop through T steps multiplies T
            # Jacobians Wh * tanh': they shrink (or blow up)
            return torch.tanh(xw + hw)
        xr, xz, xn = xw.chunk(3, dim=1)  # 3 x (B, H)
        hr, hz, hn = hw.chunk(3, dim=1)  # 3 x (B, H)
        r = torch.sigmoid(xr + hr)   # reset gate: how much of the old state the candidate sees
        z = torch.sigmoid(xz + hz)   # update gate: how much of the old state to keep
        n = torch.tanh(xn + r * hn)  # candidate state, like the Elman cell's
        # h_t = z * h_{t-1} + (1 - z) * n: where z ~ 1 the state is copied unchanged, and so is
        # its gradient, with no Wh or tanh' factor to shrink it: that is what fixes vanishing
        # gradients
        return n + z * (h - n)

    def forward(self, idx, h=None):  # idx (B, T) -> logits (B, T, V) and the last state (B, H)
        emb = self.drop(self.tok_emb(idx.T))  # (T, B, n_embd): time first, to loop over it
        xw = self.Wx(emb)                     # (T, B, gates*H): every step's input part at once
        if h is None:
            h = torch.zeros(idx.shape[0], n_hidden, device=idx.device)  # (B, H)
        states = []
        for t in range(idx.shape[1]):  # the recurrence itself: only h @ Wh is left inside the loop
            h = self.step(xw[t], h)
            states.append(h)
        out = self.drop(torch.stack(states, dim=1))  # (B, T, H)
        logits = self.lm_head(out)                   # (B, T, V)
        return logits, h

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
check('cell', cell in ('rnn', 'gru'), 'one of rnn, gru')
check('batch_size', batch_size >= 1, 'an integer >= 1')
check('max_iters', max_iters >= 1, 'an integer >= 1')
check('eval_interval', eval_interval >= 1, 'an integer >= 1')
check('learning_rate', math.isfinite(learning_rate) and learning_rate > 0, 'a number > 0')
check('weight_decay', math.isfinite(weight_decay) and weight_decay >= 0, 'a number >= 0')
check('dropout', 0 <= dropout < 1, 'a number >= 0 and < 1')
check('grad_clip', math.isfinite(grad_clip) and grad_clip >= 0, 'a number >= 0')
check('n_embd', n_embd >= 1, 'an integer >= 1')
check('n_hidden', n_hidden >= 1, 'an integer >= 1')
check('seed', 0 <= seed < 2 ** 63, 'an integer >= 0 and < 2**63')
check('num_samples', num_samples >= 0, 'an integer >= 0')
check('temperature', math.isfinite(temperature) and temperature >= 0, 'a number >= 0')

# %%
# data: one name per line; blank lines and the spaces around a name are dropped
lines = read_text(dataset).splitlines()
words = [line.strip() for line in lines if line.strip()]
if len(words) < 10:
    fail(f'{dataset} has too few lines ({len(words)}): it needs at least 10 (one name per line) '
         f'so that train, val and test are not empty', 1)
# one short item a line: a line far longer than the rest (a paragraph pasted among names) is
# refused, since the recurrence steps through every one of its characters and every name
# drawn with it is padded to its length: one such line would make the whole run crawl
typical = sorted(len(w) for w in words)[len(words) // 2]  # the median length
longest = max(words, key=len)
if len(longest) > 20 * typical:
    fail(f'{dataset} has a line of {len(longest)} characters ({longest[:20]!r}...), over 20 '
         f'times the typical {typical}: this chapter reads one name per line', 1)

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

# Each name is one sequence: input '.' + name, target name + '.'. One forward pass trains every
# position at once, carrying the state, where a window of context re-reads each prefix.
# Padded positions get target -1, which the loss skips.
def build_dataset(names):  # (N, L+1) inputs and targets, L = longest name of the split
    L = max(len(w) for w in names)
    X = torch.zeros(len(names), L + 1, dtype=torch.long)
    Y = torch.full_like(X, -1)
    for i, w in enumerate(names):
        ids = [0] + encode(w) + [0]
        X[i, :len(ids) - 1] = torch.tensor(ids[:-1])
        Y[i, :len(ids) - 1] = torch.tensor(ids[1:])
    return X.to(device), Y.to(device)

data = {split: build_dataset(names) for split, names in splits.items()}

def get_batch(split):  # batch_size random names, trimmed to the longest of them
    X, Y = data[split]
    ix = torch.randint(len(X), (batch_size,), device=device)
    lengths = (Y[ix] >= 0).sum(dim=1)  # (B,): real targets per name, its end included
    T = int(lengths.max())
    return X[ix, :T], Y[ix, :T]  # (B, T), (B, T)

# %%
# evaluation: the exact mean negative log likelihood per character over every name of a split,
# in big chunks; sorting the names by length first keeps each chunk's padding small
@torch.no_grad()
def estimate_loss(chunk=2048):
    model.eval()
    out = {}
    for split, (X, Y) in data.items():
        lengths = (Y >= 0).sum(dim=1)  # (N,): real targets per name, its end included
        total = 0.0
        for ix in lengths.argsort().split(chunk):
            T = int(lengths[ix].max())
            logits, _ = model(X[ix, :T])  # (chunk, T, V)
            targets = Y[ix, :T]           # (chunk, T)
            total += F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1,
                                     reduction='sum').item()
        out[split] = total / lengths.sum().item()
    model.train()
    return out

def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from it
    if not math.isfinite(loss):
        fail(f'training diverged: the loss is {loss} at iter {it}; '
             f'lower --learning_rate (it is {learning_rate})', 1)

# %%
# training: AdamW (a step size per weight) and one-cycle (warm up, then anneal to ~0). fused:
# one kernel updates every weight
torch.manual_seed(seed)
model = RNN().to(device)
params = sum(p.numel() for p in model.parameters())
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay,
                              fused=device in ('cuda', 'cpu'))
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate,
                                                total_steps=max_iters)
log_interval = max(1, eval_interval // 10)  # a progress line ten times per evaluation
t0 = time.time()
for it in range(1, max_iters + 1):
    X, Y = get_batch('train')
    logits, _ = model(X)  # (B, T, V)
    loss = F.cross_entropy(logits.flatten(0, 1), Y.flatten(), ignore_index=-1)  # real chars only
    check_finite(loss.item(), it)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    # the same Wh multiplies the gradient once per time step, so now and then it explodes;
    # rescaling it to norm <= grad_clip keeps one bad batch from throwing the weights away.
    # grad_clip=0 skips it (clip_grad_norm_ would scale every gradient to 0: no learning)
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
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
      f'params={params} time={train_time:.1f}s')

# %%
# sample: start at '.', feed back only the drawn character (h carries the prefix), stop at '.'
g = torch.Generator(device=device).manual_seed(seed)

def pick(logits):  # the next character: drawn from softmax(logits / temperature)
    # temperature 0, or one so small that float32 holds it as 0: always the most likely (greedy)
    if temperature < torch.finfo(torch.float32).tiny:
        return logits.argmax().item()
    # the largest logit subtracted first: divided by a tiny temperature, the rest stay finite
    probs = F.softmax((logits - logits.max()) / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=g).item()

model.eval()  # dropout off: sample from the whole network
samples = []
with torch.no_grad():
    for _ in range(num_samples):
        out = []
        ix = 0
        h = None
        while len(out) < max_len:
            logits, h = model(torch.tensor([[ix]], device=device), h)  # (1, 1, V)
            ix = pick(logits[0, -1])
            if ix == 0:
                break
            out.append(ix)
        samples.append(decode(out))
print('\n'.join(samples))
new = sum(s not in set(splits['train']) for s in samples)
print(f'{new}/{num_samples} samples are new (not in the training names)')
