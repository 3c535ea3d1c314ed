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
Weibull likelihood is 0 at |w| = 0); a tensor whose |w| are all equal has NaN Weibull values, and
so has a fit whose iteration did not converge (recorded in ``WeightStats.notes`` and warned once).

All per-element work is done by the C++ core on the block that was just read for the network,
so no weight byte is read twice: 16-bit weights are counted into a table of their 2^16 bit
patterns (:class:`_core.HalfStats`), and when the tensor is complete one pass over the patterns
that hold weights gives the moments (each pattern widened exactly), the counts of the Weibull fit
and the pooled counts; 32/64-bit weights go through :func:`_core.weight_moments` (one pass,
per-row partial sums, ordered reduction).
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import _core
from .._results import fields_equal
from .._validation import weights as _as_weights

__all__ = ["STATISTICS", "WeightStats", "StatsAccumulator", "sigma_max", "weibull_fit"]

STATISTICS = ("rms", "mean_abs", "kurtosis", "weibull_k", "weibull_lambda", "kept_fraction", "mean_strength")
_SUMS = ("n", "n_zero", "n_kept", "s1", "s2", "s3", "s4", "s_abs", "n_rows")


def weibull_fit(x, weights=None) -> tuple:
    """``(shape, scale)`` of the maximum-likelihood Weibull fit (location 0) of positive ``x``,
    optionally with (count) ``weights``; NaN when all values are equal or none is given, and NaN
    with a ``RuntimeWarning`` when the iteration did not converge."""
    fit, note = _fit_values(_core_fit(x, weights), "the values")
    if note:
        warnings.warn(note, RuntimeWarning, stacklevel=2)
    return fit


def _core_fit(x, weights=None) -> dict:
    """``_core.weibull_fit``'s dict for positive finite ``x`` with optional (count) ``weights``."""
    x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    c = np.ones_like(x) if weights is None else np.ascontiguousarray(weights, dtype=np.float64).reshape(-1)
    if c.shape != x.shape:
        raise ValueError(f"weights must match x, got {c.shape} and {x.shape}")
    if x.size and (not np.all(np.isfinite(x)) or x.min() <= 0):
        raise ValueError("weibull_fit needs positive finite values (drop zeros first)")
    return _core.weibull_fit(x, c)


def _fit_values(f: dict, what: str) -> tuple:
    """``((shape, scale), note)`` of a fit dict of ``_core``: a fit that ran and did not converge
    gives NaN and a note on ``what``; otherwise the note is None (a fit that could not run, no
    values or all equal, is NaN already)."""
    if f["converged"] or f["iterations"] == 0:
        return (float(f["shape"]), float(f["scale"])), None
    note = (f"Weibull fit of {what} did not converge in {f['iterations']} iterations (last shape "
            f"{float(f['shape']):.6g}): weibull_k and weibull_lambda are NaN")
    return (math.nan, math.nan), note


def sigma_max(w: np.ndarray, rtol: float = 1e-12) -> float:
    """Largest singular value of a 2-d matrix already in memory: Golub-Kahan-Lanczos
    bidiagonalisation (float64, full reorthogonalisation, fixed start vector) until the Ritz
    value's residual is below ``rtol`` times it; small matrices by ``numpy.linalg.norm(w, 2)``."""
    w = np.asarray(w, dtype=np.float64)
    m, n = w.shape
    if min(m, n) <= 64:
        return float(np.linalg.norm(w, 2)) if w.size else 0.0
    steps = min(m, n, 300)
    V, U = np.zeros((steps + 1, n)), np.zeros((steps, m))
    v = np.random.default_rng(0).standard_normal(n)
    V[0] = v / np.linalg.norm(v)
    alpha, beta = np.zeros(steps), np.zeros(steps)
    s = 0.0
    for j in range(steps):
        u = w @ V[j] - (beta[j - 1] * U[j - 1] if j else 0.0)
        u -= U[:j].T @ (U[:j] @ u)
        alpha[j] = np.linalg.norm(u)
        if alpha[j] == 0:
            break
        U[j] = u / alpha[j]
        v = w.T @ U[j] - alpha[j] * V[j]
        v -= V[: j + 1].T @ (V[: j + 1] @ v)
        beta[j] = np.linalg.norm(v)
        b = np.diag(alpha[: j + 1]) + np.diag(beta[:j], 1)
        pu, sv, _ = np.linalg.svd(b)
        s = float(sv[0])
        if beta[j] * abs(pu[-1, 0]) <= rtol * s or beta[j] == 0:
            break
        V[j + 1] = v / beta[j]
    return s


def _statistic_rows(S: np.ndarray, fits: np.ndarray) -> np.ndarray:
    """The STATISTICS of each row of ``S`` (columns: the sums ``_SUMS``) with its Weibull fit
    (``fits[:, 0]`` shape, ``fits[:, 1]`` scale); NaN where a row has no element. Kurtosis: excess,
    biased (``scipy.stats.kurtosis`` defaults), from the raw power sums."""
    n, _, n_kept, s1, s2, s3, s4, s_abs, n_rows = S.T
    out = np.full((S.shape[0], len(STATISTICS)), np.nan)
    ok = n > 0
    n, n_kept, s1, s2, s3, s4, s_abs, n_rows = (x[ok] for x in (n, n_kept, s1, s2, s3, s4, s_abs, n_rows))
    mu = s1 / n
    m2 = s2 / n - mu * mu
    m4 = s4 / n - 4 * mu * s3 / n + 6 * mu * mu * s2 / n - 3 * mu ** 4
    with np.errstate(divide="ignore", invalid="ignore"):
        kurt = np.where(m2 > 0, m4 / (m2 * m2) - 3.0, np.nan)
        strength = np.where(n_rows > 0, s_abs / n_rows, np.nan)
    out[ok] = np.column_stack([np.sqrt(s2 / n), s_abs / n, kurt, fits[ok, 0], fits[ok, 1], n_kept / n, strength])
    return out


@dataclass(frozen=True, eq=False)
class WeightStats:
    """Rival statistics of one network: ``values[i, j]`` is statistic ``statistics[j]`` of
    tensor ``tensors[i]``; the last tensor is ``"all"`` (pooled). ``notes``: non-fatal numeric
    trouble (a Weibull fit that did not converge, its values NaN), also warned once."""

    tensors: tuple
    statistics: tuple
    values: np.ndarray
    notes: tuple = ()

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        v = np.array(self.values, dtype=np.float64)
        if v.shape != (len(self.tensors), len(self.statistics)):
            raise ValueError(f"values must have shape {(len(self.tensors), len(self.statistics))}, got {v.shape}")
        v.setflags(write=False)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "tensors", tuple(self.tensors))
        object.__setattr__(self, "statistics", tuple(self.statistics))
        object.__setattr__(self, "notes", tuple(self.notes))

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
    come in several row blocks (full networks are streamed), one tensor after the other.

    16-bit weights (float16, bfloat16) are only counted, block by block, into a table of their
    2^16 bit patterns (:class:`_core.HalfStats`, one per kind); when the tensor is complete one
    call gives its moments and, with ``distribution=True``, its Weibull fit, and adds its
    magnitudes to the pooled counts. Wider weights go through :func:`_core.weight_moments` and
    keep their distinct |w| with counts for the fit."""

    def __init__(self, threshold: float = 150.0, n_threads: int = -1, distribution: bool = True):
        self.threshold = float(threshold)
        self.n_threads = int(n_threads)
        self.distribution = bool(distribution)  # the Weibull fit; False: moments only (the controls' RMS)
        self._sums: dict = {}  # name -> sums of a complete tensor
        self._fit: dict = {}  # name -> (shape, scale)
        self._rows: dict = {}  # name -> rows read
        self._open: Optional[list] = None  # [name, kind, HalfStats or None, partial sums] of the tensor coming in
        self._half: dict = {}  # kind -> _core.HalfStats (its pooled counts: the pooled fit)
        self._vals: dict = {}  # 32/64-bit: name -> list of (unique |w|, counts)
        self._extra: dict = {}  # name -> {statistic: value} computed elsewhere (stable_rank of a full network)
        self._notes: list = []  # fits that did not converge (WeightStats.notes), each warned once

    def add(self, name: str, block: np.ndarray, kind: Optional[str] = None) -> None:
        """Adds a 2-d ``(rows, cols)`` block of tensor ``name`` (``kind`` given when ``block``
        holds 16-bit patterns as uint16)."""
        block = np.asarray(block)
        if block.ndim != 2:
            raise ValueError(f"block of {name!r} must be 2-d, got shape {block.shape}")
        if kind is None:
            flat, kind = _as_weights(block.reshape(-1))
        else:
            flat = np.ascontiguousarray(block).reshape(-1)
        if name in self._sums:
            raise ValueError(f"tensor {name!r} is complete: the row blocks of a tensor must come together")
        op = self._open
        if op is not None and op[0] != name:
            self._close()
            op = None
        half = None
        if kind in ("f16", "bf16"):
            half = self._half.get(kind)
            if half is None:
                half = self._half[kind] = _core.HalfStats(kind, self.threshold, self.distribution)
        if op is None:  # partial sums of wide weights (16-bit: the table holds everything)
            op = self._open = [name, kind, half, None if half is not None else dict.fromkeys(_SUMS[:-1], 0)]
        elif op[1] != kind:
            raise ValueError(f"tensor {name!r} mixes blocks of weight kinds {op[1]} and {kind}")
        self._rows[name] = self._rows.get(name, 0) + block.shape[0]
        if half is not None:
            half.add(flat, self.n_threads)
            return
        data = flat.reshape(block.shape)
        m = _core.weight_moments(data, kind, self.threshold, self.n_threads)
        if m["n_nonfinite"]:
            raise ValueError(f"tensor {name!r} has {m['n_nonfinite']} non-finite weights (NaN or inf) in the read rows")
        for k in _SUMS[:-1]:
            op[3][k] += m[k]
        if self.distribution:
            a = np.abs(data[data != 0]).astype(np.float64)
            self._vals.setdefault(name, []).append(np.unique(a, return_counts=True))

    def _close(self) -> None:
        """The open tensor is complete: its sums and fit (16-bit: its magnitudes join the pooled counts)."""
        if self._open is None:
            return
        name, kind, half, sums = self._open
        self._open = None
        fit = (np.nan, np.nan)
        if half is not None:
            m = half.finish()
            sums = {k: m[k] for k in _SUMS[:-1]}
            if self.distribution:
                fit = self._checked(m, f"tensor {name!r}")
            if m["n_nonfinite"]:  # the tensor stays recorded (of its finite weights), so the accumulator stays whole
                self._sums[name], self._fit[name] = sums, fit
                raise ValueError(f"tensor {name!r} has {m['n_nonfinite']} non-finite weights (NaN or inf) in the "
                                 "read rows")
        elif self.distribution:
            fit = self._checked(_core_fit(*self._weibull_data([name])), f"tensor {name!r}")
        self._sums[name], self._fit[name] = sums, fit

    def _checked(self, f: dict, what: str) -> tuple:
        """``(shape, scale)`` of a fit dict; a fit that did not converge is NaN and noted once."""
        fit, note = _fit_values(f, what)
        if note and note not in self._notes:
            self._notes.append(note)
            warnings.warn(note, RuntimeWarning, stacklevel=4)
        return fit

    def _complete(self, name: str) -> dict:
        """The sums of tensor ``name``, closing it if it is the open one."""
        if self._open is not None and self._open[0] == name:
            self._close()
        return self._sums[name]

    def _weibull_data(self, names) -> tuple:
        """Distinct |w| and counts of the wide tensors ``names`` and of the pooled 16-bit counts."""
        xs, cs = [], []
        for kind, h in sorted(self._half.items()) if len(names) > 1 and self.distribution else ():
            cnt = h.pooled_counts()  # by magnitude pattern; 0 at zero and inf/NaN
            keep = cnt > 0
            xs.append(_pattern_values(kind)[: 1 << 15][keep])
            cs.append(cnt[keep])
        for n in names:
            for x, c in self._vals.get(n, ()):
                xs.append(x)
                cs.append(c.astype(np.float64))
        if not xs:
            return np.zeros(0), np.zeros(0)
        if len(xs) == 1:  # one kind's counts or one block: already distinct and sorted
            return xs[0], cs[0]
        x, c = np.concatenate(xs), np.concatenate(cs)
        # merge equal values so the fit's input does not depend on how the blocks came
        u, inv = np.unique(x, return_inverse=True)
        return u, np.bincount(inv, weights=c, minlength=u.size)

    def _pooled_fit(self, names) -> tuple:
        if len(self._half) == 1 and not self._vals:  # one 16-bit kind: the fit straight from its counts
            (h,) = self._half.values()
            return self._checked(h.pooled_fit(), "the pooled tensors ('all')")
        return self._checked(_core_fit(*self._weibull_data(names)), "the pooled tensors ('all')")

    def result(self) -> WeightStats:
        if self._open is not None:
            self._close()
        names = list(self._rows)
        S = np.array([[self._sums[n][k] for k in _SUMS[:-1]] + [self._rows[n]] for n in names],
                     dtype=np.float64).reshape(len(names), len(_SUMS))
        fits = np.array([self._fit[n] for n in names], dtype=np.float64).reshape(len(names), 2)
        pooled_fit = self._pooled_fit(names) if self.distribution else (np.nan, np.nan)
        # per tensor, then pooled: the sums add (counts below 2^53 are exact as float64)
        rows = _statistic_rows(np.vstack([S, S.sum(axis=0)]), np.vstack([fits, [pooled_fit]]))
        ns = S[:, 0]
        if names:  # mean_strength pooled: element-weighted mean of the per-tensor values
            rows[-1, -1] = float((ns * rows[:-1, -1]).sum() / ns.sum())  # not BLAS: no thread pool woken
        extra = list(dict.fromkeys(k for n in names for k in self._extra.get(n, {})))
        cols = []
        for stat in extra:  # element-weighted mean over the tensors that have it
            v = np.array([self._extra.get(n, {}).get(stat, np.nan) for n in names])
            ok = np.isfinite(v)
            cols.append(np.append(v, float((ns[ok] * v[ok]).sum() / ns[ok].sum()) if ok.any() else np.nan))
        values = np.column_stack([rows] + cols) if cols else rows
        return WeightStats(tuple(names) + ("all",), STATISTICS + tuple(extra), values, notes=tuple(self._notes))

    def set_extra(self, name: str, statistic: str, value: float) -> None:
        """A statistic of tensor ``name`` computed elsewhere (e.g. ``stable_rank`` from the whole
        tensor of a full network); pooled as the element-weighted mean of the tensors' values."""
        self._extra.setdefault(name, {})[statistic] = float(value)

    def frobenius2(self, name: str) -> float:
        """Sum of squares of tensor ``name`` (complete)."""
        return float(self._complete(name)["s2"])

    def rms(self, name: str) -> float:
        """RMS of tensor ``name`` (complete: no more of its blocks may come)."""
        s = self._complete(name)
        n = s["n"]
        return math.sqrt(s["s2"] / n) if n else float("nan")
