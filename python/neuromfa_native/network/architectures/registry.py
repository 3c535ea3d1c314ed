"""The registry of architecture families: detection and layout building read only this table.

:data:`FAMILIES` holds one :class:`~.base.Family` record per family module; :data:`LAYOUTS`,
:data:`ARCHITECTURES` and the model type -> family map are derived from it.  Custom layer maps
(:mod:`.custom`) need no record.  A model no family serves gets an
:class:`~.propose.UnsupportedArchitecture` error: the families whose layout fits its tensors
anyway, its block tensors and a custom layer map to paste (:mod:`.propose`).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import (apertus, bert, bloom, falcon, gpt2, gpt_neox, gptj, hf_olmo, llama, mixtral, olmo, olmoe, opt,
               phi3)
from .base import Family, Layout, first_prefix, missing_tensor
from .custom import CUSTOM_HELP, custom_layout
from .propose import UnsupportedArchitecture, fitting_families, unsupported

__all__ = ["ARCHITECTURES", "FAMILIES", "LAYOUTS", "UnsupportedArchitecture", "check_layout", "detect_architecture",
           "family_of", "get_layout"]

#: family name -> record, in detection order (from tensor names alone, the first family whose
#: probe tensor is there and none of whose ``absent`` tensors is, wins: the more specific
#: families come first).  A new family is one module and one entry here.
FAMILIES = {m.FAMILY.name: m.FAMILY for m in (gpt_neox, gpt2, olmoe, mixtral, apertus, phi3, llama, olmo, hf_olmo,
                                               bloom, falcon, gptj, opt, bert)}

#: model_type -> its family record.
FAMILY_OF = {mt: fam for fam in FAMILIES.values() for mt in fam.model_types}

#: model_type -> layouts it supports (the first is used for layout="reference" when the
#: architecture has no published reference layout).
LAYOUTS: Mapping[str, tuple] = {mt: fam.layouts for mt, fam in FAMILY_OF.items()}

#: The supported model types.
ARCHITECTURES = tuple(LAYOUTS)


#: What follows a class-name prefix in a model class of that model (``LlamaForCausalLM``,
#: ``GPT2LMHeadModel``, ``BertModel``), and not in another model's (``Qwen3MoeForCausalLM`` is not
#: ``Qwen3``'s, ``GPTNeoXJapaneseForCausalLM`` not ``GPTNeoX``'s).
_CLASS_SUFFIX = re.compile(r"(For[A-Z]\w*|Model|LMHeadModel|PreTrainedModel)")


def family_of(architecture: str) -> Family:
    """The :class:`~.base.Family` record of a model type (``KeyError`` for an unknown one)."""
    return FAMILY_OF[architecture]


def _by_names(names: set[str]) -> str | None:
    for fam in FAMILIES.values():
        p = first_prefix(names, fam.tensor_prefixes, fam.probe)
        if p is not None and not any(p.format(b=0) + a in names for a in fam.absent):
            return fam.model_types[0]
    return None


def detect_architecture(config: Mapping[str, Any] | None, tensor_names: Sequence[str] = (),
                        shapes: Callable[[str], tuple] | None = None) -> str:
    """Architecture from ``config["model_type"]``, else ``config["architectures"]``, else (only
    when the config has no model_type) tensor names. :class:`~.propose.UnsupportedArchitecture`
    (a ``ValueError`` listing the supported ones, and with ``shapes`` the families whose layout
    fits the tensors, the block tensors found and a custom layer map to paste) when none fits."""
    config = config or {}
    mt = config.get("model_type")
    if isinstance(mt, str) and mt in LAYOUTS:
        return mt
    for cls in config.get("architectures") or ():
        for fam in FAMILIES.values():
            for pre, arch in fam.class_prefixes.items():
                if isinstance(cls, str) and cls.startswith(pre) and _CLASS_SUFFIX.fullmatch(cls[len(pre):]):
                    return arch
    names = set(tensor_names)
    if mt:  # a config that names an unsupported model is not second-guessed from tensor names
        fits = fitting_families(FAMILIES, config, names, shapes, check_layout) if shapes is not None else []
        raise unsupported(f"model_type {mt!r}", ARCHITECTURES, tensor_names, shapes, fits)
    found = _by_names(names)
    if found is not None:
        return found
    raise unsupported("no model_type in the config and no known tensor names", ARCHITECTURES, tensor_names, shapes,
                      kind="unknown")


def get_layout(
    config: Mapping[str, Any] | None,
    tensor_names: Sequence[str],
    shapes: Callable[[str], tuple],
    layout: str | Sequence[Sequence[Any]] = "reference",
    architecture: str | None = None,
) -> Layout:
    """The layout for a model, checked against its tensors.

    ``layout``: ``"reference"`` (GPT-NeoX: docs/spec.md section 1.1; other architectures have no published
    layout and use their ``"default"`` one, recorded as such), ``"heads"`` (GPT-NeoX true
    per-head QKV rows; the default layouts of the other architectures already follow the
    heads), ``"default"``, ``"per_expert"`` (mixture-of-experts families), or a custom layer map.
    Every tensor must exist with the shape the config implies; otherwise ``ValueError``.
    """
    names = set(tensor_names)
    config = dict(config or {})
    if not isinstance(layout, str):
        return custom_layout(layout, shapes, names, architecture or str(config.get("model_type") or "custom"))
    if architecture is None:
        architecture = detect_architecture(config, tensor_names, shapes)
    elif architecture not in LAYOUTS:
        raise ValueError(
            f"architecture must be one of {list(ARCHITECTURES)} or None, got {architecture!r}; {CUSTOM_HELP}"
        )
    config["model_type"] = architecture  # the layout's name for it (may override the config's)
    fam = FAMILY_OF[architecture]
    if layout not in fam.layout_for:
        raise ValueError(
            f"layout must be one of {list(fam.layouts)} for {architecture} (or a custom layer map), got {layout!r}"
        )
    lay = fam.build(config, names, shapes, fam.layout_for[layout])
    check_layout(lay, names, shapes, fam.config_keys)
    return lay


_SHAPE_KEYS = ("hidden_size", "n_embd", "intermediate_size", "n_inner", "num_attention_heads", "num_key_value_heads",
               "head_dim")


def check_layout(lay: Layout, names: set[str], shapes: Callable[[str], tuple], keys: Sequence[str] = ()) -> None:
    """``ValueError`` for a missing tensor or a shape that does not match the config (``keys``:
    the config fields the error quotes, by default the common size fields).  A matrix read from
    part of a fused tensor checks the whole stored tensor's shape."""
    for m in lay.matrices:
        if m.is_synthetic:
            continue
        if m.tensor not in names:
            missing_tensor(m.tensor, names)
        got = tuple(shapes(m.tensor))
        want = lay.expected_shape(m) if m.part is None else m.part.shape
        if got != want:
            cfg = {k: lay.config[k] for k in (tuple(keys) or _SHAPE_KEYS) if lay.config.get(k) is not None}
            what = "" if m.part is None else f", the fused tensor of {m.name!r}"
            raise ValueError(
                f"tensor {m.tensor!r} has shape {got}, but the config ({cfg}) implies {want} "
                f"({lay.node_layers[m.in_layer].name} -> {lay.node_layers[m.out_layer].name}, "
                f"{m.orientation} orientation{what})"
            )
        if m.part is not None:  # the builder's own arithmetic, on the checked (real) shape
            n_out, n_in = lay.expected_shape(m)
            if m.part.shape[-1] != n_in or int(m.part.rows(np.array([n_out - 1]))[0]) >= m.part.view_shape[0]:
                raise ValueError(f"layout {lay.architecture}/{lay.name}: matrix {m.name!r} ({n_out} x {n_in}) does not "
                                 f"fit in its fused tensor {m.tensor!r} of shape {m.part.shape}")
