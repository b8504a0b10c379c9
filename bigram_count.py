"""
Chapter 1: a character bigram model built by counting. Count how often each character b
follows each character a in the training names, add a pseudo-count so nothing is impossible,
and normalise each row into a probability distribution: that 27x27 table is the whole model.
Run: python bigram_count.py  (override anything: --smoothing=0.1).  Result with defaults,
2 CPU cores: val 2.4533, test 2.4584, 729 params, counting takes < 0.1 s.
"""
import ast, os, random, sys, time, urllib.request
import torch

# hyperparameters
dataset = 'names.txt'     # one name per line, in the working directory (downloaded on first use)
smoothing = 1.0           # add-k smoothing: pseudo-count added to every pair before normalising
device = 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'
seed = 1337               # seeds the sampling
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

# model: count the pairs in one vectorised call. Pair (a, b) is the number a*V + b, so a
# histogram of those numbers, reshaped to V x V, is the table: row a counts what follows a.
t0 = time.time()
xs, ys = data['train']
counts = torch.bincount(xs * vocab_size + ys, minlength=vocab_size ** 2).view(vocab_size, vocab_size)
# without smoothing a pair never seen in training has probability 0 and a loss of -log 0 = inf
P = counts.float() + smoothing
P = P / P.sum(dim=1, keepdim=True)  # each row is now P(next char | this char), summing to 1
train_time = time.time() - t0

# evaluation: the exact mean negative log likelihood per character over every pair of a split
def estimate_loss():
    return {s: -P[x, y].log().mean().item() for s, (x, y) in data.items()}

for ch in [c for c in '.aqx' if c in stoi]:  # a peek at what the table learned
    p, ix = P[stoi[ch]].topk(min(3, vocab_size))
    print(f'most likely after {ch!r}: ' + ', '.join(f'{itos[i]!r} {q:.2f}' for q, i in zip(p.tolist(), ix.tolist())))
losses = estimate_loss()
print(f"final: train={losses['train']:.4f} val={losses['val']:.4f} test={losses['test']:.4f} "
      f"params={P.numel()} time={train_time:.1f}s")

# sample: start at '.', draw the next character from its row, stop when '.' comes back
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
