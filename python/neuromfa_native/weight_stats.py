"""Rival statistics of the weights a network reads (SPEC 10).

Per tensor, over the rows the network reads (a sampled network: the rows of the sampled
output neurons; GPT-2 ``Conv1D`` tensors are stored ``(in, out)``, so there the stored rows of
the sampled *input* neurons, the bytes actually read; a full network: the whole tensor), and
pooled over the used tensors:

``rms``             sqrt(mean w^2)
``mean_abs``        mean |w|
``kurtosis``        excess kurtosis (Fisher, biased: ``scipy.stats.kurtosis`` defaults)
``weibull_k``       Weibull shape of the nonzero |w|, maximum likelihood, location 0
``weibull_lambda``  Weibull scale, same fit (``scipy.stats.weibull_min.fit(|w|, floc=0)``)
``kept_fraction``   share of weights with ``1/T <= |w| < 1`` (the ones that become distances)
``mean_strength``   mean over the read rows of the sum of |w| along the row

Pooling ("all"): ``rms``, ``mean_abs``, ``kurtosis`` and ``kept_fraction`` are those of all
read elements together (their sums add, so this is the element-weighted combination);
``mean_strength`` is the element-weighted mean of the per-tensor values; the Weibull fit is
refitted on the pooled |w| exactly: for 16-bit weights each tensor keeps the histogram of its
2^16 bit patterns (histograms add), for 32/64-bit weights the distinct |w| with their
counts. Zero weights enter the moments and ``kept_fraction`` but not the Weibull fit (a
Weibull likelihood is 0 at |w| = 0); a tensor whose |w| are all equal has NaN Weibull values.

All per-element work is done by the C++ core on the block that was just read for the network
(:func:`_core.weight_moments`: one pass, per-row partial sums, ordered reduction; 16-bit
weights widened exactly to float32 first; :func:`_core.histogram16` counts 16-bit patterns),
so no weight byte is read twice.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import _core
from ._results import fields_equal
from ._validation import weights as _as_weights

__all__ = ["STATISTICS", "WeightStats", "StatsAccumulator", "weibull_fit"]

STATISTICS = ("rms", "mean_abs", "kurtosis", "weibull_k", "weibull_lambda", "kept_fraction", "mean_strength")
_SUMS = ("n", "n_zero", "n_kept", "s1", "s2", "s3", "s4", "s_abs", "n_rows")


def weibull_fit(x, weights=None) -> tuple:
    """``(shape, scale)`` of the maximum-likelihood Weibull fit (location 0) of positive ``x``,
    optionally with (count) ``weights``; NaN when all values are equal or none is given."""
    x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    c = np.ones_like(x) if weights is None else np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
    if c.shape != x.shape:
        raise ValueError(f"weights must match x, got {c.shape} and {x.shape}")
    if x.size and (not np.all(np.isfinite(x)) or x.min() <= 0):
        raise ValueError("weibull_fit needs positive finite values (drop zeros first)")
    f = _core.weibull_fit(x, c)
    return float(f["shape"]), float(f["scale"])


def _kurtosis(n, s1, s2, s3, s4) -> float:
    if n == 0:
        return float("nan")
    mu = s1 / n
    m2 = s2 / n - mu * mu
    m4 = s4 / n - 4 * mu * s3 / n + 6 * mu * mu * s2 / n - 3 * mu ** 4
    return float(m4 / (m2 * m2) - 3.0) if m2 > 0 else float("nan")


@dataclass(frozen=True, eq=False)
class WeightStats:
    """Rival statistics of one network: ``values[i, j]`` is statistic ``statistics[j]`` of
    tensor ``tensors[i]``; the last tensor is ``"all"`` (pooled)."""

    tensors: tuple
    statistics: tuple
    values: np.ndarray

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        v = np.array(self.values, dtype=np.float64)
        if v.shape != (len(self.tensors), len(self.statistics)):
            raise ValueError(f"values must have shape {(len(self.tensors), len(self.statistics))}, got {v.shape}")
        v.setflags(write=False)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "tensors", tuple(self.tensors))
        object.__setattr__(self, "statistics", tuple(self.statistics))

    def get(self, statistic: str, tensor: str = "all") -> float:
        try:
            return float(self.values[self.tensors.index(tensor), self.statistics.index(statistic)])
        except ValueError:
            raise KeyError(f"no statistic {statistic!r} of tensor {tensor!r}") from None

    @property
    def pooled(self) -> dict:
        """``{statistic: value}`` of the pooled row ("all")."""
        return dict(zip(self.statistics, map(float, self.values[-1])))

    def rows(self) -> list:
        """Tidy rows ``dict(tensor, statistic, value)``."""
        return [dict(tensor=t, statistic=s, value=float(self.values[i, j]))
                for i, t in enumerate(self.tensors) for j, s in enumerate(self.statistics)]


@functools.lru_cache(maxsize=2)
def _pattern_values(kind: str) -> np.ndarray:
    """float64 value of every 16-bit pattern (NaN/inf included) of ``kind``."""
    bits = np.arange(1 << 16, dtype=np.uint32)
    v = (bits.astype(np.uint16).view(np.float16).astype(np.float64) if kind == "f16"
         else (bits << 16).view(np.float32).astype(np.float64))
    v.setflags(write=False)
    return v


class StatsAccumulator:
    """Collects the sums and |w| summaries of each tensor as its rows are read; a tensor may
    come in several row blocks (full networks are streamed).

    The moments come from :func:`_core.weight_moments` (16-bit weights widened exactly to
    float32 first).  With ``distribution=True`` (the Weibull fit) 16-bit weights are also
    counted into a histogram of their 2^16 bit patterns (:func:`_core.histogram16`), and wider
    weights keep their distinct |w| with counts; the RMS alone (the controls) needs neither."""

    def __init__(self, threshold: float = 150.0, n_threads: int = -1, distribution: bool = True):
        self.threshold = float(threshold)
        self.n_threads = int(n_threads)
        self.distribution = bool(distribution)  # keep the |w| summaries (Weibull); False: moments only
        self._sums: dict = {}   # name -> sums
        self._hist: dict = {}   # 16-bit: name -> (kind, int64[65536])
        self._vals: dict = {}   # 32/64-bit: name -> list of (unique |w|, counts)
        self._rows: dict = {}   # name -> rows read

    def add(self, name: str, block: np.ndarray, kind: Optional[str] = None) -> None:
        """Adds a 2-d ``(rows, cols)`` block of tensor ``name`` (``kind`` given when ``block``
        holds 16-bit patterns as uint16)."""
        block = np.asarray(block)
        if block.ndim != 2:
            raise ValueError(f"block of {name!r} must be 2-d, got shape {block.shape}")
        if kind is None:
            flat, kind = _as_weights(block.reshape(-1))
            data = flat.reshape(block.shape)
        else:
            data = np.ascontiguousarray(block)
        self._rows[name] = self._rows.get(name, 0) + block.shape[0]
        sixteen = kind in ("f16", "bf16")
        if (name in self._hist) != sixteen and name in self._sums:
            raise ValueError(f"tensor {name!r} mixes 16-bit and wider blocks")
        if sixteen:  # moments of the exactly widened float32 values (a cheap vectorised widening)
            wide = data.view(np.float16).astype(np.float32) if kind == "f16" else \
                (data.astype(np.uint32) << 16).view(np.float32)
            m = _core.weight_moments(np.ascontiguousarray(wide), "f32", self.threshold, self.n_threads)
        else:
            m = _core.weight_moments(data, kind, self.threshold, self.n_threads)
        if m["n_nonfinite"]:
            raise ValueError(f"tensor {name!r} has {m['n_nonfinite']} non-finite weights (NaN or inf) in the read rows")
        s = self._sums.setdefault(name, dict.fromkeys(_SUMS[:-1], 0))
        for k in _SUMS[:-1]:
            s[k] += m[k]
        if not self.distribution:
            return
        if sixteen:
            h = self._hist.setdefault(name, (kind, np.zeros(1 << 16, np.int64)))
            if h[0] != kind:
                raise ValueError(f"tensor {name!r} mixes float16 and bfloat16 blocks")
            _core.histogram16(data.reshape(-1), h[1], self.n_threads)
        else:
            a = np.abs(data[data != 0]).astype(np.float64)
            self._vals.setdefault(name, []).append(np.unique(a, return_counts=True))

    def _sums_of(self, name: str) -> dict:
        s = dict(self._sums[name])
        s["n_rows"] = self._rows[name]
        return s

    def _weibull_data(self, names) -> tuple:
        xs, cs = [], []
        kinds = {self._hist[n][0] for n in names if n in self._hist}
        for kind in sorted(kinds):
            h = sum(self._hist[n][1] for n in names if n in self._hist and self._hist[n][0] == kind)
            hm = h[: 1 << 15] + h[1 << 15:]  # fold the sign: magnitude patterns
            x = _pattern_values(kind)[: 1 << 15]
            keep = (hm > 0) & (x > 0) & np.isfinite(x)
            xs.append(x[keep]), cs.append(hm[keep].astype(np.float64))
        for n in names:
            for x, c in self._vals.get(n, ()):
                xs.append(x), cs.append(c.astype(np.float64))
        if not xs:
            return np.zeros(0), np.zeros(0)
        if len(xs) == 1:  # one histogram or one block: already distinct and sorted
            return xs[0], cs[0]
        x, c = np.concatenate(xs), np.concatenate(cs)
        # merge equal values so the fit's input does not depend on how the blocks came
        u, inv = np.unique(x, return_inverse=True)
        return u, np.bincount(inv, weights=c, minlength=u.size)

    def _row(self, s: dict, names) -> list:
        n = s["n"]
        if n == 0:
            return [np.nan] * len(STATISTICS)
        k, lam = weibull_fit(*self._weibull_data(names))
        return [np.sqrt(s["s2"] / n), s["s_abs"] / n, _kurtosis(n, s["s1"], s["s2"], s["s3"], s["s4"]), k, lam,
                s["n_kept"] / n, s["s_abs"] / s["n_rows"] if s["n_rows"] else np.nan]

    def result(self) -> WeightStats:
        names = list(self._rows)
        sums = {n: self._sums_of(n) for n in names}
        rows = [self._row(sums[n], [n]) for n in names]
        pooled = {k: sum(sums[n][k] for n in names) for k in _SUMS}
        all_row = self._row(pooled, names)
        if names:  # mean_strength pooled: element-weighted mean of the per-tensor values
            ns = np.array([sums[n]["n"] for n in names], dtype=float)
            ms = np.array([r[-1] for r in rows])
            all_row[-1] = float(ns @ ms / ns.sum())
        return WeightStats(tuple(names) + ("all",), STATISTICS, np.array(rows + [all_row], dtype=float))

    def rms(self, name: str) -> float:
        """RMS of the rows of ``name`` added so far."""
        s = self._sums_of(name)
        n, s2 = s["n"], s["s2"]
        return float(np.sqrt(s2 / n)) if n else float("nan")
