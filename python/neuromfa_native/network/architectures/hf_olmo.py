"""OLMo-1 in its original format (``model_type`` ``hf_olmo``, AllenAI's custom code, e.g.
``allenai/OLMo-1B``, ``allenai/OLMo-7B``); layout ``"default"``.  See docs/architectures.md.

Tensors ``model.transformer.blocks.{b}.`` (``transformer.blocks.{b}.`` in an unwrapped
checkpoint): ``att_proj`` (fused q, k, v), ``attn_out``, ``ff_proj`` (fused up and gate),
``ff_out``.  The splits are those of AllenAI's ``olmo/model.py`` (``OLMoSequentialBlock``:
``q, k, v = att_proj(x).split((d_model, n_kv * head_dim, n_kv * head_dim))``; ``SwiGLU``:
``x, gate = ff_proj(x).chunk(2)``, output ``silu(gate) * x``: the first half of ``ff_proj``'s
rows is the up projection, the second half the gate), and of its conversion to the Hugging Face
format (``scripts/convert_olmo_to_hf_new.py``), so the network equals that of the converted
``olmo`` checkpoint.  A ``"llama"`` block type (separate ``q_proj``, ``k_proj``, ``v_proj``) is
read too; block groups (``block_group_size`` > 1) are not.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import Family, Layout, cfg_int, first_prefix, hidden_and_heads, n_blocks, row_part
from .decoder import Block, Dims, Gated, Plain, Ref, decoder_layout
from .llama import DEFAULT_ONLY


def _kv_heads(config: Mapping[str, Any], nh: int) -> int:
    """OLMo's ``effective_n_kv_heads``: ``n_kv_heads``, else 1 with ``multi_query_attention``."""
    nkv = cfg_int(config, ["n_kv_heads"], None)
    if nkv is not None:
        return nkv
    return 1 if config.get("multi_query_attention") is True else nh


def _hf_olmo(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    arch = "hf_olmo"
    prefixes, probe = FAMILY.tensor_prefixes, FAMILY.probe
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    if (cfg_int(config, ["block_group_size"], 1) or 1) > 1:
        raise ValueError(f"OLMo block groups (block_group_size={config.get('block_group_size')}) are not supported; "
                         "unshard the checkpoint into plain blocks first")
    d, nh, hd = hidden_and_heads(config, ["d_model", "hidden_size"], ["n_heads", "num_attention_heads"], arch, layout)
    nkv = _kv_heads(config, nh)
    hidden = cfg_int(config, ["mlp_hidden_size"], None) or cfg_int(config, ["mlp_ratio"], 4) * d
    gated = str(config.get("activation_type") or "swiglu").lower() == "swiglu"
    if gated and hidden % 2:
        raise ValueError(f"the SwiGLU MLP needs an even mlp hidden size, got {hidden}")
    inter = hidden // 2 if gated else hidden
    nb = n_blocks(config, ["n_layers", "num_hidden_layers"], names, prefix, probe)
    blocks = []
    for b in range(nb):
        p = prefix.format(b=b)
        att = p + "att_proj.weight"
        if att in names or p + "q_proj.weight" not in names:  # sequential block (the published checkpoints)
            shape = (d + 2 * nkv * hd, d)
            q, k, v = (Ref(f"{att}[{x}]", row_part(att, shape, x, start, n))
                       for x, start, n in (("q", 0, d), ("k", d, nkv * hd), ("v", d + nkv * hd, nkv * hd)))
        else:  # "llama" block type
            q, k, v = (Ref(p + f"{x}_proj.weight") for x in "qkv")
        ff, down = p + "ff_proj.weight", Ref(p + "ff_out.weight")
        if gated:
            up = Ref(ff + "[up]", row_part(ff, (hidden, d), "up", 0, inter))
            gate = Ref(ff + "[gate]", row_part(ff, (hidden, d), "gate", inter, inter))
            mlp: Gated | Plain = Gated(gate, up, down, inter)
        else:
            mlp = Plain(Ref(ff), down, inter)
        blocks.append(Block(q, k, v, Ref(p + "attn_out.weight"), mlp))
    return decoder_layout(arch, layout, config, Dims(d, nh, nkv, hd), blocks)


FAMILY = Family(
    name="hf_olmo", model_types=("hf_olmo",), class_prefixes={"OLMo": "hf_olmo"},
    tensor_prefixes=("model.transformer.blocks.{b}.", "transformer.blocks.{b}."), probe="attn_out.weight",
    layouts=("default",), layout_for=DEFAULT_ONLY, build=_hf_olmo,
    config_keys=("d_model", "n_heads", "n_kv_heads", "multi_query_attention", "n_layers", "mlp_hidden_size",
                 "mlp_ratio", "activation_type", "block_type", "block_group_size"),
)
