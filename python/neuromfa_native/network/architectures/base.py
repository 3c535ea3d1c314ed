"""What every architecture family shares: the :class:`Layout` structures, the
:class:`Family` record, and the helpers the families' builders use.

A :class:`Layout` is an ordered list of node layers (each a run of consecutive global node
ids) and an ordered list of matrices between them. Node ids are numbered by the node layers'
order: layer ``k`` holds ids ``offset_k ... offset_k + size_k - 1`` with
``offset_k = sum(size_0 ... size_{k-1})``. For GPT-NeoX in the reference layout this is
exactly the published ``x``/``y`` offset numbering of docs/spec.md section 1.1.

Each matrix is a real weight tensor (orientation ``"torch"``: stored ``(out, in)``; or
``"conv1d"``: GPT-2's Conv1D, stored ``(in, out)``) or a *synthetic* 0/1 block that stands for
an operation without weights (attention mixing, the gated MLP's product); synthetic edges
have weight 1, so distance 1, and the distance filter of docs/spec.md section 2 drops them.

Sampling (docs/spec.md section 1.2): every node layer names a *draw*; draws are made in the
order the node layers first name them, each ``numpy.random.choice(numpy.arange(n), factor * S,
replace=False)`` on a generator seeded with the sample index. A node layer takes its sampled
neurons from its draw, either as they are or mapped (the QKV rows that feed a sampled context
neuron).
"""
from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, overload

import numpy as np

from ... import _validation as check

__all__ = ["Family", "Layout", "MatrixSpec", "NodeLayer", "RowPart"]

#: A builder: ``(config, tensor names, shape of a tensor, layout name) -> Layout``.
Builder = Callable[[Mapping[str, Any], "set[str]", Callable[[str], tuple], str], "Layout"]


@dataclass(frozen=True)
class Family:
    """One architecture family: everything the registry needs to detect and build it.

    Attributes
    ----------
    name : the family (the module's name), e.g. ``"llama"``.
    model_types : the ``config["model_type"]`` values it serves, e.g. ``("llama", "mistral")``.
    class_prefixes : ``config["architectures"]`` class-name prefix -> model type, e.g.
        ``{"Mistral": "mistral"}`` (``MistralForCausalLM``).
    tensor_prefixes : block prefixes with ``{b}`` for the block index, tried in order, e.g.
        ``("model.layers.{b}.", "layers.{b}.")``.
    probe : a tensor of block ``b`` after the prefix that identifies the family by its name.
    layouts : the layouts it builds; the first is the one ``layout="reference"`` gets when the
        family has no published reference layout.
    layout_for : requested layout name (``"reference"``, ``"heads"``, ``"default"``, ...) -> the
        layout built.
    build : the builder (see :data:`Builder`).
    config_keys : the config fields that shape its layouts (sizes, heads, experts, fused-tensor
        variants), e.g. ``("hidden_size", "num_attention_heads", ...)``: two checkpoints that agree
        on them (and on their tensors' shapes) get the same layout.
    absent : block tensors (after the prefix) whose presence rules the family out when it is
        detected from tensor names alone (Apertus: ``mlp.gate_proj.weight``).
    """

    name: str
    model_types: tuple
    class_prefixes: Mapping[str, str]
    tensor_prefixes: tuple
    probe: str
    layouts: tuple
    layout_for: Mapping[str, str]
    build: Callable = field(compare=False)
    config_keys: tuple = ()
    absent: tuple = ()

    def __repr__(self) -> str:
        return (f"<Family {self.name}: model types {', '.join(self.model_types)}; layouts {', '.join(self.layouts)}; "
                f"probe {self.probe}>")


@dataclass(frozen=True)
class NodeLayer:
    """A run of consecutive node ids: ``size`` neurons named ``name``.

    Sampling: the neurons come from draw ``draw`` (``draw_factor * S`` of ``draw_size``);
    ``expand`` maps the drawn indices to this layer's node indices (None: as drawn).
    """

    name: str
    size: int
    draw: str
    draw_size: int
    draw_factor: int = 1
    expand: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RowPart:
    """Where a matrix sits inside a larger stored tensor: some rows of the tensor's 2-d row view.

    The stored tensor ``tensor`` has shape ``shape`` (2-d, or a 3-d stack of experts); its row
    view is ``(prod(shape[:-1]), shape[-1])`` (C order: expert ``e``'s row ``r`` of an
    ``(E, R, C)`` stack is view row ``e * R + r``). Row ``k`` of the matrix is view row
    ``start + (k // run) * stride + k % run``: runs of ``run`` consecutive rows, ``stride`` apart
    (one run for a contiguous block such as Phi-3's q rows; ``run = head_dim``,
    ``stride = 3 * head_dim`` for BLOOM's per-head interleave). ``label`` names the part
    (``"q"``, ``"gate"``, ``"expert3.up"``).
    """

    tensor: str
    shape: tuple
    start: int
    run: int
    stride: int
    label: str

    @property
    def view_shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the stored tensor's row view."""
        return int(np.prod(self.shape[:-1], dtype=np.int64)), int(self.shape[-1])

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """View rows of the matrix's rows ``idx`` (int64)."""
        idx = np.asarray(idx, dtype=np.int64)
        return self.start + (idx // self.run) * self.stride + idx % self.run


def row_part(tensor: str, shape: Sequence[int], label: str, start: int, run: int, stride: int | None = None) -> RowPart:
    """A :class:`RowPart`; ``stride`` defaults to ``run`` (one contiguous block)."""
    return RowPart(tensor, tuple(int(s) for s in shape), int(start), int(run), int(run if stride is None else stride),
                   label)


@dataclass(frozen=True)
class MatrixSpec:
    """One matrix of the NIN: edges from node layer ``in_layer`` to ``out_layer``.

    ``orientation`` is ``"torch"`` (tensor stored ``(out, in)``), ``"conv1d"`` (stored
    ``(in, out)``) or ``"synthetic"`` (no tensor: ``synthetic(out_idx, in_idx)`` gives the
    0/1 block as bool, ``nnz`` its number of ones in the full network). ``name`` is the tensor name
    (or a ``synthetic:`` label). A matrix that is part of a fused stored tensor (Phi-3's
    ``qkv_proj``, an expert of a 3-d stack) has ``part`` set (torch orientation only): ``name``
    is then the matrix's own name (the per-expert tensor name of the unfused checkpoint, or
    ``tensor[label]``), read through :class:`RowPart` from ``part.tensor``.
    """

    name: str
    in_layer: int
    out_layer: int
    orientation: str
    synthetic: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    nnz: int | None = None  # ones of the full synthetic block
    part: RowPart | None = None

    @property
    def is_synthetic(self) -> bool:
        return self.orientation == "synthetic"

    @property
    def tensor(self) -> str:
        """The stored tensor the matrix is read from."""
        return self.name if self.part is None else self.part.tensor


@dataclass(frozen=True)
class Layout:
    """A model's layer map: node layers (in id order) and matrices (in edge-list order)."""

    architecture: str
    name: str
    node_layers: tuple[NodeLayer, ...]
    matrices: tuple[MatrixSpec, ...]
    config: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        return (f"<Layout {self.architecture}/{self.name}: {len(self.node_layers)} node layers, "
                f"{len(self.matrices)} matrices, {self.n_nodes:,} nodes>")

    @functools.cached_property
    def offsets(self) -> np.ndarray:
        """First global node id of every node layer (int64), plus the total at the end."""
        sizes = np.array([nl.size for nl in self.node_layers], dtype=np.int64)
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    @property
    def n_nodes(self) -> int:
        return int(self.offsets[-1])

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(nl.name for nl in self.node_layers)

    @property
    def tensor_names(self) -> tuple[str, ...]:
        """The stored weight tensors used, in order of first use (a fused tensor once)."""
        return tuple(dict.fromkeys(m.tensor for m in self.matrices if not m.is_synthetic))

    @property
    def parts(self) -> dict[str, RowPart]:
        """Matrix name -> :class:`RowPart` of every matrix read from part of a stored tensor."""
        return {m.name: m.part for m in self.matrices if m.part is not None}

    def expected_shape(self, m: MatrixSpec) -> tuple[int, int]:
        """Stored shape that tensor ``m`` must have."""
        n_in = self.node_layers[m.in_layer].size
        n_out = self.node_layers[m.out_layer].size
        return (n_in, n_out) if m.orientation == "conv1d" else (n_out, n_in)

    def full_edge_count(self) -> int:
        """Edges of the full network if no real weight is exactly zero."""
        total = 0
        for m in self.matrices:
            if m.is_synthetic:
                total += int(m.nnz)  # type: ignore[arg-type]  # set for every synthetic block
            else:
                total += self.node_layers[m.in_layer].size * self.node_layers[m.out_layer].size
        return total

    def sample(self, per_layer: int, sample: int) -> list[np.ndarray]:
        """Sampled node indices (within each node layer) for ``per_layer`` = S, index ``sample``.

        Uses a private ``numpy.random.RandomState(sample)``: identical draws to the published
        ``numpy.random.seed(sample); numpy.random.choice(...)``, without touching numpy's
        global generator.
        """
        per_layer = check.positive_int(per_layer, "per_layer")
        if not check.is_int(sample) or not 0 <= sample < 2**32:
            raise ValueError(f"sample must be an integer in [0, 2**32), got {sample!r}")
        rs = np.random.RandomState(int(sample))
        draws: dict[str, np.ndarray] = {}
        out: list[np.ndarray] = []
        for nl in self.node_layers:
            if nl.draw not in draws:
                n = nl.draw_factor * int(per_layer)
                if n > nl.draw_size:
                    raise ValueError(
                        f"per_layer={per_layer} needs {n} neurons of layer {nl.name!r}, "
                        f"which has only {nl.draw_size}"
                    )
                draws[nl.draw] = rs.choice(np.arange(nl.draw_size), n, replace=False)
            idx = draws[nl.draw]
            if nl.expand is not None:
                idx = unique_in_order(nl.expand(idx))
            out.append(np.asarray(idx, dtype=np.int64))
        return out


def unique_in_order(idx: np.ndarray) -> np.ndarray:
    idx = np.asarray(idx, dtype=np.int64)
    _, first = np.unique(idx, return_index=True)
    if len(first) == len(idx):
        return idx
    return idx[np.sort(first)]


def fused_qkv_network(nb: int, prefix: str, h: int, inter: int, qkv_map: Callable, tensors: tuple,
                       orientation: str, syn: Callable, syn_nnz: int) -> tuple[tuple, tuple]:
    """Node layers and matrices of a stack of blocks with a fused QKV matrix (GPT-NeoX, GPT-2).

    Per block: input, QKV outputs (sampled through the context set), context, attention output,
    MLP hidden (2S); then the output layer.  ``tensors`` names the block's (qkv, attention
    output, MLP up, MLP down) weights after ``prefix.format(b=b)``; ``orientation`` is how they
    are stored; the synthetic QKV -> context block uses ``syn`` with ``syn_nnz`` ones."""
    qkv, dense, up, down = tensors
    nls: list[NodeLayer] = []
    mats: list[MatrixSpec] = []
    for b in range(nb):
        p = prefix.format(b=b)
        base = len(nls)
        nls += [
            NodeLayer(f"block{b}.input", h, f"block{b}.input", h),
            NodeLayer(f"block{b}.qkv", 3 * h, f"block{b}.context", h, 1, qkv_map),
            NodeLayer(f"block{b}.context", h, f"block{b}.context", h),
            NodeLayer(f"block{b}.attn_out", h, f"block{b}.attn_out", h),
            NodeLayer(f"block{b}.mlp_hidden", inter, f"block{b}.mlp_hidden", inter, 2),
        ]
        mats += [
            MatrixSpec(p + qkv, base, base + 1, orientation),
            MatrixSpec(f"synthetic:block{b}.attention", base + 1, base + 2, "synthetic", syn, syn_nnz),
            MatrixSpec(p + dense, base + 2, base + 3, orientation),
            MatrixSpec(p + up, base + 3, base + 4, orientation),
            MatrixSpec(p + down, base + 4, base + 5, orientation),
        ]
    nls.append(NodeLayer("output", h, "output", h))
    return tuple(nls), tuple(mats)


def offsets_map(idx: np.ndarray, offsets: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([idx + o for o in offsets])


def kv_group_map(idx: np.ndarray, head_dim: int, group: int) -> np.ndarray:
    return (idx // head_dim // group) * head_dim + idx % head_dim


def syn_head_all(o: np.ndarray, i: np.ndarray, head_dim: int, group: int) -> np.ndarray:
    # q (group 1) or k rows of a head reach every context neuron of the heads they serve
    o, i = np.asarray(o)[:, None], np.asarray(i)[None, :]
    return (i // head_dim) == (o // head_dim) // group


def syn_head_diag(o: np.ndarray, i: np.ndarray, head_dim: int, group: int) -> np.ndarray:
    # v row d of a kv head reaches context neuron d of every head it serves
    o, i = np.asarray(o)[:, None], np.asarray(i)[None, :]
    return ((i // head_dim) == (o // head_dim) // group) & ((i % head_dim) == (o % head_dim))


def syn_identity(o: np.ndarray, i: np.ndarray) -> np.ndarray:
    return np.asarray(o)[:, None] == np.asarray(i)[None, :]


def first_prefix(names: set[str], candidates: Sequence[str], probe: str) -> str | None:
    for p in candidates:
        if p.format(b=0) + probe in names:
            return p
    return None


@overload
def cfg_int(config: Mapping[str, Any], keys: Sequence[str], default: int) -> int: ...
@overload
def cfg_int(config: Mapping[str, Any], keys: Sequence[str], default: None = None) -> int | None: ...


def cfg_int(config: Mapping[str, Any], keys: Sequence[str], default: int | None = None) -> int | None:
    for k in keys:
        v = config.get(k)
        if v is not None:
            return check.positive_int(v, f"config[{k!r}]")
    return default


def count_blocks(names: set[str], prefix: str, probe: str) -> int:
    pat = re.compile(re.escape(prefix).replace(r"\{b\}", r"(\d+)") + re.escape(probe) + "$")
    idx = [int(m.group(1)) for n in names if (m := pat.match(n))]
    return max(idx) + 1 if idx else 0


def n_blocks(config: Mapping[str, Any], keys: Sequence[str], names: set[str], prefix: str, probe: str) -> int:
    """The number of blocks: from the config (the first of ``keys`` it has), else counted from the
    tensor names ``prefix.format(b=...) + probe``; a model with none names the tensor it lacks,
    and a config that names fewer blocks than the checkpoint holds is an error (more: the
    first missing block's tensor is named)."""
    found = count_blocks(names, prefix, probe)
    nb = cfg_int(config, keys) or found
    if nb == 0:
        missing_tensor(prefix.format(b=0) + probe, names)
    if found > nb:  # the network comes from both: they must agree before anything is built
        key = next((k for k in keys if config.get(k) is not None), keys[0])
        raise ValueError(f"config[{key!r}] = {nb}, but the checkpoint holds {found} blocks "
                         f"({prefix.format(b=found - 1) + probe} exists): the config does not describe these "
                         "weights (a config with fewer layers would silently drop blocks)")
    if prefix.format(b=nb - 1) + probe not in names:
        # a config with more blocks than the tensors: named now, not after laying out every block
        missing_tensor(prefix.format(b=found) + probe, names)
    return nb


def need(value: int | None, key: str, arch: str, layout: str) -> int:
    if value is None:
        raise ValueError(
            f"the {arch} layout {layout!r} needs config[{key!r}], which is missing: load the model "
            "with its config.json or pass config=..."
        )
    return value


def hidden_and_heads(config: Mapping[str, Any], hidden_keys: Sequence[str], head_keys: Sequence[str], arch: str,
                     layout: str) -> tuple[int, int, int]:
    """``(hidden size, attention heads, head size)`` from the first of ``hidden_keys`` and of
    ``head_keys`` the config has (each required, named by its first key); the hidden size must
    be a multiple of the heads."""
    h = need(cfg_int(config, hidden_keys), hidden_keys[0], arch, layout)
    nh = need(cfg_int(config, head_keys), head_keys[0], arch, layout)
    if h % nh:
        raise ValueError(f"{hidden_keys[0]} {h} is not a multiple of {head_keys[0]} {nh}")
    return h, nh, h // nh


def missing_tensor(name: str, names: set[str] | Sequence[str]) -> None:
    close = difflib.get_close_matches(name, list(names), n=5, cutoff=0.5)
    hint = f"; close names: {close}" if close else ""
    raise ValueError(f"missing tensor {name!r} in the source{hint}")


def attention_nodes(
    b: int, h: int, nh: int, nkv: int, hd: int
) -> tuple[list[NodeLayer], Callable, Callable, Callable, int, int, int]:
    """Node layers q, k, v, context of one block (Llama/BERT style separate projections)."""
    group = nh // nkv
    ctx = nh * hd
    kv_map = functools.partial(kv_group_map, head_dim=hd, group=group)
    nls = [
        NodeLayer(f"block{b}.q", ctx, f"block{b}.context", ctx),
        NodeLayer(f"block{b}.k", nkv * hd, f"block{b}.context", ctx, 1, kv_map),
        NodeLayer(f"block{b}.v", nkv * hd, f"block{b}.context", ctx, 1, kv_map),
        NodeLayer(f"block{b}.context", ctx, f"block{b}.context", ctx),
    ]
    syn_q = functools.partial(syn_head_all, head_dim=hd, group=1)
    syn_k = functools.partial(syn_head_all, head_dim=hd, group=group)
    syn_v = functools.partial(syn_head_diag, head_dim=hd, group=group)
    # nnz: q and k: every context neuron sees hd rows; v: one row
    return nls, syn_q, syn_k, syn_v, ctx * hd, ctx * hd, ctx


def separate_qkv_matrices(b: int, i0: int, names: Sequence[str], syn: tuple, nnz: tuple) -> list:
    """Separate q, k, v projections from the block input (node layer i0) into layers i0+1..i0+3,
    and their synthetic edges into the context layer i0+4 (Llama family, BERT)."""
    mats = [MatrixSpec(name, i0, i0 + 1 + j, "torch") for j, name in enumerate(names)]
    mats += [MatrixSpec(f"synthetic:block{b}.attention.{x}", i0 + 1 + j, i0 + 4, "synthetic", syn[j], nnz[j])
             for j, x in enumerate("qkv")]
    return mats
