"""
Chapter 8: attention without the mask, for classification: is a name real, or drawn from
chapter 1's bigram table? Each fake is as long as a real name and made of the table's pairs, so
a model that sees only pairs and length (the baseline below) is near chance: what this encoder
(gpt.py's blocks, each character seeing the whole name) gets right is structure beyond pairs.
Trained as the names chapters are, AdamW and a one-cycle schedule, on real-or-fake labels.
Run: python encoder.py   (override anything: python encoder.py --max_iters=500)
Result with defaults, 2 CPU cores: val_acc 0.8249, test_acc 0.8358 (baseline 0.5304, 0.5306),
117,746 params, 118.6 s.
"""
import ast, math, os, random, signal, sys, time, urllib.request
import torch
import torch.nn as nn
import torch.nn.functional as F

# %%
# hyperparameters
dataset = 'names.txt'     # one name per line, in the working directory (downloaded on first use)
block_size = 17           # longest input: '.' + the longest name + '.'
batch_size = 128          # names per training step: half real, half fresh fakes
max_iters = 5500          # training steps
eval_interval = 2750      # report losses and val accuracy every this many steps
learning_rate = 3e-3      # peak learning rate of the one-cycle schedule
dropout = 0.0             # fraction of attention weights and block outputs zeroed while training
n_embd = 48               # channels of the residual stream
n_head = 4                # attention heads per block (n_embd must divide evenly)
n_layer = 4               # transformer blocks
device = ('cuda' if torch.cuda.is_available() else   # the fastest device there is
          'mps' if torch.backends.mps.is_available() else 'cpu')
seed = 1337               # seeds the fakes, the initial weights and the batches
num_show = 8              # how many val names to show at the end, with the model's p(real)

# %%
# model: gpt.py's parts in its order (MultiHeadAttention, FeedForward, Block), then the Encoder:
# gpt.py's GPT without its lm_head and without the causal mask. A small MLP, the Classifier,
# reads the mean of the encodings. Defining a class does no work: vocab_size comes from the data
# section below, read when the model is built, right before training
class MultiHeadAttention(nn.Module):
    """n_head self-attention heads side by side. Each is the lecture's Head: query, key, value,
    scores, the padding mask, softmax, dropout, a weighted sum of the values. Here the heads run
    batched as one tensor op: one Linear makes the queries of every head, and its n_embd outputs
    are split into (n_head, head_size) by heads()."""

    def __init__(self):
        super().__init__()
        self.query = nn.Linear(n_embd, n_embd)  # what each position is looking for
        self.key = nn.Linear(n_embd, n_embd)    # what each position offers to the others
        self.value = nn.Linear(n_embd, n_embd)  # what it hands over when it is chosen
        self.proj = nn.Linear(n_embd, n_embd)   # mixes the concatenated heads back together
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, pad):  # x (B, T, C), pad (B, T): True past the name's end -> (B, T, C)
        B, T, C = x.shape
        q = self.heads(self.query(x))  # (B, nh, T, hs)
        k = self.heads(self.key(x))    # (B, nh, T, hs)
        v = self.heads(self.value(x))  # (B, nh, T, hs)
        # the math written out, on every device: a name's (T, T) weights are small, so gpt.py's
        # fused kernel would save little here (and on an Apple GPU it ignores its dropout)
        y = self.dropout(self.attention(q, k, pad)) @ v  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # concatenate the heads: (B, T, C)
        return self.dropout(self.proj(y))

    def heads(self, x):  # (B, T, C) -> (B, nh, T, hs)
        # the channels cut into n_head heads of hs each, and the heads made a batch dimension:
        # no head sees another's channels
        B, T, C = x.shape
        return x.view(B, T, n_head, C // n_head).transpose(1, 2)

    def attention(self, q, k, pad):  # the lecture's weights: (B, nh, T, T), row t sums to 1
        att = q @ k.transpose(-2, -1) * q.size(-1) ** -0.5  # (B, nh, T, T): how well t matches s
        # no causal mask: every character sees the whole name, before and after it. Only the
        # padding is hidden, so a name gets the same encodings alone or in a batch of longer names
        att = att.masked_fill(pad[:, None, None, :], float('-inf'))
        return F.softmax(att, dim=-1)  # each row sums to 1; the padding gets weight 0

    def weights(self, x, pad):  # x (B, T, C) -> the attention weights of every head (B, nh, T, T)
        q = self.heads(self.query(x))
        k = self.heads(self.key(x))
        return self.attention(q, k, pad)

class FeedForward(nn.Module):  # attention gathered from other positions; each now thinks alone
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(n_embd, 4 * n_embd)    # widen: room to compute
        self.gelu = nn.GELU()
        self.proj = nn.Linear(4 * n_embd, n_embd)  # back to the width of the residual stream
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        return self.dropout(self.proj(self.gelu(self.fc(x))))

class Block(nn.Module):
    """Communication (attention across positions), then computation (feed-forward), each added
    into x: the residual stream carries everything forward, the branches only add to it."""

    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.sa = MultiHeadAttention()   # communication: look at other positions
        self.ln2 = nn.LayerNorm(n_embd)
        self.ffwd = FeedForward()        # computation: think it over, position by position

    def forward(self, x, pad):  # (B, T, C) -> (B, T, C)
        x = x + self.sa(self.ln1(x), pad)
        x = x + self.ffwd(self.ln2(x))
        return x

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, n_embd)  # what the character is
        self.pos_emb = nn.Embedding(block_size, n_embd)  # where it is: attention is order-blind
        self.blocks = nn.ModuleList(Block() for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)

    def forward(self, idx, pad):  # idx (B, T), pad (B, T) -> encodings (B, T, C)
        B, T = idx.shape
        tok = self.tok_emb(idx)                                  # (B, T, C)
        pos = self.pos_emb(torch.arange(T, device=idx.device))  # (T, C)
        x = tok + pos                                            # (B, T, C)
        for block in self.blocks:
            x = block(x, pad)
        return self.ln_f(x)

    def attention_maps(self, idx, lens):  # idx (B, T), lens (B,) -> per block (B, nh, T, T)
        B, T = idx.shape
        tok = self.tok_emb(idx)                                  # (B, T, C)
        pos = self.pos_emb(torch.arange(T, device=idx.device))  # (T, C)
        x = tok + pos                                            # (B, T, C)
        pad = padding(idx, lens)                                 # (B, T): True past the end
        maps = []
        for block in self.blocks:
            maps.append(block.sa.weights(block.ln1(x), pad))  # what this block's attention looks at
            x = block(x, pad)
        return maps

class Classifier(nn.Module):  # (B, C) -> (B, 2) log-probabilities of fake (0) and real (1)
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(n_embd, n_embd)
        self.relu = nn.ReLU()
        self.head = nn.Linear(n_embd, 2)

    def forward(self, x):
        logits = self.head(self.relu(self.fc(x)))  # (B, 2)
        return F.log_softmax(logits, dim=-1)

def padding(idx, lens):  # idx (B, T), lens (B,) -> (B, T): True past the name's end
    T = idx.size(1)
    return torch.arange(T, device=idx.device) >= lens[:, None]

class EncoderClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.classifier = Classifier()

    def forward(self, idx, lens, targets=None):  # idx (B, T), lens (B,) -> (B, 2) log-probs, loss
        pad = padding(idx, lens)
        x = self.encoder(idx, pad)  # (B, T, C)
        x = x.masked_fill(pad[:, :, None], 0)  # the padding's encodings count for nothing
        x = x.sum(1) / lens[:, None]  # (B, C): the mean over the name's positions
        logp = self.classifier(x)     # (B, 2)
        if targets is None:
            return logp, None
        # cross-entropy: minus the log-probability of the right class, averaged over the batch
        loss = F.nll_loss(logp, targets)
        return logp, loss

    @torch.no_grad()
    def attention_maps(self, idx, lens):  # one (B, nh, T, T) map per block, for a look inside
        return self.encoder.attention_maps(idx, lens)

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
check('block_size', block_size >= 1, 'an integer >= 1')
check('batch_size', batch_size >= 2 and batch_size % 2 == 0,
      'an even integer >= 2 (half of a batch is real names, half fakes of the same lengths)')
check('max_iters', max_iters >= 1, 'an integer >= 1')
check('eval_interval', eval_interval >= 1, 'an integer >= 1')
check('learning_rate', math.isfinite(learning_rate) and learning_rate > 0, 'a number > 0')
check('dropout', math.isfinite(dropout) and 0 <= dropout < 1, 'a number >= 0 and < 1')
check('n_embd', n_embd >= 1, 'an integer >= 1')
check('n_head', n_head >= 1, 'an integer >= 1')
check('n_embd', n_embd % n_head == 0,
      f'a multiple of n_head={n_head} (each head gets n_embd // n_head channels)')
check('n_layer', n_layer >= 1, 'an integer >= 1')
check('seed', 0 <= seed < 2 ** 63, 'an integer >= 0 and < 2**63')
check('num_show', num_show >= 1, 'an integer >= 1')

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

# the two checks that need the data
if block_size < max_len + 2:
    fail(f'the longest name needs --block_size={max_len + 2} or more: '
         f"'.' + its {max_len} characters + '.' (block_size is {block_size})")
if batch_size > 2 * n1:
    fail(f'--batch_size={batch_size} is too large: half of a batch is real names drawn from the '
         f'{n1} training names, and a batch of more only repeats them; use at most {2 * n1}')

# %%
# the fakes: chapter 1's model, fitted on train only: count every (character, next character)
# pair, '.' at both ends, add 1 so that no pair is impossible, and normalise each row
xs, ys = [], []
for w in splits['train']:
    ids = [0] + encode(w) + [0]
    xs += ids[:-1]
    ys += ids[1:]
pair_ids = torch.tensor(xs) * vocab_size + torch.tensor(ys)
counts = torch.bincount(pair_ids, minlength=vocab_size ** 2).view(vocab_size, vocab_size)
P = counts.float() + 1
P = P / P.sum(dim=1, keepdim=True)  # each row is now P(next char | this char), summing to 1
cdf = P.cumsum(dim=1)  # each row's probabilities laid end to end on [0, 1]
cdf[:, -1] = 1.0  # rounding must leave no gap at the top
# the data's own random numbers: they draw the fakes, and at the end pick the val names shown.
# torch's global ones, seeded when the model is built, start the weights and pick the batches
data_rng = torch.Generator().manual_seed(seed)

def sample_names(n):
    """n names from the table side by side, one character a step. A uniform number u picks the
    character whose stretch of the row holds it: the same draw as chapter 1's
    torch.multinomial(P[ix], 1), much faster for many rows at once. A name still going
    after max_len characters is dropped: the sample length cap."""
    ix = torch.zeros(n, dtype=torch.long)  # every name starts after a '.'
    columns = []
    for _ in range(max_len + 1):
        u = torch.rand(n, 1, generator=data_rng)  # (n, 1)
        ix = torch.searchsorted(cdf[ix], u)[:, 0]  # (n,): the first character whose cdf reaches u
        columns.append(ix)
    names = []
    for row in torch.stack(columns, 1).tolist():  # (n, max_len + 1)
        if 0 in row:
            names.append(decode(row[:row.index(0)]))
    return names

# The fakes must be as long as real names. Left to itself the table ends a name whenever it
# draws '.', so its names are mostly shorter than real ones: their length alone would tell most
# fakes apart, and a model would learn to count, not to read. So each fake is given the length
# of a real name, and is a name of the table's that came out exactly that long: its pairs are the
# table's, its length a real name's. A drawn name that is a real name ('ann') is thrown away: as
# a fake it would be noise that no classifier can beat
real_names = set(words)
clashes = 0  # how many of the drawn names of a wanted length were real names

def sample_fakes(lengths):  # one fake for each length asked for: draw many names, keep some
    global clashes
    found = {n: [] for n in lengths}  # length -> the fakes of that length so far
    wanted = {n: lengths.count(n) for n in found}
    missing = len(lengths)
    rounds = 0
    while missing > 0:
        rounds += 1
        if rounds > 100:  # a table whose names of some length are all real names never ends
            fail(f'after 100 rounds of drawing, {missing} fakes are still missing: the '
                 f"table's names of some length asked for are all real names, or too rare", 1)
        for name in sample_names(4 * len(lengths)):
            n = len(name)
            if n not in found or len(found[n]) == wanted[n]:
                continue  # a length nobody asked for, or enough of it
            if name in real_names:
                clashes += 1
                continue
            found[n].append(name)
            missing -= 1
    fakes = []
    for n in lengths:
        fakes.append(found[n].pop())
    return fakes

def pad_names(names):  # '.' + name + '.', padded with '.': (N, T) and the lengths (N,)
    rows = [torch.tensor([0] + encode(w) + [0]) for w in names]
    X = nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (N, T)
    lens = torch.tensor([len(w) + 2 for w in names])  # (N,): the end '.' shows where a name stops
    return X, lens

# each split: its real names (label 1), then a fake (0) of the same length for each
data = {}
for split, real in splits.items():
    fakes = sample_fakes([len(w) for w in real])
    X, lens = pad_names(real + fakes)
    Y = torch.tensor([1] * len(real) + [0] * len(fakes))
    data[split] = X.to(device), lens.to(device), Y.to(device)
print(f'{len(words)} fakes drawn from the bigram table, one as long as each real name; '
      f'{clashes} of its names of those lengths were real names, thrown away')

def get_batch():  # random train names, and as many fresh fakes of the same lengths
    half = batch_size // 2
    real = [splits['train'][i] for i in torch.randint(n1, (half,))]
    fakes = sample_fakes([len(w) for w in real])  # fresh every step: none can be memorized
    X, lens = pad_names(real + fakes)
    Y = (torch.arange(batch_size) < half).long()  # (B,): 1 for the real names first
    return X.to(device), lens.to(device), Y.to(device)

# %%
# evaluation: every name of every split: the mean cross-entropy (split) and the accuracy
# (split_acc). In chunks of names of similar lengths, each cut to its longest name
@torch.no_grad()
def estimate_loss(chunk=4096):
    model.eval()
    out = {}
    for split, (X, lens, Y) in data.items():
        order = lens.argsort()
        chunks = []
        for ix in order.split(chunk):
            T = int(lens[ix].max())
            logp, _ = model(X[ix, :T], lens[ix])  # (chunk, 2)
            chunks.append(logp)
        logp = torch.cat(chunks)  # (N, 2), the names in the order of `order`
        out[split] = F.nll_loss(logp, Y[order]).item()
        out[split + '_acc'] = (logp.argmax(1) == Y[order]).float().mean().item()
    model.train()
    return out

def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from it
    if not math.isfinite(loss):
        fail(f'training diverged: the loss is {loss} at iter {it}; '
             f'lower --learning_rate (it is {learning_rate})', 1)

# %%
# training: AdamW (its default weight decay, on every weight) and one-cycle (warm up, then anneal
# to ~0): a scheduler that counts its own steps is enough for a run that is never resumed.
# fused: one kernel updates every weight. No gradient clipping: a small model at a modest rate;
# a run that diverges stops at check_finite
torch.manual_seed(seed)
model = EncoderClassifier().to(device)
params = sum(p.numel() for p in model.parameters())
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate,
                              fused=device in ('cuda', 'cpu'))
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate,
                                                total_steps=max_iters)
log_interval = max(1, eval_interval // 10)  # a progress line ten times per evaluation
t0 = time.time()
for it in range(1, max_iters + 1):
    X, lens, Y = get_batch()
    logp, loss = model(X, lens, Y)
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
        print(f"iter {it}/{max_iters} | train {losses['train']:.4f} | val {losses['val']:.4f} "
              f"| val_acc {losses['val_acc']:.4f}")
train_time = time.time() - t0

# %%
# the baseline: the strongest simple model a skeptic would try that sees only pairs and length.
# A logistic regression with one weight per length, one per pair (a bag of bigrams: the weights
# of the name's pairs added up) and two for the bigram log-likelihood (its sum and its mean per
# pair). Fitted on train as scikit-learn's LogisticRegression would be: L-BFGS, full batch
logP = P.log()

def pair_features(X, lens):  # (N, T), (N,) -> the pair counts (N, V*V), the log-likelihood (N, 2)
    pad = torch.arange(1, X.size(1)) >= lens[:, None]  # (N, T - 1): pairs in the padding
    pairs = X[:, :-1] * vocab_size + X[:, 1:]  # (N, T - 1): pair (a, b) is the number a * V + b
    pairs = pairs.masked_fill(pad, vocab_size ** 2)  # the padding: one more number, dropped below
    bag = torch.zeros(len(X), vocab_size ** 2 + 1)
    bag.scatter_add_(1, pairs, torch.ones(pairs.shape))  # (N, V*V + 1): how often each pair occurs
    bag = bag[:, :-1]  # (N, V*V): a bag of bigrams, without the padding's column
    pair_ll = logP[X[:, :-1], X[:, 1:]]  # (N, T - 1): log P(next | this) of every pair
    ll = pair_ll.masked_fill(pad, 0).sum(1)  # (N,): the name's log-likelihood, its end included
    ll_mean = ll / (lens - 1)  # a name of n characters has n + 1 pairs
    return bag, torch.stack([ll / 10, ll_mean], 1)  # / 10: numbers near 1, like the mean

feats = {}
for split, (X, lens, Y) in data.items():
    bag, ll = pair_features(X.cpu(), lens.cpu())
    feats[split] = bag, lens.cpu(), ll, Y.cpu().float()
length_weight = torch.zeros(max_len + 3, requires_grad=True)  # lens = characters + 2
pair_weight = torch.zeros(vocab_size ** 2, requires_grad=True)
ll_weight = torch.zeros(2, requires_grad=True)

# the bag and the length as counts times weights (matmuls), not as weights gathered by index:
# the gradient of a gather adds floats in an order that changes from run to run, and L-BFGS makes
# those last digits grow; a matmul gives the same numbers on every run
def baseline_logits(bag, lens, ll):  # > 0: real
    length = F.one_hot(lens, len(length_weight)).float()  # (N, max_len + 3): a 1 at the length
    return length @ length_weight + bag @ pair_weight + ll @ ll_weight

def baseline_loss():
    bag, lens, ll, y = feats['train']
    baseline_optimizer.zero_grad()
    loss = F.binary_cross_entropy_with_logits(baseline_logits(bag, lens, ll), y)
    loss.backward()
    return loss

baseline_optimizer = torch.optim.LBFGS([length_weight, pair_weight, ll_weight], max_iter=200,
                                       line_search_fn='strong_wolfe')
baseline_optimizer.step(baseline_loss)
base = {}
with torch.no_grad():
    for split, (bag, lens, ll, y) in feats.items():
        logits = baseline_logits(bag, lens, ll)
        base[split] = F.binary_cross_entropy_with_logits(logits, y).item()
        base[split + '_acc'] = ((logits > 0) == y).float().mean().item()
print(f"baseline (length, bag of bigrams, bigram log-likelihood): val={base['val']:.4f} "
      f"test={base['test']:.4f} val_acc={base['val_acc']:.4f} test_acc={base['test_acc']:.4f}")
print(f"final: train={losses['train']:.4f} val={losses['val']:.4f} test={losses['test']:.4f} "
      f"train_acc={losses['train_acc']:.4f} val_acc={losses['val_acc']:.4f} "
      f"test_acc={losses['test_acc']:.4f} params={params} time={train_time:.1f}s")

# %%
# attention view: the same drawing as gpt.py's --show_attention
# a stream that names no encoding (a notebook's, a StringIO) takes any text: utf-8
def printable(chars):  # can this stdout encode them? A Windows console or pipe writes cp1252
    try:
        chars.encode(sys.stdout.encoding or 'utf-8')
    except (UnicodeEncodeError, LookupError):
        return False
    return True

def draw_attention(chars, att):  # att (n_head, T, T): row t, how character t spreads its attention
    stand_ins = {'\n': '⏎', ' ': '␣', '\t': '⇥'}  # blanks made visible
    shades = '·░▒▓█'  # from a little attention to the row's most
    if not printable(''.join(stand_ins.values()) + shades):  # ASCII ones, where only ASCII prints
        stand_ins = {'\n': '$', ' ': '_', '\t': '>'}
        shades = '.:-=#'
    shown = [stand_ins.get(c, c) for c in chars]
    print(f'each row is a character; the shading shows what it attends to: '
          f'{shades[-1]} most, {shades[0]} little, blank 0')
    for h, weights in enumerate(att.tolist()):
        label = f'head {h}'
        print(f'{label:>8}   ' + ' '.join(shown))
        for c, row in zip(shown, weights):
            peak = max(row)
            cells = []
            for w in row:
                if w == 0:
                    cells.append(' ')  # exactly 0: masked, this character cannot see it
                else:
                    cells.append(shades[round(4 * w / peak)])
            line = f'{c:>8}   ' + ' '.join(cells)
            print(line.rstrip())

# instead of samples: val names the model never saw, each with its p(real) and the baseline's;
# then the attention of the last block, reading the first of them
model.eval()
X, lens, Y = data['val']
half = len(Y) // 2  # the split holds its real names, then their fakes in the same order
shown_rows = []
for i in torch.randperm(half, generator=data_rng)[:(num_show + 1) // 2].tolist():
    shown_rows += [i, half + i]  # a real name, and the fake of the same length drawn for it
rows = torch.tensor(shown_rows[:num_show])  # on the CPU, where the baseline's features are
bag, base_lens, ll, _ = feats['val']
with torch.no_grad():
    logp, _ = model(X[rows.to(device)], lens[rows.to(device)])
    base_p = baseline_logits(bag[rows], base_lens[rows], ll[rows]).sigmoid()
    maps = model.attention_maps(X[rows.to(device)], lens[rows.to(device)])  # (B, nh, T, T) each
p_real = logp[:, 1].exp()
for i, row in enumerate(rows.tolist()):
    kind = 'real' if Y[row] else 'fake'
    name = decode(X[row, 1:lens[row] - 1].tolist())
    print(f'p(real) {p_real[i]:.3f} (baseline {base_p[i]:.3f})  {kind}  {name}')
n = int(lens[rows[0]])
chars = decode(X[rows[0], :n].tolist())
print(f'attention in the last block, head by head, reading {chars[1:-1]!r}:')
draw_attention(chars, maps[-1][0, :, :n, :n])  # the name's positions only
