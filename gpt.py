"""
Chapter 6: a decoder-only transformer (GPT). Where the RNN squeezed the past into one state vector,
self-attention lets every character look back at every earlier one directly and pick what matters.
Run: python gpt.py (tiny Shakespeare) or --dataset=your.txt (any text or list); on N GPUs: torchrun
--standalone --nproc_per_node=N gpt.py; attention maps: --show_attention=True. CPU defaults, 2 CPU cores:
val 1.7901 after 93.4 s of training (median of 3 runs); the GPU defaults could not be measured here (no GPU).
"""
import ast, math, os, random, signal, sys, time, urllib.request
import torch
import torch.nn as nn
import torch.nn.functional as F

# hyperparameters: with cuda the classic lecture config; on a laptop CPU (or mps) a smaller model sized for 2 minutes
_cuda = torch.cuda.is_available()
dataset = 'input.txt'     # tiny Shakespeare (downloaded on first use), or any text file or list (see mode)
mode = 'auto'             # 'text': running text; 'names': one item per line; 'auto': names if lines average < 20 characters
batch_size = 64 if _cuda else 16     # sequences per micro-batch
gradient_accumulation_steps = 1      # micro-batches per step (shared among torchrun's processes)
block_size = 256 if _cuda else 64    # context length: how many characters attention can see
n_layer = 6 if _cuda else 4          # transformer blocks
n_head = 6 if _cuda else 4           # attention heads per block (n_embd must divide evenly)
n_embd = 384 if _cuda else 128       # channels of the residual stream
dropout = 0.2 if _cuda else 0.0      # a big model on 1M characters overfits; a small one barely can
max_iters = 5000 if _cuda else 1600  # optimizer steps
eval_interval = 500 if _cuda else 400  # report train/val loss (and checkpoint if val improved) this often
eval_iters = 200 if _cuda else 40    # batches per loss estimate on running text (names: whole splits)
learning_rate = 1e-3 if _cuda else 3e-3  # peak learning rate, after warmup
warmup_iters = 100        # steps of linear warmup; then cosine decay to lr_decay * learning_rate
lr_decay = 0.1            # the learning rate ends at this fraction of its peak
weight_decay = 0.1        # AdamW decay of the weight matrices (not biases, not LayerNorm)
compile = False           # torch.compile the model: faster steps on a GPU after a minute of compiling
device = 'cuda' if _cuda else 'mps' if torch.backends.mps.is_available() else 'cpu'
# autocast: bfloat16 needs compute capability 8.0+ (A100, H100); T4 and V100 get float16 (with a gradient scaler)
dtype = ('bfloat16' if torch.cuda.get_device_capability() >= (8, 0) else 'float16') if _cuda else 'float32'
seed = 1337               # seeds the initial weights, the batches and the sampling
num_samples = 20          # how many names to generate at the end (names mode)
prompt = '\n'             # text: what to continue; names: the start of every sampled name
max_new_tokens = 500      # characters of text to generate
temperature = 1.0         # < 1 sharpens the distribution we sample from, > 1 flattens it
top_k = 0                 # sample only among the k most likely characters (0: all)
show_attention = False    # before sampling, draw what each prompt character attends to, head by head
attention_layer = -1      # the block whose heads --show_attention draws (-1: the last)
ckpt_path = 'gpt.pt'      # checkpoint: saved when val improves, and on Ctrl-C
resume = False            # continue training from ckpt_path
sample_only = False       # load ckpt_path and only generate

# command-line overrides, e.g. --max_iters=200 --device=cpu; values are Python literals of the
# default's type. In a notebook kernel sys.argv holds the kernel's own flags: keep the defaults.
def fail(msg, code=2): print(f'error: {msg}', file=sys.stderr); sys.exit(code)
_keys = [k for k, v in globals().items() if not k.startswith('_') and type(v) in (int, float, bool, str)]
for _arg in [] if 'ipykernel' in sys.modules else sys.argv[1:]:
    _k, _eq, _s = _arg[2:].partition('=')
    if not (_arg.startswith('--') and _eq and _k in _keys):
        fail(f"unknown option {_arg!r}; use --key=value with a key from: {', '.join(_keys)}")
    try: _v = ast.literal_eval(_s)
    except (ValueError, SyntaxError): _v = _s  # a bare word such as cpu is a string
    if isinstance(globals()[_k], str) and not isinstance(_v, str): _v = _s  # strings need no quotes
    if type(globals()[_k]) is float and type(_v) is int: _v = float(_v)
    if type(_v) is not type(globals()[_k]):
        fail(f"--{_k} must be of type {type(globals()[_k]).__name__}, got {_s!r}; valid keys: {', '.join(_keys)}")
    globals()[_k] = _v
for _k, _ok in [('mode', ('auto', 'text', 'names')), ('dtype', ('float32', 'bfloat16', 'float16'))]:
    if globals()[_k] not in _ok: fail(f"--{_k}={globals()[_k]} is not one of {', '.join(_ok)}")

# data parallel: torchrun starts one process per GPU (and sets RANK); DDP averages their gradients every step
ddp = 'RANK' in os.environ
rank, world = (int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])) if ddp else (0, 1)
master = rank == 0        # process 0 alone prints, evaluates, samples and writes checkpoints
if ddp:
    if device.startswith('cuda'):
        device = f"cuda:{os.environ['LOCAL_RANK']}"  # one GPU per process
        torch.cuda.set_device(device)
    if gradient_accumulation_steps % world:
        fail(f'--gradient_accumulation_steps={gradient_accumulation_steps} must be a multiple of the {world} processes: '
             f'each does an equal share of the micro-batches (try --gradient_accumulation_steps={world})')
    torch.distributed.init_process_group('nccl' if device.startswith('cuda') else 'gloo')

# data: the file is read from the working directory; the two canonical files are fetched once
_urls = {'names.txt': 'https://raw.githubusercontent.com/karpathy/makemore/master/names.txt',
         'input.txt': 'https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt'}
if not os.path.isfile(dataset):
    if dataset not in _urls: fail(f'dataset file {dataset!r} not found (pass --dataset=path/to/file.txt)', 1)
    try:
        with urllib.request.urlopen(_urls[dataset], timeout=30) as r: _data = r.read()
        with open(dataset + '.tmp', 'wb') as f: f.write(_data)
        os.replace(dataset + '.tmp', dataset)  # rename: never leave a half-written file
    except OSError as e:
        fail(f'{dataset} is missing and downloading it failed ({e}); get {_urls[dataset]} and put it in {os.getcwd()}', 1)
try:
    with open(dataset, encoding='utf-8') as f: text = f.read()
except (OSError, UnicodeDecodeError) as e: fail(f'cannot read {dataset}: {e}', 1)
words = [w.strip() for w in text.splitlines() if w.strip()]
if mode == 'auto':  # a list of names or words has short lines; prose and verse average 30+ characters
    mode = 'names' if words and sum(map(len, words)) < 20 * len(words) else 'text'
names = mode == 'names'   # names mode: one item per line, like chapters 1-5
if names:
    if len(words) < 10: fail(f'{dataset} has too few lines ({len(words)}): it needs at least 10 (one name per line) so that train, val and test are not empty', 1)
    itos = ['.'] + sorted(set(''.join(words)) - {'.'})  # '.' (index 0) marks both start and end of a name
else:
    itos = sorted(set(text))  # running text: the vocabulary is every character that occurs
    if len(text) < 10 * (block_size + 1): fail(f'{dataset} has {len(text)} characters: it needs at least {10 * (block_size + 1)} (val must hold a block)', 1)
stoi = {ch: i for i, ch in enumerate(itos)}
vocab_size = len(itos)
encode = lambda s: [stoi[c] for c in s]
decode = lambda ids: ''.join(itos[i] for i in ids)
if master: print(f'{dataset}: mode={mode} ({"one name per line" if names else "running text"}), {vocab_size} distinct characters')
prompt = prompt.strip() if names else prompt
if not (prompt or names): fail('--prompt is empty: the model needs at least one character to continue, e.g. --prompt=ROMEO:')
for _c in prompt:
    if _c not in stoi: fail(f'prompt character {_c!r} is not in the vocabulary of {dataset}; use characters from: {"".join(itos)!r}')
if names:
    random.seed(42)  # the same shuffle in every names chapter, so their losses compare
    random.shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    splits = {'train': words[:n1], 'val': words[n1:n2], 'test': words[n2:]}
    L = max(len(w) for w in words) + 1  # longest sequence: '.' + longest name
    if block_size < L: fail(f'the longest name needs --block_size={L} or more (block_size is {block_size})')
    def build_dataset(names):  # one padded row per name: input '.'+name, target name+'.'
        X = torch.zeros(len(names), L, dtype=torch.long)
        Y = torch.full((len(names), L), -1, dtype=torch.long)  # -1: padding, ignored by the loss
        for i, w in enumerate(names):
            X[i, :len(w) + 1] = torch.tensor([0] + encode(w))
            Y[i, :len(w) + 1] = torch.tensor(encode(w) + [0])
        return X, Y, torch.tensor([len(w) + 1 for w in names])
    data = {s: build_dataset(ws) for s, ws in splits.items()}
else:
    ids = torch.tensor(encode(text))
    data = {'train': ids[:int(0.9 * len(ids))], 'val': ids[int(0.9 * len(ids)):]}  # first 90% / last 10%

def get_batch(split, generator=None):
    if names:  # random names, cut to the longest in the batch so little compute goes to padding
        X, Y, lens = data[split]
        ix = torch.randint(len(X), (batch_size,), generator=generator)
        T = int(lens[ix].max())
        return X[ix, :T].to(device), Y[ix, :T].to(device)
    d = data[split]  # random windows of running text; the target is the input shifted by one
    ix = torch.randint(len(d) - block_size, (batch_size,), generator=generator)
    chunk = d[ix[:, None] + torch.arange(block_size + 1)]  # (B, T+1)
    return chunk[:, :-1].to(device), chunk[:, 1:].to(device)

# checkpoint: with weights_only=True, torch.load rebuilds only tensors and containers: a checkpoint cannot run code
if resume or sample_only:
    try: ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
    except FileNotFoundError: fail(f'checkpoint {ckpt_path} not found: train first (python gpt.py), or pass --ckpt_path=...', 1)
    except Exception: fail(f'checkpoint {ckpt_path} cannot be read: it is truncated or not a torch file', 1)
    if not (isinstance(ckpt, dict) and {'model', 'optimizer', 'scaler', 'config', 'itos', 'iter'} <= ckpt.keys()):
        fail(f'{ckpt_path} is not a checkpoint of this gpt.py (an older version, or another program): train a new one', 1)
    if ckpt['itos'] != itos: fail(f'checkpoint {ckpt_path} was trained on another vocabulary than {dataset}', 1)
    _given = {a[2:].partition('=')[0] for a in ([] if 'ipykernel' in sys.modules else sys.argv[1:])}
    for _k in ('n_layer', 'n_head', 'n_embd', 'block_size'):  # the model's shape comes from the checkpoint
        if _k in _given and globals()[_k] != ckpt['config'][_k]:
            fail(f'--{_k}={globals()[_k]} cannot change on resume: {ckpt_path} has {_k}={ckpt["config"][_k]}', 2)
        globals()[_k] = ckpt['config'][_k]
if n_embd % n_head: fail(f'n_embd={n_embd} must be divisible by n_head={n_head}: each head gets n_embd // n_head channels')
if not -n_layer <= attention_layer < n_layer: fail(f'--attention_layer={attention_layer} must be a block: 0 to {n_layer - 1}, or -1 for the last')

# model: the lecture's parts, in its order: attention heads, MultiHeadAttention, FeedForward, Block, GPT
class MultiHeadAttention(nn.Module):
    """n_head self-attention heads side by side. Each is the lecture's Head: key, query, value, scores, the
    causal mask, softmax, dropout, a weighted sum of the values. Here the heads run batched as one tensor op:
    one Linear makes the keys of every head, and its n_embd outputs are split into (n_head, head_size) below."""
    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(n_embd, n_embd) for _ in range(3))
        self.proj = nn.Linear(n_embd, n_embd)  # mixes the concatenated heads back together
        self.dropout = nn.Dropout(dropout)
        self.register_buffer('tril', torch.tril(torch.ones(block_size, block_size, dtype=torch.bool)), persistent=False)

    def forward(self, x, need_weights=False):
        B, T, C = x.shape
        # split the channels into heads, and make the heads a batch dimension: no head sees another's channels
        q, k, v = (f(x).view(B, T, n_head, C // n_head).transpose(1, 2) for f in (self.query, self.key, self.value))  # (B, nh, T, hs)
        if need_weights:  # the math written out, so the attention weights can be looked at
            att = q @ k.transpose(-2, -1) * k.size(-1) ** -0.5  # (B, nh, T, T): how well query t matches key s
            att = att.masked_fill(~self.tril[:T, :T], float('-inf')).softmax(dim=-1)  # causal: s > t gets weight 0
            y = self.dropout(att) @ v  # (B, nh, T, hs): a weighted sum of the values
        else:  # exactly the same computation in one fused kernel: faster, and it keeps no (T, T) weights
            att, y = None, F.scaled_dot_product_attention(q, k, v, dropout_p=dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).reshape(B, T, C)  # concatenate the heads: (B, T, C)
        return self.dropout(self.proj(y)), att

class FeedForward(nn.Sequential):  # attention gathered information from other positions; each now thinks it over alone
    def __init__(self):
        super().__init__(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))

class Block(nn.Module):
    """Communication (attention across positions), then computation (feed-forward), each added into x."""
    def __init__(self):
        super().__init__()
        self.ln1, self.sa, self.ln2, self.ffwd = nn.LayerNorm(n_embd), MultiHeadAttention(), nn.LayerNorm(n_embd), FeedForward()
    def forward(self, x, need_weights=False):
        y, att = self.sa(self.ln1(x), need_weights)
        x = x + y
        return x + self.ffwd(self.ln2(x)), att

class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, n_embd)  # what the character is
        self.pos_emb = nn.Embedding(block_size, n_embd)  # where it is: attention alone is order-blind
        self.blocks = nn.ModuleList(Block() for _ in range(n_layer))
        self.ln_f, self.lm_head = nn.LayerNorm(n_embd), nn.Linear(n_embd, vocab_size)
        # small weights make the first predictions near uniform (loss ~ ln vocab_size); each block adds two branches
        # into x, so their output layers are scaled by 1/sqrt(2 n_layer): the residual stream's variance stays put
        for name, p in self.named_parameters():
            if name.endswith('bias'): nn.init.zeros_(p)
            elif p.dim() == 2:
                deep = name.endswith(('proj.weight', 'ffwd.2.weight'))
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layer) if deep else 0.02)

    def forward(self, idx, targets=None, need_weights=False):  # -> logits, loss, one attention map per block
        B, T = idx.shape
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device))  # (B, T, C)
        maps = []
        for block in self.blocks:
            x, att = block(x, need_weights)
            maps.append(att)  # (B, nh, T, T), or None on the fused path
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab_size)
        if targets is None: return logits, None, maps
        return logits, F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), ignore_index=-1), maps

torch.manual_seed(seed)
torch.set_float32_matmul_precision('high')  # TF32 matmuls on a GPU
model = GPT().to(device)
eval_model = torch.compile(model) if compile else model
step_model = nn.parallel.DistributedDataParallel(eval_model) if ddp else eval_model  # only rank 0 evaluates: no DDP there
groups = [{'params': [p for p in model.parameters() if p.dim() == 2], 'weight_decay': weight_decay},  # matrices
          {'params': [p for p in model.parameters() if p.dim() < 2], 'weight_decay': 0.0}]  # biases and gains: no decay
opt = torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.99), fused=device.split(':')[0] in ('cuda', 'cpu'))
autocast = torch.autocast(device.split(':')[0], getattr(torch, dtype), enabled=dtype != 'float32')
# float16 rounds gradients below ~6e-8 to 0, so the scaler multiplies the loss up and the gradients back down
scaler = torch.amp.GradScaler(device.split(':')[0], enabled=dtype == 'float16')
best_val, start, t_prev = float('inf'), 0, 0.0
if resume or sample_only: model.load_state_dict(ckpt['model'])
if resume:  # everything a step depends on: weights, Adam's moments, the step, the random streams
    opt.load_state_dict(ckpt['optimizer'])
    scaler.load_state_dict(ckpt['scaler'])
    best_val, start, t_prev = ckpt['best_val'], ckpt['iter'], ckpt['time']
    torch.set_rng_state(ckpt['torch_rng'].cpu())
    random.setstate(ckpt['python_rng'])
if ddp: torch.manual_seed(seed + 1 + rank + start)  # the same initial weights everywhere, but each process its own batches

def save_checkpoint(it):
    ckpt = {'model': model.state_dict(), 'optimizer': opt.state_dict(), 'scaler': scaler.state_dict(), 'iter': it,
            'best_val': best_val, 'time': time.time() - t0, 'config': {k: globals()[k] for k in _keys}, 'itos': itos,
            'torch_rng': torch.get_rng_state(), 'python_rng': random.getstate()}
    torch.save(ckpt, ckpt_path + '.tmp')
    os.replace(ckpt_path + '.tmp', ckpt_path)  # rename is atomic: the old file or the new one, never half

# evaluation: names on every name of a split (mean NLL per character, as in chapters 1-5); text on fixed windows
@torch.no_grad()
def estimate_loss():
    model.eval()
    out = {}
    for split in data:
        if names:
            X, Y, lens = data[split]
            order = lens.argsort()  # similar lengths together: little padding to compute on
            batches = [(X[ix, :lens[ix].max()].to(device), Y[ix, :lens[ix].max()].to(device)) for ix in order.split(1024)]
        else:
            g = torch.Generator().manual_seed(seed)  # the same windows at every evaluation
            batches = [get_batch(split, g) for _ in range(eval_iters)]
        nll, n = 0.0, 0
        for x, y in batches:
            with autocast: logits = eval_model(x)[0]
            nll += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=-1, reduction='sum').item()
            n += (y != -1).sum().item()
        out[split] = nll / n
    model.train()
    return out

def lr_at(it):  # linear warmup, then cosine decay: big steps early, careful ones late
    if it < warmup_iters: return learning_rate * (it + 1) / warmup_iters
    cos = math.cos(math.pi * (it - warmup_iters) / max(1, max_iters - warmup_iters))
    return learning_rate * ((1 + lr_decay) / 2 + (1 - lr_decay) / 2 * cos)

def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from a broken model
    if not math.isfinite(loss): fail(f'training diverged: the loss is {loss} at iter {it}; lower --learning_rate (it is {learning_rate})', 1)

# training: the first Ctrl-C finishes the current step, saves a checkpoint and stops
def _on_sigint(*_):
    if _stop: raise KeyboardInterrupt  # a second Ctrl-C stops at once
    _stop.append(True)
_stop, losses, accum = [], None, gradient_accumulation_steps // world
if not sample_only:
    _old_handler = signal.signal(signal.SIGINT, _on_sigint)
    t0 = time.time() - t_prev
    t_log, it_log = time.time(), start
    for it in range(start + 1, max_iters + 1):
        for group in opt.param_groups: group['lr'] = lr_at(it)
        for micro in range(accum):  # the gradients of accum micro-batches add up in .grad
            xb, yb = get_batch('train')
            if ddp: step_model.require_backward_grad_sync = micro == accum - 1  # average across processes once, at the end
            with autocast: loss = step_model(xb, yb)[1]
            check_finite(loss.item(), it)
            scaler.scale(loss / accum).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if master and (it % (eval_interval // 10 or 1) == 0 or it == max_iters):  # ms/iter: training steps only
            ms = 1000 * (time.time() - t_log) / (it - it_log)
            print(f'iter {it}/{max_iters} | loss {loss.item():.4f} | {ms:.1f} ms/iter | eta {ms * (max_iters - it) / 1000:.0f} s')
            t_log, it_log = time.time(), it
        if master and (it % eval_interval == 0 or it == max_iters):
            losses = estimate_loss()
            check_finite(sum(losses.values()), it)  # sum: a nan anywhere makes it nan
            print(f"iter {it}/{max_iters} | train {losses['train']:.4f} | val {losses['val']:.4f}")
            if losses['val'] < best_val:
                best_val = losses['val']
                save_checkpoint(it)
            t_log = time.time()
        if _stop:
            if master:
                save_checkpoint(it)
                print(f'interrupted at iter {it}: checkpoint saved to {ckpt_path}; continue with --resume=True')
            sys.exit(130)
    signal.signal(signal.SIGINT, _old_handler)
    if ddp: torch.distributed.destroy_process_group()
    if not master: sys.exit(0)  # the other processes are done: rank 0 has the same weights
    print(f"final: train={losses['train']:.4f} val={losses['val']:.4f}" + (f" test={losses['test']:.4f}" if names else '') +
          f" params={sum(p.numel() for p in model.parameters())} time={time.time() - t0:.1f}s")

# sample: feed the model its own output, one character at a time, cropping the context to block_size
@torch.no_grad()
def generate(idx, n):  # idx (B, T) -> yields the next character of every row, n times
    for _ in range(n):
        logits = model(idx[:, -block_size:])[0][:, -1, :].float() / temperature  # (B, vocab_size): the last position
        if top_k > 0:
            v, _ = torch.topk(logits, min(top_k, vocab_size))
            logits[logits < v[:, [-1]]] = -float('inf')
        nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g)  # (B, 1)
        idx = torch.cat((idx, nxt), dim=1)
        yield nxt[:, 0].tolist()

def draw_attention(chars, att):  # att (n_head, T, T): row t is how character t spreads its attention
    show = lambda c: {'\n': '⏎', ' ': '␣', '\t': '⇥'}.get(c, c)  # visible stand-ins for blanks
    print('each row is a character; the shading shows what it attends to: █ most, · little, blank 0')
    for h, a in enumerate(att.tolist()):
        print(f'{f"head {h}":>8}   ' + ' '.join(map(show, chars)))
        for c, row in zip(chars, a):
            print((f'{show(c):>8}   ' + ' '.join(' ' if w == 0 else '·░▒▓█'[round(4 * w / max(row))] for w in row)).rstrip())

start_ids = torch.tensor([([0] if names else []) + encode(prompt)], device=device)[:, -block_size:]  # (1, T)
model.eval()
if show_attention:
    with torch.no_grad(): att = model(start_ids, need_weights=True)[2][attention_layer][0]  # (nh, T, T)
    print(f'attention in block {range(n_layer)[attention_layer] + 1} of {n_layer}:')
    draw_attention(decode(start_ids[0].tolist()), att)
g = torch.Generator(device=device).manual_seed(seed)
if names:  # all samples at once, each cut at its first '.'
    rows = [list(r) for r in zip(*generate(start_ids.repeat(num_samples, 1), block_size - start_ids.size(1)))]
    samples = [prompt + decode(r[:r.index(0)] if 0 in r else r) for r in rows]
    new = sum(s not in set(splits['train']) for s in samples)
    print(''.join(s + '\n' for s in samples) + f'{new}/{num_samples} samples are new (not in the training names)')
else:  # stream: print each character as it is made, so you watch the model write
    print(prompt, end='', flush=True)
    for (c,) in generate(start_ids, max_new_tokens):
        print(itos[c], end='', flush=True)
    print()
