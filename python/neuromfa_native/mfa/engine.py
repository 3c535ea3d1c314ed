"""The one-hop NeuroMFA engine on any weighted graph (docs/spec.md sections 2-4).

``analyze_graph`` validates the edge arrays, lets the C++ core build the box histograms and
the partition function, fits the mass exponents and returns a :class:`Spectrum`.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from .. import _core
from .. import _validation as check
from .._results import fields_equal, frozen_mapping, readonly, thawed
from .._validation import DEFAULT_Q
from .boxes import BOX_TYPES, BOXES, DIRECTIONS
from ._display import spectrum_html
from ..config import DEFAULT, SPECTRUM_FILTERS, AnalysisConfig

__all__ = [
    "BOXES",
    "DEFAULT_Q",
    "DIRECTIONS",
    "Spectrum",
    "analyze_graph",
    "analyze_histogram",
    "analyze_table",
    "emergence",
    "spectrum_from_tau",
    "SPECTRUM_FILTERS",
]

#: Fits with a coefficient of determination below this are flagged in ``Spectrum.notes``.
POOR_FIT_R2 = 0.5


@dataclass(frozen=True, eq=False)
class Spectrum:
    """A multifractal spectrum and the fit it came from.

    Attributes
    ----------
    q, tau : moments and mass exponents tau(q) (same length).
    alpha, f : the Legendre spectrum, ``len(q) - 1`` values (docs/spec.md section 3).
    alpha0 : alpha at the peak of f (deterministic tie rule of docs/spec.md section 3).
    width : ``max(alpha) - min(alpha)``.
    n_nodes : box centres kept (nodes with at least ``min_edges`` distances).
    radius : the radius grid R (sorted distinct rounded distances); ``radius[-1]`` is D.
    log_z : ln Z_q(r), shape ``(len(q), len(radius))``.
    tau_r2, tau_stderr : r^2 and standard error of every tau fit (NaN where undefined).
    notes : non-fatal numeric trouble found while fitting (also warned once).
    params : the box-counting options the spectrum was computed with (read-only mapping).

    Spectra compare equal when every field is equal (arrays by value).
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
    params: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple = ()

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", frozen_mapping(self.params))
        object.__setattr__(self, "notes", tuple(self.notes))

    @property
    def diameter(self) -> float:
        return float(self.radius[-1])

    def _repr_html_(self) -> str:  # the notebook view (_display.py)
        return spectrum_html(self)

    def __repr__(self) -> str:
        notes = f"; {len(self.notes)} note(s)" if self.notes else ""
        return (f"<Spectrum: alpha0 {self.alpha0:.4f}, width {self.width:.4f}, {self.q.size} moments, "
                f"{self.radius.size} radii up to {self.diameter:g}, {self.n_nodes:,} centres{notes}>")

    def passes(self, filter: str = "none") -> bool:
        """Whether the spectrum survives a published filter (docs/spec.md section 3).

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
            "tau_stderr": self.tau_stderr.tolist(), "params": thawed(self.params), "notes": list(self.notes),
        }


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
    """(alpha, f, alpha0, width) from mass exponents (docs/spec.md section 3).

    alpha0 is the alpha at the maximum of f.  Values of f within ``tie_tol`` of the maximum
    are tied: two adjacent tied moments give the mean of their alphas (the usual q = -0.1/0
    tie gives the central difference); otherwise the alpha of the smallest tied moment.

    Parameters
    ----------
    q:
        the moments, strictly increasing.
    tau:
        tau(q), one per moment.
    tie_tol:
        tolerance within which values of f count as the maximum.

    Returns
    -------
    tuple
        ``(alpha, f, alpha0, width)``: alpha and f at the midpoints of adjacent moments, alpha0
        and the spectrum width ``max(alpha) - min(alpha)``.

    Raises
    ------
    ValueError
        fewer than two moments, or arrays of different lengths.

    Examples
    --------
    >>> import numpy as np
    >>> import neuromfa_native as nm
    >>> q = np.linspace(-3, 3, 61)
    >>> alpha, f, alpha0, width = nm.spectrum_from_tau(q, 1.2 * (q - 1))  # a monofractal
    >>> round(alpha0, 6), round(width, 6)
    (1.2, 0.0)
    """
    q = check.moments(q)
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
    q = check.moments(q)
    n_threads = check.threads(n_threads)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    key = np.ascontiguousarray(key, dtype=np.int64)
    count = np.ascontiguousarray(count, dtype=np.int64)
    part = _core.log_partition(indptr, key, count, int(decimals), q.tolist(), n_threads)
    return spectrum_from_partition(part, q, decimals=decimals, n_distances=n_distances, params=params)


def analyze_table(table: np.ndarray, *, threshold: float, decimals: int, min_edges: int, q, n_threads=None,
                  params: Optional[dict] = None) -> Spectrum:
    """Spectrum of a dense (node x key) table of one-hop distance counts: a streamed full
    network, a null version of it, or the rows of a group of its nodes (SPEC 11).

    The core's partition function of the table's rows, then the fit (:func:`spectrum_from_partition`):
    the one place that turns a dense table into a spectrum.  A ``ValueError`` when no node has
    ``min_edges`` kept distances.
    """
    q = check.moments(q)
    part = _core.table_log_partition(table, threshold, decimals, min_edges, q.tolist(), check.threads(n_threads))
    if part["centre"].size == 0:
        raise ValueError(f"no node kept: no node has min_edges={min_edges} weights with 1/{threshold:g} <= |w| < 1")
    return spectrum_from_partition(part, q, decimals=decimals, n_distances=part["n_distances"], params=params)


def spectrum_from_partition(part: dict, q, *, decimals: int = 0, n_distances: int = 0,
                            params: Optional[dict] = None) -> Spectrum:
    """Fit and spectrum from a core partition result (``radius``, ``log_z``, ``n_centres``)."""
    q = check.moments(q)
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
        q=readonly(q.copy()), tau=readonly(tau), alpha=readonly(alpha), f=readonly(f), alpha0=alpha0,
        width=width, n_nodes=int(part["n_centres"]), radius=readonly(radius), log_z=readonly(part["log_z"]),
        tau_r2=readonly(r2), tau_stderr=readonly(stderr), n_distances=int(n_distances),
        params=dict(params or {}), notes=tuple(notes),
    )


def analyze_graph(src, dst, weight, *, threshold: float = DEFAULT, min_edges: int = DEFAULT,
                  decimals: int = DEFAULT, q: Optional[Sequence[float]] = DEFAULT, box: str = DEFAULT,
                  direction: str = DEFAULT, n_threads: Optional[int] = None,
                  config: Optional[AnalysisConfig] = None) -> Spectrum:
    """NeuroMFA spectrum of a weighted directed graph (docs/spec.md sections 2-3).

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
    box : a box type of :data:`~neuromfa_native.mfa.boxes.BOX_TYPES`: ``"edge"`` (one-hop boxes,
        the reference) or ``"path"`` (shortest-path boxes).
    direction : for path boxes, walk edges ``"forward"`` (src -> dst) or ``"undirected"``.
    n_threads : OpenMP threads; ``None`` or -1 means all cores (``OMP_NUM_THREADS`` when set).
        Results do not depend on it.
    config : an :class:`~neuromfa_native.AnalysisConfig` holding these options (the defaults
        of the options not given; options given as keywords override it).

    Returns
    -------
    Spectrum

    Raises
    ------
    ValueError, TypeError
        a bad option or edge array (naming it), an empty graph, or no box centre.

    Examples
    --------
    The sampled network of the bundled tiny checkpoint, as edge arrays:

    >>> import neuromfa_native as nm
    >>> net = nm.build_nin("examples/pythia-tiny/step0", sample=0, per_layer=8)
    >>> s = nm.analyze_graph(net.src, net.dst, net.weight, n_threads=1)
    >>> s.q.size, round(s.alpha0, 4)
    (61, 1.2494)
    """
    cfg = AnalysisConfig.from_options(config, threshold=threshold, min_edges=min_edges, decimals=decimals, q=q,
                                      box=box, direction=direction)
    q = np.asarray(cfg.q)  # type: ignore[assignment]  # the config's moments, as an array
    n_threads = check.threads(n_threads)
    src = check.ids(src, "src", check_negative=False)  # the core names the first negative src
    dst = check.ids(dst, "dst")
    w, kind = check.weights(weight)
    if not (src.size == dst.size == w.size):
        raise ValueError(f"src, dst and weight must have the same length, got {src.size}, {dst.size}, {w.size}")
    if src.size == 0:
        raise ValueError("the graph is empty: src, dst and weight hold no edge")
    bt = BOX_TYPES[cfg.box]
    boxes = bt.histograms(src, dst, w, kind, cfg.threshold, cfg.decimals, cfg.min_edges, cfg.direction, n_threads)
    if boxes["centre"].size == 0:
        what = bt.sources_rule.format(n_sources=boxes["n_sources"], threshold=cfg.threshold,
                                      n_distances=boxes["n_distances"], n_edges=src.size)
        raise ValueError(f"no node kept: {what}, but none has at least min_edges={cfg.min_edges} {bt.centre_rule}")
    return analyze_histogram(boxes["indptr"], boxes["key"], boxes["count"], decimals=cfg.decimals, q=q,
                             n_threads=n_threads, n_distances=boxes["n_distances"], params=box_params(cfg))


def box_params(cfg: AnalysisConfig) -> dict:
    """The box-counting options a spectrum records in its ``params`` (``direction`` only for a
    box type whose result depends on it)."""
    params = {"box": cfg.box, "threshold": cfg.threshold, "min_edges": cfg.min_edges, "decimals": cfg.decimals}
    if BOX_TYPES[cfg.box].directed:
        params["direction"] = cfg.direction
    return params


def emergence(alpha0, width, *, baseline: int = 0) -> np.ndarray:
    """Degree of emergence E(t) = (w(t)/w(b)) * ln(alpha0(b)/alpha0(t)) (docs/spec.md section 4).

    ``alpha0`` and ``width`` are per-checkpoint values (usually means over samples) in training
    order; ``baseline`` is the index of the reference checkpoint (0: the initialisation).

    Parameters
    ----------
    alpha0, width:
        one value per checkpoint, in training order (same length).
    baseline:
        index of the reference checkpoint ``b``.

    Returns
    -------
    numpy.ndarray
        E(t) per checkpoint (0 at the baseline).

    Raises
    ------
    ValueError
        arrays of different lengths, a baseline out of range, or non-positive values.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> nm.emergence([1.30, 1.25, 1.20], [0.50, 0.55, 0.60]).round(4).tolist()
    [0.0, 0.0431, 0.0961]
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
    return readonly((w / w[baseline]) * np.log(a[baseline] / a))
