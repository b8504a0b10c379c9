"""
Chapter 6: attention, one part at a time. Each character reads the ones before it: first as a
plain average of the past, then through self-attention heads (attention is just a weighted
average, whose weights are learned from the data), then the rest of a transformer block, a part
a rung: several heads, a feed-forward, a stack, residuals, LayerNorm. Trains as the lecture does.
Run: python attention.py --rung=head   (rungs: bigram average head heads ffwd blocks residual
layernorm; the default, layernorm, is the whole block).
Result with defaults, tiny Shakespeare, 2 CPU cores (AMD EPYC): val 1.8968, 158,913 params,
47.4 s; every rung's val is in the README.
"""
import ast, math, os, random, signal, sys, time, urllib.request
import torch
import torch.nn as nn
import torch.nn.functional as F

# %%
# hyperparameters: the same sizes and steps at every rung, so two rungs differ by one part alone
dataset = 'input.txt'     # tiny Shakespeare (downloaded on first use), or any text file
rung = 'layernorm'        # how much of the block: bigram, average, head, heads, ffwd, blocks,
                          # residual, layernorm; each rung adds one part to the one before
batch_size = 32           # sequences per training step
block_size = 16           # context length: how many characters a position can read
max_iters = 2500          # training steps
eval_interval = 500       # report train/val loss every this many steps
eval_iters = 50           # batches per loss estimate, the same windows every time
learning_rate = 3e-3      # AdamW's step size
n_embd = 64               # channels of a character's vector
n_head = 4                # attention heads side by side (n_embd must divide evenly)
n_layer = 3               # blocks stacked, from the blocks rung on
device = ('cuda' if torch.cuda.is_available() else   # the fastest device there is
          'mps' if torch.backends.mps.is_available() else 'cpu')
seed = 1337               # seeds the initial weights, the batches and the sampling
max_new_tokens = 500      # characters of text to generate
temperature = 1.0         # divides the logits when sampling: < 1 safer, > 1 wilder, 0 the likeliest

# %%
# model: the lecture's parts, in its order. Each class is one idea; LanguageModel puts together
# as many of them as the rung asks for. Defining a class does no work: vocab_size comes from the
# data section below, read when the model is built, right before training
class Average(nn.Module):
    """The simplest way to read the past: each position takes the plain mean of its own vector
    and every earlier one. A bag of words: the weights are fixed, 1/(t+1) for each of the t+1
    characters, nothing learned about which of them matter."""

    def weights(self, x):  # x (B, T, C) -> (T, T): row t holds 1/(t+1) over s <= t, 0 after
        T = x.shape[1]
        past = torch.tril(torch.ones(T, T, device=x.device))  # 1 where s <= t
        scores = torch.zeros(T, T, device=x.device)  # every character as interesting as any
        scores = scores.masked_fill(past == 0, float('-inf'))  # no position reads the future
        return F.softmax(scores, dim=-1)  # equal scores: equal shares, each row sums to 1

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        return self.weights(x) @ x  # (T, T) @ (B, T, C): every row a mean of the past

class Head(nn.Module):
    """One head of self-attention: the same weighted average of the past, the weights now
    computed from the data. Each position sends a query (what am I looking for?) and a key (what
    do I hold?); a query that matches a key gives that position a high score, and softmax turns
    the scores into weights. What is averaged is each position's value (what it hands over)."""

    def __init__(self, head_size):
        super().__init__()
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        past = torch.tril(torch.ones(block_size, block_size))  # 1 where s <= t
        self.register_buffer('past', past)

    def weights(self, x):  # x (B, T, C) -> (B, T, T): row t, how much t reads each s <= t
        T = x.shape[1]
        q = self.query(x)  # (B, T, hs)
        k = self.key(x)    # (B, T, hs)
        # how well t's query matches s's key. Scaled by 1/sqrt(hs): the dot product of hs random
        # numbers grows like sqrt(hs), and large scores would make softmax pick one position only
        scores = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, T)
        scores = scores.masked_fill(self.past[:T, :T] == 0, float('-inf'))  # causal: no s > t
        return F.softmax(scores, dim=-1)  # each row sums to 1; the future gets weight 0

    def forward(self, x):  # (B, T, C) -> (B, T, hs)
        v = self.value(x)  # (B, T, hs)
        return self.weights(x) @ v  # (B, T, T) @ (B, T, hs): each row a weighted average

class MultiHeadAttention(nn.Module):
    """Several heads side by side, each smaller: one can follow the previous vowel while another
    finds the start of the word. Their outputs are concatenated and projected back."""

    def __init__(self):
        super().__init__()
        head_size = n_embd // n_head
        self.heads = nn.ModuleList(Head(head_size) for _ in range(n_head))
        self.proj = nn.Linear(n_embd, n_embd)  # mixes what the heads found

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        outputs = [head(x) for head in self.heads]  # n_head x (B, T, hs)
        return self.proj(torch.cat(outputs, dim=-1))  # (B, T, n_head * hs) = (B, T, C)

class FeedForward(nn.Module):
    """Communication, then computation: attention gathered from other positions, and now each
    position thinks over what it gathered, alone (the same layers at every position)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd)    # widen: room to compute
        self.relu = nn.ReLU()
        self.proj = nn.Linear(4 * n_embd, n_embd)  # back to n_embd channels

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        return self.proj(self.relu(self.fc(x)))

class Block(nn.Module):
    """Attention, then the feed-forward. From the residual rung on, each adds its output to x
    instead of replacing it; from the layernorm rung on, each reads x normalised."""

    def __init__(self):
        super().__init__()
        self.residual = rung in ('residual', 'layernorm')
        norm = rung == 'layernorm'
        self.ln1 = nn.LayerNorm(n_embd) if norm else nn.Identity()  # Identity: x unchanged
        self.sa = MultiHeadAttention()   # communication: read other positions
        self.ln2 = nn.LayerNorm(n_embd) if norm else nn.Identity()
        self.ffwd = FeedForward()        # computation: think it over, position by position

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        if not self.residual:  # each part replaces x: a deep stack is a long chain to train
            x = self.sa(x)
            return self.ffwd(x)
        # x + branch(x): the gradient reaches x unchanged through the +, however deep the
        # stack, and each branch starts as a small correction to what flows past it.
        # LayerNorm (pre-norm, as GPT-2) gives each branch inputs of mean 0 and variance 1
        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
        return x

class LanguageModel(nn.Module):
    def __init__(self):
        super().__init__()
        if rung == 'bigram':  # the lecture's baseline: each character's row holds the next's logits
            self.tok_emb = nn.Embedding(vocab_size, vocab_size)
            return
        self.tok_emb = nn.Embedding(vocab_size, n_embd)  # what the character is
        self.pos_emb = nn.Embedding(block_size, n_embd)  # where it is: an average is order-blind
        if rung == 'average':
            self.mix = Average()
        elif rung == 'head':
            self.mix = Head(n_embd)  # one head as wide as the embedding
        elif rung == 'heads':
            self.mix = MultiHeadAttention()
        else:  # ffwd: one block; blocks, residual, layernorm: n_layer of them
            depth = 1 if rung == 'ffwd' else n_layer
            self.mix = nn.Sequential(*[Block() for _ in range(depth)])
        self.ln_f = nn.LayerNorm(n_embd) if rung == 'layernorm' else nn.Identity()
        self.lm_head = nn.Linear(n_embd, vocab_size)  # a vector -> logits of the next character

    def forward(self, idx, targets=None):  # idx (B, T) -> logits (B, T, vocab_size), loss or None
        B, T = idx.shape
        if rung == 'bigram':
            logits = self.tok_emb(idx)  # (B, T, vocab_size): the row of the character itself
        else:
            tok = self.tok_emb(idx)                                  # (B, T, C)
            pos = self.pos_emb(torch.arange(T, device=idx.device))  # (T, C)
            x = self.mix(tok + pos)                                  # (B, T, C)
            logits = self.lm_head(self.ln_f(x))                      # (B, T, vocab_size)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T))
        return logits, loss

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
rungs = ['bigram', 'average', 'head', 'heads', 'ffwd', 'blocks', 'residual', 'layernorm']
check('rung', rung in rungs, f"one of {', '.join(rungs)}")
check('batch_size', batch_size >= 1, 'an integer >= 1')
check('block_size', block_size >= 1, 'an integer >= 1')
check('max_iters', max_iters >= 1, 'an integer >= 1')
check('eval_interval', eval_interval >= 1, 'an integer >= 1')
check('eval_iters', eval_iters >= 1, 'an integer >= 1')
check('learning_rate', math.isfinite(learning_rate) and learning_rate > 0, 'a number > 0')
check('n_embd', n_embd >= 1, 'an integer >= 1')
check('n_head', n_head >= 1 and n_embd % n_head == 0, f'an integer >= 1 that divides {n_embd}')
check('n_layer', n_layer >= 1, 'an integer >= 1')
check('seed', 0 <= seed < 2 ** 63, 'an integer >= 0 and < 2**63')
check('max_new_tokens', max_new_tokens >= 0, 'an integer >= 0')
check('temperature', math.isfinite(temperature) and temperature >= 0, 'a number >= 0')

# %%
# data: running text, read whole; every character that occurs is in the vocabulary
text = read_text(dataset)
if len(text) < 10 * (block_size + 1):
    fail(f'{dataset} has {len(text)} characters: it needs at least {10 * (block_size + 1)} '
         f'(val must hold a block)', 1)
itos = sorted(set(text))
stoi = {ch: i for i, ch in enumerate(itos)}
vocab_size = len(itos)

def encode(s):
    return [stoi[c] for c in s]

def decode(ids):
    return ''.join(itos[i] for i in ids)

# the first 90% to train on, the last 10% to validate (gpt.py's split: the vals compare)
data = torch.tensor(encode(text), dtype=torch.long)  # (len(text),)
n = int(0.9 * len(data))
text_ids = {'train': data[:n], 'val': data[n:]}

def get_batch(split, generator=None):  # (B, T) inputs and (B, T) targets
    d = text_ids[split]  # random windows of running text; the target is the input shifted by one
    ix = torch.randint(len(d) - block_size, (batch_size,), generator=generator)  # (B,) starts
    x = torch.stack([d[i:i + block_size] for i in ix])          # (B, T)
    y = torch.stack([d[i + 1:i + block_size + 1] for i in ix])  # (B, T)
    return x.to(device), y.to(device)

# %%
# evaluation: eval_iters batches of each split, the same windows at every evaluation (gpt.py's)
@torch.no_grad()
def estimate_loss():
    model.eval()
    out = {}
    for split in text_ids:
        windows = torch.Generator().manual_seed(seed)  # the same windows every time
        losses = []
        for _ in range(eval_iters):
            x, y = get_batch(split, windows)
            _, loss = model(x, y)
            losses.append(loss.item())
        out[split] = sum(losses) / len(losses)
    model.train()
    return out

def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from it
    if not math.isfinite(loss):
        fail(f'training diverged: the loss is {loss} at iter {it}; '
             f'lower --learning_rate (it is {learning_rate})', 1)

# %%
# training: AdamW at one learning rate, as in the lecture; the model is built here. fused: one
# kernel updates every weight
torch.manual_seed(seed)
model = LanguageModel().to(device)
params = sum(p.numel() for p in model.parameters())
print(f'rung {rung}: {rungs.index(rung) + 1} of {len(rungs)}, {params} parameters')
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, fused=device in ('cuda', 'cpu'))
log_interval = max(1, eval_interval // 10)  # a progress line ten times per evaluation
t0 = time.time()
for it in range(1, max_iters + 1):
    xb, yb = get_batch('train')
    logits, loss = model(xb, yb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if it % log_interval == 0 or it == max_iters:
        check_finite(loss.item(), it)
        dt = time.time() - t0
        eta = dt / it * (max_iters - it)
        print(f'iter {it}/{max_iters} | loss {loss.item():.4f} | {1000 * dt / it:.1f} ms/iter '
              f'| eta {eta:.0f} s')
    if it % eval_interval == 0 or it == max_iters:
        losses = estimate_loss()
        check_finite(sum(losses.values()), it)  # the sum: a nan in either split makes it nan
        print(f"iter {it}/{max_iters} | train {losses['train']:.4f} | val {losses['val']:.4f}")
train_time = time.time() - t0
print(f"final: train={losses['train']:.4f} val={losses['val']:.4f} params={params} "
      f'time={train_time:.1f}s')

# %%
# sample: feed the model its own output, one character at a time, the context cropped to
# block_size, starting from the first character of the vocabulary (a newline in most texts)
g = torch.Generator(device=device).manual_seed(seed)

def pick(logits):  # logits (V,) -> the next character
    # temperature 0, or one so small that float32 holds it as 0: always the most likely (greedy)
    if temperature < torch.finfo(torch.float32).tiny:
        return logits.argmax().item()
    # the largest logit subtracted first: divided by a tiny temperature, the rest stay finite
    probs = F.softmax((logits - logits.max()) / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=g).item()

model.eval()
idx = torch.zeros((1, 1), dtype=torch.long, device=device)  # (1, 1): character 0
with torch.no_grad():
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -block_size:])  # (1, T, V): the positions pos_emb knows
        nxt = pick(logits[0, -1])
        idx = torch.cat((idx, torch.tensor([[nxt]], device=device)), dim=1)  # (1, T + 1)
        print(itos[nxt], end='', flush=True)  # streamed: watch the model write
print()
