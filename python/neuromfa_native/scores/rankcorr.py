"""Rank and linear correlations in numpy, equal to scipy.stats on the same pairs (docs/spec.md section 8).

scipy is not a runtime dependency: ``spearman`` follows ``scipy.stats.spearmanr`` (average
ranks, ``numpy.corrcoef``, a two-sided p-value from Student's t with n - 2 degrees of freedom),
``kendall_tau_b`` follows ``scipy.stats.kendalltau`` (tau-b) and ``pearson`` follows
``scipy.stats.pearsonr``.  The t distribution's tail comes from the regularized incomplete beta
function, evaluated by its continued fraction (modified Lentz).  The tests compare all of them
with scipy.

``spearman_exact_pvalue`` is the exact permutation p-value of rho over at most
:data:`EXACT_MAX_N` pairs (every order of one side against the other), equal to
``scipy.stats.permutation_test(..., permutation_type="pairings")`` with all ``n!`` orders: the
t approximation gives p = 0 to a perfect order, which 2 of the 6 orders of 3 pairs are.

Private to the package (used by :mod:`~neuromfa_native.scores.correlation`), like ``_validation``.
Statistics of a series over its samples (means, E, the bootstrap of means, percentile
intervals) are :mod:`~neuromfa_native.mfa.stats`; nothing here repeats them.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Optional

import numpy as np

__all__ = ["rankdata", "rank_columns", "rank_rows", "standardized_rows", "sign_matrix", "kendall_from_signs",
           "spearman_from_ranks", "spearman", "spearman_pvalue", "spearman_exact_pvalue", "exact_min_p",
           "EXACT_MAX_N", "kendall_tau_b", "pearson",
           "t_sf", "betainc", "column_spearman", "partial"]


def rankdata(a) -> np.ndarray:
    """Average ranks (1-based) of a 1-D array, ties sharing their mean rank (scipy's 'average')."""
    a = np.asarray(a)
    n = a.size
    sorter = np.argsort(a, kind="mergesort")
    inv = np.empty(n, dtype=np.intp)
    inv[sorter] = np.arange(n, dtype=np.intp)
    arr = a[sorter]
    obs = np.r_[True, arr[1:] != arr[:-1]]
    dense = obs.cumsum()[inv]
    count = np.r_[np.nonzero(obs)[0], n]
    return 0.5 * (count[dense] + count[dense - 1] + 1)


def rank_columns(a: np.ndarray) -> np.ndarray:
    """Average ranks of every column of a 2-D array (ranking along axis 0), vectorised."""
    return rank_rows(np.ascontiguousarray(np.asarray(a, dtype=float).T)).T


def rank_rows(a: np.ndarray) -> np.ndarray:
    """Average ranks within every row of a 2-D array (ties share their mean rank)."""
    m, n = a.shape
    order = np.argsort(a, axis=1, kind="stable")
    s = np.take_along_axis(a, order, axis=1)
    new = np.ones((m, n), dtype=bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    ranks = np.empty((m, n))
    if new.all():  # no ties (the usual case for continuous replicates)
        np.put_along_axis(ranks, order, np.broadcast_to(np.arange(1.0, n + 1), (m, n)), axis=1)
        return ranks
    pos = np.arange(n)
    start = np.maximum.accumulate(np.where(new, pos, 0), axis=1)
    last = np.ones((m, n), dtype=bool)
    last[:, :-1] = new[:, 1:]
    end = np.minimum.accumulate(np.where(last, pos, n - 1)[:, ::-1], axis=1)[:, ::-1]
    np.put_along_axis(ranks, order, 0.5 * (start + end) + 1.0, axis=1)
    return ranks


def standardized_rows(r: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm (NaN for a constant row): rho = sum of products."""
    d = r - r.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("ij,ij->i", d, d))
    with np.errstate(divide="ignore", invalid="ignore"):
        return d / norm[:, None]


def spearman(x, y) -> float:
    """Spearman's rho of two 1-D arrays (NaN if either is constant), as ``scipy.stats.spearmanr``."""
    return spearman_from_ranks(rankdata(x), rankdata(y))


def spearman_from_ranks(rx: np.ndarray, ry: np.ndarray) -> float:
    """Pearson's r of two rank vectors, computed as ``numpy.corrcoef`` does (what scipy uses)."""
    n = rx.size
    if n < 2 or np.all(rx == rx[0]) or np.all(ry == ry[0]):
        return math.nan
    X = np.vstack([rx, ry]).astype(float)  # numpy.cov then numpy.corrcoef, step by step
    X -= X.mean(axis=1)[:, None]
    c = X @ X.T
    c *= np.true_divide(1, n - 1)
    sd = np.sqrt(np.diag(c))
    return float(min(1.0, max(-1.0, c[0, 1] / sd[0] / sd[1])))


def spearman_pvalue(rho: float, n: int) -> float:
    """Two-sided p-value of Spearman's rho over n pairs (t with n - 2 degrees of freedom)."""
    if not math.isfinite(rho) or n < 3:
        return math.nan
    dof = n - 2
    denom = (rho + 1.0) * (1.0 - rho)
    if denom <= 0:
        return 0.0
    t = rho * math.sqrt(max(dof / denom, 0.0))
    return 2.0 * t_sf(abs(t), dof)


#: Up to this many pairs the exact p-value of rho enumerates every order (9! = 362,880).
EXACT_MAX_N = 9


@functools.cache
def _orders(n: int) -> np.ndarray:
    """Every permutation of ``range(n)``, one per row (``(n!, n)``, int8; 3.3 MB for n = 9)."""
    return np.array(list(itertools.permutations(range(n))), dtype=np.int8).reshape(-1, n)


@functools.lru_cache(maxsize=8)
def _null(a: tuple, b: tuple) -> np.ndarray:
    """The sorted values of ``sum_i a_i b_perm(i)`` over every permutation (integers: doubled
    average ranks); they depend on the two multisets only, so rows with the same ties share them."""
    x = np.asarray(a, dtype=np.int64)
    y = np.asarray(b, dtype=np.int64)
    return np.sort(y[_orders(len(a))] @ x)


def spearman_exact_pvalue(rx: np.ndarray, ry: np.ndarray) -> float:
    """Exact two-sided permutation p-value of Spearman's rho of two rank vectors (average ranks,
    at most :data:`EXACT_MAX_N` pairs; NaN for a constant side).

    Every order of ``ry`` against ``rx`` is equally likely under independence; with ``less`` and
    ``greater`` the fractions of orders whose rho is at most and at least the observed one, the
    p-value is ``min(1, 2 min(less, greater))``, as ``scipy.stats.permutation_test`` gives it.
    rho is an increasing function of ``sum rx_i ry_i`` for fixed rank multisets, so the count
    runs on that sum of doubled (integer) ranks: ties compare exactly.
    """
    n = rx.size
    if n > EXACT_MAX_N:
        raise ValueError(f"the exact p-value enumerates every order: at most {EXACT_MAX_N} pairs, got {n}")
    if n < 2 or np.all(rx == rx[0]) or np.all(ry == ry[0]):
        return math.nan
    a, b = np.rint(2 * rx).astype(np.int64), np.rint(2 * ry).astype(np.int64)
    null = _null(tuple(sorted(a.tolist())), tuple(sorted(b.tolist())))
    obs = int(a @ b)
    less = np.searchsorted(null, obs, side="right") / null.size
    greater = (null.size - np.searchsorted(null, obs, side="left")) / null.size
    return float(min(1.0, 2.0 * min(less, greater)))


def exact_min_p(n: int) -> float:
    """The smallest exact two-sided p-value of rho over ``n`` untied pairs, ``2 / n!`` (ties
    only raise it); NaN above :data:`EXACT_MAX_N`."""
    return min(1.0, 2.0 / math.factorial(n)) if 2 <= n <= EXACT_MAX_N else math.nan


def sign_matrix(x) -> np.ndarray:
    """``sign(x_i - x_j)`` for all pairs (int8), the input of :func:`kendall_from_signs`."""
    x = np.asarray(x)
    return np.sign(x[:, None] - x[None, :]).astype(np.int8)


def kendall_tau_b(x, y) -> float:
    """Kendall's tau-b (ties in either variable accounted), as ``scipy.stats.kendalltau``."""
    return kendall_from_signs(sign_matrix(x), sign_matrix(y))


def kendall_from_signs(sx: np.ndarray, sy: np.ndarray) -> float:
    """Kendall's tau-b from two :func:`sign_matrix` results (each pair counted twice, halved)."""
    n = sx.shape[0]
    tot = n * (n - 1) // 2
    con_minus_dis = int(np.einsum("ij,ij->", sx, sy, dtype=np.int64)) // 2
    xtie = tot - int(np.count_nonzero(sx)) // 2
    ytie = tot - int(np.count_nonzero(sy)) // 2
    if xtie == tot or ytie == tot:
        return math.nan
    tau = con_minus_dis / np.sqrt(tot - xtie) / np.sqrt(tot - ytie)
    return float(min(1.0, max(-1.0, tau)))


def pearson(x, y) -> float:
    """Pearson's r, as ``scipy.stats.pearsonr`` (NaN for a constant input)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    xm, ym = x - x.mean(), y - y.mean()
    xmax, ymax = np.max(np.abs(xm)), np.max(np.abs(ym))
    if xmax == 0 or ymax == 0:
        return math.nan
    xm, ym = xm / xmax, ym / ymax
    r = np.dot(xm / np.linalg.norm(xm), ym / np.linalg.norm(ym))
    return float(max(min(r, 1.0), -1.0))


def partial(r_xy: float, r_xz: float, r_yz: float) -> float:
    """Partial correlation of x and y given z from the three pairwise coefficients (docs/spec.md section 8)."""
    d = (1.0 - r_xz ** 2) * (1.0 - r_yz ** 2)
    if not (math.isfinite(d) and d > 0):
        return math.nan
    return (r_xy - r_xz * r_yz) / math.sqrt(d)


def column_spearman(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Spearman's rho per column of two rank matrices of shape ``(n, B)`` (NaN for a constant column)."""
    dx = rx - rx.mean(axis=0)
    dy = ry - ry.mean(axis=0)
    sxx, syy = np.einsum("ij,ij->j", dx, dx), np.einsum("ij,ij->j", dy, dy)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.einsum("ij,ij->j", dx, dy) / np.sqrt(sxx * syy)
    return np.clip(r, -1.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Student's t tail through the regularized incomplete beta function


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of I_x(a, b) (modified Lentz), valid for x < (a + 1) / (a + b + 2)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = tiny if abs(d) < tiny else d
    d = 1.0 / d
    h = d
    for m in range(1, 10000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-16:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b}, x={x})")


def betainc(a: float, b: float, x: float, y: Optional[float] = None) -> float:
    """Regularized incomplete beta I_x(a, b); ``y`` = 1 - x when known more precisely."""
    y = 1.0 - x if y is None else y
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    lbeta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    front = math.exp(a * math.log(x) + b * math.log(y) - lbeta)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, y) / b


def t_sf(t: float, df: float) -> float:
    """Survival function P(T > t) of Student's t with ``df`` degrees of freedom."""
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 0.0 if t > 0 else 1.0
    t2 = t * t
    x, y = df / (df + t2), t2 / (df + t2)  # y = 1 - x without cancellation
    tail = 0.5 * betainc(0.5 * df, 0.5, x, y)
    return tail if t > 0 else 1.0 - tail
