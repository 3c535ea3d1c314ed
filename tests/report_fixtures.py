"""Run directories for the report.html / compare tests.

``make_run`` analyses the tiny generated series of :mod:`tiny_series`; ``add_tables`` writes
small hand-made ``controls.csv``, ``stats.csv``, ``by_layer.csv`` and ``correlations.csv``
with the columns their writers declare (``CONTROL_COLUMNS``, ...), so the sections for those
files are tested on known values, independently of the code that computes them.
"""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from neuromfa_native.run.derived import run_state
from neuromfa_native.run.runner import analyze_series
from neuromfa_native.run.store import run_info
from neuromfa_native.science.by_layer import BY_LAYER_COLUMNS
from neuromfa_native.science.controls import CONTROL_COLUMNS, STATS_COLUMNS
from neuromfa_native.scores.correlation import COLUMNS as CORRELATION_COLUMNS
from tiny_series import PER_LAYER, make_series_dirs

STEPS = (0, 3, 40, 2000)
K = 3


def make_run(root: Path, steps=STEPS, samples: int = K, threshold: float = 150.0, name: str = "run") -> Path:
    dirs = [str(d) for d in make_series_dirs(root / "ckpt", steps=steps)]
    out = root / name
    analyze_series(dirs, samples=samples, per_layer=PER_LAYER, n_threads=1, out=out, threshold=threshold)
    return out


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock", ".report.lock", "report.html"))
    return dst


def _write(path: Path, columns: list, rows: list) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows(rows)


def add_tables(run: Path, steps=STEPS) -> None:
    """Hand-written controls, stats, by-layer and correlation tables (values made up, columns those the
    package writes)."""
    labels = [f"step{s}" for s in steps]
    rows = []
    for i, (s, lab) in enumerate(zip(steps, labels)):
        for c, scale in (("none", 1.0), ("gaussian", 0.6), ("shuffle", 0.8), ("scaled", 0.1)):
            e = 0.0 if i == 0 else scale * 0.2 * i
            rows.append([s, lab, c, K, 1.4 - 0.1 * i * scale, 0.01, 0.6 + 0.02 * i, 0.02, e, e - 0.03, e + 0.03])
    _write(run / "controls.csv", CONTROL_COLUMNS, rows)
    rows = []
    for i, (s, lab) in enumerate(zip(steps, labels)):
        for t in ("all", "gpt_neox.layers.0.mlp.dense_h_to_4h.weight"):
            for st, v in (("rms", 0.02 + 0.003 * i), ("mean_abs", 0.015 + 0.002 * i), ("kurtosis", 3 + i),
                          ("weibull_k", 1.2 - 0.05 * i), ("weibull_lambda", 0.02 + 0.002 * i),
                          ("kept_fraction", 0.7 - 0.01 * i), ("mean_strength", 50 - i)):
                rows.append([s, lab, t, st, v])
    _write(run / "stats.csv", STATS_COLUMNS, rows)
    rows = []
    rng = np.random.default_rng(0)
    for i, (s, lab) in enumerate(zip(steps, labels)):
        for k in range(K):
            for g, drift in (("attn_out", 0.05), ("mlp_hidden", 0.1), ("block0", 0.07), ("block1", 0.08)):
                rows.append([s, lab, k, g, 1.4 - drift * i + 0.01 * rng.normal(), 0.6 + 0.01 * i, 20, ""])
            rows.append([s, lab, k, "qkv", "", "", 0, "no centres"])  # never a box centre in the reference layout
    _write(run / "by_layer.csv", BY_LAYER_COLUMNS, rows)
    rows = []
    for q, base in (("E", 0.9), ("alpha0", -0.8), ("width", 0.3), ("rms", 0.85)):
        for task in ("lambada_openai", "piqa", "arc_easy"):
            r = base - 0.05 * len(task) / 10
            rows.append(dict(quantity=q, task=task, metric="acc", higher_is_better=True, n=len(steps), spearman=r,
                             spearman_lo=r - 0.3, spearman_hi=min(r + 0.2, 1), p_spearman=0.04, kendall=r * 0.8,
                             pearson=r * 0.9, partial_spearman="", covariate=""))
    _write(run / "correlations.csv", CORRELATION_COLUMNS, [[r.get(c, "") for c in CORRELATION_COLUMNS] for r in rows])
    stamp_correlation(run)


def stamp_correlation(run: Path, **fields) -> None:
    """correlations.json as ``neuromfa correlate`` writes it beside its table: the run state it
    belongs to (the run as it is now), and ``fields``."""
    (run / "correlations.json").write_text(json.dumps(dict(fields, run_state=run_state(run_info(run)))))


def make_partial(run: Path) -> None:
    """Drop the last checkpoint's results and mark the run as still running."""
    info = json.loads((run / "run.json").read_text())
    key = info["series"][-1].get("key") or info["series"][-1]["fingerprint"]  # its folder under results/
    for p in sorted((run / "results" / key).glob("*.npz"))[1:]:
        p.unlink()
    info["status"] = "running"
    (run / "run.json").write_text(json.dumps(info))


def make_failed(run: Path) -> None:
    """Mark the run failed with a non-finite-weights task error and a second failure."""
    info = json.loads((run / "run.json").read_text())
    info.update(status="failed", n_failed=2, errors=[
        "step2000 sample 1: tensor 'gpt_neox.layers.0.mlp.dense_h_to_4h.weight' has 3 non-finite weights "
        "(NaN or inf) in rows 0..11",
        "step40 sample 2: cannot read model.safetensors: truncated file"])
    (run / "run.json").write_text(json.dumps(info))
