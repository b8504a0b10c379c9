"""
Chapter 3: a multilayer perceptron (Bengio et al. 2003). Instead of a table of counts per context,
every character gets a learned embedding vector; the vectors of the block_size previous characters
are concatenated and fed through one tanh hidden layer (with BatchNorm) to the next-character logits.
Run: python mlp.py. Defaults, 2 CPU cores: val 2.0762, test 2.0764, 20,875 params, 55.1 s (median of 3).
"""
import ast, math, os, random, sys, time, urllib.request
import torch
import torch.nn as nn
import torch.nn.functional as F

# hyperparameters
dataset = 'names.txt'     # one name per line, in the working directory (downloaded on first use)
block_size = 3            # context length: how many previous characters predict the next one
batch_size = 256          # contexts per training step
max_iters = 24000         # training steps
eval_interval = 8000      # report train/val loss every this many steps
learning_rate = 1e-2      # peak learning rate of the one-cycle schedule
weight_decay = 0.01       # AdamW's pull of the weights toward 0
n_embd = 24               # size of a character's embedding vector (at 30k steps, 10 reached val 2.0953; 24, 2.0768)
n_hidden = 200            # neurons in the hidden layer
device = 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'
seed = 1337               # seeds the initial weights, the batches and the sampling
num_samples = 20          # how many names to generate at the end
temperature = 1.0         # divides the logits when sampling: < 1 is safer, > 1 is wilder

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

def build_dataset(names):  # one row per character and end: the block_size characters before it
    X, Y = [], []
    for w in names:
        context = [0] * block_size  # a name starts from a context of '.'s
        for ix in encode(w) + [0]:
            X.append(context)
            Y.append(ix)
            context = context[1:] + [ix]  # slide the window one character on
    return torch.tensor(X, device=device), torch.tensor(Y, device=device)  # (N, block_size), (N,)
data = {s: build_dataset(names) for s, names in splits.items()}

def get_batch(split):  # batch_size random rows of a split
    X, Y = data[split]
    ix = torch.randint(len(X), (batch_size,), device=device)
    return X[ix], Y[ix]

# model. A count table over 3 characters of context has 27^3 = 19,683 rows, most seen rarely or never;
# here 'ann' and 'ana' share the vectors of 'a' and 'n', so what one teaches carries over to the other
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.fc = nn.Linear(block_size * n_embd, n_hidden, bias=False)  # no bias: BatchNorm removes the mean
        # BatchNorm rescales each pre-activation to zero mean, unit variance over the batch (then a learned
        # scale and shift), so tanh is not saturated at +-1, where its gradient is ~0 and learning stops
        self.bn = nn.BatchNorm1d(n_hidden)
        self.lm_head = nn.Linear(n_hidden, vocab_size)
        # init: random weights give large logits, a confidently wrong softmax, a first loss far above
        # ln 27 = 3.30 and steps wasted shrinking them; a small output layer starts nearly uniform, ~3.30
        with torch.no_grad(): self.lm_head.weight *= 0.1

    def forward(self, idx):  # idx (B, block_size) -> logits (B, V)
        x = self.wte(idx).flatten(1)  # (B, block_size, n_embd) -> (B, block_size * n_embd)
        return self.lm_head(torch.tanh(self.bn(self.fc(x))))  # (B, n_hidden) -> (B, V)

torch.manual_seed(seed)
model = MLP().to(device)
params = sum(p.numel() for p in model.parameters())

# evaluation: the exact mean negative log likelihood per character over every row of a split,
# in big chunks; eval mode makes BatchNorm use its running statistics, not the chunk's
@torch.no_grad()
def estimate_loss(chunk=16384):
    model.eval()
    out = {}
    for s, (X, Y) in data.items():
        total = sum(F.cross_entropy(model(x), y, reduction='sum').item() for x, y in zip(X.split(chunk), Y.split(chunk)))
        out[s] = total / len(Y)
    model.train()
    return out

# training: batches of 256 (a steadier gradient), AdamW (a step size per weight; fused: one kernel for
# all of them) and one-cycle (warm up, anneal to ~0) need ~30k steps where SGD on batches of 32 needs 200k
optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay, fused=device in ('cuda', 'cpu'))
scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=max_iters)
def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from a broken model
    if not math.isfinite(loss): fail(f'training diverged: the loss is {loss} at iter {it}; lower --learning_rate (it is {learning_rate})', 1)
t0 = time.time()
for it in range(1, max_iters + 1):
    X, Y = get_batch('train')
    loss = F.cross_entropy(model(X), Y)
    check_finite(loss.item(), it)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
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

# sample: start from a context of '.'s, draw the next character, slide the window, stop at '.'
model.eval()
g = torch.Generator(device=device).manual_seed(seed)
samples = []
with torch.no_grad():
    for _ in range(num_samples):
        out, context = [], [0] * block_size
        while True:
            logits = model(torch.tensor([context], device=device))
            ix = torch.multinomial(F.softmax(logits[0] / temperature, dim=-1), 1, generator=g).item()
            if ix == 0: break
            out.append(ix)
            context = context[1:] + [ix]
        samples.append(decode(out))
print('\n'.join(samples))
print(f"{sum(s not in set(splits['train']) for s in samples)}/{num_samples} samples are new (not in the training names)")
