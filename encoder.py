"""
Chapter 7: attention without the mask, for classification: a real name, or one drawn from chapter 1's bigram table?
The fakes have the right pairs by construction, so what this encoder (gpt.py's blocks, each character seeing the
whole name) adds over a baseline that knows only pairs and length comes from the whole name. Run: python encoder.py.
Defaults, 2 CPU cores: val_acc 0.8530, test_acc 0.8505 (baseline 0.7796, 0.7757), 117,746 params, 124.1 s (median of 3).
"""
import ast, math, os, random, sys, time, urllib.request
import torch
import torch.nn as nn
import torch.nn.functional as F

# hyperparameters
dataset = 'names.txt'     # one name per line, in the working directory (downloaded on first use)
block_size = 17           # longest input: '.' + name + '.' (names.txt needs 15 + 2)
batch_size = 128          # names per training step: half real, half fresh fakes
max_iters = 3500          # training steps
eval_interval = 1750      # report losses and val accuracy every this many steps
learning_rate = 3e-3      # peak learning rate of the one-cycle schedule
dropout = 0.0             # fraction of attention weights and block outputs zeroed while training
n_embd = 48               # channels of the residual stream (64, at 3,000 steps: val_acc 0.849 in 141 s)
n_head = 4                # attention heads per block (n_embd must divide evenly)
n_layer = 4               # transformer blocks (5, at 3,000 steps: val_acc 0.850; 2 of 64 channels, 2,000 steps: 0.838)
device = 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'
seed = 1337               # seeds the fakes, the initial weights and the batches
num_show = 8              # how many val names to show at the end with the model's p(real) (at least 1)

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
    with open(dataset, encoding='utf-8') as f: words = [w.strip() for w in f.read().splitlines() if w.strip()]
except (OSError, UnicodeDecodeError) as e: fail(f'cannot read {dataset}: {e}', 1)
if len(words) < 10: fail(f'{dataset} has too few lines ({len(words)}): it needs at least 10 (one name per line) so that train, val and test are not empty', 1)
itos = ['.'] + sorted(set(''.join(words)) - {'.'})  # '.' (index 0) marks both start and end of a name
stoi = {ch: i for i, ch in enumerate(itos)}
vocab_size = len(itos)
encode = lambda s: [stoi[c] for c in s]
decode = lambda ids: ''.join(itos[i] for i in ids)
random.seed(42)  # the same shuffle in every names chapter, so their losses compare
random.shuffle(words)
n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
splits = {'train': words[:n1], 'val': words[n1:n2], 'test': words[n2:]}

L = max(len(w) for w in words) + 2  # longest input: '.' + longest name + '.'
if block_size < L: fail(f'the longest name needs --block_size={L} or more (block_size is {block_size})')
if n_embd % n_head: fail(f'n_embd={n_embd} must be divisible by n_head={n_head}: each head gets n_embd // n_head channels')

# the fakes: chapter 1's model, fitted on train only: count the pairs of .emma.olivia... (one '.' ends a name
# and starts the next), add 1 so that no pair is impossible, normalise each row, and sample, all names at once
ids = torch.tensor([0] + [i for w in splits['train'] for i in encode(w) + [0]])
P = torch.bincount(ids[:-1] * vocab_size + ids[1:], minlength=vocab_size ** 2).view(vocab_size, vocab_size) + 1
P = P / P.sum(dim=1, keepdim=True)  # each row is now P(next char | this char), summing to 1
g = torch.Generator().manual_seed(seed)
def sample_fakes(n):  # n names side by side, one character per step, each from its predecessor's row
    fakes = []
    while len(fakes) < n:
        ix = torch.zeros(n, dtype=torch.long)  # every name starts after a '.'
        cols = [ix := torch.multinomial(P[ix], 1, generator=g)[:, 0] for _ in range(L - 1)]  # L-1 x (n,)
        fakes += [decode(r[:r.index(0)]) for r in torch.stack(cols, 1).tolist() if r[0] and 0 in r]  # not empty, not too long
    return fakes[:n]
def rows(names):  # '.' + name + '.', padded with '.': (N, T) and the lengths (N,); the end '.' shows where a name stops
    return nn.utils.rnn.pad_sequence([torch.tensor([0] + encode(w) + [0]) for w in names], batch_first=True), torch.tensor([len(w) + 2 for w in names])

# each split: its real names (label 1), then as many fakes (0). A fake can be a real name too ('ann'): noise no
# classifier can beat. The baseline's features: the length (one-hot), the bigram log-likelihood (sum / 10, mean)
data, feats, clash, taken = {}, {}, 0, set(words)
for s, real in splits.items():
    fakes = sample_fakes(len(real))
    clash += sum(f in taken for f in fakes)
    (X, lens), Y = rows(real + fakes), torch.tensor([1] * len(real) + [0] * len(fakes))
    ll = P.log()[X[:, :-1], X[:, 1:]].masked_fill(torch.arange(1, X.size(1)) >= lens[:, None], 0).sum(1)  # (N,)
    feats[s] = torch.cat([F.one_hot(lens, L + 1), ll[:, None] / 10, (ll / (lens - 1))[:, None]], 1).float(), Y.float()
    data[s] = X.to(device), lens.to(device), Y.to(device)
print(f'{sum(map(len, splits.values()))} fakes drawn from the bigram table; {clash} of them are real names too')

def get_batch():  # half random train names, half fresh fakes: no fake is seen twice, so none can be memorized
    X, lens = rows([splits['train'][i] for i in torch.randint(n1, (batch_size // 2,))] + sample_fakes(batch_size - batch_size // 2))
    return X.to(device), lens.to(device), (torch.arange(batch_size, device=device) < batch_size // 2).long()

w = torch.zeros(L + 3, requires_grad=True)  # the baseline: a logistic regression, fitted on train by full-batch Adam
opt = torch.optim.Adam([w], lr=0.1)
for _ in range(1000):
    opt.zero_grad()
    F.binary_cross_entropy_with_logits(feats['train'][0] @ w, feats['train'][1]).backward()
    opt.step()
base = {s: (F.binary_cross_entropy_with_logits(f @ w, y).item(), ((f @ w > 0) == y).float().mean().item()) for s, (f, y) in feats.items()}

# model: gpt.py's blocks, unmasked, make the Encoder; a small MLP, the Classifier, reads the mean encoding
class MultiHeadAttention(nn.Module):
    """n_head self-attention heads side by side, each the lecture's Head: key, query, value, scores, the padding
    mask, softmax, dropout, a weighted sum of the values; batched as one tensor op, (n_head, head_size) below."""
    def __init__(self):
        super().__init__()
        self.key, self.query, self.value = (nn.Linear(n_embd, n_embd) for _ in range(3))
        self.proj, self.dropout = nn.Linear(n_embd, n_embd), nn.Dropout(dropout)  # proj mixes the concatenated heads
    def forward(self, x, pad):  # pad (B, T): True where a row holds padding, not a character
        B, T, C = x.shape
        q, k, v = (f(x).view(B, T, n_head, C // n_head).transpose(1, 2) for f in (self.query, self.key, self.value))  # (B, nh, T, hs)
        att = q @ k.transpose(-2, -1) * k.size(-1) ** -0.5  # (B, nh, T, T): how well query t matches key s
        # no causal mask: every character sees the whole name, before and after it. Only the padding is
        # hidden, so a name gets the same encodings alone or padded in a batch of longer names
        att = att.masked_fill(pad[:, None, None, :], float('-inf')).softmax(dim=-1)
        y = self.dropout(att) @ v  # (B, nh, T, hs): a weighted sum of the values
        return self.dropout(self.proj(y.transpose(1, 2).reshape(B, T, C))), att  # concatenate the heads: (B, T, C)

class FeedForward(nn.Sequential):  # attention gathered information from other positions; each now thinks it over alone
    def __init__(self):
        super().__init__(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd), nn.Dropout(dropout))

class Block(nn.Module):
    """Communication (attention across positions), then computation (feed-forward), each added into x."""
    def __init__(self):
        super().__init__()
        self.ln1, self.sa, self.ln2, self.ffwd = nn.LayerNorm(n_embd), MultiHeadAttention(), nn.LayerNorm(n_embd), FeedForward()
    def forward(self, x, pad):
        y, att = self.sa(self.ln1(x), pad)
        x = x + y
        return x + self.ffwd(self.ln2(x)), att

class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(vocab_size, n_embd)  # what the character is
        self.pos_emb = nn.Embedding(block_size, n_embd)  # where it is: attention alone is order-blind
        self.blocks, self.ln_f = nn.ModuleList(Block() for _ in range(n_layer)), nn.LayerNorm(n_embd)
    def forward(self, idx, pad):  # (B, T) -> encodings (B, T, C) and one attention map (B, nh, T, T) per block
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.size(1), device=idx.device))  # (B, T, C)
        maps = []
        for block in self.blocks:
            x, att = block(x, pad)
            maps.append(att)
        return self.ln_f(x), maps

class Classifier(nn.Sequential):  # (B, C) -> (B, 2) log-probabilities of fake (0) and real (1)
    def __init__(self):
        super().__init__(nn.Linear(n_embd, n_embd), nn.ReLU(), nn.Linear(n_embd, 2), nn.LogSoftmax(dim=-1))

class EncoderClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder, self.classifier = Encoder(), Classifier()
    def forward(self, idx, lens):  # idx (B, T), lens (B,) -> (B, 2) log-probabilities and the maps
        pad = torch.arange(idx.size(1), device=idx.device) >= lens[:, None]  # (B, T): past the name's end
        x, maps = self.encoder(idx, pad)  # (B, T, C)
        x = x.masked_fill(pad[..., None], 0).sum(1) / lens[:, None]  # (B, C): the mean over real positions
        return self.classifier(x), maps

torch.manual_seed(seed)
model = EncoderClassifier().to(device)

@torch.no_grad()
def evaluate(chunk=4096):  # every name of a split: mean cross-entropy (s) and accuracy (s_acc), in chunks of similar lengths
    model.eval()
    out = {}
    for s, (X, lens, Y) in data.items():
        order = lens.argsort()
        logp = torch.cat([model(X[ix, :int(lens[ix].max())], lens[ix])[0] for ix in order.split(chunk)])  # (N, 2)
        out[s], out[s + '_acc'] = F.nll_loss(logp, Y[order]).item(), (logp.argmax(1) == Y[order]).float().mean().item()
    model.train()
    return out

# training: AdamW (fused: one kernel for all the weights) with a one-cycle schedule
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, fused=device in ('cuda', 'cpu'))
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=max_iters)
def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from a broken model
    if not math.isfinite(loss): fail(f'training diverged: the loss is {loss} at iter {it}; lower --learning_rate (it is {learning_rate})', 1)
t0 = time.time()
for it in range(1, max_iters + 1):
    X, lens, Y = get_batch()
    loss = F.nll_loss(model(X, lens)[0], Y)  # cross-entropy: minus the log-probability of the right class
    check_finite(loss.item(), it)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    if it % (eval_interval // 10 or 1) == 0 or it == max_iters:
        dt = time.time() - t0
        print(f'iter {it}/{max_iters} | loss {loss.item():.4f} | {1000 * dt / it:.1f} ms/iter | eta {dt / it * (max_iters - it):.0f} s')
    if it % eval_interval == 0 or it == max_iters:
        losses = evaluate()
        check_finite(sum(losses.values()), it)  # sum: a nan anywhere makes it nan
        print(f"iter {it}/{max_iters} | train {losses['train']:.4f} | val {losses['val']:.4f} | val_acc {losses['val_acc']:.4f}")
train_time = time.time() - t0
print(f"baseline (length and bigram log-likelihood only): val={base['val'][0]:.4f} test={base['test'][0]:.4f} val_acc={base['val'][1]:.4f} test_acc={base['test'][1]:.4f}")
print('final: ' + ' '.join(f'{k}={losses[k]:.4f}' for k in ['train', 'val', 'test', 'train_acc', 'val_acc', 'test_acc']) +
      f' params={sum(p.numel() for p in model.parameters())} time={train_time:.1f}s')

def draw_attention(chars, att):  # att (n_head, T, T): row t is how character t spreads its attention
    show = lambda c: {'\n': '⏎', ' ': '␣', '\t': '⇥'}.get(c, c)  # visible stand-ins for blanks
    print('each row is a character; the shading shows what it attends to: █ most, · little, blank 0')
    for h, a in enumerate(att.tolist()):
        print(f'{f"head {h}":>8}   ' + ' '.join(map(show, chars)))
        for c, row in zip(chars, a):
            print((f'{show(c):>8}   ' + ' '.join(' ' if w == 0 else '·░▒▓█'[round(4 * w / max(row))] for w in row)).rstrip())

# instead of samples: val names the model never saw, with its p(real); then how the first one was read
model.eval()
X, lens, Y = data['val']
ix = torch.randperm(len(Y) // 2, generator=g)[:max(num_show, 1)]  # the split holds its real names, then the fakes
ix = (ix + len(Y) // 2 * (torch.arange(len(ix)) % 2)).to(device)  # so every other one shown is a fake
with torch.no_grad(): logp, maps = model(X[ix], lens[ix])
for i, p in zip(ix.tolist(), logp[:, 1].exp().tolist()):
    print(f"p(real) {p:.3f}  {'real' if Y[i] else 'fake'}  {decode(X[i, 1:lens[i] - 1].tolist())}")
n = lens[ix[0]]
print(f'attention in the last block, head by head, reading {decode(X[ix[0], 1:n - 1].tolist())!r}:')
draw_attention(decode(X[ix[0], :n].tolist()), maps[-1][0, :, :n, :n])  # real positions only
