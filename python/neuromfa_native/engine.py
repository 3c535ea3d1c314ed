"""The one-hop NeuroMFA engine on any weighted graph (SPEC sections 2-4).

``analyze_graph`` validates the edge arrays, lets the C++ core build the box histograms and
the partition function, fits the mass exponents and returns a :class:`Spectrum`.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from . import _core

__all__ = [
    "DEFAULT_Q",
    "Spectrum",
    "analyze_graph",
    "analyze_histogram",
    "emergence",
    "spectrum_from_tau",
    "SPECTRUM_FILTERS",
]

#: The reference moments -3.0, -2.9, ..., 3.0 (61 values, correctly rounded decimals).
DEFAULT_Q = np.arange(-30, 31) / 10.0
DEFAULT_Q.setflags(write=False)

#: Published optional spectrum filters (SPEC section 3); see :meth:`Spectrum.passes`.
SPECTRUM_FILTERS = ("none", "f_positive", "alpha_range", "both")

#: Fits with a coefficient of determination below this are flagged in ``Spectrum.notes``.
POOR_FIT_R2 = 0.5


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Spectrum:
    """A multifractal spectrum and the fit it came from.

    Attributes
    ----------
    q, tau : moments and mass exponents tau(q) (same length).
    alpha, f : the Legendre spectrum, ``len(q) - 1`` values (SPEC section 3).
    alpha0 : alpha at the peak of f (deterministic tie rule of SPEC section 3).
    width : ``max(alpha) - min(alpha)``.
    n_nodes : box centres kept (nodes with at least ``min_edges`` distances).
    radius : the radius grid R (sorted distinct rounded distances); ``radius[-1]`` is D.
    log_z : ln Z_q(r), shape ``(len(q), len(radius))``.
    tau_r2, tau_stderr : r^2 and standard error of every tau fit (NaN where undefined).
    notes : non-fatal numeric trouble found while fitting (also warned once).
    """

    q: np.ndarray
    tau: np.ndarray
    alpha: np.ndarray
    f: np.ndarray
    alpha0: float
    width: float
    n_nodes: int
    radius: np.ndarray
    log_z: np.ndarray
    tau_r2: np.ndarray
    tau_stderr: np.ndarray
    n_distances: int = 0
    params: dict = field(default_factory=dict)
    notes: tuple = ()

    @property
    def diameter(self) -> float:
        return float(self.radius[-1])

    def _repr_html_(self) -> str:  # notebook (html_report.py)
        from .html_report import spectrum_html
        return spectrum_html(self)

    def passes(self, filter: str = "none") -> bool:
        """Whether the spectrum survives a published filter (SPEC section 3).

        ``"f_positive"`` drops spectra with any ``f > 0``; ``"alpha_range"`` drops spectra with
        ``max(alpha) - alpha[0] > 0.01``; ``"both"`` applies both; ``"none"`` keeps all.
        """
        if filter not in SPECTRUM_FILTERS:
            raise ValueError(f"filter must be one of {SPECTRUM_FILTERS}, got {filter!r}")
        ok = True
        if filter in ("f_positive", "both"):
            ok &= not bool(np.any(self.f > 0))
        if filter in ("alpha_range", "both"):
            ok &= not bool(self.alpha.max() - self.alpha[0] > 0.01)
        return ok

    def to_dict(self) -> dict:
        """Plain-Python (JSON-friendly) view of the spectrum's numbers."""
        return {
            "q": self.q.tolist(), "tau": self.tau.tolist(), "alpha": self.alpha.tolist(),
            "f": self.f.tolist(), "alpha0": self.alpha0, "width": self.width,
            "n_nodes": self.n_nodes, "n_distances": self.n_distances,
            "radius": self.radius.tolist(), "tau_r2": self.tau_r2.tolist(),
            "tau_stderr": self.tau_stderr.tolist(), "params": dict(self.params), "notes": list(self.notes),
        }


def _check_q(q) -> np.ndarray:
    if q is None:
        return DEFAULT_Q
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 1 or q.size < 2:
        raise ValueError(f"q must be a 1-d sequence of at least 2 moments, got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ValueError("q must hold finite moments")
    if np.any(np.diff(q) <= 0):
        raise ValueError("q must be strictly increasing")
    return q


# GNU OpenMP does not survive fork(): a child forked after the parent ran a parallel region
# hangs in its first one.  Children of a fork therefore compute on one thread (and say so once);
# spawn or forkserver process pools keep all threads.
_FORKED_CHILD = False


def _after_fork_in_child() -> None:
    global _FORKED_CHILD
    _FORKED_CHILD = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _check_threads(n_threads) -> int:
    global _FORKED_CHILD
    if not (n_threads is None or n_threads == -1) and (
            isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1):
        raise ValueError(f"n_threads must be a positive integer, -1 or None, got {n_threads!r}")
    if _FORKED_CHILD and n_threads != 1:
        if _FORKED_CHILD is True:
            warnings.warn("neuromfa_native runs on one thread in a fork()ed process (GNU OpenMP is not fork-safe); "
                          "use a 'spawn' or 'forkserver' process pool to keep all threads", RuntimeWarning,
                          stacklevel=3)
            _FORKED_CHILD = "warned"
        return 1
    return -1 if n_threads is None or n_threads == -1 else int(n_threads)


def _check_params(threshold, min_edges, decimals):
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"threshold must be a number, got {threshold!r}") from None
    if not np.isfinite(threshold) or threshold <= 1:
        raise ValueError(f"threshold must be a finite number > 1 (distances are 1/|w| > 1), got {threshold!r}")
    if isinstance(min_edges, bool) or not isinstance(min_edges, (int, np.integer)) or min_edges < 1:
        # 0 would make nodes whose every distance was filtered out centres with empty boxes
        raise ValueError(f"min_edges must be an integer >= 1, got {min_edges!r}")
    if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)) or not -15 <= decimals <= 15:
        raise ValueError(f"decimals must be an integer in [-15, 15], got {decimals!r}")
    return threshold, int(min_edges), int(decimals)


def _as_ids(a, name: str, check_negative: bool = True) -> np.ndarray:
    """1-d int64 ids; negative ids are refused here unless the core checks them itself."""
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {a.shape}")
    if a.dtype.kind in "iu":
        if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{name} holds ids beyond the int64 range")
        ids = np.ascontiguousarray(a, dtype=np.int64)
    elif a.dtype.kind == "f":
        if a.size and not np.all(np.isfinite(a)):
            raise ValueError(f"{name} holds NaN or infinite ids")
        ids = a.astype(np.int64)
        if not np.array_equal(ids, a):
            raise ValueError(f"{name} holds non-integer ids")
    elif a.size == 0:
        ids = np.zeros(0, np.int64)
    else:
        raise TypeError(f"{name} must hold integer node ids, got dtype {a.dtype}")
    if check_negative and ids.size and ids.min() < 0:
        i = int(np.argmax(ids < 0))
        raise ValueError(f"{name} holds negative node ids (first at index {i}: {ids[i]})")
    return ids


def _as_weights(w):
    """Weights as a contiguous array plus the kind string the core expects (no silent copy)."""
    w = np.asarray(w)
    if w.ndim != 1:
        raise ValueError(f"weight must be 1-dimensional, got shape {w.shape}")
    if w.dtype == np.float16:
        return np.ascontiguousarray(w).view(np.uint16), "f16"
    if w.dtype.name == "bfloat16":  # ml_dtypes / jax bfloat16
        return np.ascontiguousarray(w).view(np.uint16), "bf16"
    if w.dtype == np.float32:
        return np.ascontiguousarray(w), "f32"
    if w.dtype == np.float64:
        return np.ascontiguousarray(w), "f64"
    if w.dtype.kind in "iuf":
        return np.ascontiguousarray(w, dtype=np.float64), "f64"
    raise TypeError(f"weight must be a real floating-point array, got dtype {w.dtype}")


def _fit_tau(log_z: np.ndarray, radius: np.ndarray):
    """OLS slope of ln Z_q(r) against ln(r/D) for every q, with r^2 and standard errors."""
    x = np.log(radius / radius[-1])
    xc = x - x.mean()
    sxx = float(xc @ xc)
    yc = log_z - log_z.mean(axis=1, keepdims=True)
    flat = np.ptp(log_z, axis=1) <= 1e-12 * (1.0 + np.abs(log_z).max(axis=1))
    yc[flat] = 0.0  # Z_q(r) constant in r (q = 0 always): tau is exactly 0, r^2 undefined
    tau = (yc @ xc) / sxx
    resid = yc - np.outer(tau, xc)
    ssr = np.einsum("ij,ij->i", resid, resid)
    sst = np.einsum("ij,ij->i", yc, yc)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(flat, np.nan, 1.0 - ssr / np.where(flat, 1.0, sst))
        dof = x.size - 2
        stderr = np.sqrt(ssr / dof / sxx) if dof > 0 else np.full(tau.shape, np.nan)
    return tau, r2, stderr


def spectrum_from_tau(q, tau, *, tie_tol: float = 1e-9):
    """(alpha, f, alpha0, width) from mass exponents (SPEC section 3).

    alpha0 is the alpha at the maximum of f.  Values of f within ``tie_tol`` of the maximum
    are tied: two adjacent tied moments give the mean of their alphas (the usual q = -0.1/0
    tie gives the central difference); otherwise the alpha of the smallest tied moment.
    """
    q = _check_q(q)
    tau = np.asarray(tau, dtype=np.float64)
    if tau.shape != q.shape:
        raise ValueError(f"tau must have the shape of q {q.shape}, got {tau.shape}")
    alpha = np.diff(tau) / np.diff(q)
    f = q[:-1] * alpha - tau[:-1]
    tied = np.flatnonzero(f >= f.max() - tie_tol)
    if tied.size == 2 and tied[1] == tied[0] + 1:
        alpha0 = 0.5 * (alpha[tied[0]] + alpha[tied[1]])
    else:
        alpha0 = alpha[tied[0]]
    return alpha, f, float(alpha0), float(alpha.max() - alpha.min())


def analyze_histogram(indptr, key, count, *, decimals: int = 0, q=None, n_threads=None, n_distances: int = 0,
                      params: Optional[dict] = None) -> Spectrum:
    """Spectrum of box histograms already built (CSR of rounded-distance keys and counts).

    This is the common back end of one-hop boxes, path boxes and streamed full networks.
    """
    q = _check_q(q)
    n_threads = _check_threads(n_threads)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    key = np.ascontiguousarray(key, dtype=np.int64)
    count = np.ascontiguousarray(count, dtype=np.int64)
    part = _core.log_partition(indptr, key, count, int(decimals), q.tolist(), n_threads)
    return spectrum_from_partition(part, q, decimals=decimals, n_distances=n_distances, params=params)


def spectrum_from_partition(part: dict, q, *, decimals: int = 0, n_distances: int = 0,
                            params: Optional[dict] = None) -> Spectrum:
    """Fit and spectrum from a core partition result (``radius``, ``log_z``, ``n_centres``)."""
    q = _check_q(q)
    radius = part["radius"]
    if radius.size < 2:
        raise ValueError(
            f"the radius grid has a single value ({radius[0]:g}): every kept distance rounds to it, so "
            "ln Z cannot be fitted against ln r; use more decimals or a larger threshold"
        )
    if radius[0] <= 0:
        raise ValueError(
            f"a kept distance rounds to 0 with decimals={decimals}, so ln(r/D) is undefined; use decimals >= 0"
        )
    tau, r2, stderr = _fit_tau(part["log_z"], radius)
    alpha, f, alpha0, width = spectrum_from_tau(q, tau)
    notes = []
    if radius.size < 5:
        notes.append(f"only {radius.size} radii in the grid: tau is fitted on very few points")
    poor = np.flatnonzero(np.nan_to_num(r2, nan=1.0) < POOR_FIT_R2)
    if poor.size:
        notes.append(f"{poor.size} of {q.size} tau fits have r^2 < {POOR_FIT_R2} (worst {np.nanmin(r2):.3f})")
    for note in notes:
        warnings.warn(note, RuntimeWarning, stacklevel=4)
    return Spectrum(
        q=_readonly(q.copy()), tau=_readonly(tau), alpha=_readonly(alpha), f=_readonly(f), alpha0=alpha0,
        width=width, n_nodes=int(part["n_centres"]), radius=_readonly(radius), log_z=_readonly(part["log_z"]),
        tau_r2=_readonly(r2), tau_stderr=_readonly(stderr), n_distances=int(n_distances),
        params=dict(params or {}), notes=tuple(notes),
    )


BOXES = ("edge", "path")
DIRECTIONS = ("forward", "undirected")


def _check_box(box, direction):
    if box not in BOXES:
        raise ValueError(f"box must be one of {BOXES}, got {box!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")


def analyze_graph(src, dst, weight, *, threshold: float = 150.0, min_edges: int = 11, decimals: int = 0,
                  q: Optional[Sequence[float]] = None, box: str = "edge", direction: str = "forward",
                  n_threads: Optional[int] = None) -> Spectrum:
    """NeuroMFA spectrum of a weighted directed graph (SPEC 2-3).

    ``box="edge"`` (the reference) grows one-hop boxes from each node's out-edge distances;
    ``box="path"`` grows boxes along exact shortest paths up to ``threshold``.

    Parameters
    ----------
    src, dst : integer node ids (>= 0) of each edge, any order; duplicate edges are kept.
    weight : edge weights, float16, bfloat16, float32 or float64; distance ``d = 1/|w|``.
    threshold : keep distances with ``1 < d <= threshold``.
    min_edges : a node is a box centre when at least this many of its distances survive (path
        boxes: when at least this many other nodes lie within ``threshold``).
    decimals : distances are rounded to this many decimals (numpy's half-to-even rounding).
    q : moments, strictly increasing; ``None`` means -3.0, -2.9, ..., 3.0.
    box : ``"edge"`` (one-hop boxes, the reference) or ``"path"`` (shortest-path boxes).
    direction : for path boxes, walk edges ``"forward"`` (src -> dst) or ``"undirected"``.
    n_threads : OpenMP threads; ``None`` or -1 means all cores (``OMP_NUM_THREADS`` when set).
        Results do not depend on it.
    """
    _check_box(box, direction)
    threshold, min_edges, decimals = _check_params(threshold, min_edges, decimals)
    q = _check_q(q)
    n_threads = _check_threads(n_threads)
    src = _as_ids(src, "src", check_negative=False)  # the core names the first negative src
    dst = _as_ids(dst, "dst")
    w, kind = _as_weights(weight)
    if not (src.size == dst.size == w.size):
        raise ValueError(f"src, dst and weight must have the same length, got {src.size}, {dst.size}, {w.size}")
    if src.size == 0:
        raise ValueError("the graph is empty: src, dst and weight hold no edge")
    if box == "edge":
        boxes = _core.onehop_boxes(src, w, kind, threshold, decimals, min_edges, n_threads)
        what = f"{boxes['n_sources']} nodes have distances 1 < d <= {threshold:g} " \
               f"({boxes['n_distances']} of {src.size} edges pass)"
    else:
        boxes = _core.path_boxes(src, dst, w, kind, threshold, decimals, min_edges, direction == "undirected",
                                 n_threads)
        what = f"{boxes['n_sources']} nodes have edges with 1 < d <= {threshold:g}"
    if boxes["centre"].size == 0:
        raise ValueError(f"no node kept: {what}, but none has at least min_edges={min_edges} "
                         f"{'distances' if box == 'edge' else 'nodes within the threshold'}")
    params = {"box": box, "threshold": threshold, "min_edges": min_edges, "decimals": decimals}
    if box == "path":
        params["direction"] = direction
    return analyze_histogram(boxes["indptr"], boxes["key"], boxes["count"], decimals=decimals, q=q,
                             n_threads=n_threads, n_distances=boxes["n_distances"], params=params)


def emergence(alpha0, width, *, baseline: int = 0) -> np.ndarray:
    """Degree of emergence E(t) = (w(t)/w(b)) * ln(alpha0(b)/alpha0(t)) (SPEC section 4).

    ``alpha0`` and ``width`` are per-checkpoint values (usually means over samples) in training
    order; ``baseline`` is the index of the reference checkpoint (0: the initialisation).
    """
    a = np.asarray(alpha0, dtype=np.float64)
    w = np.asarray(width, dtype=np.float64)
    if a.ndim != 1 or a.shape != w.shape or a.size == 0:
        raise ValueError(f"alpha0 and width must be 1-d of the same non-zero length, got {a.shape} and {w.shape}")
    if not -a.size <= baseline < a.size:
        raise ValueError(f"baseline must index a checkpoint (0..{a.size - 1}), got {baseline}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(w))):
        raise ValueError("alpha0 and width must be finite")
    if np.any(a <= 0):
        raise ValueError("alpha0 must be positive for ln(alpha0(b)/alpha0(t))")
    if w[baseline] <= 0:
        raise ValueError(f"the baseline width must be positive, got {w[baseline]}")
    return _readonly((w / w[baseline]) * np.log(a[baseline] / a))
