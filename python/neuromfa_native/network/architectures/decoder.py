"""Decoder blocks the families share: attention with q, k, v projections (separate tensors, or
parts of a fused one), then a gated, a plain or a mixture-of-experts MLP.

A family's builder says, per block, which matrices play which role (a :class:`Ref`: a tensor,
or rows of a fused tensor) and the sizes; :func:`decoder_layout` lays out the node layers,
their numbering and draws, the same for every family (docs/architectures.md):

    input -> q, k, v -> context -> attn_out -> MLP -> next block's input

with the MLP one of

- :class:`Gated` ``down(act(gate x) * up x)``: node layers ``gate``, ``up``, ``mlp_hidden``;
- :class:`Plain` ``down(act(up x))``: node layer ``mlp_hidden``;
- :class:`Experts`: every expert a gated MLP of its own (``expert<e>.gate``, ``.up``,
  ``.mlp_hidden``), all reading ``attn_out`` and all writing the next block's input; the router
  is not part of the network. Sampling: ``pooled`` (layout ``"default"``) draws ``2S`` of the
  ``E * I`` expert neurons of a block, ``per_expert`` draws ``2S`` of each expert's ``I``
  (docs/spec.md, "Mixture-of-experts blocks").
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from .base import Layout, MatrixSpec, NodeLayer, RowPart, attention_nodes, missing_tensor, row_part, syn_identity

__all__ = ["Block", "Dims", "Experts", "Gated", "Plain", "Ref", "decoder_layout", "expert_refs"]


@dataclass(frozen=True)
class Dims:
    """Attention sizes: hidden ``h``, query heads ``nh``, key/value heads ``nkv``, head size ``hd``."""

    h: int
    nh: int
    nkv: int
    hd: int

    def check(self) -> None:
        if self.nh % self.nkv:
            raise ValueError(f"num_attention_heads {self.nh} is not a multiple of num_key_value_heads {self.nkv}")


@dataclass(frozen=True)
class Ref:
    """A matrix of the layout: tensor ``name``, or (``part`` set) rows of a fused stored tensor."""

    name: str
    part: Union[RowPart, None] = None


@dataclass(frozen=True)
class Gated:
    gate: Ref
    up: Ref
    down: Ref
    size: int


@dataclass(frozen=True)
class Plain:
    up: Ref
    down: Ref
    size: int


@dataclass(frozen=True)
class Experts:
    experts: tuple  # one Gated per expert, in expert order
    size: int  # I of one expert


@dataclass(frozen=True)
class Block:
    q: Ref
    k: Ref
    v: Ref
    o: Ref
    mlp: Union[Gated, Plain, Experts]


def _mat(ref: Ref, i: int, o: int) -> MatrixSpec:
    return MatrixSpec(ref.name, i, o, "torch", part=ref.part)


def pooled_expert_rows(idx: np.ndarray, expert: int, size: int) -> np.ndarray:
    """The drawn neurons of a block's pooled ``E * I`` expert neurons that are expert ``expert``'s
    (``idx // size == expert``), as indices into that expert's ``size`` neurons, in draw order."""
    idx = np.asarray(idx, dtype=np.int64)
    return idx[idx // size == expert] - expert * size


def _mlp_nodes(b: int, mlp: Union[Gated, Plain, Experts], per_expert: bool) -> list[NodeLayer]:
    if isinstance(mlp, Plain):
        return [NodeLayer(f"block{b}.mlp_hidden", mlp.size, f"block{b}.mlp_hidden", mlp.size, 2)]
    if isinstance(mlp, Gated):
        n = mlp.size
        return [NodeLayer(f"block{b}.{kind}", n, f"block{b}.mlp_hidden", n, 2) for kind in ("gate", "up", "mlp_hidden")]
    n, ne = mlp.size, len(mlp.experts)
    out = []
    for e in range(ne):
        if per_expert:
            draw, size, expand = f"block{b}.expert{e}.mlp_hidden", n, None
        else:
            draw, size, expand = f"block{b}.mlp_hidden", ne * n, functools.partial(pooled_expert_rows, expert=e, size=n)
        out += [NodeLayer(f"block{b}.expert{e}.{kind}", n, draw, size, 2, expand)
                for kind in ("gate", "up", "mlp_hidden")]
    return out


def _mlp_matrices(b: int, mlp: Union[Gated, Plain, Experts], src: int, first: int, nxt: int) -> list[MatrixSpec]:
    """Matrices of the MLP whose node layers start at ``first``: from ``src`` (attn_out) to ``nxt``."""
    if isinstance(mlp, Plain):
        return [_mat(mlp.up, src, first), _mat(mlp.down, first, nxt)]
    gated = [mlp] if isinstance(mlp, Gated) else list(mlp.experts)
    mats: list[MatrixSpec] = []
    for e, g in enumerate(gated):
        i = first + 3 * e
        tag = f"block{b}.mlp" if isinstance(mlp, Gated) else f"block{b}.expert{e}.mlp"
        mats += [
            _mat(g.gate, src, i),
            _mat(g.up, src, i + 1),
            MatrixSpec(f"synthetic:{tag}.gate", i, i + 2, "synthetic", syn_identity, g.size),
            MatrixSpec(f"synthetic:{tag}.up", i + 1, i + 2, "synthetic", syn_identity, g.size),
            _mat(g.down, i + 2, nxt),
        ]
    return mats


def decoder_layout(arch: str, layout: str, config: Mapping[str, Any], dims: Dims, blocks: Sequence[Block],
                   per_expert: bool = False) -> Layout:
    """The layout of a stack of decoder blocks (node layers per block: input, q, k, v, context,
    attn_out, the MLP's; then ``output``). ``per_expert``: each expert's hidden neurons get their
    own draw (layout ``"per_expert"``) instead of one pooled draw per block."""
    dims.check()
    h = dims.h
    nls: list[NodeLayer] = []
    mats: list[MatrixSpec] = []
    for b, blk in enumerate(blocks):
        i0 = len(nls)
        att, sq, sk, sv, nq, nk, nv = attention_nodes(b, h, dims.nh, dims.nkv, dims.hd)
        nls.append(NodeLayer(f"block{b}.input", h, f"block{b}.input", h))
        nls += att  # q = i0+1, k = i0+2, v = i0+3, context = i0+4
        nls.append(NodeLayer(f"block{b}.attn_out", h, f"block{b}.attn_out", h))  # i0+5
        mlp_nodes = _mlp_nodes(b, blk.mlp, per_expert)
        nls += mlp_nodes
        mats += [_mat(r, i0, i0 + 1 + j) for j, r in enumerate((blk.q, blk.k, blk.v))]
        mats += [MatrixSpec(f"synthetic:block{b}.attention.{x}", i0 + 1 + j, i0 + 4, "synthetic", syn, nnz)
                 for j, (x, syn, nnz) in enumerate(zip("qkv", (sq, sk, sv), (nq, nk, nv)))]
        mats.append(_mat(blk.o, i0 + 4, i0 + 5))
        mats += _mlp_matrices(b, blk.mlp, i0 + 5, i0 + 6, i0 + 6 + len(mlp_nodes))
    nls.append(NodeLayer("output", h, "output", h))
    return Layout(arch, layout, tuple(nls), tuple(mats), dict(config))


def expert_refs(p: str, names: set[str], shapes: Callable[[str], tuple], n_experts: int, size: int, h: int,
                per_expert: tuple, fused: str = "mlp.experts.") -> tuple:
    """One :class:`Gated` per expert of block prefix ``p``, from either on-disk form:

    - per-expert 2-d tensors ``p + per_expert[j].format(e=e)`` (gate, up, down), as checkpoints
      are saved;
    - transformers' fused 3-d stacks ``p + fused + "gate_up_proj"`` ``(E, 2I, h)`` (each expert's
      gate rows, then its up rows) and ``p + fused + "down_proj"`` ``(E, h, I)``, as a live
      transformers 5 model holds them.

    Either way the matrices carry the per-expert names, so both forms give the same network.
    A config with more experts than the tensors is refused before the experts are laid out."""
    gate_t, up_t, down_t = (p + t for t in per_expert)
    if gate_t.format(e=0) in names:
        if gate_t.format(e=n_experts - 1) not in names:
            missing_tensor(gate_t.format(e=n_experts - 1), names)
        return tuple(Gated(Ref(gate_t.format(e=e)), Ref(up_t.format(e=e)), Ref(down_t.format(e=e)), size)
                     for e in range(n_experts))
    gu, dn = p + fused + "gate_up_proj", p + fused + "down_proj"
    if gu not in names:
        missing_tensor(gate_t.format(e=0), names)
    gu_shape, dn_shape = (n_experts, 2 * size, h), (n_experts, h, size)
    got = tuple(shapes(gu))
    if got != gu_shape:
        raise ValueError(f"tensor {gu!r} has shape {got}, but the config (num_experts={n_experts}, expert "
                         f"intermediate size {size}, hidden_size={h}) implies {gu_shape} (the fused 3-d form of "
                         f"the experts' gate and up projections)")
    return tuple(Gated(
        Ref(gate_t.format(e=e), row_part(gu, gu_shape, f"expert{e}.gate", e * 2 * size, size)),
        Ref(up_t.format(e=e), row_part(gu, gu_shape, f"expert{e}.up", e * 2 * size + size, size)),
        Ref(down_t.format(e=e), row_part(dn, dn_shape, f"expert{e}", e * h, h)),
        size) for e in range(n_experts))


def expert_summary(lay: Layout, samples: Sequence[np.ndarray] | None = None) -> dict | None:
    """Mixture-of-experts counts of a layout (None without experts): blocks with experts, experts
    per block, hidden neurons per expert, the sampling (``"pooled"`` or ``"per_expert"``), and the
    expert nodes (gate, up and hidden layers of every expert) of the full network and, with
    ``samples`` (:meth:`Layout.sample`), of the sampled one."""
    layers = [(k, nl) for k, nl in enumerate(lay.node_layers) if ".expert" in nl.name]
    if not layers:
        return None
    per_block: dict[str, set] = {}
    for _, nl in layers:
        block, expert = nl.name.split(".")[:2]
        per_block.setdefault(block, set()).add(expert)
    first = layers[0][1]
    pooled = first.draw_size != first.size  # one draw of the block's E * I expert neurons
    out = {
        "blocks": len(per_block),
        "experts_per_block": max(len(v) for v in per_block.values()),
        "hidden_per_expert": first.size,
        "sampling": "pooled" if pooled else "per_expert",
        "nodes_full": int(sum(nl.size for _, nl in layers)),
        "nodes_sampled": None if samples is None else int(sum(len(samples[k]) for k, _ in layers)),
    }
    return out
