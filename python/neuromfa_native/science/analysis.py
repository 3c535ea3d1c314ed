"""From a checkpoint to its spectra: sampled networks (docs/spec.md section 1.2) or the full
network, streamed.

- :func:`analyze_sample` is one unit of work (one checkpoint, one sample): it takes a path or
  hub id and returns plain picklable data, so it can run in any ``concurrent.futures``
  executor (process pools, Dask).
- :func:`analyze` runs the K samples of one checkpoint and aggregates them.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from .. import _core
from .. import _validation as check
from .._results import fields_equal, frozen_mapping, readonly
from ._display import analysis_html
from ..config import DEFAULT, DEFAULT_CONFIG, AnalysisConfig
from ..mfa.engine import Spectrum, analyze_graph, analyze_table, box_params
from ..network.nin import build_nin, load_layout, prefetch_samples
from ..io.base import TensorSource
from ..io.sources import resolve_source
from .nulls import check_controls

__all__ = ["Analysis", "NodeDimensions", "SampleResult", "analyze", "analyze_sample", "node_fractal_dimension"]

#: A node has a fractal dimension when it has at least this many distances
#: (docs/spec.md section 5: "more than 10").
NFD_MIN_DISTANCES = 11

#: Dense (node x key) tables of a streamed full network larger than this raise an error.
MAX_TABLE_BYTES = 8 << 30


@dataclass(frozen=True, eq=False)
class NodeDimensions:
    """Node fractal dimensions (docs/spec.md section 5) of a network's nodes, with their layers.

    ``dimension`` is 0 for nodes with too few distances (<= 10 within ``threshold``)."""

    node: np.ndarray
    layer: np.ndarray
    dimension: np.ndarray
    layer_names: tuple
    threshold: float

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        for name in ("node", "layer", "dimension"):
            object.__setattr__(self, name, readonly(getattr(self, name)))
        object.__setattr__(self, "layer_names", tuple(self.layer_names))

    def __repr__(self) -> str:
        measured = self.dimension[self.dimension != 0]
        mean = f", mean {measured.mean():.4f}" if measured.size else ""
        return (f"<NodeDimensions: {self.node.size:,} nodes in {len(self.layer_names)} layer(s), "
                f"{measured.size:,} measured{mean} (threshold {self.threshold:g})>")

    @classmethod
    def pool(cls, dims: Sequence[NodeDimensions]) -> NodeDimensions:
        """The nodes of several samples of one network together (same layout)."""
        return cls(node=np.concatenate([d.node for d in dims]), layer=np.concatenate([d.layer for d in dims]),
                   dimension=np.concatenate([d.dimension for d in dims]), layer_names=dims[0].layer_names,
                   threshold=dims[0].threshold)

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


def node_fractal_dimension(src, weight, *, threshold: float = DEFAULT, min_distances: int = NFD_MIN_DISTANCES,
                           n_threads: Optional[int] = None, layer=None, layer_names: Sequence[str] = ()
                           ) -> NodeDimensions:
    """Node fractal dimension (docs/spec.md section 5) of every source node of an edge list.

    Per node: distances ``0 < d <= threshold``, at least ``min_distances`` of them (the spec's
    "more than 10"), rounded to integers; the least-squares slope of ``ln c(r)`` against ``ln r``
    over the node's distinct radii.  Radii that round to 0 (``|w| > 2``) have no logarithm and are
    left out of the fit.

    Parameters
    ----------
    src, weight : the source node id and weight of every edge.
    threshold : the distance threshold (default: ``AnalysisConfig``'s ``nfd_threshold``).
    min_distances : distances a node needs to have a dimension.
    n_threads : OpenMP threads (``None``: all cores).
    layer, layer_names : optional node layer code of every source node (aligned with the
        distinct sorted source ids) and the layer names; default: one layer ``"all"``.

    Returns
    -------
    NodeDimensions
        over all distinct source ids (sorted), dimension 0 for nodes with too few distances.

    Raises
    ------
    ValueError, TypeError
        bad ids, weights or threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from neuromfa_native import node_fractal_dimension
    >>> nd = node_fractal_dimension(np.zeros(12, int), np.linspace(0.02, 0.5, 12))
    >>> nd.node.tolist(), round(float(nd.dimension[0]), 3) > 0
    ([0], True)
    """
    src = check.ids(src, "src")
    w, kind = check.weights(weight)
    if src.size != w.size:
        raise ValueError(f"src and weight must have the same length, got {src.size} and {w.size}")
    threshold = DEFAULT_CONFIG.nfd_threshold if threshold is DEFAULT else check.positive_number(threshold,
                                                                                                  "threshold")
    n_threads = check.threads(n_threads)
    nodes = np.unique(src)
    dims = np.zeros(nodes.size)
    if src.size:
        h = _core.onehop_boxes(src, w, kind, threshold, 0, int(min_distances), n_threads, 0.0)
        if h["centre"].size:
            d = _core.node_fractal_dimension(h["indptr"], h["key"], h["count"], n_threads)
            dims[np.searchsorted(nodes, h["centre"])] = d
    if layer is None:
        layer, layer_names = np.zeros(nodes.size, np.int32), ("all",)
    return NodeDimensions(node=nodes, layer=layer, dimension=dims, layer_names=tuple(layer_names),
                          threshold=threshold)


@dataclass(frozen=True, eq=False)
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
    # --- controls, rival statistics, breakdown by layer (docs/controls.md; controls.py) ---
    controls: Optional[Mapping[str, Spectrum]] = None  # {control name: Spectrum} of the null networks
    weight_stats: Optional[Any] = None  # weight_stats.WeightStats of the rows read
    by_layer: Optional[tuple] = None  # rows (group, alpha0, width, n_centres, note), SPEC 11

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        if self.controls is not None:
            object.__setattr__(self, "controls", frozen_mapping(self.controls))
        if self.by_layer is not None:
            object.__setattr__(self, "by_layer", tuple(frozen_mapping(r) for r in self.by_layer))

    def __repr__(self) -> str:
        which = "full network" if self.sample is None else f"sample {self.sample}"
        extra = [f"controls {'/'.join(self.controls)}" if self.controls else "",
                 "weight stats" if self.weight_stats is not None else "",
                 f"{len(self.by_layer)} layer groups" if self.by_layer is not None else ""]
        return (f"<SampleResult {self.checkpoint} {which}: alpha0 {self.alpha0:.4f}, width {self.width:.4f}, "
                f"{self.n_network_nodes:,} nodes, {self.n_network_edges:,} edges"
                + "".join(f", {x}" for x in extra if x) + ">")

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


@dataclass(frozen=True, eq=False)
class Analysis:
    """The K sampled spectra of one checkpoint and their aggregate.

    A statistic that cannot be computed (no sample passes ``filter``) is NaN, as in
    :class:`~neuromfa_native.Series`; missing numbers are NaN in every result, never ``None``.
    """

    checkpoint: str
    results: tuple
    params: Mapping[str, Any] = field(default_factory=dict)
    filter: str = "none"

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", tuple(self.results))
        object.__setattr__(self, "params", frozen_mapping(self.params))

    def __repr__(self) -> str:
        kept = "" if self.filter == "none" else f" ({len(self.kept)} kept by filter {self.filter})"
        return (f"<Analysis {self.checkpoint}: {len(self.results)} samples{kept}, alpha0 {self.alpha0_mean:.4f} "
                f"± {self.alpha0_std:.4f}, width {self.width_mean:.4f} ± {self.width_std:.4f}>")

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

    def _stat(self, a: np.ndarray, fn) -> float:  # fn: np.mean or _sample_sd; NaN without a sample
        return float(fn(a)) if a.size else float("nan")

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

    def _repr_html_(self) -> str:  # the notebook view (_display.py)
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
    w, kind = check.weights(block.reshape(-1))
    return w.reshape(block.shape), kind


def _stream_full(tsrc, lay, threshold, decimals, nfd_threshold, n_threads, hook=None):
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
        for n_out, n_in, w, kind in _matrix_blocks(tsrc, lay, m):  # noqa: B007 (n_out is the matrix's, used below)
            if hook is not None:  # controls / rival statistics (controls.FullNetworkHook) on the block just read
                hook.add(m.name, w, kind)
            for table, t, dec, low in tables:
                bad = _core.accumulate_matrix(table, w, kind, int(offs[m.in_layer]), t, dec, n_threads, low)
                if bad >= 0:
                    raise ValueError(f"tensor {m.name} holds a NaN or infinite weight at "
                                     f"[{done + bad // n_in}, {bad % n_in}]")
            done += w.shape[0]
        n_edges += n_out * n_in
    return tables, n_edges


def analyze_sample(source: Any, sample: Optional[int] = 0, *, per_layer: Optional[int] = DEFAULT,
                   layout: Any = DEFAULT, box: str = DEFAULT, direction: str = DEFAULT, threshold: float = DEFAULT,
                   min_edges: int = DEFAULT, decimals: int = DEFAULT, q=DEFAULT, node_dimension: bool = DEFAULT,
                   nfd_threshold: float = DEFAULT, n_threads: Optional[int] = None, revision: Optional[str] = None,
                   label: Optional[str] = None, controls: Any = DEFAULT, stats: bool = DEFAULT,
                   by_layer: bool = DEFAULT, scale_to: Any = None,
                   config: Optional[AnalysisConfig] = None) -> SampleResult:
    """Spectrum of one sampled network (``per_layer=S``) or of the full network (``per_layer=None``).

    ``source`` is anything :func:`~neuromfa_native.io.sources.resolve_source` takes.  The same
    ``sample`` selects the same neurons in every checkpoint of a model (docs/spec.md section
    1.2).  With ``per_layer=None`` the network is streamed one tensor at a time into a dense
    (node x radius) count table (one-hop boxes only): no edge list is ever built.

    Parameters
    ----------
    source : a checkpoint directory or file, hub id, state dict or ``TensorSource``.
    sample : the sample index (ignored for the full network).
    per_layer, layout, box, direction, threshold, min_edges, decimals, q, node_dimension, nfd_threshold :
        the options of :class:`~neuromfa_native.AnalysisConfig` (its defaults, or those of
        ``config``, where not given).
    n_threads : OpenMP threads (``None``: all cores); results do not depend on it.
    revision : hub revision, for hub ids.
    label : the checkpoint's name in the result (default: from the source).
    controls, stats, by_layer :
        null-network controls, rival statistics and the breakdown by layer
        (:class:`~neuromfa_native.AnalysisConfig`; docs/controls.md), in ``result.controls``,
        ``result.weight_stats`` and ``result.by_layer``.
    scale_to : the ``scaled`` control's baseline RMS ``{tensor: rms}`` of the same rows, or
        ``"baseline"`` on the baseline checkpoint itself; :func:`analyze_series` passes it.
    config : an :class:`~neuromfa_native.AnalysisConfig`; keyword options override it.

    Returns
    -------
    SampleResult
        plain picklable data, so the function can run in any ``concurrent.futures`` executor.

    Raises
    ------
    ValueError, TypeError
        a bad option or source, a layout that does not fit, non-finite sampled weights, or a
        network without any box centre.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> r = nm.analyze_sample("examples/pythia-tiny/step0", 0, per_layer=8, n_threads=1)
    >>> r.n_network_nodes, round(r.spectrum.alpha0, 4)
    (264, 1.2494)
    """
    t0 = time.perf_counter()
    cfg = AnalysisConfig.from_options(config, per_layer=per_layer, layout=layout, box=box, direction=direction,
                                      threshold=threshold, min_edges=min_edges, decimals=decimals, q=q,
                                      node_dimension=node_dimension, nfd_threshold=nfd_threshold,
                                      controls=controls, stats=stats, by_layer=by_layer)
    check_controls(cfg.controls, series=scale_to is not None)
    n_threads = check.threads(n_threads)
    tsrc = resolve_source(source, revision=revision)
    label = label or _label(source, tsrc, revision)
    if cfg.per_layer is None:
        return _analyze_full(tsrc, cfg, n_threads, label, t0, scale_to)  # type: ignore[arg-type]  # checked above
    if sample is None:  # only the full network (per_layer=None) takes no sample index
        raise TypeError(f"sample must be an integer for a sampled network (per_layer={cfg.per_layer}), got None")
    return _analyze_sampled(tsrc, int(sample), cfg, n_threads, label, t0, scale_to)


def _analyze_full(tsrc: TensorSource, cfg: AnalysisConfig, n_threads: int, label: str, t0: float,
                  scale_to: Any = None) -> SampleResult:
    """The full network, streamed into dense (node x radius) tables (one-hop boxes)."""
    tsrc_, lay = load_layout(tsrc, cfg.layout)
    nfd_threshold = cfg.nfd_threshold if cfg.node_dimension else None
    hook = None
    if cfg.controls or cfg.stats:  # controls / rival statistics: fed the blocks the stream reads
        from .controls import FullNetworkHook
        hook = FullNetworkHook(lay, cfg.controls, scale_to, cfg.threshold, cfg.decimals, n_threads, stats=cfg.stats)
    tables, n_edges = _stream_full(tsrc_, lay, cfg.threshold, cfg.decimals, nfd_threshold, n_threads, hook)
    try:
        spectrum = analyze_table(tables[0][0], threshold=cfg.threshold, decimals=cfg.decimals,
                                 min_edges=cfg.min_edges, q=cfg.q, n_threads=n_threads, params=box_params(cfg))
    except ValueError as exc:
        raise ValueError(f"{label}, full network: {exc}") from None
    dims = None
    if cfg.node_dimension:
        nfd = _core.table_node_fractal_dimension(tables[1][0], cfg.nfd_threshold, NFD_MIN_DISTANCES, n_threads)
        node = np.arange(lay.n_nodes, dtype=np.int64)
        dim = np.zeros(lay.n_nodes)
        dim[nfd["centre"]] = nfd["dimension"]
        codes = (np.searchsorted(lay.offsets, node, side="right") - 1).astype(np.int32)
        dims = NodeDimensions(node=node, layer=codes, dimension=dim, layer_names=lay.layer_names,
                              threshold=cfg.nfd_threshold)
    extras: dict = {}
    if hook is not None or cfg.by_layer:  # controls / rival statistics / by layer
        from .controls import full_network_extras
        extras = full_network_extras(hook, tables[0][0], lay, cfg, label, n_threads)
    return SampleResult(checkpoint=label, sample=None, spectrum=spectrum, n_network_nodes=lay.n_nodes,
                        n_network_edges=n_edges, seconds=time.perf_counter() - t0, node_dimensions=dims,
                        architecture=lay.architecture, layout=lay.name, **extras)


def _analyze_sampled(tsrc: TensorSource, sample: int, cfg: AnalysisConfig, n_threads: int, label: str,
                     t0: float, scale_to: Any = None) -> SampleResult:
    """One sampled network: its edge list, its spectrum and its nodes' fractal dimensions."""
    variants = None
    if cfg.controls or cfg.stats or cfg.by_layer:  # controls / rival statistics: one read builds every network
        from .controls import SampledVariants
        variants = SampledVariants.build(tsrc, sample, cfg, scale_to, n_threads)
        nin = variants.nin
    else:
        nin = build_nin(tsrc, sample=sample, per_layer=cfg.per_layer, layout=cfg.layout)
    try:
        spectrum = analyze_graph(nin.src, nin.dst, nin.weight, n_threads=n_threads, config=cfg)
    except ValueError as exc:
        raise ValueError(f"{label}, sample {sample}: {exc}") from None
    dims = None
    if cfg.node_dimension:
        nd = node_fractal_dimension(nin.src, nin.weight, threshold=cfg.nfd_threshold, n_threads=n_threads)
        # every node of the network, not only sources: sinks get 0
        all_dim = np.zeros(nin.node_ids.size)
        all_dim[np.searchsorted(nin.node_ids, nd.node)] = nd.dimension
        dims = NodeDimensions(node=nin.node_ids, layer=nin.node_layer, dimension=all_dim,
                              layer_names=nin.layer_names, threshold=cfg.nfd_threshold)
    extras = variants.extras(label, cfg, n_threads) if variants is not None else {}
    return SampleResult(checkpoint=label, sample=sample, spectrum=spectrum, n_network_nodes=nin.n_nodes,
                        n_network_edges=nin.n_edges, seconds=time.perf_counter() - t0, node_dimensions=dims,
                        architecture=nin.architecture, layout=nin.layout, **extras)


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


def analyze(source: Any, *, samples: Union[int, Sequence[int]] = DEFAULT, per_layer: Optional[int] = DEFAULT,
            layout: Any = DEFAULT, box: str = DEFAULT, direction: str = DEFAULT, threshold: float = DEFAULT,
            min_edges: int = DEFAULT, decimals: int = DEFAULT, q=DEFAULT, filter: str = DEFAULT,
            node_dimension: bool = DEFAULT, nfd_threshold: float = DEFAULT, n_threads: Optional[int] = None,
            revision: Optional[str] = None, executor=None, progress: bool = False, controls: Any = DEFAULT,
            stats: bool = DEFAULT, by_layer: bool = DEFAULT, config: Optional[AnalysisConfig] = None) -> Analysis:
    """Spectra of K sampled networks of one checkpoint and their aggregate (mean, spread).

    Parameters
    ----------
    source : a checkpoint directory or file, hub id, state dict or ``TensorSource``.
    samples : K (samples 0..K-1) or explicit sample indices; ``per_layer=None`` analyses the
        full network once.
    per_layer, layout, box, direction, threshold, min_edges, decimals, q, filter, node_dimension, nfd_threshold :
        the options of :class:`~neuromfa_native.AnalysisConfig` (its defaults, or those of
        ``config``, where not given); ``filter`` is applied to the aggregate.
    n_threads : OpenMP threads per sample (``None``: all cores).
    revision : hub revision, for hub ids.
    executor : any ``concurrent.futures.Executor``: the samples run as separate tasks; the
        source must then be a path or hub id (tasks carry paths, not tensors).
    progress : show a progress bar on stderr.
    controls, stats, by_layer : null-network controls (``"gaussian"``, ``"shuffle"``), rival
        statistics and the breakdown by layer of every sample (docs/controls.md).
    config : an :class:`~neuromfa_native.AnalysisConfig`; keyword options override it.

    Returns
    -------
    Analysis

    Raises
    ------
    ValueError, TypeError
        as :func:`analyze_sample`; ``TypeError`` for an executor with an in-memory source.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> a = nm.analyze("examples/pythia-tiny/step0", samples=2, per_layer=8, n_threads=1)
    >>> len(a.results), a.results[0].sample
    (2, 0)
    """
    cfg = AnalysisConfig.from_options(config, samples=samples, per_layer=per_layer, layout=layout, box=box,
                                      direction=direction, threshold=threshold, min_edges=min_edges,
                                      decimals=decimals, q=q, filter=filter, node_dimension=node_dimension,
                                      nfd_threshold=nfd_threshold, controls=controls, stats=stats,
                                      by_layer=by_layer)
    check_controls(cfg.controls, series=False)
    ids = list(cfg.sample_ids)
    bar = progress_bar(len(ids), str(source), "sample", progress)
    if executor is not None:
        if not isinstance(source, (str, os.PathLike)):
            raise TypeError("with an executor, source must be a path or hub id (tasks carry paths, not tensors)")
        futures = [executor.submit(analyze_sample, os.fspath(source), k, n_threads=n_threads, revision=revision,
                                   config=cfg) for k in ids]
        results = [_tick(bar, f.result()) for f in futures]
    else:
        tsrc = resolve_source(source, revision=revision)
        label = _label(source, tsrc, revision)
        # a source read by range: the rows of all K samples in one batch (their union, each row once)
        prefetch_samples(tsrc, ids, cfg.per_layer, cfg.layout)
        results = [_tick(bar, analyze_sample(tsrc, k, n_threads=n_threads, label=label, config=cfg)) for k in ids]
    if bar is not None:
        bar.close()
    params = dict(per_layer=cfg.per_layer, layout=cfg.layout_name, box=cfg.box, direction=cfg.direction,
                  threshold=cfg.threshold, min_edges=cfg.min_edges, decimals=cfg.decimals, samples=ids,
                  filter=cfg.filter)
    return Analysis(checkpoint=results[0].checkpoint, results=tuple(results), params=params, filter=cfg.filter)


def _tick(bar, result):
    if bar is not None:
        bar.update(1)
    return result
