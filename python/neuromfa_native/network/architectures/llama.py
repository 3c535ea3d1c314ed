"""The Llama family (``llama``, ``mistral``, ``qwen2``): layout ``"default"`` (separate q, k,
v projections with grouped key/value heads, gated MLP).  See docs/architectures.md."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import (
    Family,
    Layout,
    MatrixSpec,
    NodeLayer,
    attention_nodes,
    cfg_int,
    first_prefix,
    n_blocks,
    need,
    separate_qkv_matrices,
    syn_identity,
)


def _llama(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    arch = str(config.get("model_type") or "llama")
    prefixes, probe = FAMILY.tensor_prefixes, FAMILY.probe
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    h = need(cfg_int(config, ["hidden_size"]), "hidden_size", arch, layout)
    nh = need(cfg_int(config, ["num_attention_heads"]), "num_attention_heads", arch, layout)
    nkv = cfg_int(config, ["num_key_value_heads"], nh)
    hd = cfg_int(config, ["head_dim"], None) or h // nh
    inter = need(cfg_int(config, ["intermediate_size"]), "intermediate_size", arch, layout)
    nb = n_blocks(config, ["num_hidden_layers"], names, prefix, probe)
    if nh % nkv:
        raise ValueError(f"num_attention_heads {nh} is not a multiple of num_key_value_heads {nkv}")
    ident = syn_identity
    nls: list[NodeLayer] = []
    mats: list[MatrixSpec] = []
    for b in range(nb):
        p = prefix.format(b=b)
        i0 = len(nls)
        att, sq, sk, sv, nq, nk, nv = attention_nodes(b, h, nh, nkv, hd)
        nls.append(NodeLayer(f"block{b}.input", h, f"block{b}.input", h))
        nls += att  # q = i0+1, k = i0+2, v = i0+3, context = i0+4
        nls += [
            NodeLayer(f"block{b}.attn_out", h, f"block{b}.attn_out", h),  # i0+5
            NodeLayer(f"block{b}.gate", inter, f"block{b}.mlp_hidden", inter, 2),  # i0+6
            NodeLayer(f"block{b}.up", inter, f"block{b}.mlp_hidden", inter, 2),  # i0+7
            NodeLayer(f"block{b}.mlp_hidden", inter, f"block{b}.mlp_hidden", inter, 2),  # i0+8
        ]
        mats += separate_qkv_matrices(b, i0, [p + f"self_attn.{x}_proj.weight" for x in "qkv"],
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


FAMILY = Family(
    name="llama", model_types=("llama", "mistral", "qwen2"),
    class_prefixes={"Llama": "llama", "Mistral": "mistral", "Qwen2": "qwen2"},
    tensor_prefixes=("model.layers.{b}.", "layers.{b}."), probe="self_attn.q_proj.weight",
    layouts=("default",), layout_for={"reference": "default", "heads": "default", "default": "default"},
    build=_llama,
)
