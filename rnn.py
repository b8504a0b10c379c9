"""
Chapter 5: a recurrent network. Context is no longer a fixed window: a hidden state h is
carried from character to character, so each prediction can depend on the whole prefix.
A cell maps (x_t, h_{t-1}) -> h_t; cell='rnn' is the plain tanh (Elman) cell, cell='gru'
adds gates that let the state (and its gradient) pass through time unchanged.
Run: python rnn.py (or --cell=gru). 2 CPU cores, median of 3 runs: defaults val 1.9751, test 1.9770,
90,843 params, 55.3 s of training; --cell=gru val 1.9406, test 1.9452, 255,195 params, 119.2 s.
"""
import ast, math, os, random, sys, time, urllib.request
import torch
import torch.nn as nn
import torch.nn.functional as F

# hyperparameters
dataset = 'names.txt'     # one name per line, in the working directory (downloaded on first use)
cell = 'rnn'              # 'rnn' (plain tanh cell, met first) or 'gru' (gated: reaches a lower loss)
batch_size = 128          # names per training step
max_iters = 3000          # training steps
eval_interval = 1000      # report train/val loss every this many steps
learning_rate = 3e-3      # peak learning rate of the one-cycle schedule
weight_decay = 0.01       # AdamW's pull of the weights toward 0
dropout = 0.1             # fraction of embedding and output features zeroed while training
grad_clip = 1.0           # largest allowed gradient norm
n_embd = 64               # size of a character's embedding vector
n_hidden = 256            # size of the hidden state h
device = 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'
seed = 1337               # seeds the initial weights, the batches and the sampling
num_samples = 20          # how many names to generate at the end
temperature = 1.0         # divides the logits when sampling: < 1 is safer, > 1 is wilder
max_len = 30              # a sample stops here if '.' has not come

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
if cell not in ('rnn', 'gru'): fail(f"--cell must be 'rnn' or 'gru', got {cell!r}")

# Each name is one sequence: input '.' + name, target name + '.'. One forward pass trains every
# position at once, carrying the state; the earlier chapters' row per (context, next char) re-reads
# each prefix: O(L^2) work for the same signal. Padded positions get target -1, which the loss skips.
def build_dataset(names):  # (N, L+1) inputs and targets, L = longest name of the split
    X = torch.zeros(len(names), max(map(len, names)) + 1, dtype=torch.long)
    Y = torch.full_like(X, -1)
    for i, w in enumerate(names):
        ids = [0] + encode(w) + [0]
        X[i, :len(ids) - 1] = torch.tensor(ids[:-1])
        Y[i, :len(ids) - 1] = torch.tensor(ids[1:])
    return X.to(device), Y.to(device)
data = {s: build_dataset(names) for s, names in splits.items()}

def get_batch(split):  # batch_size random names, trimmed to the longest of them
    X, Y = data[split]
    ix = torch.randint(len(X), (batch_size,), device=device)
    T = int((Y[ix] >= 0).sum(1).max())
    return X[ix, :T], Y[ix, :T]

# model: embed each character, then run one cell along the sequence, carrying h. No nn.GRU fast
# path: on CPU it measured no faster than this loop (22 vs 23 ms/step), so what you read is what runs
class RNN(nn.Module):
    def __init__(self):
        super().__init__()
        g = 3 if cell == 'gru' else 1                      # the GRU needs three blocks: r, z, n
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.Wx = nn.Linear(n_embd, g * n_hidden)          # x_t's share of every block (and the bias)
        self.Wh = nn.Linear(n_hidden, g * n_hidden, bias=False)  # h_{t-1}'s share
        self.lm_head = nn.Linear(n_hidden, vocab_size)     # h_t -> logits for the next character
        self.drop = nn.Dropout(dropout)  # on the way in and out only: the carried state stays clean

    def cell(self, xw, h):  # one time step: (B, g*H) input part, (B, H) state -> (B, H) new state
        hw = self.Wh(h)
        if cell == 'rnn':  # Elman: h_t = tanh(Wx x_t + Wh h_{t-1}). Backprop through T steps
            return torch.tanh(xw + hw)  # multiplies T Jacobians Wh * tanh': they shrink (or blow up)
        xr, xz, xn = xw.chunk(3, dim=1)
        hr, hz, hn = hw.chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)          # reset gate: how much of the old state the candidate sees
        z = torch.sigmoid(xz + hz)          # update gate: how much of the old state to keep
        n = torch.tanh(xn + r * hn)         # candidate state, like the Elman cell's
        # h_t = z * h_{t-1} + (1 - z) * n: where z ~ 1 the state is copied unchanged, and so is its
        # gradient, with no Wh or tanh' factor to shrink it: that is what fixes vanishing gradients
        return n + z * (h - n)

    def forward(self, idx, h=None):  # idx (B, T) -> logits (B, T, V) and the last state (B, H)
        xw = self.Wx(self.drop(self.wte(idx.T)))  # (T, B, g*H): all time steps' input parts in one matmul
        h = torch.zeros(idx.shape[0], n_hidden, device=idx.device) if h is None else h
        hs = []
        for t in range(idx.shape[1]):  # the recurrence itself: only h @ Wh is left inside the loop
            h = self.cell(xw[t], h)
            hs.append(h)
        return self.lm_head(self.drop(torch.stack(hs, dim=1))), h  # (B, T, H) -> (B, T, V)

torch.manual_seed(seed)
model = RNN().to(device)
params = sum(p.numel() for p in model.parameters())

# evaluation: the exact mean negative log likelihood per character over every name of a split,
# in big chunks; sorting the names by length first keeps each chunk's padding small
@torch.no_grad()
def estimate_loss(chunk=2048):
    model.eval()
    out = {}
    for s, (X, Y) in data.items():
        order, total = (Y >= 0).sum(1).argsort(), 0.0
        for ix in order.split(chunk):
            T = int((Y[ix] >= 0).sum(1).max())
            logits, _ = model(X[ix, :T])
            total += F.cross_entropy(logits.flatten(0, 1), Y[ix, :T].flatten(), ignore_index=-1, reduction='sum').item()
        out[s] = total / (Y >= 0).sum().item()
    model.train()
    return out

# training: AdamW with a one-cycle schedule (warm up, then anneal the learning rate to ~0)
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=max_iters)
def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from a broken model
    if not math.isfinite(loss): fail(f'training diverged: the loss is {loss} at iter {it}; lower --learning_rate (it is {learning_rate})', 1)
t0 = time.time()
for it in range(1, max_iters + 1):
    X, Y = get_batch('train')
    logits, _ = model(X)
    loss = F.cross_entropy(logits.flatten(0, 1), Y.flatten(), ignore_index=-1)  # mean over real chars
    check_finite(loss.item(), it)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    # the same Wh multiplies the gradient once per time step, so now and then it explodes;
    # rescaling it to norm <= grad_clip keeps one bad batch from throwing the weights away
    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    if it % (eval_interval // 10 or 1) == 0 or it == max_iters:
        dt = time.time() - t0
        print(f'iter {it}/{max_iters} | loss {loss.item():.4f} | {1000 * dt / it:.1f} ms/iter | eta {dt / it * (max_iters - it):.0f} s')
    if it % eval_interval == 0 or it == max_iters:
        losses = estimate_loss()
        check_finite(sum(losses.values()), it)  # sum: a nan anywhere makes it nan
        print(f"iter {it}/{max_iters} | train {losses['train']:.4f} | val {losses['val']:.4f}")
train_time = time.time() - t0
print(f"final: train={losses['train']:.4f} val={losses['val']:.4f} test={losses['test']:.4f} "
      f"params={params} time={train_time:.1f}s")

# sample: start at '.', feed back only the drawn character (h carries the prefix), stop at '.'
model.eval()  # dropout off: sample from the whole network
g = torch.Generator(device=device).manual_seed(seed)
samples = []
with torch.no_grad():
    for _ in range(num_samples):
        out, ix, h = [], 0, None
        while len(out) < max_len:
            logits, h = model(torch.tensor([[ix]], device=device), h)
            ix = torch.multinomial(F.softmax(logits[0, -1] / temperature, dim=-1), 1, generator=g).item()
            if ix == 0: break
            out.append(ix)
        samples.append(decode(out))
print('\n'.join(samples))
print(f"{sum(s not in set(splits['train']) for s in samples)}/{num_samples} samples are new (not in the training names)")
