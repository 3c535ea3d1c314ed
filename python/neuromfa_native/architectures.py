"""Layer maps: which weight matrices of a model make its neuron interaction network (NIN).

A :class:`Layout` is an ordered list of node layers (each a run of consecutive global node
ids) and an ordered list of matrices between them. Node ids are numbered by the node layers'
order: layer ``k`` holds ids ``offset_k ... offset_k + size_k - 1`` with
``offset_k = sum(size_0 ... size_{k-1})``. For GPT-NeoX in the reference layout this is
exactly the published ``x``/``y`` offset numbering of SPEC section 1.1.

Each matrix is a real weight tensor (orientation ``"torch"``: stored ``(out, in)``; or
``"conv1d"``: GPT-2's Conv1D, stored ``(in, out)``) or a *synthetic* 0/1 block that stands for
an operation without weights (attention mixing, the gated MLP's product); synthetic edges
have weight 1, so distance 1, and the distance filter of SPEC section 2 drops them.

Sampling (SPEC 1.2): every node layer names a *draw*; draws are made in the order the node
layers first name them, each ``numpy.random.choice(numpy.arange(n), factor * S,
replace=False)`` on a generator seeded with the sample index. A node layer takes its sampled
neurons from its draw, either as they are or mapped (the QKV rows that feed a sampled context
neuron). See ``docs/architectures.md`` for every layout.

Supported architectures: ``gpt_neox`` (layouts ``"reference"`` and ``"heads"``), ``gpt2``,
``llama``, ``mistral``, ``qwen2``, ``bert`` (layout ``"default"``), and custom layer maps.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "ARCHITECTURES",
    "LAYOUTS",
    "Layout",
    "MatrixSpec",
    "NodeLayer",
    "detect_architecture",
    "get_layout",
]

#: model_type -> layouts it supports (the first is used for layout="reference" when the
#: architecture has no published reference layout).
LAYOUTS: dict[str, tuple[str, ...]] = {
    "gpt_neox": ("reference", "heads"),
    "gpt2": ("default",),
    "llama": ("default",),
    "mistral": ("default",),
    "qwen2": ("default",),
    "bert": ("default",),
}
ARCHITECTURES = tuple(LAYOUTS)

_ARCH_CLASS_PREFIX = {
    "GPTNeoX": "gpt_neox",
    "GPT2": "gpt2",
    "Llama": "llama",
    "Mistral": "mistral",
    "Qwen2": "qwen2",
    "Bert": "bert",
}

_CUSTOM_HELP = (
    "pass a custom layer map instead: layout=[(tensor name, input layer, output layer), ...] "
    "in network order, e.g. layout=[('layers.0.fc1.weight', 'in', 'hidden'), "
    "('layers.0.fc2.weight', 'hidden', 'out')]; tensors are read in torch (out, in) "
    "orientation, add a 4th element 'conv1d' for weights stored (in, out)"
)


# ----------------------------------------------------------------------------- structures
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
class MatrixSpec:
    """One matrix of the NIN: edges from node layer ``in_layer`` to ``out_layer``.

    ``orientation`` is ``"torch"`` (tensor stored ``(out, in)``), ``"conv1d"`` (stored
    ``(in, out)``) or ``"synthetic"`` (no tensor: ``synthetic(out_idx, in_idx)`` gives the
    0/1 block as bool, ``nnz`` its number of ones in the full network). ``name`` is the tensor name
    (or a ``synthetic:`` label).
    """

    name: str
    in_layer: int
    out_layer: int
    orientation: str
    synthetic: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = field(default=None, compare=False)
    nnz: int | None = None  # ones of the full synthetic block

    @property
    def is_synthetic(self) -> bool:
        return self.orientation == "synthetic"


@dataclass(frozen=True)
class Layout:
    """A model's layer map: node layers (in id order) and matrices (in edge-list order)."""

    architecture: str
    name: str
    node_layers: tuple[NodeLayer, ...]
    matrices: tuple[MatrixSpec, ...]
    config: Mapping[str, Any] = field(default_factory=dict, compare=False)

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
        """The real weight tensors used, in order."""
        return tuple(m.name for m in self.matrices if not m.is_synthetic)

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
                total += int(m.nnz)
            else:
                total += self.node_layers[m.in_layer].size * self.node_layers[m.out_layer].size
        return total

    def sample(self, per_layer: int, sample: int) -> list[np.ndarray]:
        """Sampled node indices (within each node layer) for ``per_layer`` = S, index ``sample``.

        Uses a private ``numpy.random.RandomState(sample)``: identical draws to the published
        ``numpy.random.seed(sample); numpy.random.choice(...)``, without touching numpy's
        global generator.
        """
        if isinstance(per_layer, bool) or not isinstance(per_layer, (int, np.integer)) or per_layer < 1:
            raise ValueError(f"per_layer must be a positive integer or None, got {per_layer!r}")
        if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or not 0 <= sample < 2**32:
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
                idx = _unique_in_order(nl.expand(idx))
            out.append(np.asarray(idx, dtype=np.int64))
        return out


def _unique_in_order(idx: np.ndarray) -> np.ndarray:
    idx = np.asarray(idx, dtype=np.int64)
    _, first = np.unique(idx, return_index=True)
    if len(first) == len(idx):
        return idx
    return idx[np.sort(first)]


# ----------------------------------------------------------------------------- sample maps
def _fused_qkv_network(nb: int, prefix: str, h: int, inter: int, qkv_map: Callable, tensors: tuple,
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


def _offsets_map(idx: np.ndarray, offsets: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([idx + o for o in offsets])


def _interleaved_qkv_map(idx: np.ndarray, head_dim: int) -> np.ndarray:
    head, d = idx // head_dim, idx % head_dim
    base = head * 3 * head_dim + d
    return np.concatenate([base, base + head_dim, base + 2 * head_dim])


def _kv_group_map(idx: np.ndarray, head_dim: int, group: int) -> np.ndarray:
    return (idx // head_dim // group) * head_dim + idx % head_dim


# ----------------------------------------------------------------------------- synthetic blocks
# Each returns the (len(o), len(i)) 0/1 block in torch (out, in) orientation, as bool.
def _syn_neox_reference(o: np.ndarray, i: np.ndarray, h: int) -> np.ndarray:
    # published: adj = vstack(eye(h), ones(2h, h)) indexed [input, output]
    o, i = np.asarray(o)[:, None], np.asarray(i)[None, :]
    return (i >= h) | (i == o)


def _syn_interleaved_heads(o: np.ndarray, i: np.ndarray, head_dim: int) -> np.ndarray:
    # HF GPT-NeoX rows: [head0: q, k, v, head1: q, k, v, ...], head_dim rows each
    o, i = np.asarray(o)[:, None], np.asarray(i)[None, :]
    same_head = (i // (3 * head_dim)) == (o // head_dim)
    part = (i % (3 * head_dim)) // head_dim
    return same_head & ((part < 2) | ((i % head_dim) == (o % head_dim)))


def _syn_blocked_heads(o: np.ndarray, i: np.ndarray, hidden: int, head_dim: int) -> np.ndarray:
    # GPT-2 c_attn columns: [q (h); k (h); v (h)], heads contiguous inside each
    o, i = np.asarray(o)[:, None], np.asarray(i)[None, :]
    part, c = i // hidden, i % hidden
    same_head = (c // head_dim) == (o // head_dim)
    return same_head & ((part < 2) | (c == o))


def _syn_head_all(o: np.ndarray, i: np.ndarray, head_dim: int, group: int) -> np.ndarray:
    # q (group 1) or k rows of a head reach every context neuron of the heads they serve
    o, i = np.asarray(o)[:, None], np.asarray(i)[None, :]
    return (i // head_dim) == (o // head_dim) // group


def _syn_head_diag(o: np.ndarray, i: np.ndarray, head_dim: int, group: int) -> np.ndarray:
    # v row d of a kv head reaches context neuron d of every head it serves
    o, i = np.asarray(o)[:, None], np.asarray(i)[None, :]
    return ((i // head_dim) == (o // head_dim) // group) & ((i % head_dim) == (o % head_dim))


def _syn_identity(o: np.ndarray, i: np.ndarray) -> np.ndarray:
    return np.asarray(o)[:, None] == np.asarray(i)[None, :]


# ----------------------------------------------------------------------------- detection
def _first_prefix(names: set[str], candidates: Sequence[str], probe: str) -> str | None:
    for p in candidates:
        if p.format(b=0) + probe in names:
            return p
    return None


_PREFIXES = {
    "gpt_neox": (("gpt_neox.layers.{b}.", "layers.{b}."), "attention.query_key_value.weight"),
    "gpt2": (("transformer.h.{b}.", "h.{b}."), "attn.c_attn.weight"),
    "llama": (("model.layers.{b}.", "layers.{b}."), "self_attn.q_proj.weight"),
    "bert": (("bert.encoder.layer.{b}.", "encoder.layer.{b}."), "attention.self.query.weight"),
}


def _family(arch: str) -> str:
    return "llama" if arch in ("llama", "mistral", "qwen2") else arch


def detect_architecture(config: Mapping[str, Any] | None, tensor_names: Sequence[str] = ()) -> str:
    """Architecture from ``config["model_type"]``, else ``config["architectures"]``, else (only
    when the config has no model_type) tensor names. ``ValueError`` (listing the supported
    ones and how to pass a custom layer map) when none fits."""
    config = config or {}
    mt = config.get("model_type")
    if isinstance(mt, str) and mt in LAYOUTS:
        return mt
    for cls in config.get("architectures") or ():
        for pre, arch in _ARCH_CLASS_PREFIX.items():
            if isinstance(cls, str) and cls.startswith(pre) and not cls.startswith(pre + "J"):
                return arch
    if mt:  # a config that names an unsupported model is not second-guessed from tensor names
        raise ValueError(
            f"unsupported architecture (model_type {mt!r}); supported: {list(ARCHITECTURES)}; "
            f"pass architecture=... if its tensors follow one of them, or {_CUSTOM_HELP}"
        )
    names = set(tensor_names)
    for arch, (prefixes, probe) in _PREFIXES.items():
        if _first_prefix(names, prefixes, probe) is not None:
            return arch
    raise ValueError(
        "unknown architecture (no model_type in the config and no known tensor names); "
        f"supported: {list(ARCHITECTURES)}; {_CUSTOM_HELP}"
    )


# ----------------------------------------------------------------------------- config helpers
def _cfg_int(config: Mapping[str, Any], keys: Sequence[str], default: int | None = None) -> int | None:
    for k in keys:
        v = config.get(k)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"config[{k!r}] must be a positive integer, got {v!r}")
            return int(v)
    return default


def _count_blocks(names: set[str], prefix: str, probe: str) -> int:
    pat = re.compile(re.escape(prefix).replace(r"\{b\}", r"(\d+)") + re.escape(probe) + "$")
    idx = [int(m.group(1)) for n in names if (m := pat.match(n))]
    return max(idx) + 1 if idx else 0


def _need(value: int | None, key: str, arch: str, layout: str) -> int:
    if value is None:
        raise ValueError(
            f"the {arch} layout {layout!r} needs config[{key!r}], which is missing: load the model "
            "with its config.json or pass config=..."
        )
    return value


# ----------------------------------------------------------------------------- builders
def _neox(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    prefixes, probe = _PREFIXES["gpt_neox"]
    prefix = _first_prefix(names, prefixes, probe) or prefixes[0]
    qkv0 = prefix.format(b=0) + probe
    h = _cfg_int(config, ["hidden_size"])
    if h is None and qkv0 in names:
        h = int(shapes(qkv0)[1])
    h = _need(h, "hidden_size", "gpt_neox", layout)
    nb = _cfg_int(config, ["num_hidden_layers"]) or _count_blocks(names, prefix, probe)
    if nb == 0:
        _missing(qkv0, names)
    inter = _cfg_int(config, ["intermediate_size"], None)
    if inter is None:
        h4 = prefix.format(b=0) + "mlp.dense_h_to_4h.weight"
        inter = int(shapes(h4)[0]) if h4 in names else 4 * h
    if layout == "heads":
        nh = _need(_cfg_int(config, ["num_attention_heads"]), "num_attention_heads", "gpt_neox", layout)
        if h % nh:
            raise ValueError(f"hidden_size {h} is not a multiple of num_attention_heads {nh}")
        hd = h // nh
        qkv_map = functools.partial(_interleaved_qkv_map, head_dim=hd)
        syn = functools.partial(_syn_interleaved_heads, head_dim=hd)
        syn_nnz = 2 * h * hd + h
    else:
        qkv_map = functools.partial(_offsets_map, offsets=(0, h, 2 * h))
        syn = functools.partial(_syn_neox_reference, h=h)
        syn_nnz = h + 2 * h * h
    nls, mats = _fused_qkv_network(nb, prefix, h, inter, qkv_map, (
        "attention.query_key_value.weight", "attention.dense.weight", "mlp.dense_h_to_4h.weight",
        "mlp.dense_4h_to_h.weight"), "torch", syn, syn_nnz)
    return Layout("gpt_neox", layout, nls, mats, dict(config))


def _gpt2(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    prefixes, probe = _PREFIXES["gpt2"]
    prefix = _first_prefix(names, prefixes, probe) or prefixes[0]
    h = _need(_cfg_int(config, ["n_embd", "hidden_size"]), "n_embd", "gpt2", layout)
    nh = _need(_cfg_int(config, ["n_head", "num_attention_heads"]), "n_head", "gpt2", layout)
    nb = _cfg_int(config, ["n_layer", "num_hidden_layers"]) or _count_blocks(names, prefix, probe)
    if nb == 0:
        _missing(prefix.format(b=0) + probe, names)
    inter = _cfg_int(config, ["n_inner"], 4 * h)
    if h % nh:
        raise ValueError(f"n_embd {h} is not a multiple of n_head {nh}")
    hd = h // nh
    qkv_map = functools.partial(_offsets_map, offsets=(0, h, 2 * h))
    syn = functools.partial(_syn_blocked_heads, hidden=h, head_dim=hd)
    nls, mats = _fused_qkv_network(nb, prefix, h, inter, qkv_map, (
        "attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"), "conv1d",
        syn, 2 * h * hd + h)
    return Layout("gpt2", layout, nls, mats, dict(config))


def _attention_nodes(
    b: int, h: int, nh: int, nkv: int, hd: int
) -> tuple[list[NodeLayer], Callable, Callable, Callable, int, int, int]:
    """Node layers q, k, v, context of one block (Llama/BERT style separate projections)."""
    group = nh // nkv
    ctx = nh * hd
    kv_map = functools.partial(_kv_group_map, head_dim=hd, group=group)
    nls = [
        NodeLayer(f"block{b}.q", ctx, f"block{b}.context", ctx),
        NodeLayer(f"block{b}.k", nkv * hd, f"block{b}.context", ctx, 1, kv_map),
        NodeLayer(f"block{b}.v", nkv * hd, f"block{b}.context", ctx, 1, kv_map),
        NodeLayer(f"block{b}.context", ctx, f"block{b}.context", ctx),
    ]
    syn_q = functools.partial(_syn_head_all, head_dim=hd, group=1)
    syn_k = functools.partial(_syn_head_all, head_dim=hd, group=group)
    syn_v = functools.partial(_syn_head_diag, head_dim=hd, group=group)
    # nnz: q and k: every context neuron sees hd rows; v: one row
    return nls, syn_q, syn_k, syn_v, ctx * hd, ctx * hd, ctx


def _llama(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    arch = str(config.get("model_type") or "llama")
    prefixes, probe = _PREFIXES["llama"]
    prefix = _first_prefix(names, prefixes, probe) or prefixes[0]
    h = _need(_cfg_int(config, ["hidden_size"]), "hidden_size", arch, layout)
    nh = _need(_cfg_int(config, ["num_attention_heads"]), "num_attention_heads", arch, layout)
    nkv = _cfg_int(config, ["num_key_value_heads"], nh)
    hd = _cfg_int(config, ["head_dim"], None) or h // nh
    inter = _need(_cfg_int(config, ["intermediate_size"]), "intermediate_size", arch, layout)
    nb = _cfg_int(config, ["num_hidden_layers"]) or _count_blocks(names, prefix, probe)
    if nb == 0:
        _missing(prefix.format(b=0) + probe, names)
    if nh % nkv:
        raise ValueError(f"num_attention_heads {nh} is not a multiple of num_key_value_heads {nkv}")
    ident = _syn_identity
    nls: list[NodeLayer] = []
    mats: list[MatrixSpec] = []
    for b in range(nb):
        p = prefix.format(b=b)
        i0 = len(nls)
        att, sq, sk, sv, nq, nk, nv = _attention_nodes(b, h, nh, nkv, hd)
        nls.append(NodeLayer(f"block{b}.input", h, f"block{b}.input", h))
        nls += att  # q = i0+1, k = i0+2, v = i0+3, context = i0+4
        nls += [
            NodeLayer(f"block{b}.attn_out", h, f"block{b}.attn_out", h),  # i0+5
            NodeLayer(f"block{b}.gate", inter, f"block{b}.mlp_hidden", inter, 2),  # i0+6
            NodeLayer(f"block{b}.up", inter, f"block{b}.mlp_hidden", inter, 2),  # i0+7
            NodeLayer(f"block{b}.mlp_hidden", inter, f"block{b}.mlp_hidden", inter, 2),  # i0+8
        ]
        mats += _separate_qkv_matrices(b, i0, [p + f"self_attn.{x}_proj.weight" for x in "qkv"],
                                       (sq, sk, sv), (nq, nk, nv))
        mats += [
            MatrixSpec(p + "self_attn.o_proj.weight", i0 + 4, i0 + 5, "torch"),
            MatrixSpec(p + "mlp.gate_proj.weight", i0 + 5, i0 + 6, "torch"),
            MatrixSpec(p + "mlp.up_proj.weight", i0 + 5, i0 + 7, "torch"),
            MatrixSpec(f"synthetic:block{b}.mlp.gate", i0 + 6, i0 + 8, "synthetic", ident, inter),
            MatrixSpec(f"synthetic:block{b}.mlp.up", i0 + 7, i0 + 8, "synthetic", ident, inter),
            MatrixSpec(p + "mlp.down_proj.weight", i0 + 8, i0 + 9, "torch"),
        ]
    nls.append(NodeLayer("output", h, "output", h))
    return Layout(arch, layout, tuple(nls), tuple(mats), dict(config))


def _separate_qkv_matrices(b: int, i0: int, names: Sequence[str], syn: tuple, nnz: tuple) -> list:
    """Separate q, k, v projections from the block input (node layer i0) into layers i0+1..i0+3,
    and their synthetic edges into the context layer i0+4 (Llama family, BERT)."""
    mats = [MatrixSpec(name, i0, i0 + 1 + j, "torch") for j, name in enumerate(names)]
    mats += [MatrixSpec(f"synthetic:block{b}.attention.{x}", i0 + 1 + j, i0 + 4, "synthetic", syn[j], nnz[j])
             for j, x in enumerate("qkv")]
    return mats


def _bert(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    prefixes, probe = _PREFIXES["bert"]
    prefix = _first_prefix(names, prefixes, probe) or prefixes[0]
    h = _need(_cfg_int(config, ["hidden_size"]), "hidden_size", "bert", layout)
    nh = _need(_cfg_int(config, ["num_attention_heads"]), "num_attention_heads", "bert", layout)
    inter = _need(_cfg_int(config, ["intermediate_size"]), "intermediate_size", "bert", layout)
    nb = _cfg_int(config, ["num_hidden_layers"]) or _count_blocks(names, prefix, probe)
    if nb == 0:
        _missing(prefix.format(b=0) + probe, names)
    if h % nh:
        raise ValueError(f"hidden_size {h} is not a multiple of num_attention_heads {nh}")
    hd = h // nh
    nls: list[NodeLayer] = []
    mats: list[MatrixSpec] = []
    for b in range(nb):
        p = prefix.format(b=b)
        i0 = len(nls)
        att, sq, sk, sv, nq, nk, nv = _attention_nodes(b, h, nh, nh, hd)
        nls.append(NodeLayer(f"block{b}.input", h, f"block{b}.input", h))
        nls += att
        nls += [
            NodeLayer(f"block{b}.attn_out", h, f"block{b}.attn_out", h),  # i0+5
            NodeLayer(f"block{b}.mlp_hidden", inter, f"block{b}.mlp_hidden", inter, 2),  # i0+6
        ]
        mats += _separate_qkv_matrices(b, i0, [p + f"attention.self.{x}.weight" for x in ("query", "key", "value")],
                                       (sq, sk, sv), (nq, nk, nv))
        mats += [
            MatrixSpec(p + "attention.output.dense.weight", i0 + 4, i0 + 5, "torch"),
            MatrixSpec(p + "intermediate.dense.weight", i0 + 5, i0 + 6, "torch"),
            MatrixSpec(p + "output.dense.weight", i0 + 6, i0 + 7, "torch"),
        ]
    nls.append(NodeLayer("output", h, "output", h))
    return Layout("bert", layout, tuple(nls), tuple(mats), dict(config))


_BUILDERS = {"gpt_neox": _neox, "gpt2": _gpt2, "llama": _llama, "bert": _bert}


def _missing(name: str, names: set[str] | Sequence[str]) -> None:
    close = difflib.get_close_matches(name, list(names), n=5, cutoff=0.5)
    hint = f"; close names: {close}" if close else ""
    raise ValueError(f"missing tensor {name!r} in the source{hint}")


def custom_layout(
    layer_map: Sequence[Sequence[Any]], shapes: Callable[[str], tuple], names: set[str], architecture: str = "custom"
) -> Layout:
    """Layout from an ordered list of ``(tensor, input layer, output layer[, orientation])``.

    Node layers are numbered in order of first appearance; their sizes come from the tensor
    shapes and must agree wherever a layer is used. Every node layer is sampled with its own
    draw of ``S`` neurons, in that order.
    """
    if isinstance(layer_map, (str, bytes)) or not isinstance(layer_map, Sequence) or len(layer_map) == 0:
        raise ValueError(f"layout must be a layout name or a non-empty list of (tensor, input, output); {_CUSTOM_HELP}")
    sizes: dict[str, int] = {}
    order: list[str] = []
    entries: list[tuple[str, str, str, str]] = []
    for k, entry in enumerate(layer_map):
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) not in (3, 4):
            raise ValueError(
                f"layout[{k}] must be (tensor name, input layer, output layer[, orientation]), got {entry!r}"
            )
        tensor, lin, lout = (str(x) for x in entry[:3])
        orient = str(entry[3]) if len(entry) == 4 else "torch"
        if orient not in ("torch", "conv1d"):
            raise ValueError(f"layout[{k}] orientation must be 'torch' or 'conv1d', got {orient!r}")
        if tensor not in names:
            _missing(tensor, names)
        shp = tuple(shapes(tensor))
        if len(shp) != 2:
            raise ValueError(f"layout[{k}]: tensor {tensor!r} has shape {shp}, not a 2-d weight matrix")
        n_out, n_in = shp if orient == "torch" else shp[::-1]
        for layer, n in ((lin, n_in), (lout, n_out)):
            if layer not in sizes:
                sizes[layer] = n
                order.append(layer)
            elif sizes[layer] != n:
                raise ValueError(
                    f"layout[{k}]: tensor {tensor!r} ({orient} shape {shp}) gives layer {layer!r} "
                    f"size {n}, but an earlier tensor gave it size {sizes[layer]}"
                )
        entries.append((tensor, lin, lout, orient))
    pos = {name: i for i, name in enumerate(order)}
    nls = tuple(NodeLayer(n, sizes[n], n, sizes[n]) for n in order)
    mats = tuple(MatrixSpec(t, pos[a], pos[b], o) for t, a, b, o in entries)
    return Layout(architecture, "custom", nls, mats, {})


def get_layout(
    config: Mapping[str, Any] | None,
    tensor_names: Sequence[str],
    shapes: Callable[[str], tuple],
    layout: str | Sequence[Sequence[Any]] = "reference",
    architecture: str | None = None,
) -> Layout:
    """The layout for a model, checked against its tensors.

    ``layout``: ``"reference"`` (GPT-NeoX: SPEC 1.1; other architectures have no published
    layout and use their ``"default"`` one, recorded as such), ``"heads"`` (GPT-NeoX true
    per-head QKV rows; the default layouts of the other architectures already follow the
    heads), ``"default"``, or a custom layer map. Every tensor must exist with the shape the
    config implies; otherwise ``ValueError``.
    """
    names = set(tensor_names)
    config = dict(config or {})
    if not isinstance(layout, str):
        return custom_layout(layout, shapes, names, architecture or str(config.get("model_type") or "custom"))
    if architecture is None:
        architecture = detect_architecture(config, tensor_names)
    elif architecture not in LAYOUTS:
        raise ValueError(
            f"architecture must be one of {list(ARCHITECTURES)} or None, got {architecture!r}; {_CUSTOM_HELP}"
        )
    config["model_type"] = architecture  # the layout's name for it (may override the config's)
    allowed = LAYOUTS[architecture]
    if layout not in ("reference", "heads", "default"):
        raise ValueError(
            f"layout must be one of {list(allowed)} for {architecture} (or a custom layer map), got {layout!r}"
        )
    name = layout
    if architecture == "gpt_neox":
        if layout == "default":
            name = "reference"
    else:
        name = "default"
    lay = _BUILDERS[_family(architecture)](config, names, shapes, name)
    check_layout(lay, names, shapes)
    return lay


def check_layout(lay: Layout, names: set[str], shapes: Callable[[str], tuple]) -> None:
    """``ValueError`` for a missing tensor or a shape that does not match the config."""
    for m in lay.matrices:
        if m.is_synthetic:
            continue
        if m.name not in names:
            _missing(m.name, names)
        got = tuple(shapes(m.name))
        want = lay.expected_shape(m)
        if got != want:
            keys = ("hidden_size", "n_embd", "intermediate_size", "n_inner", "num_attention_heads",
                    "num_key_value_heads", "head_dim")
            cfg = {k: lay.config[k] for k in keys if lay.config.get(k) is not None}
            raise ValueError(
                f"tensor {m.name!r} has shape {got}, but the config ({cfg}) implies {want} "
                f"({lay.node_layers[m.in_layer].name} -> {lay.node_layers[m.out_layer].name}, "
                f"{m.orientation} orientation)"
            )
