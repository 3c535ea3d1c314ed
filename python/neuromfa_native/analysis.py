"""From a checkpoint to its spectra: sampled networks (SPEC 1.2) or the full network, streamed.

- :func:`analyze_sample` is one unit of work (one checkpoint, one sample): it takes a path or
  hub id and returns plain picklable data, so it can run in any ``concurrent.futures``
  executor (process pools, Dask).
- :func:`analyze` runs the K samples of one checkpoint and aggregates them.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _core
from .engine import (
    SPECTRUM_FILTERS, Spectrum, _as_weights, _check_box, _check_params, _check_q, _check_threads, analyze_graph,
    spectrum_from_partition,
)
from .nin import build_nin, load_layout
from .sources import TensorSource, resolve_source

__all__ = ["Analysis", "NodeDimensions", "SampleResult", "analyze", "analyze_sample", "node_fractal_dimension"]

#: A node has a fractal dimension when it has at least this many distances (SPEC 5: "more than 10").
NFD_MIN_DISTANCES = 11

#: Dense (node x key) tables of a streamed full network larger than this raise an error.
MAX_TABLE_BYTES = 8 << 30


def _readonly(a):
    a = np.asarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class NodeDimensions:
    """Node fractal dimensions (SPEC section 5) of a network's nodes, with their layers.

    ``dimension`` is 0 for nodes with too few distances (<= 10 within ``threshold``)."""

    node: np.ndarray
    layer: np.ndarray
    dimension: np.ndarray
    layer_names: tuple
    threshold: float = 200.0

    @classmethod
    def pool(cls, dims: Sequence["NodeDimensions"]) -> "NodeDimensions":
        """The nodes of several samples of one network together (same layout)."""
        return cls(np.concatenate([d.node for d in dims]), np.concatenate([d.layer for d in dims]),
                   np.concatenate([d.dimension for d in dims]), dims[0].layer_names, dims[0].threshold)

    def summary(self) -> list:
        """Per-layer statistics over the nodes that have a dimension (rows of plain dicts)."""
        rows = []
        for code, name in enumerate(self.layer_names):
            sel = self.layer == code
            if not np.any(sel):
                continue
            d = self.dimension[sel]
            m = d[d != 0]
            stats = dict(mean=float(m.mean()), std=float(m.std()), median=float(np.median(m)),
                         min=float(m.min()), max=float(m.max())) if m.size else \
                dict(mean=np.nan, std=np.nan, median=np.nan, min=np.nan, max=np.nan)
            rows.append(dict(layer=name, n_nodes=int(sel.sum()), n_measured=int(m.size), **stats))
        return rows


def node_fractal_dimension(src, weight, *, threshold: float = 200.0, min_distances: int = NFD_MIN_DISTANCES,
                           n_threads: Optional[int] = None):
    """Node fractal dimension (SPEC section 5) of every source node of an edge list.

    Per node: distances ``0 < d <= threshold``, at least ``min_distances`` of them (the spec's
    "more than 10"), rounded to integers; the least-squares slope of ``ln c(r)`` against ``ln r``
    over the node's distinct radii.  Returns ``(node_ids, dimension)`` over all distinct source
    ids, 0 for nodes with too few distances.  Radii that round to 0 (|w| > 2) have no logarithm
    and are left out of the fit.
    """
    from .engine import _as_ids
    src = _as_ids(src, "src")
    w, kind = _as_weights(weight)
    if src.size != w.size:
        raise ValueError(f"src and weight must have the same length, got {src.size} and {w.size}")
    threshold = float(threshold)
    if not np.isfinite(threshold) or threshold <= 0:
        raise ValueError(f"threshold must be a positive finite number, got {threshold!r}")
    n_threads = _check_threads(n_threads)
    nodes = np.unique(src)
    dims = np.zeros(nodes.size)
    if src.size:
        h = _core.onehop_boxes(src, w, kind, threshold, 0, int(min_distances), n_threads, 0.0)
        if h["centre"].size:
            d = _core.node_fractal_dimension(h["indptr"], h["key"], h["count"], n_threads)
            dims[np.searchsorted(nodes, h["centre"])] = d
    return nodes, dims


@dataclass(frozen=True)
class SampleResult:
    """The spectrum of one sampled (or the full) network of one checkpoint."""

    checkpoint: str
    sample: Optional[int]
    spectrum: Spectrum
    n_network_nodes: int
    n_network_edges: int
    seconds: float
    node_dimensions: Optional[NodeDimensions] = None
    architecture: str = ""
    layout: str = ""

    @property
    def alpha0(self) -> float:
        return self.spectrum.alpha0

    @property
    def width(self) -> float:
        return self.spectrum.width

    def row(self) -> dict:
        """One tidy-table row (plain Python values)."""
        s = self.spectrum
        return dict(checkpoint=self.checkpoint, sample=self.sample, alpha0=s.alpha0, width=s.width,
                    n_centres=s.n_nodes, n_radii=int(s.radius.size), diameter=s.diameter,
                    min_tau_r2=float(np.nanmin(s.tau_r2)) if np.any(np.isfinite(s.tau_r2)) else np.nan,
                    passes_f_positive=s.passes("f_positive"), passes_alpha_range=s.passes("alpha_range"),
                    network_nodes=self.n_network_nodes, network_edges=self.n_network_edges,
                    seconds=self.seconds, notes="; ".join(s.notes))


def _sample_sd(a: np.ndarray) -> float:
    """Sample standard deviation (ddof=1); 0 for a single sample."""
    return a.std(ddof=1) if a.size > 1 else 0.0


@dataclass(frozen=True)
class Analysis:
    """The K sampled spectra of one checkpoint and their aggregate."""

    checkpoint: str
    results: tuple
    params: dict = field(default_factory=dict)
    filter: str = "none"

    @property
    def kept(self) -> tuple:
        """The results that pass the spectrum filter (all, with ``filter="none"``)."""
        return tuple(r for r in self.results if r.spectrum.passes(self.filter))

    @property
    def alpha0(self) -> np.ndarray:
        return np.array([r.alpha0 for r in self.kept])

    @property
    def width(self) -> np.ndarray:
        return np.array([r.width for r in self.kept])

    def _stat(self, a: np.ndarray, fn) -> float:  # fn: np.mean or _sample_sd
        if a.size == 0:
            raise ValueError(f"no sample of {self.checkpoint} passes the spectrum filter {self.filter!r}")
        return float(fn(a))

    @property
    def alpha0_mean(self) -> float:
        return self._stat(self.alpha0, np.mean)

    @property
    def alpha0_std(self) -> float:
        return self._stat(self.alpha0, _sample_sd)

    @property
    def width_mean(self) -> float:
        return self._stat(self.width, np.mean)

    @property
    def width_std(self) -> float:
        return self._stat(self.width, _sample_sd)

    def summary(self) -> dict:
        return dict(checkpoint=self.checkpoint, n_samples=len(self.results), n_kept=len(self.kept),
                    alpha0_mean=self.alpha0_mean, alpha0_std=self.alpha0_std, width_mean=self.width_mean,
                    width_std=self.width_std)

    def node_dimension_summary(self) -> list:
        """Per-layer node fractal dimension statistics pooled over the samples."""
        dims = [r.node_dimensions for r in self.results if r.node_dimensions is not None]
        return NodeDimensions.pool(dims).summary() if dims else []

    def table(self):
        """A pandas DataFrame, one row per sample (needs pandas)."""
        import pandas as pd
        return pd.DataFrame([r.row() for r in self.results])

    def _repr_html_(self) -> str:  # notebook (html_report.py)
        from .html_report import analysis_html
        return analysis_html(self)


def _label(source: Any, tsrc: TensorSource, revision: Optional[str]) -> str:
    if isinstance(source, (str, os.PathLike)):
        s = os.fspath(source)
        return f"{s}@{revision}" if revision and "@" not in s else s
    return getattr(tsrc, "description", type(source).__name__)


#: Rows of a weight matrix read per block when a full network is streamed (~16 MB of float16).
STREAM_BLOCK_ELEMENTS = 8 << 20


def _matrix_blocks(tsrc, lay, m):
    """(n_out, n_in, block, kind) row blocks of matrix ``m`` in torch (out, in) orientation,
    with the engine's weight kind of ``block``.

    Row blocks are read with positioned reads into fresh arrays, so the resident memory is one
    block, not the memory-mapped tensor (whose pages would count towards the process's RSS).
    bfloat16 stays as its 16-bit patterns (kind ``bf16``): binned by table look-up like float16,
    never widened to float32."""
    shape = tuple(tsrc.shape(m.name))
    if shape != lay.expected_shape(m):
        raise ValueError(f"tensor {m.name} has shape {shape}, the config implies {lay.expected_shape(m)}")
    bf16 = tsrc.dtype(m.name) == "bfloat16"
    if m.orientation == "conv1d":  # stored (in, out): one transposed copy
        stored = tsrc.get_slice(m.name, bf16_bits=True) if bf16 else tsrc.get(m.name)
        w = np.ascontiguousarray(stored.T)
        yield (w.shape[0], w.shape[1], *_block_kind(w, bf16))
        return
    n_out, n_in = shape
    rows = max(1, STREAM_BLOCK_ELEMENTS // max(n_in, 1))
    for j0 in range(0, n_out, rows):
        idx = np.arange(j0, min(n_out, j0 + rows))
        block = np.ascontiguousarray(tsrc.get_slice(m.name, rows=idx, bf16_bits=bf16))
        yield (n_out, n_in, *_block_kind(block, bf16))


def _block_kind(block: np.ndarray, bf16: bool) -> tuple:
    if bf16 and block.dtype == np.uint16:  # raw bfloat16 patterns (a widened block takes the float path)
        return block, "bf16"
    w, kind = _as_weights(block.reshape(-1))
    return w.reshape(block.shape), kind


def _stream_full(tsrc, lay, threshold, decimals, nfd_threshold, n_threads):
    """Dense (node x key) count tables of the full network's one-hop distances (and of the NFD
    distances), filled one row block at a time: each weight is read once and binned."""
    n_nodes = lay.n_nodes
    tables = []
    for t, dec, low in ((threshold, decimals, 1.0), (nfd_threshold, 0, 0.0)):
        if t is None:
            continue
        _, nb = _core.key_range(t, dec, low)
        need = n_nodes * nb * 4
        if need > MAX_TABLE_BYTES:
            raise ValueError(f"the full network needs a {need / 2**30:.1f} GiB (node x radius) table with "
                             f"decimals={dec}; use decimals=0 or a sampled network (per_layer=S)")
        tables.append((np.zeros((n_nodes, nb), np.uint32), t, dec, low))
    n_edges = 0
    offs = lay.offsets
    for m in lay.matrices:
        if m.is_synthetic:  # weight 1, distance 1: never passes the filter
            continue
        done = 0
        for n_out, n_in, w, kind in _matrix_blocks(tsrc, lay, m):
            for table, t, dec, low in tables:
                bad = _core.accumulate_matrix(table, w, kind, int(offs[m.in_layer]), t, dec, n_threads, low)
                if bad >= 0:
                    raise ValueError(f"tensor {m.name} holds a NaN or infinite weight at "
                                     f"[{done + bad // n_in}, {bad % n_in}]")
            done += w.shape[0]
        n_edges += n_out * n_in
    return tables, n_edges


def analyze_sample(source: Any, sample: Optional[int] = 0, *, per_layer: Optional[int] = 32,
                   layout: Any = "reference", box: str = "edge", direction: str = "forward",
                   threshold: float = 150.0, min_edges: int = 11, decimals: int = 0, q=None,
                   node_dimension: bool = True, nfd_threshold: float = 200.0, n_threads: Optional[int] = None,
                   revision: Optional[str] = None, label: Optional[str] = None) -> SampleResult:
    """Spectrum of one sampled network (``per_layer=S``) or of the full network (``per_layer=None``).

    ``source`` is anything :func:`~neuromfa_native.sources.resolve_source` takes.  The same
    ``sample`` selects the same neurons in every checkpoint of a model (SPEC 1.2).  With
    ``per_layer=None`` the network is streamed one tensor at a time into a dense
    (node x radius) count table (one-hop boxes only): no edge list is ever built.
    """
    t0 = time.perf_counter()
    _check_box(box, direction)
    threshold, min_edges, decimals = _check_params(threshold, min_edges, decimals)
    q = _check_q(q)
    n_threads = _check_threads(n_threads)
    tsrc = resolve_source(source, revision=revision)
    label = label or _label(source, tsrc, revision)
    tsrc_, lay = load_layout(tsrc, layout)
    names, codes = lay.layer_names, None
    params = dict(box=box, threshold=threshold, min_edges=min_edges, decimals=decimals)
    if per_layer is None:
        if box != "edge":
            raise ValueError("path boxes need a sampled network (per_layer=S); the full network supports box='edge'")
        tables, n_edges = _stream_full(tsrc_, lay, threshold, decimals, nfd_threshold if node_dimension else None,
                                       n_threads)
        part = _core.table_log_partition(tables[0][0], threshold, decimals, min_edges, q.tolist(), n_threads)
        if part["centre"].size == 0:
            raise ValueError(f"{label}: no node kept in the full network (no node has min_edges={min_edges} "
                             f"weights with 1/{threshold:g} <= |w| < 1)")
        spectrum = spectrum_from_partition(part, q, decimals=decimals, n_distances=part["n_distances"],
                                           params=params)
        dims = None
        if node_dimension:
            nfd = _core.table_node_fractal_dimension(tables[1][0], nfd_threshold, NFD_MIN_DISTANCES, n_threads)
            node = np.arange(lay.n_nodes, dtype=np.int64)
            dim = np.zeros(lay.n_nodes)
            dim[nfd["centre"]] = nfd["dimension"]
            codes = (np.searchsorted(lay.offsets, node, side="right") - 1).astype(np.int32)
            dims = NodeDimensions(_readonly(node), _readonly(codes), _readonly(dim), names, nfd_threshold)
        return SampleResult(label, None, spectrum, lay.n_nodes, n_edges, time.perf_counter() - t0, dims,
                            lay.architecture, lay.name)
    nin = build_nin(tsrc_, sample=sample, per_layer=per_layer, layout=layout)
    try:
        spectrum = analyze_graph(nin.src, nin.dst, nin.weight, threshold=threshold, min_edges=min_edges,
                                 decimals=decimals, q=q, box=box, direction=direction, n_threads=n_threads)
    except ValueError as exc:
        raise ValueError(f"{label}, sample {sample}: {exc}") from None
    dims = None
    if node_dimension:
        node, dim = node_fractal_dimension(nin.src, nin.weight, threshold=nfd_threshold, n_threads=n_threads)
        # every node of the network, not only sources: sinks get 0
        all_dim = np.zeros(nin.node_ids.size)
        all_dim[np.searchsorted(nin.node_ids, node)] = dim
        dims = NodeDimensions(nin.node_ids, nin.node_layer, _readonly(all_dim), nin.layer_names, nfd_threshold)
    return SampleResult(label, int(sample), spectrum, nin.n_nodes, nin.n_edges, time.perf_counter() - t0, dims,
                        nin.architecture, nin.layout)


def check_samples(samples: Any) -> tuple:
    """Sample indices from a count K (0..K-1) or explicit distinct non-negative indices."""
    if isinstance(samples, (int, np.integer)) and not isinstance(samples, bool):
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        return tuple(range(int(samples)))
    try:
        ids = [int(s) for s in samples]
    except TypeError:
        raise TypeError(f"samples must be a count or a sequence of indices, got {samples!r}") from None
    if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
        raise ValueError(f"samples must be a positive count or distinct non-negative indices, got {samples!r}")
    return tuple(ids)


def progress_bar(total: int, desc: str, unit: str, enabled: bool, initial: int = 0):
    """A tqdm bar on stderr, or None when disabled (or tqdm is missing)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency, but stay usable without it
        return None
    import sys
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5)


def analyze(source: Any, *, samples: Union[int, Sequence[int]] = 10, per_layer: Optional[int] = 32,
            layout: Any = "reference", box: str = "edge", direction: str = "forward", threshold: float = 150.0,
            min_edges: int = 11, decimals: int = 0, q=None, filter: str = "none", node_dimension: bool = True,
            nfd_threshold: float = 200.0, n_threads: Optional[int] = None, revision: Optional[str] = None,
            executor=None, progress: bool = False) -> Analysis:
    """Spectra of K sampled networks of one checkpoint and their aggregate (mean, spread).

    ``samples`` is K (samples 0..K-1) or explicit sample indices.  ``per_layer=None`` analyses
    the full network once.  ``filter`` is a published spectrum filter applied to the aggregate
    (SPEC 3).  ``executor`` (any ``concurrent.futures.Executor``) runs the samples as separate
    tasks; the source must then be a path or hub id (tasks carry paths, not tensors).
    """
    if filter not in SPECTRUM_FILTERS:
        raise ValueError(f"filter must be one of {SPECTRUM_FILTERS}, got {filter!r}")
    ids = list(check_samples(samples))
    if per_layer is None:
        ids = [None]
    opts = dict(per_layer=per_layer, layout=layout, box=box, direction=direction, threshold=threshold,
                min_edges=min_edges, decimals=decimals, q=q, node_dimension=node_dimension,
                nfd_threshold=nfd_threshold, n_threads=n_threads, revision=revision)
    bar = progress_bar(len(ids), str(source), "sample", progress)
    if executor is not None:
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError("with an executor, source must be a path or hub id (tasks carry paths, not tensors)")
        futures = [executor.submit(analyze_sample, os.fspath(source), k, **opts) for k in ids]
        results = []
        for f in futures:
            results.append(f.result())
            if bar is not None:
                bar.update(1)
    else:
        tsrc = resolve_source(source, revision=revision)
        opts["revision"] = None
        label = _label(source, tsrc, revision)
        results = []
        for k in ids:
            results.append(analyze_sample(tsrc, k, label=label, **opts))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    params = dict(per_layer=per_layer, layout=layout if isinstance(layout, str) else "custom", box=box,
                  direction=direction, threshold=float(threshold), min_edges=int(min_edges), decimals=int(decimals),
                  samples=ids, filter=filter)
    return Analysis(results[0].checkpoint, tuple(results), params, filter)
