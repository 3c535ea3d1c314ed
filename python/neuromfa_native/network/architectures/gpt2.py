"""GPT-2: layout ``"default"`` (Conv1D weights stored ``(in, out)``, fused QKV with heads
contiguous inside q, k and v).  See docs/architectures.md."""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import numpy as np

from .base import Family, Layout, cfg_int, first_prefix, fused_qkv_network, hidden_and_heads, n_blocks, offsets_map


def syn_blocked_heads(o: np.ndarray, i: np.ndarray, hidden: int, head_dim: int) -> np.ndarray:
    # GPT-2 c_attn columns: [q (h); k (h); v (h)], heads contiguous inside each
    o, i = np.asarray(o)[:, None], np.asarray(i)[None, :]
    part, c = i // hidden, i % hidden
    same_head = (c // head_dim) == (o // head_dim)
    return same_head & ((part < 2) | (c == o))


def _gpt2(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    prefixes, probe = FAMILY.tensor_prefixes, FAMILY.probe
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    h, nh, hd = hidden_and_heads(config, ["n_embd", "hidden_size"], ["n_head", "num_attention_heads"], "gpt2", layout)
    nb = n_blocks(config, ["n_layer", "num_hidden_layers"], names, prefix, probe)
    inter = cfg_int(config, ["n_inner"], 4 * h)
    qkv_map = functools.partial(offsets_map, offsets=(0, h, 2 * h))
    syn = functools.partial(syn_blocked_heads, hidden=h, head_dim=hd)
    nls, mats = fused_qkv_network(nb, prefix, h, inter, qkv_map, (
        "attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"), "conv1d",
        syn, 2 * h * hd + h)
    return Layout("gpt2", layout, nls, mats, dict(config))


FAMILY = Family(
    name="gpt2", model_types=("gpt2",), class_prefixes={"GPT2": "gpt2"},
    tensor_prefixes=("transformer.h.{b}.", "h.{b}."), probe="attn.c_attn.weight",
    layouts=("default",), layout_for={"reference": "default", "heads": "default", "default": "default"},
    build=_gpt2, config_keys=("n_embd", "hidden_size", "n_head", "num_attention_heads", "n_layer", "num_hidden_layers", "n_inner"),
)
