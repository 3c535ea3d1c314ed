"""GPT-J (``gptj``): separate ``attn.{q,k,v,out}_proj`` and a plain MLP ``mlp.fc_in`` -> GELU ->
``mlp.fc_out``; layout ``"default"``.  GPT-J's parallel attention and MLP are chained like
Pythia's in the reference layout.  See docs/architectures.md."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import Family, Layout, cfg_int, first_prefix, hidden_and_heads, n_blocks
from .decoder import Block, Dims, Plain, Ref, decoder_layout
from .llama import DEFAULT_ONLY


def _gptj(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    arch = "gptj"
    prefixes, probe = FAMILY.tensor_prefixes, FAMILY.probe
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    h, nh, hd = hidden_and_heads(config, ["n_embd", "hidden_size"], ["n_head", "num_attention_heads"], arch, layout)
    nb = n_blocks(config, ["n_layer", "num_hidden_layers"], names, prefix, probe)
    inter = cfg_int(config, ["n_inner"], 4 * h)
    blocks = []
    for b in range(nb):
        p = prefix.format(b=b)
        q, k, v, o = (Ref(p + f"attn.{x}_proj.weight") for x in ("q", "k", "v", "out"))
        blocks.append(Block(q, k, v, o, Plain(Ref(p + "mlp.fc_in.weight"), Ref(p + "mlp.fc_out.weight"), inter)))
    return decoder_layout(arch, layout, config, Dims(h, nh, nh, hd), blocks)


FAMILY = Family(
    name="gptj", model_types=("gptj",), class_prefixes={"GPTJ": "gptj"},
    tensor_prefixes=("transformer.h.{b}.", "h.{b}."), probe="attn.q_proj.weight",
    layouts=("default",), layout_for=DEFAULT_ONLY, build=_gptj,
    config_keys=("n_embd", "n_head", "n_layer", "n_inner"),
)
