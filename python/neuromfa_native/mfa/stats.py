"""Statistics of a series over its samples: means, standard deviations, the degree of emergence
E (docs/spec.md section 4) and its percentile bootstrap interval.

Missing values are NaN: a checkpoint without a (kept) sample has NaN statistics, and E is NaN
everywhere when the baseline has none.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .. import _validation as check
from ..config import DEFAULT_CONFIG

__all__ = ["bootstrap_emergence", "bootstrap_means", "checkpoint_statistics", "emergence_from_means", "means",
           "percentile_interval"]


def sample_sd(a: np.ndarray) -> float:
    """Sample standard deviation (ddof=1); 0 for a single sample."""
    return a.std(ddof=1) if a.size > 1 else 0.0


def means(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Per-checkpoint mean of per-sample values; NaN where a checkpoint has no sample."""
    return np.array([x.mean() if x.size else np.nan for x in arrays])


def emergence_from_means(alpha0_mean: np.ndarray, width_mean: np.ndarray, baseline: int) -> np.ndarray:
    """E (docs/spec.md section 4) of every checkpoint from the means of alpha0 and width,
    relative to checkpoint ``baseline``.  The arrays have shape ``(n_checkpoints,)`` or
    ``(n_checkpoints, n_replicates)`` (bootstrap replicates); the baseline's E is 0, or NaN
    when the baseline has no value."""
    am, wm, b = alpha0_mean, width_mean, baseline
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (wm / wm[b]) * np.log(am[b] / am)
    e[b] = 0.0 if np.isfinite(am[b]).all() else np.nan
    return e


def checkpoint_statistics(alpha0: Sequence[np.ndarray], width: Sequence[np.ndarray], baseline: int) -> dict:
    """Per-checkpoint ``alpha0_mean``, ``alpha0_std``, ``width_mean``, ``width_std`` and
    ``emergence`` (E from the means, relative to checkpoint ``baseline``) of the per-sample
    values ``alpha0[t]``, ``width[t]``; NaN where a checkpoint has no sample."""
    def sd(arrs):
        return np.array([sample_sd(x) if x.size else np.nan for x in arrs])

    am, wm = means(alpha0), means(width)
    return dict(alpha0_mean=am, alpha0_std=sd(alpha0), width_mean=wm, width_std=sd(width),
                emergence=emergence_from_means(am, wm, baseline))


def bootstrap_means(samples: Mapping[str, Sequence[np.ndarray]], n_bootstrap: int, seed: Any) -> dict:
    """Bootstrap replicates of per-checkpoint means, ``{name: array (n_checkpoints, n_bootstrap)}``.

    ``samples[name][t]`` are the per-sample values of checkpoint ``t``; every name has the same
    number of samples per checkpoint, and one draw serves them all (the samples are resampled
    as units).  Each replicate resamples the samples of every checkpoint with replacement,
    independently per checkpoint, from one generator seeded ``seed``, checkpoint by checkpoint.
    NaN where a checkpoint has no sample.
    """
    names = list(samples)
    arrays = {k: [np.asarray(x, dtype=float) for x in samples[k]] for k in names}
    n = len(arrays[names[0]]) if names else 0
    for k in names:
        if len(arrays[k]) != n:
            raise ValueError(f"{' and '.join(names)} must have one entry per checkpoint, got "
                             f"{' and '.join(str(len(arrays[j])) for j in names)}")
    rng = np.random.default_rng(seed)
    out = {k: np.full((n, n_bootstrap), np.nan) for k in names}
    for t in range(n):
        size = arrays[names[0]][t].size
        if any(arrays[k][t].size != size for k in names):
            raise ValueError(f"checkpoint {t}: {' and '.join(names)} have different numbers of samples")
        if size == 0:
            continue
        idx = rng.integers(0, size, size=(n_bootstrap, size))
        for k in names:
            out[k][t] = arrays[k][t][idx].mean(axis=1)
    return out


def percentile_interval(replicates: np.ndarray, ci: float) -> np.ndarray:
    """The ``(1 - ci) / 2`` and ``(1 + ci) / 2`` percentiles of each row of ``replicates``
    ``(n, B)``, shape ``(n, 2)``; NaN for a row with a non-finite replicate (or none)."""
    out = np.full((replicates.shape[0], 2), np.nan)
    lo, hi = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
    for t, row in enumerate(replicates):
        if row.size and np.all(np.isfinite(row)):
            out[t] = np.percentile(row, [lo, hi])
    return out


def bootstrap_emergence(alpha0: Sequence[np.ndarray], width: Sequence[np.ndarray], *, baseline: int = 0,
                        n_bootstrap: int = DEFAULT_CONFIG.n_bootstrap, ci: float = DEFAULT_CONFIG.ci,
                        seed: int = DEFAULT_CONFIG.seed) -> np.ndarray:
    """Percentile bootstrap interval of E (docs/spec.md section 4) for every checkpoint, shape ``(n, 2)``.

    ``alpha0[t]`` and ``width[t]`` are the per-sample values of checkpoint ``t``.  Each
    replicate resamples the samples of every checkpoint (the baseline included) with
    replacement, independently per checkpoint (:func:`bootstrap_means`), recomputes the means
    and E; the interval is :func:`percentile_interval` of the replicates.  NaN where a
    checkpoint or the baseline has no sample.  The baseline's interval is ``[0, 0]``.
    """
    n_bootstrap = check.positive_int(n_bootstrap, "n_bootstrap", check.MAX_BOOTSTRAP)
    ci = check.confidence_level(ci)
    m = bootstrap_means({"alpha0": alpha0, "width": width}, n_bootstrap, seed)
    return percentile_interval(emergence_from_means(m["alpha0"], m["width"], baseline), ci)
