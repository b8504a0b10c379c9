"""
Chapter 7: chapter 6's transformer made a tool. The model is the layernorm rung with its heads
batched as one tensor op, the fused attention kernel, GELU and GPT-2's init; it trains with
nanoGPT's recipe (dropout, weight decay, clipping, warmup and cosine decay: a bigger model, longer
runs), saves checkpoints and runs on several GPUs. Run: python gpt.py (tiny Shakespeare), or
--dataset=your.txt; on a CUDA GPU it takes nanoGPT's sizes (--sizes=laptop keeps these); on N
GPUs: torchrun --standalone --nproc_per_node=N gpt.py; attention maps: --show_attention=True.
Result with the CPU defaults, 2 CPU cores (AMD EPYC): val 1.6276 after 107.7 s of training.
"""
import ast, contextlib, math, os, random, signal, sys, time, urllib.request
import torch
import torch.nn as nn
import torch.nn.functional as F

# %%
# hyperparameters: sized for a laptop's CPU; on a CUDA GPU, nanoGPT's (see sizes, below)
dataset = 'input.txt'     # tiny Shakespeare (downloaded on first use), or any text file or list
mode = 'auto'             # text: running text; names: one item per line; auto: names if the
                          # lines average under 20 characters
sizes = 'auto'            # laptop: the sizes below; gpu: nanoGPT's; auto: gpu on a CUDA device
batch_size = 24           # sequences per micro-batch
gradient_accumulation_steps = 1  # micro-batches per step (shared among torchrun's processes)
block_size = 64           # context length: how many characters attention can see
n_layer = 2               # transformer blocks
n_head = 4                # attention heads per block (n_embd must divide evenly)
n_embd = 128              # channels of the residual stream
dropout = 0.0             # fraction of activations zeroed while training (the gpu sizes: 0.2)
max_iters = 3400          # optimizer steps
eval_interval = 850       # report train/val loss (and checkpoint if val improved) this often
eval_iters = 40           # batches per loss estimate on running text (names: whole splits)
learning_rate = 3e-3      # peak learning rate, after warmup
warmup_iters = 100        # steps of linear warmup; then cosine decay to lr_decay * learning_rate
lr_decay = 0.1            # the learning rate ends at this fraction of its peak
weight_decay = 0.1        # AdamW decay of the weight matrices (not biases, not LayerNorm)
grad_clip = 1.0           # the gradient's norm is clipped to this (0: no clipping)
compile = False           # torch.compile the model: faster GPU steps after a minute of compiling
device = ('cuda' if torch.cuda.is_available() else   # the fastest device there is
          'mps' if torch.backends.mps.is_available() else 'cpu')
dtype = 'float32'         # autocast precision: float32, bfloat16 or float16 (on a GPU: sizes)
seed = 1337               # seeds the initial weights, the batches and the sampling
num_samples = 20          # how many names to generate at the end (names mode)
prompt = '\n'             # text: what to continue; names: the start of every sampled name
max_new_tokens = 500      # characters of text to generate
temperature = 1.0         # divides the logits when sampling: < 1 safer, > 1 wilder, 0 the likeliest
top_k = 0                 # sample only among the k most likely characters (0: all)
show_attention = False    # before sampling, draw what each prompt character attends to, per head
attention_layer = -1      # the block whose heads --show_attention draws (-1: the last)
ckpt_path = 'gpt.pt'      # checkpoint: saved when val improves, and when a run is stopped early
resume = False            # continue training from ckpt_path
sample_only = False       # load ckpt_path and only generate

# %%
# model: chapter 6's block, batched: MultiHeadAttention (every head in one tensor op),
# FeedForward, Block, GPT. Defining a class does no work: the sizes are read, and vocab_size
# comes from the data section below, when the model is built, right before training
class MultiHeadAttention(nn.Module):
    """n_head self-attention heads side by side. Each is chapter 6's Head: query, key, value,
    scores, the causal mask, softmax, dropout, a weighted sum of the values. Here the heads run
    batched as one tensor op: one Linear makes the queries of every head, and its n_embd outputs
    are split into (n_head, head_size) by heads()."""

    def __init__(self):
        super().__init__()
        self.query = nn.Linear(n_embd, n_embd)  # what each position is looking for
        self.key = nn.Linear(n_embd, n_embd)    # what each position offers to the others
        self.value = nn.Linear(n_embd, n_embd)  # what it hands over when it is chosen
        self.proj = nn.Linear(n_embd, n_embd)   # mixes the concatenated heads back together
        self.dropout = nn.Dropout(dropout)
        past = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))  # s <= t
        self.register_buffer('tril', past, persistent=False)

    def forward(self, x):  # x (B, T, C) -> (B, T, C)
        B, T, C = x.shape
        q = self.heads(self.query(x))  # (B, nh, T, hs)
        k = self.heads(self.key(x))    # (B, nh, T, hs)
        v = self.heads(self.value(x))  # (B, nh, T, hs)
        if self.training and self.dropout.p > 0 and x.device.type == 'mps':
            # the math written out: on an Apple GPU the fused kernel ignores its dropout
            y = self.dropout(self.attention(q, k)) @ v  # (B, nh, T, hs)
        else:  # the same computation in one fused kernel: faster, and it keeps no (T, T) weights
            p = self.dropout.p if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, C)  # concatenate the heads: (B, T, C)
        return self.dropout(self.proj(y))

    def heads(self, x):  # (B, T, C) -> (B, nh, T, hs)
        # the channels cut into n_head heads of hs each, and the heads made a batch dimension:
        # no head sees another's channels
        B, T, C = x.shape
        return x.view(B, T, n_head, C // n_head).transpose(1, 2)

    def attention(self, q, k):  # the lecture's weights: (B, nh, T, T), row t sums to 1
        T = q.size(2)
        att = q @ k.transpose(-2, -1) * q.size(-1) ** -0.5  # (B, nh, T, T): how well t matches s
        att = att.masked_fill(~self.tril[:T, :T], float('-inf'))  # causal: no s > t
        return F.softmax(att, dim=-1)  # each row sums to 1; the future gets weight 0

    def weights(self, x):  # x (B, T, C) -> the attention weights of every head (B, nh, T, T)
        q = self.heads(self.query(x))
        k = self.heads(self.key(x))
        return self.attention(q, k)

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

    def forward(self, x):  # (B, T, C) -> (B, T, C)
        x = x + self.sa(self.ln1(x))
        x = x + self.ffwd(self.ln2(x))
        return x

class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, n_embd)  # what the character is
        self.pos_emb = nn.Embedding(block_size, n_embd)  # where it is: attention is order-blind
        self.blocks = nn.ModuleList(Block() for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size)
        # small weights make the first predictions near uniform (loss ~ ln vocab_size). Each
        # block adds two branches into x, so their output layers start 1/sqrt(2 n_layer) smaller:
        # the variance of the residual stream stays put however deep the model is
        residual_outputs = []
        for block in self.blocks:
            residual_outputs.append(block.sa.proj)
            residual_outputs.append(block.ffwd.proj)
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear):
                std = 0.02 / math.sqrt(2 * n_layer) if module in residual_outputs else 0.02
                nn.init.normal_(module.weight, std=std)
                nn.init.zeros_(module.bias)

    def forward(self, idx, targets=None):  # idx (B, T) -> logits (B, T, vocab_size), loss or None
        B, T = idx.shape
        tok = self.tok_emb(idx)                                  # (B, T, C)
        pos = self.pos_emb(torch.arange(T, device=idx.device))  # (T, C)
        x = tok + pos                                            # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab_size)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), ignore_index=-1)
        return logits, loss

    def attention_maps(self, idx):  # idx (B, T) -> per block, its heads' weights (B, nh, T, T)
        B, T = idx.shape
        tok = self.tok_emb(idx)                                  # (B, T, C)
        pos = self.pos_emb(torch.arange(T, device=idx.device))  # (T, C)
        x = tok + pos                                            # (B, T, C)
        maps = []
        for block in self.blocks:
            maps.append(block.sa.weights(block.ln1(x)))  # what this block's attention looks at
            x = block(x)
        return maps

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
check('mode', mode in ('auto', 'text', 'names'), 'auto, text or names')
check('sizes', sizes in ('auto', 'laptop', 'gpu'), 'auto, laptop or gpu')
check('batch_size', batch_size >= 1, 'an integer >= 1')
check('gradient_accumulation_steps', gradient_accumulation_steps >= 1, 'an integer >= 1')
check('block_size', block_size >= 1, 'an integer >= 1')
check('n_layer', n_layer >= 1, 'an integer >= 1')
check('n_head', n_head >= 1, 'an integer >= 1')
check('n_embd', n_embd >= 1, 'an integer >= 1')
check('dropout', math.isfinite(dropout) and 0 <= dropout < 1, 'a number >= 0 and < 1')
check('max_iters', max_iters >= 1, 'an integer >= 1')
check('eval_interval', eval_interval >= 1, 'an integer >= 1')
check('eval_iters', eval_iters >= 1, 'an integer >= 1')
check('learning_rate', math.isfinite(learning_rate) and learning_rate > 0, 'a number > 0')
check('warmup_iters', warmup_iters >= 0, 'an integer >= 0')
check('lr_decay', math.isfinite(lr_decay) and 0 <= lr_decay <= 1, 'a number from 0 to 1')
check('weight_decay', math.isfinite(weight_decay) and weight_decay >= 0, 'a number >= 0')
check('grad_clip', math.isfinite(grad_clip) and grad_clip >= 0, 'a number >= 0')
check('dtype', dtype in ('float32', 'bfloat16', 'float16'), 'float32, bfloat16 or float16')
check('seed', 0 <= seed < 2 ** 63, 'an integer >= 0 and < 2**63')
check('num_samples', num_samples >= 0, 'an integer >= 0')
check('max_new_tokens', max_new_tokens >= 0, 'an integer >= 0')
check('temperature', math.isfinite(temperature) and temperature >= 0, 'a number >= 0')
check('top_k', top_k >= 0, 'an integer >= 0')
if not ckpt_path: fail('--ckpt_path is empty: name the checkpoint file, e.g. --ckpt_path=gpt.pt')

# %%
# a run that goes on from a checkpoint (--resume, --sample_only) is the run that was started: it
# takes every hyperparameter the checkpoint saved, except those given again as flags; its model's
# shape and mode cannot change. weights_only=True: torch.load rebuilds only tensors and
# containers, so a checkpoint file cannot run code
checkpoint = None
this_run = ['resume', 'sample_only', 'ckpt_path', 'device']  # this run's own, never restored
if resume or sample_only:
    try:
        checkpoint = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        fail(f'checkpoint {ckpt_path} not found: train first (python gpt.py), '
             f'or pass --ckpt_path=...', 1)
    except Exception:
        fail(f'checkpoint {ckpt_path} cannot be read: it is truncated, not a torch file, '
             f'or holds more than tensors', 1)
    saved_keys = {'model', 'optimizer', 'scaler', 'config', 'itos', 'max_len', 'iter', 'best_val',
                  'time', 'torch_rng', 'python_rng'}
    complete = isinstance(checkpoint, dict) and saved_keys <= checkpoint.keys()
    if complete:
        config = checkpoint['config']
        complete = isinstance(config, dict) and set(hyperparameters) <= config.keys()
    if not complete:
        fail(f'{ckpt_path} is not a checkpoint of this gpt.py (an older version, or another '
             f'program): train a new one', 1)
    for key in ['block_size', 'n_embd', 'n_head', 'n_layer', 'mode', 'sizes']:
        saved = config[key]
        if key in flagged and globals()[key] not in ('auto', saved):
            fail(f'--{key}={globals()[key]} cannot change on resume: {ckpt_path} has {key}={saved}')
    for key in hyperparameters:
        if key not in flagged and key not in this_run:
            globals()[key] = config[key]

# %%
# data: in names mode each non-blank line, stripped, is one item (a name, a word); in text mode
# the lines only tell the mode. --sample_only needs no file, its checkpoint holds the
# vocabulary; a file that is there tells which sampled names are new
def pieces(text, size=2 ** 22):  # the text in parts of about 4M characters, each ending a line
    start = 0
    while start < len(text):
        end = text.find('\n', start + size) + 1  # just after a newline: no line is cut in two
        if end == 0:  # no newline further on: the rest
            end = len(text)
        yield text[start:end]
        start = end

text = None
if not sample_only or os.path.isfile(dataset):
    text = read_text(dataset)
    # a list of names or words has short lines; prose and verse average 30+ characters a line.
    # Counted a piece at a time: a list of every line would take ten times the text's memory
    if mode == 'auto':
        count = 0       # non-blank lines
        characters = 0  # their characters, stripped
        for piece in pieces(text):
            stripped = [line.strip() for line in piece.splitlines()]
            count += len(stripped) - stripped.count('')
            characters += sum(map(len, stripped))
        mode = 'names' if count and characters < 20 * count else 'text'
names_mode = mode == 'names'
if names_mode and text is not None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]

# the vocabulary: in names mode '.' (index 0), a name's start and end, then the characters of the
# names; in running text every character that occurs, newline included
# a file too small to split is refused before any work on it
if names_mode and text is not None and len(lines) < 10:
    fail(f'{dataset} has too few lines ({len(lines)}): it needs at least 10 (one name per '
         f'line) so that train, val and test are not empty', 1)
if not names_mode and text == '':  # how much text a block needs is checked with the sizes, below
    fail(f'{dataset} is empty: there is no text to learn from', 1)
if text is None:
    itos = checkpoint['itos']
elif names_mode:
    itos = ['.'] + sorted(set(''.join(lines)) - {'.'})
else:
    itos = sorted(set(text))
if checkpoint is not None and itos != checkpoint['itos']:
    fail(f'checkpoint {ckpt_path} was trained on another vocabulary than {dataset}', 1)
stoi = {ch: i for i, ch in enumerate(itos)}
vocab_size = len(itos)

def encode(s):
    return [stoi[c] for c in s]

def decode(ids):
    return ''.join(itos[i] for i in ids)

# a long text encoded without a Python int per character (28 bytes each): its code points, a
# piece at a time, looked up in a table indexed by code point. The ids are kept in the smallest
# integer type that holds the vocabulary (1 byte a character up to 256 characters) and made
# int64, what an embedding takes, only when a batch is drawn
if vocab_size <= 2 ** 8:
    id_dtype = torch.uint8
elif vocab_size <= 2 ** 15:
    id_dtype = torch.int16
else:
    id_dtype = torch.int32
code_points = torch.tensor([ord(c) for c in itos])  # (vocab_size,)
lookup = torch.zeros(int(code_points.max()) + 1, dtype=id_dtype)  # code point -> id
lookup[code_points] = torch.arange(vocab_size).to(id_dtype)

def encode_all(text):  # a string of the vocabulary's characters -> its ids (len(text),)
    ids = torch.empty(len(text), dtype=id_dtype)
    for start in range(0, len(text), 2 ** 22):  # 4M characters at a time: 16 MB of code points
        piece = text[start:start + 2 ** 22]
        utf32 = bytearray(piece.encode('utf-32-le'))  # 4 bytes a character; torch wants a copy
        points = torch.frombuffer(utf32, dtype=torch.int32)  # (len(piece),) code points
        ids[start:start + len(piece)] = lookup[points]
    return ids

# names: the same shuffle and split in every names chapter, so their losses compare
if names_mode and text is not None:
    names = lines
    random.seed(42)
    random.shuffle(names)
    n1 = int(0.8 * len(names))
    n2 = int(0.9 * len(names))
    splits = {'train': names[:n1], 'val': names[n1:n2], 'test': names[n2:]}
    max_len = max(len(name) for name in names)  # a sample stops at '.', or at this length
if names_mode and text is None:
    max_len = checkpoint['max_len']

def build_dataset(names):  # names mode: a padded row per name, input '.' + name, target name + '.'
    # every name encoded at once, then poured into its row: no tensor per name
    chars = encode_all(''.join(names)).long()         # (all their characters,)
    length = torch.tensor([len(name) for name in names])  # (N,)
    inside = torch.arange(max_len) < length[:, None]  # (N, max_len): where a name's characters go
    X = torch.zeros(len(names), max_len + 1, dtype=torch.long)
    Y = torch.full((len(names), max_len + 1), -1, dtype=torch.long)  # -1: padding, no loss
    X[:, 1:][inside] = chars  # '.', then the name
    Y[:, :-1][inside] = chars  # the name, then ...
    Y[torch.arange(len(names)), length] = 0  # ... '.', its end
    lens = length + 1  # each row's length without padding
    return X, Y, lens

if names_mode and text is not None:  # every split as padded rows (X, Y, lens)
    rows = {split: build_dataset(names) for split, names in splits.items()}
# running text: the first 90% to train on, the last 10% to validate
if not names_mode and text is not None:
    ids = encode_all(text)  # (len(text),) id_dtype
    n = int(0.9 * len(ids))
    text_ids = {'train': ids[:n], 'val': ids[n:]}

def get_batch(split, generator=None):  # (B, T) inputs and (B, T) targets, int64
    if names_mode:  # random names, cut to the longest in the batch: little compute on padding
        X, Y, lens = rows[split]
        ix = torch.randint(len(X), (batch_size,), generator=generator)
        T = int(lens[ix].max())
        return X[ix, :T].to(device), Y[ix, :T].to(device)
    d = text_ids[split]  # random windows of running text; the target is the input shifted by one
    ix = torch.randint(len(d) - block_size, (batch_size,), generator=generator)  # (B,) starts
    # the lecture's torch.stack of B slices d[i:i + block_size + 1], as one gather: the same
    # numbers, without a Python loop over the batch (a huge batch_size stays quick to fail)
    offsets = torch.arange(block_size + 1)  # (T + 1,)
    chunk = d[ix[:, None] + offsets].long()  # (B, T + 1): row b holds d[ix[b] + 0..block_size]
    return chunk[:, :-1].to(device), chunk[:, 1:].to(device)  # (B, T) each

# %%
# the sizes, for a new run: 'gpu' puts nanoGPT's shakespeare_char values over every key not set by
# a flag (its betas and grad_clip are this file's on every device); 'auto' picks 'gpu' on a CUDA
# device in a run from a file (python gpt.py, %run gpt.py), while a cell pasted into a notebook runs
# its globals as written. A checkpoint's run keeps its own. bfloat16 needs compute capability 8.0
# or newer (A100, H100); older GPUs (T4, V100) get float16 and a gradient scaler
on_cuda = device.startswith('cuda')
auto = sizes == 'auto'
if auto:
    sizes = 'gpu' if on_cuda and run_as_file else 'laptop'
gpu_sizes = {'batch_size': 64, 'block_size': 256, 'n_layer': 6, 'n_head': 6, 'n_embd': 384,
             'dropout': 0.2, 'max_iters': 5000, 'eval_interval': 500, 'eval_iters': 200,
             'learning_rate': 1e-3}
if sizes == 'gpu' and on_cuda:  # elsewhere the precision stays as written
    capable = torch.cuda.get_device_capability(device) >= (8, 0)
    gpu_sizes['dtype'] = 'bfloat16' if capable else 'float16'
kept = []  # the keys whose flags are kept over the gpu sizes
if sizes == 'gpu' and checkpoint is None:
    for key, value in gpu_sizes.items():
        if key in flagged:
            kept.append(key)
        else:
            globals()[key] = value

# the checks that need the final values (from a checkpoint, the checkpoint's) and the data
check('n_embd', n_embd % n_head == 0,
      f'a multiple of n_head={n_head} (each head gets n_embd // n_head channels)')
check('attention_layer', -n_layer <= attention_layer < n_layer,
      f'a block: 0 to {n_layer - 1}, or -1 for the last')
# float16 needs a gradient scaler, which an Apple GPU has from torch 2.8 on
if device == 'mps' and dtype == 'float16' and torch.__version__ < '2.8':
    fail(f'--dtype=float16 on an Apple GPU needs torch 2.8 or newer, this is {torch.__version__}: '
         f'use --dtype=bfloat16 or float32, or pip install -U torch')
if not names_mode and text is not None and len(text) < 10 * (block_size + 1):
    fail(f'{dataset} has {len(text)} characters: it needs at least {10 * (block_size + 1)} '
         f'(val must hold a block)', 1)
if names_mode and text is not None and block_size < max_len + 1:
    fail(f'the longest name needs --block_size={max_len + 1} or more (block_size is {block_size})')
# the prompt: characters of the vocabulary; in names mode the start of every name ('': none).
# A text with no newline at all (one long line) starts from its first character instead (and a
# checkpoint without its file, from the prompt its run used)
if not names_mode and prompt == '\n' and '\n' not in stoi and 'prompt' not in flagged:
    prompt = text[0] if text is not None else checkpoint['config']['prompt']
if names_mode:
    prompt = prompt.strip()
    if '.' in prompt:
        fail(f"--prompt={prompt} contains '.', which marks the end of a name")
    if len(prompt) >= max_len:
        fail(f'--prompt={prompt} leaves nothing to sample: the longest name has {max_len} '
             f'characters')
if not (prompt or names_mode):
    fail('--prompt is empty: the model needs at least one character to continue, '
         'e.g. --prompt=ROMEO:')
for c in prompt:
    if c not in stoi:
        fail(f'prompt character {c!r} is not in the vocabulary of {dataset}; '
             f"use characters from: {''.join(itos)!r}")

# the first lines say which values run, and why, and on what data. Under torchrun (several
# processes, below) each process has a RANK, and process 0 alone prints
master = int(os.environ.get('RANK', '0')) == 0
place = 'the file' if run_as_file else 'this notebook cell'
if checkpoint is not None:
    action = 'sampling from' if sample_only else 'resuming'
    first_line = (f"{action} {ckpt_path} from step {checkpoint['iter']}, with the settings it "
                  f"saved (device {device}")
    changed = []  # the saved values that flags replace
    for key in flagged:
        if key not in this_run and globals()[key] != config[key]:
            changed.append(key)
    if changed:
        first_line += f"; changed by flags: {', '.join(changed)}"
elif sizes == 'gpu':
    reason = 'a run from a file' if auto else f"sizes = 'gpu' in {place}"
    if 'sizes' in flagged:
        reason = '--sizes=gpu'
    first_line = f"sizes: gpu, nanoGPT's shakespeare_char (device {device}, {reason}"
    if kept:
        first_line += f"; kept from flags: {', '.join(kept)}"
else:
    first_line = f'sizes: laptop, as written in {place} (device {device}'
    if 'sizes' in flagged:
        first_line += ', --sizes=laptop'
    if auto and on_cuda:
        first_line += "; sizes = 'gpu' in the cell for nanoGPT's"
if master:
    print(first_line + ')')
    kind = 'one name per line' if names_mode else 'running text'
    source = dataset if text is not None else f'{ckpt_path} (no {dataset} here)'
    print(f'{source}: mode={mode} ({kind}), {vocab_size} distinct characters')

# %%
# precision: autocast runs the matrix multiplies in bfloat16 or float16 (half the memory traffic,
# and the GPU's tensor cores) and keeps the sensitive parts in float32. float32 needs no autocast:
# a context that does nothing (as nanoGPT). float16 rounds gradients below ~6e-8 to 0, so the
# scaler multiplies the loss up and the gradients back down
device_type = device.split(':')[0]  # autocast and the scaler want 'cuda', not 'cuda:3'
if dtype == 'float32':
    autocast = contextlib.nullcontext()
else:
    autocast = torch.autocast(device_type, getattr(torch, dtype))
scaler = torch.amp.GradScaler(device_type, enabled=dtype == 'float16')
torch.set_float32_matmul_precision('high')  # TF32 matmuls on a GPU

# %%
# several GPUs: torchrun starts one process per GPU and gives each its RANK. Each process trains
# on its own batches; DDP averages their gradients at every step, so the weights stay the same
ddp = 'RANK' in os.environ
rank = int(os.environ['RANK']) if ddp else 0
world = int(os.environ['WORLD_SIZE']) if ddp else 1
if ddp:
    if gradient_accumulation_steps % world:  # before joining the others: refused, it ends at once
        fail(f'--gradient_accumulation_steps={gradient_accumulation_steps} must be a multiple of '
             f'the {world} processes: each does an equal share of the micro-batches '
             f'(try --gradient_accumulation_steps={world})')
    if device.startswith('cuda'):
        device = f"cuda:{os.environ['LOCAL_RANK']}"  # one GPU per process
        torch.cuda.set_device(device)
    nccl = device.startswith('cuda') and torch.distributed.is_nccl_available()
    torch.distributed.init_process_group('nccl' if nccl else 'gloo')  # Windows has no NCCL
accum = gradient_accumulation_steps // world  # this process's share of the micro-batches

def close_process_group():  # at the end, in every process: all leave together
    # gloo's threads hand each collective's tensors back to Python, which needs its lock: one still
    # doing so as Python exits is stopped mid-way, and the process aborts. The barrier waits with
    # that lock free, so all earlier collectives are handed back before any process goes on
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()

# %%
# checkpoints, written: when val improves, and when a run is stopped early. One holds everything
# a step depends on: the weights, Adam's moments, the loss scale, the step, the random streams.
# It is written next to ckpt_path, then renamed: try that now, not after an hour of training
if not sample_only:
    probe = f'{ckpt_path}.{os.getpid()}.tmp'  # one per process: torchrun starts several
    try:
        open(probe, 'wb').close()
        os.remove(probe)
        problem = 'it is a folder' if os.path.isdir(ckpt_path) else None
    except OSError as e:
        problem = e.strerror
    if problem:
        fail(f'--ckpt_path={ckpt_path} cannot be written ({problem}): pass a file in a folder '
             f'that exists and can be written')

def save_checkpoint(it, best_val, seconds):  # seconds: of training, so far
    state = {'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
             'scaler': scaler.state_dict(), 'iter': it, 'best_val': best_val, 'time': seconds,
             'config': {k: globals()[k] for k in hyperparameters}, 'itos': itos,
             'max_len': max_len if names_mode else None,
             'torch_rng': torch.get_rng_state(), 'python_rng': random.getstate()}
    partial = f'{ckpt_path}.{os.getpid()}.tmp'  # this process's own: two runs never share one
    try:
        torch.save(state, partial)
        os.replace(partial, ckpt_path)  # atomic: the old file or the new one, never half of one
    except (OSError, RuntimeError) as e:  # a full disk: torch says so with a RuntimeError
        reason = (str(e) or type(e).__name__).splitlines()[0]
        fail(f'cannot write checkpoint {ckpt_path} ({reason}); the last one written is whole', 1)
    finally:
        if os.path.exists(partial):
            os.remove(partial)

def restore(checkpoint):  # -> the last step taken, the best val loss, the seconds of training
    try:
        model.load_state_dict(checkpoint['model'])
    except RuntimeError:  # the module names or sizes differ: written by another version
        fail(f'{ckpt_path} is not a checkpoint of this gpt.py (an older version, or another '
             f'program): train a new one', 1)
    if sample_only:  # the weights are all it needs
        return 0, float('inf'), 0.0
    optimizer.load_state_dict(checkpoint['optimizer'])
    if checkpoint['scaler']:  # empty when it was saved without float16: start a fresh scale
        scaler.load_state_dict(checkpoint['scaler'])
    torch.set_rng_state(checkpoint['torch_rng'])
    random.setstate(checkpoint['python_rng'])
    return checkpoint['iter'], checkpoint['best_val'], checkpoint['time']

# %%
# progress: a line ten times per evaluation. The loss is read here only: reading it makes the
# CPU wait for the GPU. A diverged run stops at the next line: no nan in the log, no samples
log_interval = max(1, eval_interval // 10)

def check_finite(loss, it):
    if not math.isfinite(loss):
        fail(f'training diverged: the loss is {loss} at iter {it}; '
             f'lower --learning_rate (it is {learning_rate})', 1)

class Progress:  # the loss, the milliseconds per training step, and the time left
    def __init__(self, it):
        self.restart(it)

    def restart(self, it):  # after an evaluation: ms/iter counts training steps only
        self.time = time.time()
        self.it = it

    def report(self, it, loss):  # loss: the step's last micro-batch's
        loss = loss.item()
        check_finite(loss, it)
        ms = 1000 * (time.time() - self.time) / (it - self.it)
        eta = ms * (max_iters - it) / 1000
        print(f'iter {it}/{max_iters} | loss {loss:.4f} | {ms:.1f} ms/iter | eta {eta:.0f} s')
        self.restart(it)

# %%
# stopping early, while training: the first Ctrl-C finishes the step, saves a checkpoint and
# stops; a second stops at once. Outside a notebook, a job scheduler's SIGTERM and a closed
# terminal's SIGHUP ask the same as a first Ctrl-C. Under torchrun every process stops at the
# same step, and process 0 saves
stop_signals = [signal.SIGINT]
if 'IPython' not in sys.modules:
    stop_signals.append(signal.SIGTERM)
    if hasattr(signal, 'SIGHUP'):  # Windows has none
        stop_signals.append(signal.SIGHUP)
asked_by = 0  # the signal that asked to stop (0: none)

def ask_to_stop(signum, frame):
    global asked_by
    if asked_by:
        raise KeyboardInterrupt  # asked twice: stop now
    asked_by = signum

@contextlib.contextmanager
def stoppable():  # while training, the signals above ask the loop to stop after its step
    previous = {}
    for signum in stop_signals:
        previous[signum] = signal.signal(signum, ask_to_stop)
    try:
        yield
    except KeyboardInterrupt:
        fail('stopped at once by a second Ctrl-C: nothing saved since the last checkpoint', 130)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # a notebook's next Ctrl-C works again

def stop_asked():  # -> the signal that asked, or 0. Under torchrun, any process's: all stop
    if not ddp:
        return asked_by
    flag = torch.tensor([float(asked_by)], device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return int(flag.item())

def stop_and_save(it, signum, loss, best_val, seconds):
    if master:
        check_finite(loss.item(), it)  # a diverged run keeps its last good checkpoint
        save_checkpoint(it, best_val, seconds)
        print(f'interrupted at iter {it}: checkpoint saved to {ckpt_path}; '
              f'continue with --resume=True')
    if ddp:
        close_process_group()  # the others wait until the checkpoint is written
    sys.exit(128 + signum)  # the shell's code for a run ended by this signal: 130 for Ctrl-C

# %%
# evaluation: names on every name of a split (the mean NLL per character); text on eval_iters
# fixed windows
@torch.no_grad()
def estimate_loss():
    model.eval()
    out = {}
    for split in (rows if names_mode else text_ids):
        batches = []
        if names_mode:
            X, Y, lens = rows[split]
            order = lens.argsort()  # similar lengths together: little padding to compute on
            for ix in order.split(1024):
                T = int(lens[ix].max())
                batches.append((X[ix, :T].to(device), Y[ix, :T].to(device)))
        else:
            windows = torch.Generator().manual_seed(seed)  # the same windows at every evaluation
            for _ in range(eval_iters):
                batches.append(get_batch(split, windows))
        total = 0.0
        count = 0
        for x, y in batches:
            with autocast:
                logits, _ = model(x)  # (B, T, vocab_size)
            logits = logits.float().flatten(0, 1)  # (B * T, vocab_size)
            total += F.cross_entropy(logits, y.flatten(), ignore_index=-1, reduction='sum').item()
            count += (y != -1).sum().item()  # the characters scored: padding is not
        out[split] = total / count
    model.train()
    return out

# the schedule: linear warmup, then cosine decay (nanoGPT's): big steps early, careful ones late.
# A function of the step: a resumed run recomputes its learning rate and saves no scheduler state
def lr_at(it):  # the learning rate of step it = 1, 2, ..., max_iters
    if it <= warmup_iters:
        return learning_rate * it / warmup_iters  # the peak arrives at step warmup_iters
    done = (it - warmup_iters) / max(1, max_iters - warmup_iters)  # the decay's part done: 0 to 1
    cos = math.cos(math.pi * done)  # from 1 to -1
    return learning_rate * ((1 + lr_decay) / 2 + (1 - lr_decay) / 2 * cos)

# %%
# training. The model is built here; train_model is how the steps run it: torch.compile'd
# (compile=True) and wrapped by DDP (under torchrun), or the model itself. One set of weights
torch.manual_seed(seed)
model = GPT().to(device)
params = sum(p.numel() for p in model.parameters())
train_model = torch.compile(model) if compile else model
if ddp:
    train_model = nn.parallel.DistributedDataParallel(train_model)
# AdamW with nanoGPT's betas (0.9, 0.99). Weight decay pulls the weight matrices toward 0 but
# spares biases and LayerNorm gains, as nanoGPT does: a gain decayed toward 0 would undo the
# normalisation, and a bias does not multiply anything, so it has no size to keep in check
matrices = [p for p in model.parameters() if p.dim() == 2]  # weights and embeddings: decayed
others = [p for p in model.parameters() if p.dim() < 2]     # biases and gains: not decayed
groups = [{'params': matrices, 'weight_decay': weight_decay},
          {'params': others, 'weight_decay': 0.0}]
optimizer = torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.99),
                              fused=device_type in ('cuda', 'cpu'))
start = 0                # the last step taken
best_val = float('inf')  # the best val loss: a checkpoint is written when it improves
t_prev = 0.0             # seconds of training before this run
if checkpoint is not None:
    start, best_val, t_prev = restore(checkpoint)
if ddp:  # the same initial weights everywhere, but each process its own batches
    torch.manual_seed(seed + 1 + rank + start)

losses = None
if not sample_only:
    t0 = time.time() - t_prev  # a resumed run counts on from its checkpoint's time
    progress = Progress(start)
    with stoppable():
        for it in range(start + 1, max_iters + 1):
            for group in optimizer.param_groups:
                group['lr'] = lr_at(it)
            for micro in range(accum):  # the gradients of accum micro-batches add up in .grad
                X, Y = get_batch('train')
                if ddp:  # average across the processes once, after the last micro-batch
                    train_model.require_backward_grad_sync = micro == accum - 1
                with autocast:
                    logits, loss = train_model(X, Y)
                scaler.scale(loss / accum).backward()
            if grad_clip > 0:  # as nanoGPT: one unlucky batch cannot throw the weights far
                scaler.unscale_(optimizer)  # clip the true gradients, not the float16-scaled ones
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if master and (it % log_interval == 0 or it == max_iters):
                progress.report(it, loss)
            if master and (it % eval_interval == 0 or it == max_iters):
                losses = estimate_loss()
                check_finite(sum(losses.values()), it)  # the sum: a nan in any split makes it nan
                print(f"iter {it}/{max_iters} | train {losses['train']:.4f} "
                      f"| val {losses['val']:.4f}")
                if losses['val'] < best_val:
                    best_val = losses['val']
                    save_checkpoint(it, best_val, time.time() - t0)
                progress.restart(it)
            signum = stop_asked()
            if signum:
                stop_and_save(it, signum, loss, best_val, time.time() - t0)
    train_time = time.time() - t0
    if ddp:
        close_process_group()
    if not master:
        sys.exit(0)  # the other processes are done: process 0 has the same weights
    if losses is None:  # resumed from a checkpoint at max_iters or beyond: no step to take
        print(f'{ckpt_path} has taken {start} steps of --max_iters={max_iters}: nothing left to '
              f'train (raise --max_iters to go on)')
        losses = estimate_loss()
    summary = f"final: train={losses['train']:.4f} val={losses['val']:.4f}"
    if names_mode:
        summary += f" test={losses['test']:.4f}"
    print(f'{summary} params={params} time={train_time:.1f}s')

# %%
# sample: feed the model its own output, one character at a time, the context cropped to
# block_size. Names: every sample at once, each cut at its first '.'; text: streamed
g = torch.Generator(device=device).manual_seed(seed)

def pick(logits):  # logits (B, V) -> the next character of each row (B, 1)
    # temperature 0, or one so small that float32 holds it as 0: always the most likely (greedy)
    if temperature < torch.finfo(torch.float32).tiny:
        return logits.argmax(dim=-1, keepdim=True)
    # the largest logit subtracted first: divided by a tiny temperature, the rest stay finite
    logits = (logits - logits.max(dim=-1, keepdim=True).values) / temperature
    if top_k > 0:  # only the k most likely stay possible
        best = torch.topk(logits, min(top_k, vocab_size)).values  # (B, k), largest first
        kth_best = best[:, -1:]  # (B, 1)
        logits[logits < kth_best] = -float('inf')
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=g)

@torch.no_grad()
def generate(idx, n):  # idx (B, T) -> yields the next character of every row, n times
    for _ in range(n):
        context = idx[:, -block_size:]  # the last block_size characters: all pos_emb knows
        logits, _ = model(context)      # (B, T, vocab_size)
        nxt = pick(logits[:, -1, :])    # (B, 1): from the last position's prediction
        idx = torch.cat((idx, nxt), dim=1)    # (B, T + 1)
        yield nxt[:, 0].tolist()

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

start_ids = encode(prompt)
if names_mode:
    start_ids = [0] + start_ids  # a name starts after a '.'
start_ids = torch.tensor([start_ids], device=device)[:, -block_size:]  # (1, T)
model.eval()
if show_attention:  # the attention view: what each prompt character looks at, head by head
    layer = attention_layer if attention_layer >= 0 else n_layer + attention_layer  # -1: the last
    with torch.no_grad():
        maps = model.attention_maps(start_ids)  # per block: (1, n_head, T, T)
    att = maps[layer][0]  # (n_head, T, T)
    print(f'attention in block {layer + 1} of {n_layer}:')
    draw_attention(decode(start_ids[0].tolist()), att)
if names_mode:
    rows_drawn = [[] for _ in range(num_samples)]  # the characters each sample has drawn
    new_chars = max_len - len(prompt)  # the prompt and its continuation: at most max_len
    for column in generate(start_ids.repeat(num_samples, 1), new_chars):
        for row, c in zip(rows_drawn, column):
            row.append(c)
    samples = []
    for row in rows_drawn:
        if 0 in row:
            row = row[:row.index(0)]  # the name ends at its first '.'
        samples.append(prompt + decode(row))
    print('\n'.join(samples))
    if text is not None:  # without the file there are no training names to compare with
        train_names = set(splits['train'])
        new = sum(s not in train_names for s in samples)
        print(f'{new}/{num_samples} samples are new (not in the training names)')
else:  # stream: print each character as it is made, so you watch the model write
    print(prompt, end='', flush=True)
    for column in generate(start_ids, max_new_tokens):
        print(itos[column[0]], end='', flush=True)
    print()
