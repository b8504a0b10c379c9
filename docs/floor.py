"""The smoke runs that prove the torch floor (docs/floor.sh runs them in a venv with the lowest torch
requirements.txt allows): every chapter's tiny run, then gpt.py's checkpoint, resume and sampling.
Run from the repository root with names.txt and input.txt there: python docs/floor.py
Each run must exit 0; the training runs print one final: line, and the resumed run goes on from
the checkpoint's step. Prints one line per run and the torch it ran on; exits 1 if any failed."""
import os, re, subprocess, sys, tempfile, time
import torch

NAMES = ['--max_iters=30', '--eval_interval=15', '--num_samples=3']
NETS = [*NAMES, '--batch_size=32', '--n_embd=8', '--n_hidden=32']
GPT = ['--n_layer=2', '--n_head=2', '--n_embd=32', '--block_size=16', '--batch_size=8',
       '--eval_interval=10', '--eval_iters=2', '--learning_rate=0.01', '--warmup_iters=2',
       '--max_new_tokens=40']
folder = tempfile.mkdtemp()
ckpt = f'--ckpt_path={os.path.join(folder, "gpt.pt")}'
RUNS = [  # (what it proves, script, flags, a line the output must hold)
    ('bigram_count', 'bigram_count.py', ['--num_samples=3'], r'^final: '),
    ('bigram_nn', 'bigram_nn.py', NAMES, r'^final: '),
    ('mlp', 'mlp.py', NETS, r'^final: '),
    ('wavenet', 'wavenet.py', NETS, r'^final: '),
    ('rnn tanh', 'rnn.py', [*NETS, '--max_iters=6', '--eval_interval=3'], r'^final: '),
    ('rnn gru', 'rnn.py', [*NETS, '--max_iters=6', '--eval_interval=3', '--cell=gru'], r'^final: '),
    ('encoder', 'encoder.py', ['--n_embd=16', '--n_head=2', '--n_layer=2', '--batch_size=64',
                               '--max_iters=60', '--eval_interval=30', '--num_show=4'], r'^final: '),
    ('gpt names', 'gpt.py', [*GPT, '--dataset=names.txt', '--max_iters=20', '--num_samples=3',
                             f'--ckpt_path={os.path.join(folder, "names.pt")}'], r'^final: .*test='),
    ('gpt float16', 'gpt.py', [*GPT, '--max_iters=20', '--dtype=float16',
                               f'--ckpt_path={os.path.join(folder, "f16.pt")}'], r'^final: '),
    ('gpt checkpoint', 'gpt.py', [*GPT, '--max_iters=20', ckpt], r'^final: '),
    ('gpt resume', 'gpt.py', [*GPT, '--max_iters=30', ckpt, '--resume=True'], r'^iter 21/30 '),
    ('gpt sample_only', 'gpt.py', [*GPT, ckpt, '--sample_only=True', '--prompt=ROMEO:',
                                   '--top_k=5', '--show_attention=True'], r'^ROMEO:'),
]

failed = 0
started = time.time()
print(f'torch {torch.__version__}, python {sys.version.split()[0]}')
for name, script, flags, expected in RUNS:
    t = time.time()
    p = subprocess.run([sys.executable, script, '--device=cpu', *flags], capture_output=True,
                       text=True, encoding='utf-8', timeout=600)
    ok = p.returncode == 0 and re.search(expected, p.stdout, re.M) is not None
    failed += not ok
    print(f"{'pass' if ok else 'FAIL'}  {name:16} {time.time() - t:5.1f} s")
    if not ok:
        print(f'  exit code {p.returncode}\n{p.stdout[-1000:]}{p.stderr[-3000:]}')
print(f'{len(RUNS) - failed}/{len(RUNS)} passed on torch {torch.__version__} '
      f'in {time.time() - started:.0f} s')
sys.exit(1 if failed else 0)
