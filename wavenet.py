"""
Chapter 4: a hierarchical MLP in the style of WaveNet. A longer context (8 characters) is not
squashed into one layer at once: neighbouring characters are fused in pairs, then pairs of pairs,
8 -> 4 -> 2 -> 1, each level a linear layer + BatchNorm + tanh shared across its positions.
Trained as mlp.py, but with ten times its weight decay (0.1): the bigger model overfits sooner.
Run: python wavenet.py   (override anything: python wavenet.py --max_iters=2000 --n_hidden=64)
Result with defaults, 2 CPU cores: val 1.9870, test 1.9762, 76,579 params, 56.3 s.
"""
import ast, math, os, random, signal, sys, time, urllib.request
import torch
import torch.nn as nn
import torch.nn.functional as F

# %%
# hyperparameters
dataset = 'names.txt'     # one name per line, in the working directory (downloaded on first use)
block_size = 8            # context length: how many previous characters (a power of 2: 2, 4, 8, 16)
batch_size = 256          # contexts per training step
max_iters = 26000         # training steps
eval_interval = 6500      # report train/val loss every this many steps
learning_rate = 1e-2      # peak learning rate of the one-cycle schedule
weight_decay = 0.1        # AdamW's pull of the weights toward 0
n_embd = 24               # size of a character's embedding vector
n_hidden = 128            # neurons in each level of the tree
dropout = 0.0             # fraction of each level's outputs zeroed while training
device = ('cuda' if torch.cuda.is_available() else   # the fastest device there is
          'mps' if torch.backends.mps.is_available() else 'cpu')
seed = 1337               # seeds the initial weights, the batches and the sampling
num_samples = 20          # how many names to generate at the end
temperature = 1.0         # divides the logits when sampling: < 1 safer, > 1 wilder, 0 the likeliest

# %%
# model. A one-layer MLP crushes its whole context into one hidden layer in a single step; here
# the characters are fused pairwise, a little at a time, in a tree (as in DeepMind's WaveNet):
#   level 0:   a   b   c   d   e   f   g   h     8 embeddings         (B, 8, n_embd)
#   level 1:    ab      cd      ef      gh      4 fused pairs        (B, 4, n_hidden)
#   level 2:      abcd            efgh          2                    (B, 2, n_hidden)
#   level 3:            abcdefgh                1 -> logits          (B, 1, n_hidden)
# Every level reuses one small linear layer for all its pairs, so a longer context costs
# only one more level (log2 of block_size), not a wider and wider first layer.
# One Linear applied to every pair of neighbours is a 1-D convolution with kernel size 2 and
# stride 2 (the blog's nn.Conv1d(kernel_size=2, stride=2)): the kernel sees two positions, and
# the stride moves it on by two, so the pairs do not overlap and each level halves the length.
# Defining a class does no work: vocab_size comes from the data section below, read when the
# model is built, right before training
class Fuse(nn.Module):  # one level: concatenate neighbours in pairs, then linear, BatchNorm, tanh
    def __init__(self, n_in):
        super().__init__()
        # no bias: BatchNorm subtracts the mean right after, which would remove it
        self.fc = nn.Linear(2 * n_in, n_hidden, bias=False)
        self.bn = nn.BatchNorm1d(n_hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):  # (B, T, C) -> (B, T/2, n_hidden)
        B, T, C = x.shape
        pairs = x.reshape(B, T // 2, 2 * C)  # (B, T/2, 2C): a row holds two neighbours side by side
        x = self.fc(pairs)                    # (B, T/2, n_hidden)
        # BatchNorm over batch AND position: all pairs of a level go through the same weights, so
        # they share one set of statistics, averaged over B * T/2 rows instead of B. BatchNorm
        # keeps every level's pre-activations at unit scale, so tanh never saturates however
        # deep the tree
        x = self.bn(x.flatten(0, 1))          # (B * T/2, n_hidden): one row per pair
        x = x.view(B, T // 2, n_hidden)       # (B, T/2, n_hidden)
        return self.drop(torch.tanh(x))

class WaveNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, n_embd)  # one learned vector per character
        n_levels = int(math.log2(block_size))  # 8 -> 4 -> 2 -> 1 is log2(8) = 3 levels
        levels = [Fuse(n_embd)]  # the first level fuses embeddings, the others hidden vectors
        for _ in range(n_levels - 1):
            levels.append(Fuse(n_hidden))
        self.levels = nn.Sequential(*levels)
        self.lm_head = nn.Linear(n_hidden, vocab_size)
        # init: with PyTorch's default init the first loss is about 3.36, above ln 27 = 3.30,
        # the loss of a uniform guess: the logits are a little confident, and wrong. A smaller
        # output layer starts the predictions nearly uniform, at ~3.30, and no steps are spent
        # shrinking them
        with torch.no_grad():
            self.lm_head.weight *= 0.1

    def forward(self, idx):  # idx (B, block_size) -> logits (B, V)
        emb = self.tok_emb(idx)              # (B, block_size, n_embd)
        x = self.levels(emb)                 # (B, 1, n_hidden): the tree fused everything
        logits = self.lm_head(x.squeeze(1))  # (B, V)
        return logits

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
# a power of 2 is halved down to exactly 1 by the tree; in binary it is a single 1 bit
check('block_size', block_size >= 2 and block_size & (block_size - 1) == 0,
      'a power of 2: 2, 4, 8, 16, ...')
check('batch_size', batch_size >= 2,
      'an integer >= 2 (BatchNorm normalises over the batch: one example has no spread)')
check('max_iters', max_iters >= 1, 'an integer >= 1')
check('eval_interval', eval_interval >= 1, 'an integer >= 1')
check('learning_rate', math.isfinite(learning_rate) and learning_rate > 0, 'a number > 0')
check('weight_decay', math.isfinite(weight_decay) and weight_decay >= 0, 'a number >= 0')
check('n_embd', n_embd >= 1, 'an integer >= 1')
check('n_hidden', n_hidden >= 1, 'an integer >= 1')
check('dropout', 0 <= dropout < 1, 'a number >= 0 and < 1')
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

def build_dataset(names):  # one row per character and end: the block_size characters before it
    X, Y = [], []
    for w in names:
        context = [0] * block_size  # a name starts from a context of '.'s
        for ix in encode(w) + [0]:
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]  # slide the window one character on
    X = torch.tensor(X, device=device)  # (N, block_size)
    Y = torch.tensor(Y, device=device)  # (N,)
    return X, Y

data = {split: build_dataset(names) for split, names in splits.items()}

def get_batch(split):  # batch_size random rows of a split
    X, Y = data[split]
    ix = torch.randint(len(X), (batch_size,), device=device)
    return X[ix], Y[ix]

# %%
# evaluation: the exact mean negative log likelihood per character over every row of a split,
# in big chunks; eval mode makes BatchNorm use its running statistics, not the chunk's
@torch.no_grad()
def estimate_loss(chunk=16384):
    model.eval()
    out = {}
    for split, (X, Y) in data.items():
        total = 0.0
        for x, y in zip(X.split(chunk), Y.split(chunk)):
            total += F.cross_entropy(model(x), y, reduction='sum').item()
        out[split] = total / len(Y)
    model.train()
    return out

def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from it
    if not math.isfinite(loss):
        fail(f'training diverged: the loss is {loss} at iter {it}; '
             f'lower --learning_rate (it is {learning_rate})', 1)

# %%
# training: batches of 256 (a steadier gradient), AdamW (a step size per weight) and one-cycle
# (warm up, then anneal to ~0) need ~30k steps where SGD on batches of 32 needs 200k. fused:
# one kernel updates every weight. No gradient clipping: BatchNorm keeps every layer's scale in
# check (chapter 5 clips: its recurrence applies one weight again and again)
torch.manual_seed(seed)
model = WaveNet().to(device)
params = sum(p.numel() for p in model.parameters())
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay,
                              fused=device in ('cuda', 'cpu'))
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate,
                                                total_steps=max_iters)
log_interval = max(1, eval_interval // 10)  # a progress line ten times per evaluation
t0 = time.time()
for it in range(1, max_iters + 1):
    X, Y = get_batch('train')
    logits = model(X)
    loss = F.cross_entropy(logits, Y)
    check_finite(loss.item(), it)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
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
# sample: start from a context of '.'s, draw the next character, slide the window, stop at '.'
g = torch.Generator(device=device).manual_seed(seed)

def pick(logits):  # the next character: drawn from softmax(logits / temperature)
    # temperature 0, or one so small that float32 holds it as 0: always the most likely (greedy)
    if temperature < torch.finfo(torch.float32).tiny:
        return logits.argmax().item()
    # the largest logit subtracted first: divided by a tiny temperature, the rest stay finite
    probs = F.softmax((logits - logits.max()) / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=g).item()

model.eval()
samples = []
with torch.no_grad():
    for _ in range(num_samples):
        out = []
        context = [0] * block_size
        while len(out) < max_len:
            logits = model(torch.tensor([context], device=device))  # (1, V)
            ix = pick(logits[0])
            if ix == 0:
                break
            out.append(ix)
            context = context[1:] + [ix]
        samples.append(decode(out))
print('\n'.join(samples))
new = sum(s not in set(splits['train']) for s in samples)
print(f'{new}/{num_samples} samples are new (not in the training names)')
