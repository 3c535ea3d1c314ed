#!/usr/bin/env python3
"""Score the checkpoints of ``examples/pythia-tiny``: held-out next-byte accuracy and loss.

For every checkpoint listed in ``series.json`` this loads the saved float16 weights (widened to
float32), reads the held-out text of ``scripts/train_example.py`` (the last 5% of the corpus
bytes) cut into consecutive non-overlapping windows of the context length (128 bytes), and
scores the next-byte prediction at every position of every window:

- ``acc``: fraction of positions whose most likely next byte (argmax) is the true one;
- ``loss``: mean next-byte cross-entropy (nats; lower is better).

Each window is one "document": the value is the mean over windows (all windows have the same
number of positions, so it is also the mean over positions) and the stderr is the sample
standard deviation of the per-window values over sqrt(number of windows), as
lm-evaluation-harness reports a mean metric.  The files are written as lm-evaluation-harness
0.4-style result JSON (``results[task]["acc,none"]``, ``"acc_stderr,none"``, ...), one per
checkpoint, to ``OUT/evals/stepN.json`` (the step is in the file name; the harness's
``model_args`` of a local model has no revision), for ``neuromfa correlate``.

Usage (from the repository root; needs torch and transformers; ~1 minute on 2 cores):

    python scripts/eval_example.py                 # examples/pythia-tiny/evals/
    python scripts/eval_example.py --out /tmp/x    # a series written with train_example.py --out
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

TASK = "heldout_next_byte"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="series directory (default: examples/pythia-tiny)")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import numpy as np
    import torch
    import transformers
    from transformers import GPTNeoXForCausalLM

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import train_example as te

    repo = Path(__file__).resolve().parent.parent
    out = Path(args.out) if args.out else repo / "examples" / "pythia-tiny"
    series = json.loads((out / "series.json").read_text())
    torch.set_num_threads(te.THREADS)
    torch.use_deterministic_algorithms(True)

    data_bytes = te.load_corpus()
    if len(data_bytes) != series["data"]["bytes"]:
        print(f"warning: this Python's corpus has {len(data_bytes)} bytes, the series was trained on "
              f"{series['data']['bytes']}", file=sys.stderr)
    data = torch.tensor(list(data_bytes), dtype=torch.long)
    n_val = int(len(data) * te.TRAIN["val_fraction"])
    val = data[len(data) - n_val:]
    T, B = te.TRAIN["seq_len"], te.TRAIN["batch_size"]
    n_win = len(val) // T
    windows = val[: n_win * T].view(n_win, T)

    d = out / "evals"
    d.mkdir(exist_ok=True)
    for rec in series["checkpoints"]:
        model = GPTNeoXForCausalLM.from_pretrained(out / rec["path"], dtype=torch.float32)
        model.eval()
        accs, losses = [], []
        with torch.no_grad():
            for i in range(0, n_win, B):
                x = windows[i: i + B]
                logits = model(input_ids=x).logits[:, :-1]
                target = x[:, 1:]
                accs.append((logits.argmax(-1) == target).double().mean(dim=1))
                ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                                       reduction="none").view(target.shape)
                losses.append(ce.double().mean(dim=1))
        acc = torch.cat(accs).numpy()
        loss = torch.cat(losses).numpy()

        def stat(a):
            return float(a.mean()), float(a.std(ddof=1) / np.sqrt(a.size))

        (a_m, a_se), (l_m, l_se) = stat(acc), stat(loss)
        doc = {
            "results": {TASK: {"alias": TASK, "acc,none": a_m, "acc_stderr,none": a_se,
                               "loss,none": l_m, "loss_stderr,none": l_se}},
            "group_subtasks": {TASK: []},
            "configs": {TASK: {"task": TASK, "description": (
                f"next-byte prediction on the held-out {n_val} bytes of the pythia-tiny corpus, "
                f"{n_win} consecutive windows of {T} bytes ({n_win * (T - 1)} predictions)"),
                "output_type": "loglikelihood_rolling", "num_fewshot": 0}},
            "versions": {TASK: 1.0},
            "n-shot": {TASK: 0},
            "higher_is_better": {TASK: {"acc": True, "loss": False}},
            "n-samples": {TASK: {"original": n_win, "effective": n_win}},
            "config": {"model": "hf", "model_args": f"pretrained=examples/pythia-tiny/{rec['path']},dtype=float32",
                       "batch_size": B, "device": "cpu"},
            "written_by": "scripts/eval_example.py (lm-evaluation-harness 0.4 result layout)",
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
        }
        path = d / f"step{rec['step']}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"{path}: acc {a_m:.4f} +- {a_se:.4f}, loss {l_m:.4f} +- {l_se:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
