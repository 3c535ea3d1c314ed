"""Mixtral (``mixtral``): Llama's attention names and experts
``block_sparse_moe.experts.{e}.w1`` (gate), ``.w3`` (up), ``.w2`` (down) plus a router
``block_sparse_moe.gate``; layouts ``"default"`` (expert neurons sampled pooled) and
``"per_expert"``.  A live transformers 5 model holds the experts fused as
``mlp.experts.gate_up_proj`` (each expert's w1 rows, then its w3 rows) and
``mlp.experts.down_proj``; both forms read the same (:mod:`.olmoe`).  See docs/architectures.md.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import Family, Layout
from .olmoe import MOE_KEYS, MOE_LAYOUTS, moe_like


def _mixtral(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    return moe_like(config, names, shapes, layout, FAMILY.tensor_prefixes, FAMILY.probe,
                    tuple(f"block_sparse_moe.experts.{{e}}.{w}.weight" for w in ("w1", "w3", "w2")))


FAMILY = Family(
    name="mixtral", model_types=("mixtral",), class_prefixes={"Mixtral": "mixtral"},
    tensor_prefixes=("model.layers.{b}.", "layers.{b}."), probe="block_sparse_moe.gate.weight",
    layouts=("default", "per_expert"), layout_for=MOE_LAYOUTS, build=_mixtral, config_keys=MOE_KEYS,
)
