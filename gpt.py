"""
Chapter 6: a decoder-only transformer (GPT). Where the RNN squeezed the past into one state
vector, self-attention lets every character look back at every earlier one directly and pick
what matters. Run: python gpt.py (tiny Shakespeare), or --dataset=your.txt (any text or list);
on N GPUs: torchrun --standalone --nproc_per_node=N gpt.py; attention maps: --show_attention=True.
Result with the CPU defaults, 2 CPU cores: val 1.8005 after 96.6 s of training;
the GPU defaults could not be measured here (no GPU).
"""
import ast, math, os, random, sys, time, urllib.request
import signal  # Ctrl-C: finish the step, save a checkpoint, stop
import torch
import torch.nn as nn
import torch.nn.functional as F

# hyperparameters: sized for a laptop CPU (about 2 minutes); on a GPU, nanoGPT's settings (below)
dataset = 'input.txt'     # tiny Shakespeare (downloaded on first use), or any text file or list
mode = 'auto'             # text: running text; names: one item per line; auto: names if the
                          # lines average under 20 characters
batch_size = 16           # sequences per micro-batch
gradient_accumulation_steps = 1  # micro-batches per step (shared among torchrun's processes)
block_size = 64           # context length: how many characters attention can see
n_layer = 4               # transformer blocks
n_head = 4                # attention heads per block (n_embd must divide evenly)
n_embd = 128              # channels of the residual stream
dropout = 0.0             # a model this small barely overfits 1M characters: no dropout
max_iters = 1600          # optimizer steps
eval_interval = 400       # report train/val loss (and checkpoint if val improved) this often
eval_iters = 40           # batches per loss estimate on running text (names: whole splits)
learning_rate = 3e-3      # peak learning rate, after warmup
warmup_iters = 100        # steps of linear warmup; then cosine decay to lr_decay * learning_rate
lr_decay = 0.1            # the learning rate ends at this fraction of its peak
weight_decay = 0.1        # AdamW decay of the weight matrices (not biases, not LayerNorm)
grad_clip = 1.0           # the gradient's norm is clipped to this (0: no clipping)
compile = False           # torch.compile the model: faster GPU steps after a minute of compiling
device = ('cuda' if torch.cuda.is_available() else   # the fastest device there is
          'mps' if torch.backends.mps.is_available() else 'cpu')
dtype = 'float32'         # autocast precision: float32, bfloat16 or float16 (on a GPU: below)
seed = 1337               # seeds the initial weights, the batches and the sampling
num_samples = 20          # how many names to generate at the end (names mode)
prompt = '\n'             # text: what to continue; names: the start of every sampled name
max_new_tokens = 500      # characters of text to generate
temperature = 1.0         # divides the logits when sampling: < 1 safer, > 1 wilder, 0 the likeliest
top_k = 0                 # sample only among the k most likely characters (0: all)
show_attention = False    # before sampling, draw what each prompt character attends to, per head
attention_layer = -1      # the block whose heads --show_attention draws (-1: the last)
ckpt_path = 'gpt.pt'      # checkpoint: saved when val improves, and on Ctrl-C
resume = False            # continue training from ckpt_path
sample_only = False       # load ckpt_path and only generate

# -----------------------------------------------------------------------------
# command-line overrides, e.g. --max_iters=200 --device=cpu: each value is a Python literal of
# the default's type. In a notebook kernel sys.argv holds the kernel's own flags: keep defaults.
def fail(message, code=2):  # one line, no traceback; exit 2: a bad flag, 1: bad data or a bad run
    print(f'error: {message}', file=sys.stderr)
    sys.exit(code)

hyperparameters = [k for k, v in globals().items()
                   if not k.startswith('_') and type(v) in (int, float, bool, str)]
flags = [] if 'ipykernel' in sys.modules else sys.argv[1:]
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
given = [flag[2:].partition('=')[0] for flag in flags]  # the keys set on the command line

# every value is checked before any work is done, so a bad one costs a line, not a run
def check(key, ok, allowed):
    if not ok:
        fail(f'--{key}={globals()[key]} is out of range: it must be {allowed}')

# the device first: on a GPU the defaults of the other keys change (below)
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

# on a GPU, every key not given on the command line takes nanoGPT's shakespeare_char settings
# (10.8M parameters, lr 1e-3; nanoGPT evaluates every 250 steps, we every 500); its betas
# (0.9, 0.99) and grad_clip 1.0 are this file's on every device. bfloat16 needs compute
# capability 8.0+ (A100, H100); older GPUs (T4, V100) get float16 and a gradient scaler
if device.startswith('cuda'):
    gpu_settings = {'batch_size': 64, 'block_size': 256, 'n_layer': 6, 'n_head': 6, 'n_embd': 384,
                    'dropout': 0.2, 'max_iters': 5000, 'eval_interval': 500, 'eval_iters': 200,
                    'learning_rate': 1e-3, 'dtype': 'float16'}
    if torch.cuda.get_device_capability(device) >= (8, 0):
        gpu_settings['dtype'] = 'bfloat16'
    for key, value in gpu_settings.items():
        if key not in given:
            globals()[key] = value

check('mode', mode in ('auto', 'text', 'names'), 'auto, text or names')
check('batch_size', batch_size >= 1, 'an integer >= 1')
check('gradient_accumulation_steps', gradient_accumulation_steps >= 1, 'an integer >= 1')
check('block_size', block_size >= 1, 'an integer >= 1')
check('n_layer', n_layer >= 1, 'an integer >= 1')
check('n_head', n_head >= 1, 'an integer >= 1')
check('n_embd', n_embd >= 1, 'an integer >= 1')
check('n_embd', n_embd % n_head == 0,
      f'a multiple of n_head={n_head} (each head gets n_embd // n_head channels)')
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
check('attention_layer', -n_layer <= attention_layer < n_layer,
      f'a block: 0 to {n_layer - 1}, or -1 for the last')
# a checkpoint is written next to ckpt_path, then renamed: try that now, not after an hour
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

# -----------------------------------------------------------------------------
# data: the file is read from the working directory; the two files the chapters use are
# downloaded once, on first use
github = 'https://raw.githubusercontent.com/karpathy'
urls = {'names.txt': f'{github}/makemore/master/names.txt',
        'input.txt': f'{github}/char-rnn/master/data/tinyshakespeare/input.txt'}
if not os.path.isfile(dataset):
    if dataset not in urls:
        fail(f'dataset file {dataset!r} not found (pass --dataset=path/to/file.txt)', 1)
    try:
        with urllib.request.urlopen(urls[dataset], timeout=30) as response:
            downloaded = response.read()
        with open(dataset + '.tmp', 'wb') as f:
            f.write(downloaded)
        os.replace(dataset + '.tmp', dataset)  # rename: never leave a half-written file
    except OSError as e:
        fail(f'{dataset} is missing and downloading it failed ({e}); '
             f'get {urls[dataset]} and put it in {os.getcwd()}', 1)
try:
    with open(dataset, encoding='utf-8') as f:
        text = f.read()
except (OSError, UnicodeDecodeError) as e:
    fail(f'cannot read {dataset}: {e}', 1)
lines = text.splitlines()
words = [line.strip() for line in lines if line.strip()]  # blank lines and spaces around dropped

# names mode: one item per line, trained and scored as in chapters 1-5. A list of names or words
# has short lines; prose and verse average 30+ characters a line
if mode == 'auto':
    characters = sum(len(w) for w in words)
    mode = 'names' if words and characters < 20 * len(words) else 'text'
names_mode = mode == 'names'
if names_mode:
    if len(words) < 10:
        fail(f'{dataset} has too few lines ({len(words)}): it needs at least 10 (one name per '
             f'line) so that train, val and test are not empty', 1)
    itos = ['.'] + sorted(set(''.join(words)) - {'.'})  # '.' (index 0): a name's start and end
else:
    itos = sorted(set(text))  # running text: every character that occurs, newline included
stoi = {ch: i for i, ch in enumerate(itos)}
vocab_size = len(itos)

def encode(s):
    return [stoi[c] for c in s]

def decode(ids):
    return ''.join(itos[i] for i in ids)

if names_mode:  # the same shuffle and split in every names chapter, so their losses compare
    random.seed(42)
    random.shuffle(words)
    n1 = int(0.8 * len(words))
    n2 = int(0.9 * len(words))
    splits = {'train': words[:n1], 'val': words[n1:n2], 'test': words[n2:]}
    max_len = max(len(w) for w in words)  # a sample stops at '.', or at the longest name's length

def build_dataset(names):  # names mode: a padded row per name, input '.' + name, target name + '.'
    X = torch.zeros(len(names), max_len + 1, dtype=torch.long)
    Y = torch.full((len(names), max_len + 1), -1, dtype=torch.long)  # -1: padding, no loss
    for i, w in enumerate(names):
        X[i, :len(w) + 1] = torch.tensor([0] + encode(w))
        Y[i, :len(w) + 1] = torch.tensor(encode(w) + [0])
    lens = torch.tensor([len(w) + 1 for w in names])  # each row's length without padding
    return X, Y, lens

if names_mode:
    data = {split: build_dataset(names) for split, names in splits.items()}
else:  # running text: the first 90% to train on, the last 10% to validate
    ids = torch.tensor(encode(text))
    n = int(0.9 * len(ids))
    data = {'train': ids[:n], 'val': ids[n:]}

def get_batch(split, generator=None):  # (B, T) inputs and (B, T) targets
    if names_mode:  # random names, cut to the longest in the batch: little compute on padding
        X, Y, lens = data[split]
        ix = torch.randint(len(X), (batch_size,), generator=generator)
        T = int(lens[ix].max())
        return X[ix, :T].to(device), Y[ix, :T].to(device)
    d = data[split]  # random windows of running text; the target is the input shifted by one
    ix = torch.randint(len(d) - block_size, (batch_size,), generator=generator)  # (B,) starts
    # the lecture's torch.stack of B slices, as one gather: row b holds d[ix[b] + 0..block_size]
    offsets = torch.arange(block_size + 1)  # (T + 1,)
    chunk = d[ix[:, None] + offsets]        # (B, T + 1)
    return chunk[:, :-1].to(device), chunk[:, 1:].to(device)  # (B, T) each

# -----------------------------------------------------------------------------
# model: the lecture's parts, in its order: attention heads, MultiHeadAttention, FeedForward,
# Block, GPT
class MultiHeadAttention(nn.Module):
    """n_head self-attention heads side by side. Each is the lecture's Head: query, key, value,
    scores, the causal mask, softmax, dropout, a weighted sum of the values. Here the heads run
    batched as one tensor op: one Linear makes the queries of every head, and its n_embd outputs
    are split into (n_head, head_size) below."""

    def __init__(self):
        super().__init__()
        self.query = nn.Linear(n_embd, n_embd)  # what each position is looking for
        self.key = nn.Linear(n_embd, n_embd)    # what each position offers to the others
        self.value = nn.Linear(n_embd, n_embd)  # what it hands over when it is chosen
        self.proj = nn.Linear(n_embd, n_embd)   # mixes the concatenated heads back together
        self.dropout = nn.Dropout(dropout)
        past = torch.tril(torch.ones(block_size, block_size, dtype=torch.bool))  # s <= t
        self.register_buffer('tril', past, persistent=False)

    def forward(self, x, need_weights=False):  # x (B, T, C) -> (B, T, C), and the weights
        B, T, C = x.shape
        # split the channels into heads, and make the heads a batch dimension: no head sees
        # another's channels
        hs = C // n_head
        q = self.query(x).view(B, T, n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.key(x).view(B, T, n_head, hs).transpose(1, 2)    # (B, nh, T, hs)
        v = self.value(x).view(B, T, n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        if need_weights:  # the math written out, so the attention weights can be looked at
            att = q @ k.transpose(-2, -1) * hs ** -0.5  # (B, nh, T, T): how well t matches s
            att = att.masked_fill(~self.tril[:T, :T], float('-inf'))  # causal: no s > t
            att = F.softmax(att, dim=-1)  # each row sums to 1; the future gets weight 0
            y = self.dropout(att) @ v     # (B, nh, T, hs): a weighted sum of the values
        else:  # the same computation in one fused kernel: faster, and it keeps no (T, T) weights
            att = None
            p = dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, C)  # concatenate the heads: (B, T, C)
        y = self.dropout(self.proj(y))
        return y, att

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

    def forward(self, x, need_weights=False):
        y, att = self.sa(self.ln1(x), need_weights)
        x = x + y
        x = x + self.ffwd(self.ln2(x))
        return x, att

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

    def forward(self, idx, targets=None, need_weights=False):  # idx (B, T) -> logits, loss, maps
        B, T = idx.shape
        tok = self.tok_emb(idx)                                  # (B, T, C)
        pos = self.pos_emb(torch.arange(T, device=idx.device))  # (T, C)
        x = tok + pos                                            # (B, T, C)
        maps = []  # one attention map per block
        for block in self.blocks:
            x, att = block(x, need_weights)
            maps.append(att)  # (B, nh, T, T), or None on the fused path
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab_size)
        if targets is None:
            return logits, None, maps
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), ignore_index=-1)
        return logits, loss, maps

# -----------------------------------------------------------------------------
# evaluation: names on every name of a split (the mean NLL per character, as in chapters 1-5);
# text on eval_iters fixed windows. autocast and compiled_model are set up below, with the
# machinery of a real run
@torch.no_grad()
def estimate_loss():
    model.eval()
    out = {}
    for split in data:
        batches = []
        if names_mode:
            X, Y, lens = data[split]
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
                logits = compiled_model(x)[0]  # (B, T, vocab_size)
            logits = logits.float().flatten(0, 1)  # (B * T, vocab_size)
            total += F.cross_entropy(logits, y.flatten(), ignore_index=-1, reduction='sum').item()
            count += (y != -1).sum().item()  # the characters scored: padding is not
        out[split] = total / count
    model.train()
    return out

def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from it
    if not math.isfinite(loss):
        fail(f'training diverged: the loss is {loss} at iter {it}; '
             f'lower --learning_rate (it is {learning_rate})', 1)

# -----------------------------------------------------------------------------
# checkpoints, read: --resume and --sample_only go on from one, and the model must have its shape,
# so it is read before the model is built. weights_only=True: torch.load rebuilds only tensors and
# containers, so a checkpoint file cannot run code
checkpoint = None
if resume or sample_only:
    try:
        checkpoint = torch.load(ckpt_path, map_location='cpu', weights_only=True)
    except FileNotFoundError:
        fail(f'checkpoint {ckpt_path} not found: train first (python gpt.py), '
             f'or pass --ckpt_path=...', 1)
    except Exception:
        fail(f'checkpoint {ckpt_path} cannot be read: it is truncated, not a torch file, '
             f'or holds more than tensors', 1)
    saved_keys = {'model', 'optimizer', 'scaler', 'config', 'itos', 'iter', 'best_val', 'time',
                  'torch_rng', 'python_rng'}
    shape_keys = ['block_size', 'n_embd', 'n_head', 'n_layer']
    complete = isinstance(checkpoint, dict) and saved_keys <= checkpoint.keys()
    if complete:
        config = checkpoint['config']
        complete = isinstance(config, dict) and set(shape_keys) <= config.keys()
    if not complete:
        fail(f'{ckpt_path} is not a checkpoint of this gpt.py (an older version, or another '
             f'program): train a new one', 1)
    if checkpoint['itos'] != itos:
        fail(f'checkpoint {ckpt_path} was trained on another vocabulary than {dataset}', 1)
    for key in shape_keys:
        saved = config[key]
        if key in given and globals()[key] != saved:
            fail(f'--{key}={globals()[key]} cannot change on resume: {ckpt_path} has {key}={saved}')
        globals()[key] = saved
    check('attention_layer', -n_layer <= attention_layer < n_layer,  # n_layer: the checkpoint's
          f'a block: 0 to {n_layer - 1}, or -1 for the last')

# the checks that need the data: block_size is final now (on --resume, the checkpoint's)
if names_mode and block_size < max_len + 1:
    fail(f'the longest name needs --block_size={max_len + 1} or more (block_size is {block_size})')
if not names_mode and len(text) < 10 * (block_size + 1):
    fail(f'{dataset} has {len(text)} characters: it needs at least {10 * (block_size + 1)} '
         f'(val must hold a block)', 1)
# the prompt: characters of the vocabulary; in names mode the start of every name ('': none)
if names_mode:
    prompt = prompt.strip()
    if '.' in prompt:
        fail(f"--prompt={prompt} contains '.', which marks the end of a name")
if not (prompt or names_mode):
    fail('--prompt is empty: the model needs at least one character to continue, '
         'e.g. --prompt=ROMEO:')
for c in prompt:
    if c not in stoi:
        fail(f'prompt character {c!r} is not in the vocabulary of {dataset}; '
             f"use characters from: {''.join(itos)!r}")

# -----------------------------------------------------------------------------
# several GPUs: torchrun starts one process per GPU and gives each its RANK. Each process trains
# on its own batches; DDP averages their gradients at every step, so the weights stay the same
ddp = 'RANK' in os.environ
rank = int(os.environ['RANK']) if ddp else 0
world = int(os.environ['WORLD_SIZE']) if ddp else 1
master = rank == 0  # process 0 alone prints, evaluates, samples and writes checkpoints
if ddp:
    if gradient_accumulation_steps % world:  # before joining the others: refused, it ends at once
        fail(f'--gradient_accumulation_steps={gradient_accumulation_steps} must be a multiple of '
             f'the {world} processes: each does an equal share of the micro-batches '
             f'(try --gradient_accumulation_steps={world})')
    if device.startswith('cuda'):
        device = f"cuda:{os.environ['LOCAL_RANK']}"  # one GPU per process
        torch.cuda.set_device(device)
    torch.distributed.init_process_group('nccl' if device.startswith('cuda') else 'gloo')
device_type = device.split(':')[0]  # autocast and the scaler want 'cuda', not 'cuda:3'

# -----------------------------------------------------------------------------
# the model, and the two handles a real run adds on it: compiled_model (torch.compile'd, or
# the model itself) runs the forward passes; ddp_model (wrapped by DDP under torchrun, or the
# compiled model itself) runs the training steps. All three share one set of weights
torch.manual_seed(seed)
model = GPT().to(device)
compiled_model = torch.compile(model) if compile else model
ddp_model = nn.parallel.DistributedDataParallel(compiled_model) if ddp else compiled_model
params = sum(p.numel() for p in model.parameters())

# -----------------------------------------------------------------------------
# the optimizer: AdamW with nanoGPT's betas (0.9, 0.99). Weight decay pulls the weight matrices
# toward 0 but spares biases and LayerNorm gains, as nanoGPT does: a gain decayed toward 0 would
# undo the normalisation, and a bias does not multiply anything, so it has no size to keep in
# check. Chapters 3-5 decay every parameter, the simple form: their models have few such ones
matrices = [p for p in model.parameters() if p.dim() == 2]  # weights and embeddings: decayed
others = [p for p in model.parameters() if p.dim() < 2]     # biases and gains: not decayed
groups = [{'params': matrices, 'weight_decay': weight_decay},
          {'params': others, 'weight_decay': 0.0}]
optimizer = torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.99),
                              fused=device_type in ('cuda', 'cpu'))

# the schedule: linear warmup, then cosine decay (nanoGPT's): big steps early, careful ones late.
# Chapters 3-5 let OneCycleLR do much the same; here it is a function of the step, so a resumed
# run recomputes its learning rate from the step alone and saves no scheduler state
def lr_at(it):  # the learning rate of step it = 1, 2, ..., max_iters
    if it <= warmup_iters:
        return learning_rate * it / warmup_iters  # the peak arrives at step warmup_iters
    progress = (it - warmup_iters) / max(1, max_iters - warmup_iters)  # from 0 to 1
    cos = math.cos(math.pi * progress)  # from 1 to -1
    return learning_rate * ((1 + lr_decay) / 2 + (1 - lr_decay) / 2 * cos)

# -----------------------------------------------------------------------------
# precision: autocast runs the matrix multiplies in bfloat16 or float16 (half the memory traffic,
# and the GPU's tensor cores) and keeps the sensitive parts in float32. float16 rounds gradients
# below ~6e-8 to 0, so the scaler multiplies the loss up and the gradients back down
autocast = torch.autocast(device_type, getattr(torch, dtype), enabled=dtype != 'float32')
scaler = torch.amp.GradScaler(device_type, enabled=dtype == 'float16')
torch.set_float32_matmul_precision('high')  # TF32 matmuls on a GPU

# -----------------------------------------------------------------------------
# checkpoints: written when val improves and on Ctrl-C; --resume restores everything a step
# depends on: the weights, Adam's moments, the loss scale, the step, the random streams
def save_checkpoint(it):
    state = {'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
             'scaler': scaler.state_dict(), 'iter': it, 'best_val': best_val,
             'time': time.time() - t0, 'config': {k: globals()[k] for k in hyperparameters},
             'itos': itos, 'torch_rng': torch.get_rng_state(), 'python_rng': random.getstate()}
    torch.save(state, ckpt_path + '.tmp')
    os.replace(ckpt_path + '.tmp', ckpt_path)  # atomic: the old file or the new one, never half

best_val = float('inf')
start = 0      # the last step taken
t_prev = 0.0   # training seconds before this run
if checkpoint is not None:
    try:
        model.load_state_dict(checkpoint['model'])
    except RuntimeError:  # the module names or sizes differ: written by another version
        fail(f'{ckpt_path} is not a checkpoint of this gpt.py (an older version, or another '
             f'program): train a new one', 1)
if resume and not sample_only:
    optimizer.load_state_dict(checkpoint['optimizer'])
    if checkpoint['scaler']:  # empty when it was saved without float16: start a fresh scale
        scaler.load_state_dict(checkpoint['scaler'])
    best_val = checkpoint['best_val']
    start = checkpoint['iter']
    t_prev = checkpoint['time']
    torch.set_rng_state(checkpoint['torch_rng'])
    random.setstate(checkpoint['python_rng'])
if ddp:  # the same initial weights everywhere, but each process its own batches
    torch.manual_seed(seed + 1 + rank + start)

# -----------------------------------------------------------------------------
# training. The first Ctrl-C finishes the current step, saves a checkpoint and stops; a second
# stops at once. Under torchrun every process stops at the same step, and process 0 saves
stop_requested = False

def on_ctrl_c(signum, frame):
    global stop_requested
    if stop_requested:
        raise KeyboardInterrupt
    stop_requested = True

if master:
    kind = 'one name per line' if names_mode else 'running text'
    print(f'{dataset}: mode={mode} ({kind}), {vocab_size} distinct characters')
accum = gradient_accumulation_steps // world  # this process's share of the micro-batches
log_interval = max(1, eval_interval // 10)  # a progress line ten times per evaluation
losses = None
if not sample_only:
    previous_handler = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        t0 = time.time() - t_prev  # a resumed run counts on from its checkpoint's time
        t_log = time.time()        # ms/iter is measured over training steps only
        it_log = start
        for it in range(start + 1, max_iters + 1):
            for group in optimizer.param_groups:
                group['lr'] = lr_at(it)
            for micro in range(accum):  # the gradients of accum micro-batches add up in .grad
                X, Y = get_batch('train')
                if ddp:  # average across the processes once, after the last micro-batch
                    ddp_model.require_backward_grad_sync = micro == accum - 1
                with autocast:
                    loss = ddp_model(X, Y)[1]
                check_finite(loss.item(), it)
                scaler.scale(loss / accum).backward()
            if grad_clip > 0:  # as nanoGPT: one unlucky batch cannot throw the weights far
                scaler.unscale_(optimizer)  # clip the true gradients, not the float16-scaled ones
                nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            if master and (it % log_interval == 0 or it == max_iters):
                ms = 1000 * (time.time() - t_log) / (it - it_log)
                eta = ms * (max_iters - it) / 1000
                print(f'iter {it}/{max_iters} | loss {loss.item():.4f} | {ms:.1f} ms/iter '
                      f'| eta {eta:.0f} s')
                t_log = time.time()
                it_log = it
            if master and (it % eval_interval == 0 or it == max_iters):
                losses = estimate_loss()
                check_finite(sum(losses.values()), it)  # the sum: a nan in any split makes it nan
                print(f"iter {it}/{max_iters} | train {losses['train']:.4f} "
                      f"| val {losses['val']:.4f}")
                if losses['val'] < best_val:
                    best_val = losses['val']
                    save_checkpoint(it)
                t_log = time.time()
            stop = stop_requested
            if ddp:  # stop if any process was asked to: the largest of the flags
                flag = torch.tensor([float(stop_requested)], device=device)
                torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
                stop = flag.item() > 0
            if stop:
                if master:
                    save_checkpoint(it)
                    print(f'interrupted at iter {it}: checkpoint saved to {ckpt_path}; '
                          f'continue with --resume=True')
                if ddp:
                    torch.distributed.barrier()  # the others wait until the checkpoint is written
                    torch.distributed.destroy_process_group()
                sys.exit(130)
    except KeyboardInterrupt:
        fail('stopped at once by a second Ctrl-C: nothing saved since the last checkpoint', 130)
    finally:
        signal.signal(signal.SIGINT, previous_handler)  # a notebook's next Ctrl-C works again
    train_time = time.time() - t0
    if ddp:
        torch.distributed.destroy_process_group()
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

# -----------------------------------------------------------------------------
# sample: feed the model its own output, one character at a time, the context cropped to
# block_size. Names: every sample at once, each cut at its first '.'; text: streamed
g = torch.Generator(device=device).manual_seed(seed)

def pick(logits):  # logits (B, V) -> the next character of each row (B, 1)
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)  # temperature 0: the most likely (greedy)
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
        logits = model(context)[0]      # (B, T, vocab_size)
        nxt = pick(logits[:, -1, :])    # (B, 1): from the last position's prediction
        idx = torch.cat((idx, nxt), dim=1)    # (B, T + 1)
        yield nxt[:, 0].tolist()

def draw_attention(chars, att):  # att (n_head, T, T): row t, how character t spreads its attention
    stand_ins = {'\n': '⏎', ' ': '␣', '\t': '⇥'}  # blanks made visible
    shown = [stand_ins.get(c, c) for c in chars]
    shades = '·░▒▓█'  # from a little attention to the row's most
    print('each row is a character; the shading shows what it attends to: '
          '█ most, · little, blank 0')
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
        maps = model(start_ids, need_weights=True)[2]  # per block: (1, n_head, T, T)
    att = maps[layer][0]  # (n_head, T, T)
    print(f'attention in block {layer + 1} of {n_layer}:')
    draw_attention(decode(start_ids[0].tolist()), att)
if names_mode:
    rows = [[] for _ in range(num_samples)]  # the characters each sample has drawn
    new_chars = max(0, max_len - len(prompt))  # the prompt and its continuation: at most max_len
    for column in generate(start_ids.repeat(num_samples, 1), new_chars):
        for row, c in zip(rows, column):
            row.append(c)
    samples = []
    for row in rows:
        if 0 in row:
            row = row[:row.index(0)]  # the name ends at its first '.'
        samples.append(prompt + decode(row))
    print('\n'.join(samples))
    new = sum(s not in set(splits['train']) for s in samples)
    print(f'{new}/{num_samples} samples are new (not in the training names)')
else:  # stream: print each character as it is made, so you watch the model write
    print(prompt, end='', flush=True)
    for column in generate(start_ids, max_new_tokens):
        print(itos[column[0]], end='', flush=True)
    print()
