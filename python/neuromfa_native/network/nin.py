"""Neuron interaction networks (NIN) of a model: sampled (docs/spec.md section 1.2) or full
(docs/spec.md section 1.1).

- :func:`build_nin` reads a checkpoint (any source :func:`~.sources.resolve_source` takes),
  picks its layer map (:mod:`.architectures`) and returns a :class:`NIN` edge list. A sampled
  network reads only the sampled rows and columns of each weight matrix.
- :func:`iter_full_matrices` streams the full network one matrix at a time.
- :func:`describe` reports architecture, tensors, node and edge counts without reading weights.
- :func:`fingerprint` / :func:`find_identical` detect checkpoints with identical weight bytes
  (docs/spec.md section 7: some published checkpoints are byte-identical across steps).

Edge order: matrices in layout order; inside a matrix, input-neuron-major (for each sampled
input ``i``, for each sampled output ``j``), as the published scripts; zero weights give no
edge. Weights keep the checkpoint's precision: float16 stays float16, bfloat16 and float32
become float32 (exact), float64 stays float64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from .. import _validation as check
from .._results import fields_equal, readonly
from .architectures import Layout, MatrixSpec, get_layout
from .architectures.decoder import expert_summary
from .parts import with_parts
from ..io.base import TensorSource
from ..io.sources import resolve_source

__all__ = [
    "NIN",
    "FullMatrix",
    "build_nin",
    "describe",
    "prefetch_samples",
    "iter_full_matrices",
    "load_layout",
]

_FLOAT_OUT: dict[str, np.dtype] = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(np.float32),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


@dataclass(frozen=True, eq=False)
class NIN:
    """A neuron interaction network as an edge list.

    Attributes
    ----------
    src, dst : int64 arrays, global node ids of each edge (input neuron -> output neuron).
    weight : the edge weights (float16, float32 or float64, the checkpoint's precision).
    node_ids : int64, the network's nodes in ascending order (sampled nodes, or all).
    node_layer : int32 code of each node's layer, an index into ``layer_names``.
    layer_names : names of all node layers of the layout, in id order.
    architecture, layout : what built it (``layout`` is the layout actually used).
    sample, per_layer : sample index and neurons per layer; both None for the full network.
    """

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    node_ids: np.ndarray
    node_layer: np.ndarray
    layer_names: tuple[str, ...]
    architecture: str
    layout: str
    sample: int | None
    per_layer: int | None

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        n = len(self.src)
        if len(self.dst) != n or len(self.weight) != n:
            raise ValueError(
                f"src, dst and weight must have one length, got {len(self.src)}, {len(self.dst)}, {len(self.weight)}"
            )
        if len(self.node_layer) != len(self.node_ids):
            raise ValueError("node_layer must have one entry per node id")
        if self.weight.dtype not in (np.float16, np.float32, np.float64):
            raise TypeError(f"weight must be float16/32/64, got {self.weight.dtype}")
        for name, dt in (("src", np.int64), ("dst", np.int64), ("node_ids", np.int64), ("node_layer", np.int32),
                         ("weight", self.weight.dtype)):
            a = getattr(self, name)
            if isinstance(a, np.ndarray) and not a.flags.writeable:
                a = np.array(a, dtype=dt)  # own the data, not a view of someone's read-only buffer
            object.__setattr__(self, name, readonly(a, dt))
        object.__setattr__(self, "layer_names", tuple(self.layer_names))

    @property
    def n_nodes(self) -> int:
        return int(len(self.node_ids))

    @property
    def n_edges(self) -> int:
        return int(len(self.src))

    def edge_array(self) -> np.ndarray:
        """``(n_edges, 3)`` float64 rows ``[src, dst, weight]``, the published edge-list format."""
        return np.column_stack([self.src.astype(np.float64), self.dst.astype(np.float64), self.weight.astype(np.float64)])

    def __repr__(self) -> str:
        what = "full" if self.per_layer is None else f"sample={self.sample}, per_layer={self.per_layer}"
        return (
            f"NIN({self.architecture}/{self.layout}, {what}, {self.n_nodes} nodes, {self.n_edges} edges, "
            f"weight {self.weight.dtype})"
        )


class FullMatrix(NamedTuple):
    """One matrix of the full network, as yielded by :func:`iter_full_matrices`.

    ``weight`` is in torch ``(out, in)`` orientation (a read-only, possibly memory-mapped or
    transposed view); edge ``in_ids[i] -> out_ids[j]`` carries ``weight[j, i]`` when nonzero.
    """

    name: str
    weight: np.ndarray
    in_ids: np.ndarray
    out_ids: np.ndarray
    synthetic: bool


# ----------------------------------------------------------------------------- helpers
def load_layout(
    source: Any,
    layout: str | Sequence[Sequence[Any]] = "reference",
    *,
    revision: str | None = None,
    architecture: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> tuple[TensorSource, Layout]:
    """Resolve ``source`` and its layout (checked against the tensors); reads no weights.  The
    source returned answers for every matrix of the layout by its name, also for a matrix that is
    part of a fused tensor (:mod:`.parts`)."""
    src = resolve_source(source, revision=revision, config=config)
    lay = get_layout(src.config, src.tensor_names(), src.shape, layout, architecture)
    return with_parts(src, lay), lay


def weight_dtype(src: TensorSource, lay: Layout) -> np.dtype:
    out: list[np.dtype] = []
    for name in lay.tensor_names:
        dt = src.dtype(name)
        if dt not in _FLOAT_OUT:
            raise ValueError(f"tensor {name!r} has dtype {dt}; weights must be float16, bfloat16, float32 or float64")
        out.append(_FLOAT_OUT[dt])
    return np.result_type(*out) if out else np.dtype(np.float32)


def check_finite(block: np.ndarray, name: str, where: str) -> None:
    if not np.isfinite(block).all():
        bad = int(np.size(block) - np.count_nonzero(np.isfinite(block)))
        raise ValueError(f"tensor {name!r} has {bad} non-finite weights (NaN or inf) in {where}")


def block_edges(block_out_in: np.ndarray, in_ids: np.ndarray, out_ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """Edges of a ``(out, in)`` block, input-major, zero weights dropped."""
    wt = block_out_in.T
    ii, jj = np.nonzero(wt)
    return in_ids[ii], out_ids[jj], wt[ii, jj]


def _read_block(src: TensorSource, m: MatrixSpec, out_idx: np.ndarray, in_idx: np.ndarray) -> np.ndarray:
    if m.orientation == "conv1d":
        return src.get_slice(m.name, in_idx, out_idx).T
    return src.get_slice(m.name, out_idx, in_idx)


def _check_per_layer(per_layer: Any) -> None:
    check.positive_int_or_none(per_layer, "per_layer", "the full network")


# ----------------------------------------------------------------------------- public API
def build_nin(
    source: Any,
    *,
    sample: int = 0,
    per_layer: int | None = 32,
    layout: str | Sequence[Sequence[Any]] = "reference",
    revision: str | None = None,
    architecture: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> NIN:
    """Build the neuron interaction network of a checkpoint.

    Parameters
    ----------
    source:
        a model directory, ``.safetensors`` file, hub id ``"org/name@rev"``, torch module or
        state dict (see :func:`~.sources.resolve_source`).
    sample:
        sample index ``k``: the draws use a generator seeded with ``k`` (docs/spec.md section 1.2); the same
        ``k`` picks the same neurons in every checkpoint of a model.
    per_layer:
        neurons per node layer ``S`` (MLP hidden layers get ``2S``); ``None`` builds the full
        network (``sample`` is then ignored and recorded as None).
    layout:
        ``"reference"`` (GPT-NeoX: the published layout; other architectures: their
        ``"default"`` layout), ``"heads"`` (GPT-NeoX true per-head QKV rows), ``"default"``,
        ``"per_expert"`` (mixture-of-experts models: each expert's hidden neurons drawn on their
        own; the default pools them), or a custom layer map
        ``[(tensor, input layer, output layer[, "conv1d"]), ...]``.
    revision:
        hub revision, for hub ids.
    architecture, config:
        override the detected architecture / the source's config (e.g. for a bare
        ``.safetensors`` file without config.json).

    Returns
    -------
    NIN
        the edge arrays (``src``, ``dst``, ``weight``), the node ids and layers, and what was built.

    Raises
    ------
    ValueError, TypeError
        a source that cannot be read, a layout that does not fit it, non-finite sampled weights,
        or a bad option (each naming the problem).

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> net = nm.build_nin("examples/pythia-tiny/step0", sample=0, per_layer=8)
    >>> net.architecture, net.src.size == net.dst.size == net.weight.size
    ('gpt_neox', True)
    """
    _check_per_layer(per_layer)
    src, lay = load_layout(source, layout, revision=revision, architecture=architecture, config=config)
    wdt = weight_dtype(src, lay)
    offs = lay.offsets
    if per_layer is None:
        return _build_full(src, lay, wdt)
    samples = lay.sample(int(per_layer), sample)
    if hasattr(src, "prefetch_rows"):  # range readers: every tensor's rows in one parallel batch
        src.prefetch_rows([(m.name, samples[m.in_layer] if m.orientation == "conv1d" else samples[m.out_layer])
                           for m in lay.matrices if not m.is_synthetic])
    parts: list[tuple[np.ndarray, ...]] = []
    for m in lay.matrices:
        in_idx, out_idx = samples[m.in_layer], samples[m.out_layer]
        if m.is_synthetic:
            block = m.synthetic(out_idx, in_idx).astype(wdt)  # type: ignore[misc]  # synthetic is set for every is_synthetic block
        else:
            block = _read_block(src, m, out_idx, in_idx)
            check_finite(block, m.name, "the sampled rows/columns")
            block = block.astype(wdt, copy=False)
        parts.append(block_edges(block, offs[m.in_layer] + in_idx, offs[m.out_layer] + out_idx))
    node_ids = np.sort(np.concatenate([offs[k] + s for k, s in enumerate(samples)]))
    return make_nin(parts, node_ids, lay, wdt, int(sample), int(per_layer))


def prefetch_samples(src: Any, samples: Sequence[int], per_layer: int | None,
                     layout: str | Sequence[Sequence[Any]] = "reference") -> bool:
    """Fetch, in one batch, the rows every one of ``samples`` will read, for a source read by
    range from a server (``src.batch_reads``): the union of the samples' rows, planned per
    tensor by the link's cost model, instead of one batch per sample. :func:`build_nin` then
    takes each sample's rows from memory. Returns whether anything was prefetched (not for
    local sources, a full network, or a single sample)."""
    if per_layer is None or len(samples) < 2 or not getattr(src, "batch_reads", False):
        return False
    src, lay = load_layout(src, layout)
    draws = [lay.sample(int(per_layer), int(s)) for s in samples]
    wants = []
    for m in lay.matrices:
        if not m.is_synthetic:
            layer = m.in_layer if m.orientation == "conv1d" else m.out_layer
            wants.append((m.name, np.unique(np.concatenate([d[layer] for d in draws]))))
    src.prefetch_rows(wants)
    return True


def make_nin(parts: list, node_ids: np.ndarray, lay: Layout, wdt: np.dtype, sample: int | None, per_layer: int | None) -> NIN:
    node_layer = (np.searchsorted(lay.offsets, node_ids, side="right") - 1).astype(np.int32)
    cat = (lambda k, dt: np.concatenate([p[k] for p in parts]).astype(dt, copy=False)) if parts else (
        lambda k, dt: np.zeros(0, dt)
    )
    return NIN(
        src=cat(0, np.int64),
        dst=cat(1, np.int64),
        weight=cat(2, wdt),
        node_ids=node_ids.astype(np.int64),
        node_layer=node_layer,
        layer_names=lay.layer_names,
        architecture=lay.architecture,
        layout=lay.name,
        sample=sample,
        per_layer=per_layer,
    )


def _iter_full(src: TensorSource, lay: Layout, wdt: np.dtype, include_synthetic: bool) -> Iterator[FullMatrix]:
    offs = lay.offsets
    for m in lay.matrices:
        nin = lay.node_layers[m.in_layer].size
        nout = lay.node_layers[m.out_layer].size
        in_ids = np.arange(offs[m.in_layer], offs[m.in_layer] + nin, dtype=np.int64)
        out_ids = np.arange(offs[m.out_layer], offs[m.out_layer] + nout, dtype=np.int64)
        if m.is_synthetic:
            if not include_synthetic:
                continue
            w = readonly(m.synthetic(np.arange(nout), np.arange(nin)).astype(wdt))  # type: ignore[misc]  # synthetic is set for every is_synthetic block
        else:
            w = src.get(m.name)
            w = w.T if m.orientation == "conv1d" else w
            check_finite(w, m.name, "the tensor")
        yield FullMatrix(m.name, w, in_ids, out_ids, m.is_synthetic)


def _build_full(src: TensorSource, lay: Layout, wdt: np.dtype) -> NIN:
    parts = [block_edges(fm.weight.astype(wdt, copy=False), fm.in_ids, fm.out_ids) for fm in _iter_full(src, lay, wdt, True)]
    return make_nin(parts, np.arange(lay.n_nodes, dtype=np.int64), lay, wdt, None, None)


def iter_full_matrices(
    source: Any,
    layout: str | Sequence[Sequence[Any]] = "reference",
    *,
    include_synthetic: bool = True,
    revision: str | None = None,
    architecture: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> Iterator[FullMatrix]:
    """Stream the full network one matrix at a time, in layout order.

    Yields :class:`FullMatrix` ``(name, weight, in_ids, out_ids, synthetic)``: ``weight`` in
    torch ``(out, in)`` orientation with the stored precision (float16 stays float16; a
    bfloat16 tensor is widened to float32; synthetic blocks come as 0/1 in the network's
    weight dtype), ``in_ids``/``out_ids`` the global node ids of its columns/rows. Real
    tensors are memory-mapped views where the source allows, so only one tensor needs to be
    in memory at a time. Non-finite weights raise ``ValueError`` naming the tensor.

    Parameters
    ----------
    source:
        a checkpoint (anything :func:`~.sources.resolve_source` takes).
    layout:
        as for :func:`build_nin`.
    include_synthetic:
        also yield the synthetic 0/1 blocks (attention wiring).
    revision, architecture, config:
        as for :func:`build_nin`.

    Returns
    -------
    iterator of FullMatrix
        one per matrix of the layout, in layout order.

    Raises
    ------
    ValueError, TypeError
        a source that cannot be read, a layout that does not fit it, or a non-finite weight.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> m = next(nm.iter_full_matrices("examples/pythia-tiny/step0"))
    >>> m.name, m.weight.shape, str(m.weight.dtype)
    ('gpt_neox.layers.0.attention.query_key_value.weight', (192, 64), 'float16')
    """
    src, lay = load_layout(source, layout, revision=revision, architecture=architecture, config=config)
    yield from _iter_full(src, lay, weight_dtype(src, lay), include_synthetic)


def describe(
    source: Any,
    *,
    per_layer: int | None = 32,
    layout: str | Sequence[Sequence[Any]] = "reference",
    revision: str | None = None,
    architecture: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Architecture, tensors used, node layers and network sizes, without reading weights.

    Edge counts assume no weight is exactly zero (zero weights give no edge); synthetic
    blocks are counted exactly, for the sampled network with sample 0's draw.

    Parameters
    ----------
    source, per_layer, layout, revision, architecture, config:
        as for :func:`build_nin`.

    Returns
    -------
    dict
        ``source``, ``architecture``, ``layout``, ``weight_dtype``, ``tensors`` (one entry per
        matrix; a matrix read from part of a fused tensor names it as ``stored``), ``node_layers``,
        the node and edge counts of the ``sampled`` and the ``full`` network, and ``experts``
        (None without mixture-of-experts blocks; else blocks, experts per block, hidden neurons
        per expert, the sampling, and the expert nodes of the full and the sampled network).

    Raises
    ------
    ValueError, TypeError
        a source that cannot be read or a layout that does not fit it.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> d = nm.describe("examples/pythia-tiny/step0", per_layer=32)
    >>> d["architecture"], d["sampled"]["nodes"], d["full"]["nodes"]
    ('gpt_neox', 1056, 2624)
    """
    _check_per_layer(per_layer)
    src, lay = load_layout(source, layout, revision=revision, architecture=architecture, config=config)
    tensors = [
        {
            "name": m.name,
            "shape": tuple(src.shape(m.name)),
            "dtype": src.dtype(m.name),
            "orientation": m.orientation,
            "input_layer": lay.node_layers[m.in_layer].name,
            "output_layer": lay.node_layers[m.out_layer].name,
            **({} if m.part is None else {"stored": m.part.tensor, "stored_shape": m.part.shape}),
        }
        for m in lay.matrices
        if not m.is_synthetic
    ]
    sampled = None
    samples = None
    if per_layer is not None:
        samples = lay.sample(int(per_layer), 0)
        edges = 0
        for m in lay.matrices:
            a, b = samples[m.in_layer], samples[m.out_layer]
            edges += int(np.count_nonzero(m.synthetic(b, a))) if m.is_synthetic else len(a) * len(b)  # type: ignore[misc]  # synthetic is set for every is_synthetic block
        sampled = {"per_layer": int(per_layer), "nodes": int(sum(len(s) for s in samples)), "edges": edges}
    return {
        "source": src.description,
        "architecture": lay.architecture,
        "layout": lay.name,
        "weight_dtype": str(weight_dtype(src, lay)),
        "n_tensors": len(tensors),
        "n_synthetic_blocks": sum(m.is_synthetic for m in lay.matrices),
        "tensors": tensors,
        "node_layers": [
            {
                "name": nl.name,
                "size": nl.size,
                "offset": int(lay.offsets[k]),
                "sampled": None if samples is None else int(len(samples[k])),
            }
            for k, nl in enumerate(lay.node_layers)
        ],
        "sampled": sampled,
        "full": {"nodes": lay.n_nodes, "edges": lay.full_edge_count()},
        "experts": expert_summary(lay, samples),
    }
