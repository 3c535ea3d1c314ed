"""Falcon (``falcon``): fused ``self_attention.query_key_value`` in one of three layouts, plain
MLP ``mlp.dense_h_to_4h`` -> GELU -> ``mlp.dense_4h_to_h``; layout ``"default"``.  See
docs/architectures.md.

The splits are those of transformers' ``FalconAttention.forward``:

- ``new_decoder_architecture`` (Falcon-40B/180B): rows viewed as ``(n_kv, n_h / n_kv + 2, d)``,
  per key/value group its ``n_h / n_kv`` query heads, then its key, then its value;
- ``multi_query`` (Falcon-7B): q (``n_h * d`` rows), then one key head, then one value head;
- otherwise (Falcon-RW): ``(n_h, 3, d)``, q, k, v interleaved per head.

Falcon's parallel attention and MLP are chained like Pythia's in the reference layout
(docs/architectures.md, "Common rules").
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import Family, Layout, cfg_int, first_prefix, hidden_and_heads, n_blocks, row_part
from .decoder import Block, Dims, Plain, Ref, decoder_layout
from .llama import DEFAULT_ONLY


def qkv_parts(config: Mapping[str, Any], nh: int, hd: int) -> tuple[int, tuple, tuple]:
    """``(n_kv, stored shape, ((label, start, run, stride), ...))`` of Falcon's fused q, k, v rows."""
    h = nh * hd
    if config.get("new_decoder_architecture"):
        nkv = cfg_int(config, ["num_kv_heads", "n_head_kv"], nh)
        if nh % nkv:
            raise ValueError(f"num_attention_heads {nh} is not a multiple of num_kv_heads {nkv}")
        gs = nh // nkv
        per = (gs + 2) * hd
        return nkv, ((nh + 2 * nkv) * hd, h), (("q", 0, gs * hd, per), ("k", gs * hd, hd, per),
                                                ("v", (gs + 1) * hd, hd, per))
    if config.get("multi_query", True):  # transformers' default
        return 1, (h + 2 * hd, h), (("q", 0, h, h), ("k", h, hd, hd), ("v", h + hd, hd, hd))
    return nh, (3 * h, h), (("q", 0, hd, 3 * hd), ("k", hd, hd, 3 * hd), ("v", 2 * hd, hd, 3 * hd))


def _falcon(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    arch = "falcon"
    prefixes, probe = FAMILY.tensor_prefixes, FAMILY.probe
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    h, nh, hd = hidden_and_heads(config, ["hidden_size", "n_embed"], ["num_attention_heads", "n_head"], arch, layout)
    nb = n_blocks(config, ["num_hidden_layers", "n_layer"], names, prefix, probe)
    nkv, shape, parts = qkv_parts(config, nh, hd)
    inter = cfg_int(config, ["ffn_hidden_size"], 4 * h)
    blocks = []
    for b in range(nb):
        p = prefix.format(b=b)
        qkv = p + "self_attention.query_key_value.weight"
        q, k, v = (Ref(f"{qkv}[{x}]", row_part(qkv, shape, x, start, run, stride)) for x, start, run, stride in parts)
        mlp = Plain(Ref(p + "mlp.dense_h_to_4h.weight"), Ref(p + "mlp.dense_4h_to_h.weight"), inter)
        blocks.append(Block(q, k, v, Ref(p + "self_attention.dense.weight"), mlp))
    return decoder_layout(arch, layout, config, Dims(h, nh, nkv, hd), blocks)


FAMILY = Family(
    name="falcon", model_types=("falcon",), class_prefixes={"Falcon": "falcon"},
    tensor_prefixes=("transformer.h.{b}.", "h.{b}."), probe="self_attention.query_key_value.weight",
    layouts=("default",), layout_for=DEFAULT_ONLY, build=_falcon,
    config_keys=("hidden_size", "num_attention_heads", "num_kv_heads", "num_hidden_layers", "ffn_hidden_size",
                 "new_decoder_architecture", "multi_query", "n_embed", "n_head", "n_head_kv", "n_layer"),
)
