"""BERT: layout ``"default"`` (encoder blocks, separate query, key, value projections).  See
docs/architectures.md."""
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
    hidden_and_heads,
    n_blocks,
    need,
    separate_qkv_matrices,
)


def _bert(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    prefixes, probe = FAMILY.tensor_prefixes, FAMILY.probe
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    h, nh, hd = hidden_and_heads(config, ["hidden_size"], ["num_attention_heads"], "bert", layout)
    inter = need(cfg_int(config, ["intermediate_size"]), "intermediate_size", "bert", layout)
    nb = n_blocks(config, ["num_hidden_layers"], names, prefix, probe)
    nls: list[NodeLayer] = []
    mats: list[MatrixSpec] = []
    for b in range(nb):
        p = prefix.format(b=b)
        i0 = len(nls)
        att, sq, sk, sv, nq, nk, nv = attention_nodes(b, h, nh, nh, hd)
        nls.append(NodeLayer(f"block{b}.input", h, f"block{b}.input", h))
        nls += att
        nls += [
            NodeLayer(f"block{b}.attn_out", h, f"block{b}.attn_out", h),  # i0+5
            NodeLayer(f"block{b}.mlp_hidden", inter, f"block{b}.mlp_hidden", inter, 2),  # i0+6
        ]
        mats += separate_qkv_matrices(b, i0, [p + f"attention.self.{x}.weight" for x in ("query", "key", "value")],
                                       (sq, sk, sv), (nq, nk, nv))
        mats += [
            MatrixSpec(p + "attention.output.dense.weight", i0 + 4, i0 + 5, "torch"),
            MatrixSpec(p + "intermediate.dense.weight", i0 + 5, i0 + 6, "torch"),
            MatrixSpec(p + "output.dense.weight", i0 + 6, i0 + 7, "torch"),
        ]
    nls.append(NodeLayer("output", h, "output", h))
    return Layout("bert", layout, tuple(nls), tuple(mats), dict(config))


FAMILY = Family(
    name="bert", model_types=("bert",), class_prefixes={"Bert": "bert"},
    tensor_prefixes=("bert.encoder.layer.{b}.", "encoder.layer.{b}."), probe="attention.self.query.weight",
    layouts=("default",), layout_for={"reference": "default", "heads": "default", "default": "default"},
    build=_bert, config_keys=("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers"),
)
