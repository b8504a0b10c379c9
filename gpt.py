"""
Chapter 6: a decoder-only transformer (GPT). Where the RNN squeezed the past into one state vector,
self-attention lets every character look back at every earlier one directly and pick what matters.
Run: python gpt.py (tiny Shakespeare; names: see README). Checkpoints: --resume=True, --sample_only=True.
Result with the CPU defaults, 2 CPU cores: val 1.7944 after 109.2 s of training (median of 3 runs);
the GPU defaults (the classic config) could not be measured here: no GPU was available.
"""
import ast, math, os, random, signal, sys, time, urllib.request
import torch
import torch.nn as nn
import torch.nn.functional as F

# hyperparameters: with cuda the classic lecture config; on a laptop CPU (or mps) a smaller model sized for 2 minutes
_cuda = torch.cuda.is_available()
dataset = 'input.txt'     # tiny Shakespeare (downloaded on first use); any other file: one name per line
batch_size = 64 if _cuda else 16     # sequences per step
block_size = 256 if _cuda else 64    # context length: how many characters attention can see
n_layer = 6 if _cuda else 4          # transformer blocks
n_head = 6 if _cuda else 4           # attention heads per block (n_embd must divide evenly)
n_embd = 384 if _cuda else 128       # channels of the residual stream
dropout = 0.2 if _cuda else 0.0      # a big model on 1M characters overfits; a small one barely can
max_iters = 5000 if _cuda else 1600  # optimizer steps
eval_interval = 500 if _cuda else 400  # report train/val loss (and checkpoint if val improved) this often
eval_iters = 200 if _cuda else 40    # batches per loss estimate on Shakespeare (names: whole splits)
learning_rate = 1e-3 if _cuda else 3e-3  # peak learning rate, after warmup
warmup_iters = 100        # steps of linear warmup; then cosine decay to lr_decay * learning_rate
lr_decay = 0.1            # the learning rate ends at this fraction of its peak
weight_decay = 0.1        # AdamW decay of the weight matrices (not biases, not LayerNorm)
compile = False           # torch.compile the model: faster steps on a GPU after a minute of compiling
device = 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'
seed = 1337               # seeds the initial weights, the batches and the sampling
num_samples = 20          # how many names to generate at the end (names mode)
prompt = '\n'             # Shakespeare: text to continue; names: the start of every sampled name
max_new_tokens = 500      # characters of Shakespeare to generate
temperature = 1.0         # < 1 sharpens the distribution we sample from, > 1 flattens it
top_k = 0                 # sample only among the k most likely characters (0: all)
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
names = os.path.basename(dataset) != 'input.txt'  # names mode: one item per line, like chapters 1-5
if names:
    words = [w.strip() for w in text.splitlines() if w.strip()]
    if not words: fail(f'{dataset} holds no names: it needs one name per line', 1)
    itos = ['.'] + sorted(set(''.join(words)) - {'.'})  # '.' (index 0) marks both start and end of a name
else:
    itos = sorted(set(text))  # running text: the vocabulary is every character that occurs
    if len(text) < 10 * block_size: fail(f'{dataset} is too short to train on: it needs text, not a list', 1)
stoi = {ch: i for i, ch in enumerate(itos)}
vocab_size = len(itos)
encode = lambda s: [stoi[c] for c in s]
decode = lambda ids: ''.join(itos[i] for i in ids)
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

# checkpoint: with weights_only=True, torch.load only rebuilds tensors and plain containers,
# so a checkpoint (from the internet, say) can never run code on this machine
if resume or sample_only:
    try: ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
    except FileNotFoundError: fail(f'checkpoint {ckpt_path} not found: train first (python gpt.py), or pass --ckpt_path=...', 1)
    except Exception: fail(f'checkpoint {ckpt_path} cannot be read: it is truncated or not a torch file', 1)
    if not (isinstance(ckpt, dict) and {'model', 'optimizer', 'config', 'itos', 'iter'} <= ckpt.keys()):
        fail(f'{ckpt_path} is not a gpt.py checkpoint', 1)
    if ckpt['itos'] != itos: fail(f'checkpoint {ckpt_path} was trained on another vocabulary than {dataset}', 1)
    _given = {a[2:].partition('=')[0] for a in ([] if 'ipykernel' in sys.modules else sys.argv[1:])}
    for _k in ('n_layer', 'n_head', 'n_embd', 'block_size'):  # the model's shape comes from the checkpoint
        if _k in _given and globals()[_k] != ckpt['config'][_k]:
            fail(f'--{_k}={globals()[_k]} cannot change on resume: {ckpt_path} has {_k}={ckpt["config"][_k]}', 2)
        globals()[_k] = ckpt['config'][_k]
if n_embd % n_head: fail(f'n_embd={n_embd} must be divisible by n_head={n_head}: each head gets n_embd // n_head channels')

# model
class Block(nn.Module):
    """Communication, then computation: attention mixes information across positions, then
    the MLP thinks about each position on its own. Both add into the residual stream x."""
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.qkv = nn.Linear(n_embd, 3 * n_embd)  # query, key, value for every head in one matmul
        self.proj = nn.Linear(n_embd, n_embd)     # mixes the concatenated heads back together
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()

    def attn(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        # n_head separate heads of size hs = C // n_head are one tensor op: split C into
        # (n_head, hs) and treat heads as a batch dimension; no head ever sees another's channels
        q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        # the fused kernel below computes exactly, per head:
        #   att = (q @ k.transpose(-2, -1)) / sqrt(hs)          (B, nh, T, T): how well t matches s
        #   att = att.masked_fill(s > t, -inf).softmax(dim=-1)  causal: no peeking at the future
        #   y = dropout(att) @ v                                (B, nh, T, hs): weighted sum of values
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout if self.training else 0.0, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))  # concatenate heads: (B, T, C)

    def forward(self, x):
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.mlp(self.ln2(x)))

class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, n_embd)  # what the character is
        self.pos_emb = nn.Embedding(block_size, n_embd)  # where it is: attention alone is order-blind
        self.blocks = nn.Sequential(*[Block() for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size)
        # small weights make the first predictions near uniform (loss ~ ln vocab_size); every block
        # adds two branches into x, so their output layers are scaled by 1/sqrt(2 n_layer) to keep
        # the variance of the residual stream from growing with depth
        for name, p in self.named_parameters():
            if name.endswith('bias'): nn.init.zeros_(p)
            elif p.dim() == 2:
                deep = name.endswith(('proj.weight', 'mlp.2.weight'))
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layer) if deep else 0.02)

    def forward(self, idx, targets=None):
        B, T = idx.shape
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(T, device=idx.device))  # (B, T, C)
        logits = self.head(self.ln_f(self.blocks(x)))  # (B, T, vocab_size)
        if targets is None: return logits, None
        return logits, F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), ignore_index=-1)

torch.manual_seed(seed)
torch.set_float32_matmul_precision('high')  # TF32 matmuls on a GPU
model = GPT().to(device)
step_model = torch.compile(model) if compile else model
n_params = sum(p.numel() for p in model.parameters())
groups = [{'params': [p for p in model.parameters() if p.dim() == 2], 'weight_decay': weight_decay},  # matrices
          {'params': [p for p in model.parameters() if p.dim() < 2], 'weight_decay': 0.0}]  # biases and gains: no decay
opt = torch.optim.AdamW(groups, lr=learning_rate, betas=(0.9, 0.99), fused=device in ('cuda', 'cpu'))
autocast = torch.autocast(device.split(':')[0], torch.bfloat16, enabled=device.startswith('cuda'))
best_val, start, t_prev = float('inf'), 0, 0.0
if resume or sample_only: model.load_state_dict(ckpt['model'])
if resume:  # everything a step depends on: weights, Adam's moments, the step, the random streams
    opt.load_state_dict(ckpt['optimizer'])
    best_val, start, t_prev = ckpt['best_val'], ckpt['iter'], ckpt['time']
    torch.set_rng_state(ckpt['torch_rng'].cpu())
    random.setstate(ckpt['python_rng'])

def save_checkpoint(it):
    ckpt = {'model': model.state_dict(), 'optimizer': opt.state_dict(), 'iter': it, 'best_val': best_val,
            'time': time.time() - t0, 'config': {k: globals()[k] for k in _keys}, 'itos': itos,
            'torch_rng': torch.get_rng_state(), 'python_rng': random.getstate()}
    torch.save(ckpt, ckpt_path + '.tmp')
    os.replace(ckpt_path + '.tmp', ckpt_path)  # rename is atomic: the old file or the new one, never half

# evaluation: names are scored exactly on every name of a split (mean NLL per character, the
# end '.' included, as in chapters 1-5); Shakespeare on eval_iters fixed random windows
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
            with autocast: logits, _ = step_model(x)
            nll += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=-1, reduction='sum').item()
            n += (y != -1).sum().item()
        out[split] = nll / n
    model.train()
    return out

def lr_at(it):  # linear warmup, then cosine decay: big steps early, careful ones late
    if it < warmup_iters: return learning_rate * (it + 1) / warmup_iters
    cos = math.cos(math.pi * (it - warmup_iters) / max(1, max_iters - warmup_iters))
    return learning_rate * ((1 + lr_decay) / 2 + (1 - lr_decay) / 2 * cos)

# training: the first Ctrl-C finishes the current step, saves a checkpoint and stops
def _on_sigint(*_):
    if _stop: raise KeyboardInterrupt  # a second Ctrl-C stops at once
    _stop.append(True)
_stop, losses = [], None
if not sample_only:
    _old_handler = signal.signal(signal.SIGINT, _on_sigint)
    t0 = time.time() - t_prev
    t_log, it_log = time.time(), start
    for it in range(start + 1, max_iters + 1):
        for group in opt.param_groups: group['lr'] = lr_at(it)
        xb, yb = get_batch('train')
        with autocast: _, loss = step_model(xb, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % (eval_interval // 10 or 1) == 0 or it == max_iters:  # ms/iter: training steps only, evaluation excluded
            ms = 1000 * (time.time() - t_log) / (it - it_log)
            print(f'iter {it}/{max_iters} | loss {loss.item():.4f} | {ms:.1f} ms/iter | eta {ms * (max_iters - it) / 1000:.0f} s')
            t_log, it_log = time.time(), it
        if it % eval_interval == 0 or it == max_iters:
            losses = estimate_loss()
            print(f"iter {it}/{max_iters} | train {losses['train']:.4f} | val {losses['val']:.4f}")
            if losses['val'] < best_val:
                best_val = losses['val']
                save_checkpoint(it)
            t_log = time.time()
        if _stop:
            save_checkpoint(it)
            print(f'interrupted at iter {it}: checkpoint saved to {ckpt_path}; continue with --resume=True')
            sys.exit(130)
    train_time = time.time() - t0
    signal.signal(signal.SIGINT, _old_handler)
    losses = losses or estimate_loss()
    print(f"final: train={losses['train']:.4f} val={losses['val']:.4f}" + (f" test={losses['test']:.4f}" if names else '') +
          f" params={n_params} time={train_time:.1f}s")

# sample: feed the model its own output, one character at a time, cropping the context to block_size
@torch.no_grad()
def generate(idx, n):  # idx (B, T) -> yields the next character of every row, n times
    model.eval()
    for _ in range(n):
        logits, _ = model(idx[:, -block_size:])
        logits = logits[:, -1, :].float() / temperature  # (B, vocab_size): only the last position
        if top_k > 0:
            v, _ = torch.topk(logits, min(top_k, vocab_size))
            logits[logits < v[:, [-1]]] = -float('inf')
        nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=g)  # (B, 1)
        idx = torch.cat((idx, nxt), dim=1)
        yield nxt[:, 0].tolist()

g = torch.Generator(device=device).manual_seed(seed)
if names:  # all samples at once, each cut at its first '.'
    start_ids = torch.tensor([[0] + encode(prompt)], device=device).repeat(num_samples, 1)  # (num_samples, T)
    rows = [list(r) for r in zip(*generate(start_ids, block_size - start_ids.size(1)))]  # num_samples rows
    samples = [prompt + decode(r[:r.index(0)] if 0 in r else r) for r in rows]
    new = sum(s not in set(splits['train']) for s in samples)
    print(''.join(s + '\n' for s in samples) + f'{new}/{num_samples} samples are new (not in the training names)')
else:  # stream: print each character as it is made, so you watch the model write
    print(prompt, end='', flush=True)
    for (c,) in generate(torch.tensor([encode(prompt)], device=device), max_new_tokens):
        print(itos[c], end='', flush=True)
    print()
