"""Apertus (``apertus``): Llama's attention names with a plain MLP (``mlp.up_proj`` -> xIELU ->
``mlp.down_proj``, no ``gate_proj``); layout ``"default"``.  See docs/architectures.md."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import Family, Layout
from .llama import DEFAULT_ONLY, LLAMA_KEYS, llama_like


def _apertus(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    return llama_like(config, names, layout, FAMILY.tensor_prefixes, FAMILY.probe, mlp="plain")


FAMILY = Family(
    name="apertus", model_types=("apertus",), class_prefixes={"Apertus": "apertus"},
    tensor_prefixes=("model.layers.{b}.", "layers.{b}."), probe="mlp.up_proj.weight",
    layouts=("default",), layout_for=DEFAULT_ONLY, build=_apertus, config_keys=LLAMA_KEYS,
    absent=("mlp.gate_proj.weight",),
)
