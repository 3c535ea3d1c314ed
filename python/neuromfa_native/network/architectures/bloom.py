"""BLOOM (``bloom``, e.g. ``bigscience/bloom-560m-intermediate``): fused
``self_attention.query_key_value`` interleaved per head, plain MLP ``mlp.dense_h_to_4h`` ->
GELU -> ``mlp.dense_4h_to_h``; layout ``"default"``.  See docs/architectures.md.

The split is that of transformers' ``BloomAttention._reshape``: the fused output is viewed as
``(n_h, 3, d)``, so head ``i``'s q, k and v rows are ``3di + [0, d)``, ``3di + d + [0, d)`` and
``3di + 2d + [0, d)`` (GPT-NeoX's interleave).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import Family, Layout, first_prefix, hidden_and_heads, n_blocks, row_part
from .decoder import Block, Dims, Plain, Ref, decoder_layout
from .llama import DEFAULT_ONLY


def _bloom(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    arch = "bloom"
    prefixes, probe = FAMILY.tensor_prefixes, FAMILY.probe
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    h, nh, hd = hidden_and_heads(config, ["hidden_size", "n_embed"], ["n_head", "num_attention_heads"], arch, layout)
    nb = n_blocks(config, ["n_layer", "num_hidden_layers"], names, prefix, probe)
    blocks = []
    for b in range(nb):
        p = prefix.format(b=b)
        qkv = p + "self_attention.query_key_value.weight"
        q, k, v = (Ref(f"{qkv}[{x}]", row_part(qkv, (3 * h, h), x, j * hd, hd, 3 * hd)) for j, x in enumerate("qkv"))
        mlp = Plain(Ref(p + "mlp.dense_h_to_4h.weight"), Ref(p + "mlp.dense_4h_to_h.weight"), 4 * h)
        blocks.append(Block(q, k, v, Ref(p + "self_attention.dense.weight"), mlp))
    return decoder_layout(arch, layout, config, Dims(h, nh, nh, hd), blocks)


FAMILY = Family(
    name="bloom", model_types=("bloom",), class_prefixes={"Bloom": "bloom"},
    tensor_prefixes=("transformer.h.{b}.", "h.{b}."), probe="self_attention.query_key_value.weight",
    layouts=("default",), layout_for=DEFAULT_ONLY, build=_bloom,
    config_keys=("hidden_size", "n_embed", "n_head", "num_attention_heads", "n_layer", "num_hidden_layers"),
)
