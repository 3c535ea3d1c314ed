"""GPT-NeoX (Pythia): layouts ``"reference"`` (the published one, docs/spec.md sections 1.1
and 1.2, bit-exact) and ``"heads"`` (true per-head QKV rows).  See docs/architectures.md."""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import numpy as np

from .base import Family, Layout, cfg_int, first_prefix, fused_qkv_network, n_blocks, need, offsets_map


def interleaved_qkv_map(idx: np.ndarray, head_dim: int) -> np.ndarray:
    head, d = idx // head_dim, idx % head_dim
    base = head * 3 * head_dim + d
    return np.concatenate([base, base + head_dim, base + 2 * head_dim])


def syn_neox_reference(o: np.ndarray, i: np.ndarray, h: int) -> np.ndarray:
    # published: adj = vstack(eye(h), ones(2h, h)) indexed [input, output]
    o, i = np.asarray(o)[:, None], np.asarray(i)[None, :]
    return (i >= h) | (i == o)


def syn_interleaved_heads(o: np.ndarray, i: np.ndarray, head_dim: int) -> np.ndarray:
    # HF GPT-NeoX rows: [head0: q, k, v, head1: q, k, v, ...], head_dim rows each
    o, i = np.asarray(o)[:, None], np.asarray(i)[None, :]
    same_head = (i // (3 * head_dim)) == (o // head_dim)
    part = (i % (3 * head_dim)) // head_dim
    return same_head & ((part < 2) | ((i % head_dim) == (o % head_dim)))


def _neox(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    prefixes, probe = FAMILY.tensor_prefixes, FAMILY.probe
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    qkv0 = prefix.format(b=0) + probe
    h = cfg_int(config, ["hidden_size"])
    if h is None and qkv0 in names:
        h = int(shapes(qkv0)[1])
    h = need(h, "hidden_size", "gpt_neox", layout)
    nb = n_blocks(config, ["num_hidden_layers"], names, prefix, probe)
    inter = cfg_int(config, ["intermediate_size"], None)
    if inter is None:
        h4 = prefix.format(b=0) + "mlp.dense_h_to_4h.weight"
        inter = int(shapes(h4)[0]) if h4 in names else 4 * h
    if layout == "heads":
        nh = need(cfg_int(config, ["num_attention_heads"]), "num_attention_heads", "gpt_neox", layout)
        if h % nh:
            raise ValueError(f"hidden_size {h} is not a multiple of num_attention_heads {nh}")
        hd = h // nh
        qkv_map = functools.partial(interleaved_qkv_map, head_dim=hd)
        syn = functools.partial(syn_interleaved_heads, head_dim=hd)
        syn_nnz = 2 * h * hd + h
    else:
        qkv_map = functools.partial(offsets_map, offsets=(0, h, 2 * h))
        syn = functools.partial(syn_neox_reference, h=h)
        syn_nnz = h + 2 * h * h
    nls, mats = fused_qkv_network(nb, prefix, h, inter, qkv_map, (
        "attention.query_key_value.weight", "attention.dense.weight", "mlp.dense_h_to_4h.weight",
        "mlp.dense_4h_to_h.weight"), "torch", syn, syn_nnz)
    return Layout("gpt_neox", layout, nls, mats, dict(config))


FAMILY = Family(
    name="gpt_neox", model_types=("gpt_neox",), class_prefixes={"GPTNeoX": "gpt_neox"},
    tensor_prefixes=("gpt_neox.layers.{b}.", "layers.{b}."), probe="attention.query_key_value.weight",
    layouts=("reference", "heads"), layout_for={"reference": "reference", "heads": "heads", "default": "reference"},
    build=_neox, config_keys=("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers"),
)
