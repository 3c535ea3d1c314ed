"""Statistics of a series over its samples: means, standard deviations, the degree of emergence
E (docs/spec.md section 4) and its percentile bootstrap interval.

Missing values are NaN: a checkpoint without a (kept) sample has NaN statistics, and E is NaN
everywhere when the baseline has none.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import _validation as check

__all__ = ["bootstrap_emergence", "checkpoint_statistics"]


def sample_sd(a: np.ndarray) -> float:
    """Sample standard deviation (ddof=1); 0 for a single sample."""
    return a.std(ddof=1) if a.size > 1 else 0.0


def checkpoint_statistics(alpha0: Sequence[np.ndarray], width: Sequence[np.ndarray], baseline: int) -> dict:
    """Per-checkpoint ``alpha0_mean``, ``alpha0_std``, ``width_mean``, ``width_std`` and
    ``emergence`` (E from the means, relative to checkpoint ``baseline``) of the per-sample
    values ``alpha0[t]``, ``width[t]``; NaN where a checkpoint has no sample."""
    def stat(arrs, fn):
        return np.array([fn(x) if x.size else np.nan for x in arrs])

    am, wm = stat(alpha0, np.mean), stat(width, np.mean)
    b = baseline
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (wm / wm[b]) * np.log(am[b] / am)
    e[b] = 0.0 if np.isfinite(am[b]) else np.nan
    return dict(alpha0_mean=am, alpha0_std=stat(alpha0, sample_sd), width_mean=wm, width_std=stat(width, sample_sd),
                emergence=e)


def bootstrap_emergence(alpha0: Sequence[np.ndarray], width: Sequence[np.ndarray], *, baseline: int = 0,
                        n_bootstrap: int = 1000, ci: float = 0.95, seed: int = 0) -> np.ndarray:
    """Percentile bootstrap interval of E (docs/spec.md section 4) for every checkpoint, shape ``(n, 2)``.

    ``alpha0[t]`` and ``width[t]`` are the per-sample values of checkpoint ``t``.  Each
    replicate resamples the samples of every checkpoint (the baseline included) with
    replacement, independently per checkpoint, recomputes the means and E; the interval is the
    ``(1 - ci) / 2`` and ``(1 + ci) / 2`` percentiles of the replicates.  NaN where a
    checkpoint or the baseline has no sample.  The baseline's interval is ``[0, 0]``.
    """
    n_bootstrap = check.positive_int(n_bootstrap, "n_bootstrap")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    n = len(alpha0)
    if len(width) != n:
        raise ValueError(f"alpha0 and width must have one entry per checkpoint, got {n} and {len(width)}")
    rng = np.random.default_rng(seed)
    means_a = np.full((n, n_bootstrap), np.nan)
    means_w = np.full((n, n_bootstrap), np.nan)
    for t in range(n):
        a = np.asarray(alpha0[t], dtype=float)
        w = np.asarray(width[t], dtype=float)
        if a.size != w.size:
            raise ValueError(f"checkpoint {t}: alpha0 and width have different numbers of samples")
        if a.size == 0:
            continue
        idx = rng.integers(0, a.size, size=(n_bootstrap, a.size))
        means_a[t] = a[idx].mean(axis=1)
        means_w[t] = w[idx].mean(axis=1)
    b = baseline
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (means_w / means_w[b]) * np.log(means_a[b] / means_a)
    e[b] = 0.0 if np.isfinite(means_a[b]).all() else np.nan
    out = np.full((n, 2), np.nan)
    lo, hi = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
    for t in range(n):
        if np.all(np.isfinite(e[t])):
            out[t] = np.percentile(e[t], [lo, hi])
    return out
