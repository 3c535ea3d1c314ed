"""OPT (``opt``): ``self_attn.{q,k,v,out}_proj`` and a plain MLP ``fc1`` -> ReLU -> ``fc2``;
layout ``"default"``.  The embedding projections of the smaller models (``project_in``/
``project_out``) are outside the blocks and not used.  See docs/architectures.md."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import Family, Layout, cfg_int, first_prefix, hidden_and_heads, n_blocks, need
from .decoder import Block, Dims, Plain, Ref, decoder_layout
from .llama import DEFAULT_ONLY


def _opt(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    arch = "opt"
    prefixes, probe = FAMILY.tensor_prefixes, FAMILY.probe
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    h, nh, hd = hidden_and_heads(config, ["hidden_size"], ["num_attention_heads"], arch, layout)
    inter = need(cfg_int(config, ["ffn_dim"]), "ffn_dim", arch, layout)
    nb = n_blocks(config, ["num_hidden_layers"], names, prefix, probe)
    blocks = []
    for b in range(nb):
        p = prefix.format(b=b)
        q, k, v, o = (Ref(p + f"self_attn.{x}_proj.weight") for x in ("q", "k", "v", "out"))
        blocks.append(Block(q, k, v, o, Plain(Ref(p + "fc1.weight"), Ref(p + "fc2.weight"), inter)))
    return decoder_layout(arch, layout, config, Dims(h, nh, nh, hd), blocks)


FAMILY = Family(
    name="opt", model_types=("opt",), class_prefixes={"OPT": "opt"},
    tensor_prefixes=("model.decoder.layers.{b}.", "decoder.layers.{b}."), probe="self_attn.q_proj.weight",
    layouts=("default",), layout_for=DEFAULT_ONLY, build=_opt,
    config_keys=("hidden_size", "num_attention_heads", "num_hidden_layers", "ffn_dim"),
)
