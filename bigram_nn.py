"""
Chapter 2: the same bigram model, learned by gradient descent instead of counted. A 27x27
weight matrix W holds one row of logits per previous character; softmax turns a row into
P(next char), and we nudge W downhill on the mean negative log likelihood of the training
pairs. A small L2 penalty pulls W toward 0 (uniform rows), just as smoothing did.
Run: python bigram_nn.py   (override anything: python bigram_nn.py --max_iters=100)
Result with defaults, 2 CPU cores: val 2.4599 (counting gave 2.4533), test 2.4655, 11 s.
"""
import ast, math, os, random, sys, time, urllib.request
import torch
import torch.nn.functional as F

# hyperparameters
dataset = 'names.txt'     # one name per line, in the working directory (downloaded on first use)
max_iters = 400           # full-batch gradient steps
eval_interval = 100       # report train/val loss every this many steps
learning_rate = 50.0      # big steps are fine: the loss is convex in W and the batch is exact
reg = 0.01                # L2 penalty on W: the gradient-descent version of smoothing
device = 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'
seed = 1337               # seeds the initial weights and the sampling
num_samples = 20          # how many names to generate at the end

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

def build_dataset(names):  # every (previous character, next character) pair, '.' at both ends
    xs, ys = [], []
    for w in names:
        ids = [0] + encode(w) + [0]
        xs += ids[:-1]
        ys += ids[1:]
    return torch.tensor(xs, device=device), torch.tensor(ys, device=device)
data = {s: build_dataset(names) for s, names in splits.items()}

# model: one weight matrix, logits = one_hot(x) @ W. A one-hot row times W just selects row x of W, so
# evaluation and sampling read W[x] directly: the same numbers without the 27-wide zeros (the next
# chapter's embedding table is exactly this lookup). Training keeps the matmul: its gradient one_hot.T @
# dlogits sums in the same order on every run (the lookup's scatter-add may not): same seed, same numbers.
torch.manual_seed(seed)
W = (0.01 * torch.randn(vocab_size, vocab_size)).to(device).requires_grad_()

# evaluation: the exact mean negative log likelihood per character over every pair of a split
@torch.no_grad()
def estimate_loss():
    return {s: F.cross_entropy(W[x], y).item() for s, (x, y) in data.items()}

# training: every step sees all training pairs at once (full batch), so no get_batch is needed
xs, ys = data['train']
xenc = F.one_hot(xs, vocab_size).float()                     # (N, V): all zeros but a 1 at column xs[i]
def check_finite(loss, it):  # a diverged run stops here: no nan in the log, no samples from a broken model
    if not math.isfinite(loss): fail(f'training diverged: the loss is {loss} at iter {it}; lower --learning_rate (it is {learning_rate})', 1)
t0 = time.time()
for it in range(1, max_iters + 1):
    logits = xenc @ W                                        # (N, V) @ (V, V) -> (N, V): a row per pair
    loss = F.cross_entropy(logits, ys) + reg * (W ** 2).mean()  # softmax + NLL, plus the L2 pull
    check_finite(loss.item(), it)
    W.grad = None
    loss.backward()
    W.data -= learning_rate * W.grad                         # plain gradient descent
    if it % eval_interval == 0 or it == max_iters:
        dt = time.time() - t0
        print(f'iter {it}/{max_iters} | loss {loss.item():.4f} | {1000 * dt / it:.1f} ms/iter | eta {dt / it * (max_iters - it):.0f} s')
        losses = estimate_loss()
        check_finite(sum(losses.values()), it)  # sum: a nan anywhere makes it nan
        print(f"iter {it}/{max_iters} | train {losses['train']:.4f} | val {losses['val']:.4f}")
train_time = time.time() - t0
print(f"final: train={losses['train']:.4f} val={losses['val']:.4f} test={losses['test']:.4f} "
      f"params={W.numel()} time={train_time:.1f}s")

# sample: start at '.', draw the next character from softmax(W[ix]), stop when '.' comes back
P = F.softmax(W.detach(), dim=1)
g = torch.Generator(device=device).manual_seed(seed)
samples = []
for _ in range(num_samples):
    out, ix = [], 0
    while True:
        ix = torch.multinomial(P[ix], 1, generator=g).item()
        if ix == 0: break
        out.append(ix)
    samples.append(decode(out))
print('\n'.join(samples))
print(f"{sum(s not in set(splits['train']) for s in samples)}/{num_samples} samples are new (not in the training names)")
