"""OLMo 1-3 in the Hugging Face format (``olmo``, ``olmo2``, ``olmo3``): Llama's tensor names and
layout ``"default"``.  See docs/architectures.md.

They differ from Llama only in norms: OLMo-1 (``OLMo-1B-hf``, ``OLMo-7B-0424-hf``) has no norm
tensors at all (non-parametric layer norm); OLMo-2 and OLMo-3 have ``q_norm``/``k_norm`` and
post-norms only (no ``input_layernorm``).  Norms are not part of the network, so the layout is
Llama's.  OLMo-1's original format (``model_type`` ``hf_olmo``, fused ``att_proj``/``ff_proj``)
is :mod:`.hf_olmo`.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .base import Family, Layout
from .llama import DEFAULT_ONLY, LLAMA_KEYS, llama_like


def _olmo(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    return llama_like(config, names, layout, FAMILY.tensor_prefixes, FAMILY.probe)


FAMILY = Family(
    name="olmo", model_types=("olmo", "olmo2", "olmo3"),
    class_prefixes={"Olmo": "olmo", "Olmo2": "olmo2", "Olmo3": "olmo3"},
    tensor_prefixes=("model.layers.{b}.", "layers.{b}."), probe="self_attn.q_proj.weight",
    layouts=("default",), layout_for=DEFAULT_ONLY, build=_olmo, config_keys=LLAMA_KEYS,
)
