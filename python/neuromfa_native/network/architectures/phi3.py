"""Phi-3 (``phi3``): fused ``self_attn.qkv_proj`` and ``mlp.gate_up_proj``; layout ``"default"``
(the Llama layout of the split matrices).  See docs/architectures.md.

The splits are those of transformers' ``Phi3Attention``/``Phi3MLP``: ``qkv_proj``'s rows are
q (``n_h * d``), then k (``n_kv * d``), then v (``n_kv * d``); ``gate_up_proj``'s rows are the
gate (``I``), then up (``I``) (``gate, up = gate_up_proj(x).chunk(2)``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import Family, Layout, cfg_int, first_prefix, n_blocks, need, row_part
from .decoder import Block, Gated, Ref, decoder_layout
from .llama import DEFAULT_ONLY, LLAMA_KEYS, llama_dims


def _phi3(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    arch = str(config.get("model_type") or "phi3")
    prefixes, probe = FAMILY.tensor_prefixes, FAMILY.probe
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    dims = llama_dims(config, arch, layout)
    inter = need(cfg_int(config, ["intermediate_size"]), "intermediate_size", arch, layout)
    nb = n_blocks(config, ["num_hidden_layers"], names, prefix, probe)
    nq, nkv = dims.nh * dims.hd, dims.nkv * dims.hd
    blocks = []
    for b in range(nb):
        p = prefix.format(b=b)
        qkv, gu = p + "self_attn.qkv_proj.weight", p + "mlp.gate_up_proj.weight"
        qkv_shape, gu_shape = (nq + 2 * nkv, dims.h), (2 * inter, dims.h)
        q, k, v = (Ref(f"{qkv}[{x}]", row_part(qkv, qkv_shape, x, start, n))
                   for x, start, n in (("q", 0, nq), ("k", nq, nkv), ("v", nq + nkv, nkv)))
        gate = Ref(gu + "[gate]", row_part(gu, gu_shape, "gate", 0, inter))
        up = Ref(gu + "[up]", row_part(gu, gu_shape, "up", inter, inter))
        blocks.append(Block(q, k, v, Ref(p + "self_attn.o_proj.weight"),
                            Gated(gate, up, Ref(p + "mlp.down_proj.weight"), inter)))
    return decoder_layout(arch, layout, config, dims, blocks)


FAMILY = Family(
    name="phi3", model_types=("phi3",), class_prefixes={"Phi3": "phi3"},
    tensor_prefixes=("model.layers.{b}.", "layers.{b}."), probe="self_attn.qkv_proj.weight",
    layouts=("default",), layout_for=DEFAULT_ONLY, build=_phi3, config_keys=LLAMA_KEYS,
)
