#!/usr/bin/env python3
"""Train the bundled example series ``examples/pythia-tiny`` (a tiny GPT-NeoX).

The example exists so that ``neuromfa analyze`` has a real training series to look at
offline: a small GPT-NeoX (the Pythia architecture) trained from random initialisation
on real English text, saved as Hugging Face checkpoints (config.json + float16
model.safetensors) at log-spaced steps from step 0 (initialisation) to the end.

Data (offline, no download): the docstrings of a fixed, sorted list of Python
standard-library modules (``STDLIB_MODULES`` below), collected with ``inspect.getdoc``:
for each module in sorted order, the module docstring, then for each public name
(sorted, not starting with ``_``) that is a class or function defined in that module,
its docstring, and for classes the docstrings of their public methods/properties (sorted).
Exact duplicate docstrings are kept once. The pieces are joined with blank lines and
encoded as UTF-8; the model reads raw bytes (vocabulary of 256 byte values).
The text depends on the Python version that runs this script (docstrings change between
releases), so the README records its size and sha256 for the run that made the files.

Usage (from the repository root, CPU only, about 4 to 9 minutes on 2 idle cores; on a busy
machine prefix OMP_WAIT_POLICY=PASSIVE, which changes no number and is far faster there):

    python scripts/train_example.py                  # writes examples/pythia-tiny/
    python scripts/train_example.py --out /tmp/x     # somewhere else
    python scripts/train_example.py --print-corpus   # the training text, to stdout

Requires torch, transformers and safetensors.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib
import inspect
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

SEED = 1234
THREADS = 2

# Fixed list of standard-library modules whose docstrings form the corpus (sorted below).
STDLIB_MODULES = sorted(
    """abc argparse ast base64 bisect calendar cmd codecs collections configparser
    contextlib copy csv dataclasses datetime decimal difflib email.message enum fnmatch
    fractions ftplib functools getopt gettext glob gzip hashlib heapq hmac html.parser
    http.client imaplib inspect io ipaddress itertools json logging math mimetypes numbers
    operator optparse os pathlib pickle platform pprint queue random re sched secrets shlex
    shutil smtplib socket statistics string struct subprocess tarfile tempfile textwrap
    threading time timeit tokenize traceback types typing unittest urllib.parse
    urllib.request uuid warnings weakref zipfile""".split()
)

MODEL = dict(
    vocab_size=256,  # raw UTF-8 bytes
    hidden_size=64,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=256,
    max_position_embeddings=128,
    rotary_pct=0.25,
    initializer_range=0.02,
    use_parallel_residual=True,
    tie_word_embeddings=False,
    hidden_dropout=0.0,
    attention_dropout=0.0,
    bos_token_id=0,
    eos_token_id=0,
)

TRAIN = dict(
    seq_len=128,
    batch_size=32,
    total_steps=2000,
    lr=2e-3,
    min_lr_ratio=0.1,
    warmup_steps=50,
    weight_decay=0.01,
    betas=(0.9, 0.95),
    grad_clip=1.0,
    val_fraction=0.05,
    eval_batches=16,
)

CHECKPOINT_STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 250, 500, 1000, 2000]


def corpus_text() -> str:
    """The training text: standard-library docstrings, deterministic for a given Python.

    Call it in a fresh interpreter (see ``load_corpus``): third-party packages patch standard
    library classes when imported (transformers adds methods to ``logging.Logger``, torch
    replaces ``inspect.getfile``), which would change the collected docstrings.
    """
    seen: set[str] = set()
    pieces: list[str] = []

    def add(doc):
        if doc and doc not in seen:
            seen.add(doc)
            pieces.append(doc)

    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        add(inspect.getdoc(module))
        members = vars(module)
        for attr in sorted(members):
            if attr.startswith("_"):
                continue
            obj = members[attr]
            if not (inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                continue
            if getattr(obj, "__module__", None) != name:
                continue  # re-exported from elsewhere
            add(inspect.getdoc(obj))
            if inspect.isclass(obj):
                cls_members = vars(obj)
                for meth in sorted(cls_members):
                    if meth.startswith("_"):
                        continue
                    m = cls_members[meth]
                    if isinstance(m, (classmethod, staticmethod)):
                        add(inspect.getdoc(m.__func__))
                    elif inspect.isfunction(m) or inspect.ismethoddescriptor(m) or isinstance(m, property):
                        add(inspect.getdoc(m))
    return "\n\n".join(pieces) + "\n"


def load_corpus() -> bytes:
    """The corpus as UTF-8 bytes, collected in an isolated interpreter (``python -I -S``:
    no site-packages, no .pth hooks, so only the standard library is imported)."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(Path(__file__).resolve()), "--print-corpus"],
        check=True, stdout=subprocess.PIPE,
    ).stdout


def lr_at(step: int) -> float:
    """Linear warm-up then cosine decay to min_lr_ratio * lr (step counts from 0)."""
    lr, warm, total = TRAIN["lr"], TRAIN["warmup_steps"], TRAIN["total_steps"]
    if step < warm:
        return lr * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    floor = TRAIN["min_lr_ratio"]
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def qkv_in_range_fraction(path: Path, threshold: float = 150.0) -> float:
    """Fraction of layer-0 QKV weights with 1/threshold <= |w| < 1 (SPEC section 2 filter)."""
    import numpy as np
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        w = f.get_tensor("gpt_neox.layers.0.attention.query_key_value.weight")
    a = np.abs(w.astype(np.float64))
    return float(np.mean((a >= 1.0 / threshold) & (a < 1.0)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="output directory (default: examples/pythia-tiny)")
    parser.add_argument("--print-corpus", action="store_true",
                        help="write the training text (UTF-8) to stdout and exit")
    parser.add_argument("--readme-only", action="store_true",
                        help="rewrite OUT/README.md from OUT/series.json and exit (no training)")
    # --- monitor (issue 14): watch the training live; the saved checkpoints do not change ---
    parser.add_argument("--monitor", default=None, metavar="DIR",
                        help="also analyse the live model with neuromfa_native.Monitor every --monitor-every "
                             "steps and at the checkpoint steps, writing a run directory to DIR "
                             "(`neuromfa report DIR`); the checkpoints are byte-identical either way")
    parser.add_argument("--monitor-every", type=int, default=100, metavar="N")
    # --- end monitor ---
    args = parser.parse_args()
    if args.print_corpus:
        sys.stdout.buffer.write(corpus_text().encode("utf-8"))
        return 0
    if args.readme_only:
        out = Path(args.out) if args.out else Path(__file__).resolve().parent.parent / "examples" / "pythia-tiny"
        (out / "README.md").write_text(readme(json.loads((out / "series.json").read_text())))
        return 0

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import numpy as np
    import torch
    import transformers
    from safetensors import safe_open
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    transformers.utils.logging.disable_progress_bar()

    repo = Path(__file__).resolve().parent.parent
    out = Path(args.out) if args.out else repo / "examples" / "pythia-tiny"

    torch.set_num_threads(THREADS)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)

    # ---- data -------------------------------------------------------------------------
    data_bytes = load_corpus()
    text = data_bytes.decode("utf-8")
    sha = hashlib.sha256(data_bytes).hexdigest()
    data = torch.tensor(list(data_bytes), dtype=torch.long)
    n_val = int(len(data) * TRAIN["val_fraction"])
    train_data, val_data = data[: len(data) - n_val], data[len(data) - n_val:]
    print(f"corpus: {len(text)} characters, {len(data_bytes)} bytes, sha256 {sha}")
    print(f"train {len(train_data)} bytes, held-out {len(val_data)} bytes (the last {TRAIN['val_fraction']:.0%})")

    T, B = TRAIN["seq_len"], TRAIN["batch_size"]
    gen = torch.Generator().manual_seed(SEED)

    def batch_from(source, starts):
        x = torch.stack([source[s: s + T] for s in starts])
        return x

    def random_batch():
        starts = torch.randint(0, len(train_data) - T, (B,), generator=gen).tolist()
        return batch_from(train_data, starts)

    # Fixed evaluation sets: evenly spaced windows of the training and held-out text.
    def fixed_windows(source, n):
        starts = np.linspace(0, len(source) - T - 1, n).astype(int).tolist()
        return batch_from(source, starts)

    n_eval = TRAIN["eval_batches"] * B
    eval_train = fixed_windows(train_data, n_eval)
    eval_val = fixed_windows(val_data, n_eval)

    @torch.no_grad()
    def mean_loss(model, windows):
        model.eval()
        total = 0.0
        for i in range(0, len(windows), B):
            x = windows[i: i + B]
            total += model(input_ids=x, labels=x).loss.item() * len(x)
        model.train()
        return total / len(windows)

    # ---- model ------------------------------------------------------------------------
    config = GPTNeoXConfig(**MODEL)
    model = GPTNeoXForCausalLM(config)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params} parameters")

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "embed" not in name else no_decay).append(p)
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": TRAIN["weight_decay"]},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=TRAIN["lr"], betas=TRAIN["betas"],
    )

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    records = []
    recent: list[float] = []

    def save(step: int):
        d = out / f"step{step}"
        # Save a float16 copy (like Pythia's hub checkpoints); keep training in float32.
        half = GPTNeoXForCausalLM(config)
        half.load_state_dict(model.state_dict())
        half = half.half()
        half.save_pretrained(d, safe_serialization=True)
        st = d / "model.safetensors"
        with safe_open(str(st), framework="numpy") as f:
            dtypes = {f.get_tensor(k).dtype for k in f.keys()}
        assert dtypes == {np.dtype("float16")}, dtypes
        # Losses are measured on the saved float16 weights, widened to float32.
        reloaded = GPTNeoXForCausalLM.from_pretrained(d, dtype=torch.float32)
        rec = dict(
            step=step,
            path=f"step{step}",
            train_loss=round(mean_loss(reloaded, eval_train), 4),
            val_loss=round(mean_loss(reloaded, eval_val), 4),
            batch_loss_last50=(round(float(np.mean(recent[-50:])), 4) if recent else None),
            qkv0_in_range_fraction=round(qkv_in_range_fraction(st), 4),
            qkv0_abs_mean=None,
            bytes=sum(p.stat().st_size for p in d.iterdir()),
        )
        with safe_open(str(st), framework="numpy") as f:
            w = f.get_tensor("gpt_neox.layers.0.attention.query_key_value.weight").astype(np.float64)
        rec["qkv0_abs_mean"] = round(float(np.abs(w).mean()), 5)
        records.append(rec)
        print(f"saved {d.name}: " + ", ".join(f"{k}={v}" for k, v in rec.items() if k not in ("step", "path")), flush=True)

    # --- monitor (issue 14) ---
    monitor = None
    if args.monitor:
        from neuromfa_native.integrations.monitor import Monitor

        monitor = Monitor(model, out=args.monitor, samples=10, per_layer=32, overwrite=True,
                          on_result=lambda r: print(f"neuromfa step {r.step}: alpha0 {r.alpha0:.4f} width "
                                                    f"{r.width:.4f} E {r.E:.4f} [{r.E_lo:.4f}, {r.E_hi:.4f}]",
                                                    flush=True))
    # --- end monitor ---
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    t0 = time.time()
    for step in range(TRAIN["total_steps"] + 1):
        if monitor is not None and (step in CHECKPOINT_STEPS or step % args.monitor_every == 0):
            monitor.step(step)  # monitor (issue 14): copies the sampled rows; analysed off this thread
        if step in CHECKPOINT_STEPS:
            save(step)
        if step == TRAIN["total_steps"]:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        x = random_batch()
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["grad_clip"])
        opt.step()
        recent.append(loss.item())
        if (step + 1) % 100 == 0:
            print(f"step {step + 1:5d}  loss {np.mean(recent[-100:]):.4f}  lr {lr_at(step):.2e}  "
                  f"{time.time() - t0:.0f}s", flush=True)
    wall = time.time() - t0
    if monitor is not None:  # monitor (issue 14): finish and write every analysis asked for
        monitor.close()
        print(f"monitor: {len(monitor.results)} steps analysed into {args.monitor}, "
              f"{sum(monitor.copy_seconds):.2f}s on the training thread", flush=True)

    # ---- metadata ---------------------------------------------------------------------
    machine = dict(
        nproc=os.cpu_count(),
        torch_threads=THREADS,
        cpu=cpu_name(),
        platform=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        transformers=transformers.__version__,
        loadavg_1min_start=None if load_start is None else round(load_start[0], 2),
        loadavg_1min_end=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )
    try:
        machine["nproc"] = int(subprocess.check_output(["nproc"], text=True).strip())
    except Exception:
        pass
    series = dict(
        name="pythia-tiny",
        description="Tiny GPT-NeoX trained from scratch on Python standard-library docstrings (bytes).",
        architecture="GPTNeoXForCausalLM",
        dtype="float16",
        checkpoints=records,
        seed=SEED,
        model=MODEL,
        training={k: (list(v) if isinstance(v, tuple) else v) for k, v in TRAIN.items()},
        data=dict(
            source="inspect.getdoc docstrings of Python standard-library modules",
            modules=STDLIB_MODULES,
            characters=len(text),
            bytes=len(data_bytes),
            sha256=sha,
            python=platform.python_version(),
        ),
        n_parameters=n_params,
        train_wall_seconds=round(wall, 1),
        machine=machine,
        command="python scripts/train_example.py",
    )
    (out / "series.json").write_text(json.dumps(series, indent=2) + "\n")
    (out / "README.md").write_text(readme(series))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"done in {wall:.0f}s; {out} holds {total / 1e6:.2f} MB")
    return 0


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def readme(s: dict) -> str:
    m, t, d, mach = s["model"], s["training"], s["data"], s["machine"]
    rows = "\n".join(
        f"| {r['step']} | `{r['path']}/` | {r['train_loss']:.4f} | {r['val_loss']:.4f} | "
        f"{'—' if r['batch_loss_last50'] is None else format(r['batch_loss_last50'], '.4f')} | "
        f"{r['qkv0_abs_mean']:.5f} | {r['qkv0_in_range_fraction']:.4f} |"
        for r in s["checkpoints"]
    )
    total_mb = sum(r["bytes"] for r in s["checkpoints"]) / 1e6
    load = ""
    if mach.get("loadavg_1min_start") is not None:
        load = (f" 1-minute load average {mach['loadavg_1min_start']} at the start and "
                f"{mach['loadavg_1min_end']} at the end of training (other jobs share the machine"
                f" when it is above {mach['nproc']}, and the wall time grows with it).")
    note = f"\n\n{s['note']}" if s.get("note") else ""
    return f"""# pythia-tiny: a bundled training series (offline example)

A tiny GPT-NeoX (the Pythia architecture, `GPTNeoXForCausalLM`) trained from random
initialisation on CPU, saved at {len(s['checkpoints'])} log-spaced steps from initialisation
(step 0) to the end of training (step {t['total_steps']}). Each `stepN/` is a Hugging Face
model directory (`config.json` + `model.safetensors`, all tensors float16, like Pythia's hub
checkpoints); `series.json` lists them in order with their steps and losses. About
{total_mb:.1f} MB in all. It is a toy: the point is a real, small training series on which the
structure of the weights can be followed through training without any download.

Regenerate (from the repository root; deterministic for a given Python/torch version and
machine; about 4 to 10 minutes on 2 otherwise idle cores, this run took
{s['train_wall_seconds'] / 60:.0f} minutes, see the end of this page):

    {s['command']}

On a machine shared with other jobs, set `OMP_WAIT_POLICY=PASSIVE` (torch's threads then sleep
instead of spinning while they wait; no number changes): under a load average of about 7 on 2
cores, the first 100 steps took 156 s with it against 1451 s without.

## Model

hidden_size {m['hidden_size']}, {m['num_hidden_layers']} layers, {m['num_attention_heads']} heads,
intermediate_size {m['intermediate_size']}, vocabulary {m['vocab_size']} (raw UTF-8 bytes; no
tokenizer), context {m['max_position_embeddings']}, rotary_pct {m['rotary_pct']}, parallel
residual, untied embeddings, initializer_range {m['initializer_range']} (the transformers
default), no dropout. {s['n_parameters']:,} parameters.

## Data

The docstrings of {len(d['modules'])} Python standard-library modules, collected offline by
`corpus_text()` in `scripts/train_example.py`: for each module of a fixed sorted list, the
module docstring (`inspect.getdoc`), then the docstrings of its public classes and functions
defined in that module (sorted by name), and of the public methods and properties of those
classes; exact duplicates kept once, pieces joined by blank lines, UTF-8 encoded.

- Python {d['python']}: {d['characters']:,} characters, {d['bytes']:,} bytes,
  sha256 `{d['sha256']}`.
- Collected in a fresh interpreter (`python -I -S`, standard library only), because
  third-party packages patch standard-library classes when imported (transformers adds
  methods to `logging.Logger`), which would change the text. See it with
  `python scripts/train_example.py --print-corpus`.
- Docstrings change between Python releases (and `os` differs slightly by platform), so
  another Python gives a slightly different text and hash; the script prints both.
- The last {t['val_fraction']:.0%} of the bytes are held out; training samples random windows
  of the rest.

Modules: {', '.join(d['modules'])}.

## Training

Seed {s['seed']} (`random`, `numpy`, `torch.manual_seed`, and a seeded torch Generator for the
batches), `torch.set_num_threads({mach['torch_threads']})`, deterministic algorithms, CPU,
float32. AdamW (betas {tuple(t['betas'])}, weight decay {t['weight_decay']} on the matrices,
none on embeddings/biases/LayerNorm), peak learning rate {t['lr']}, linear warm-up over
{t['warmup_steps']} steps then cosine decay to {t['min_lr_ratio']}x peak, gradient clipping
{t['grad_clip']}, batch {t['batch_size']} windows of {t['seq_len']} bytes, {t['total_steps']} steps.

## Checkpoints

Losses are mean next-byte cross-entropy (nats), measured on the saved float16 weights
(widened to float32) over fixed evenly spaced windows: {t['eval_batches'] * t['batch_size']}
windows of the training text ("train") and of the held-out text ("held-out"); "batch" is the
mean training-batch loss over the 50 steps before the checkpoint. A uniform guess over 256
bytes is ln 256 = 5.545. The last two columns describe layer 0's
`attention.query_key_value.weight`: mean |w|, and the fraction of weights inside the
NeuroMFA distance filter 1/150 <= |w| < 1 (SPEC section 2), read with `safetensors` (numpy).

| step | directory | train loss | held-out loss | batch loss | mean \\|w\\| (QKV 0) | in filter (QKV 0) |
|---:|---|---:|---:|---:|---:|---:|
{rows}

## Scores (`evals/`)

`evals/stepN.json` holds each checkpoint's held-out next-byte accuracy (`acc`) and loss
(`loss`, nats, lower is better) with their standard errors, as lm-evaluation-harness 0.4-style
result files, written by `python scripts/eval_example.py` (consecutive 128-byte windows of the
held-out text; see that script). `neuromfa correlate RUN --evals examples/pythia-tiny/evals
--metric acc,loss` correlates them with E (docs/correlation.md).

## Run that produced these files

Training wall time {s['train_wall_seconds']:.0f} s (including the checkpoint evaluations) on
{mach['nproc']} CPUs (`nproc`), {mach['cpu']}, {mach['platform']}; Python {mach['python']},
torch {mach['torch']}, transformers {mach['transformers']}; {mach['date']}.{load}{note}
"""


if __name__ == "__main__":
    sys.exit(main())
