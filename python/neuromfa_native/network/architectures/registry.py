"""The registry of architecture families: detection and layout building read only this table.

:data:`FAMILIES` holds one :class:`~.base.Family` record per family module (``gpt_neox``,
``gpt2``, ``llama``, ``bert``); :data:`LAYOUTS`, :data:`ARCHITECTURES` and the model type ->
family map are derived from it.  Custom layer maps (:mod:`.custom`) need no record.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from ...config import DEFAULT_CONFIG
from . import bert, gpt2, gpt_neox, llama
from .base import Layout, first_prefix, missing_tensor
from .custom import CUSTOM_HELP, custom_layout

__all__ = ["ARCHITECTURES", "FAMILIES", "LAYOUTS", "check_layout", "detect_architecture", "get_layout"]

#: family name -> record, in detection order.  A new family is one module and one entry here.
FAMILIES = {m.FAMILY.name: m.FAMILY for m in (gpt_neox, gpt2, llama, bert)}

#: model_type -> its family record.
FAMILY_OF = {mt: fam for fam in FAMILIES.values() for mt in fam.model_types}

#: model_type -> layouts it supports (the first is used for layout="reference" when the
#: architecture has no published reference layout).
LAYOUTS: Mapping[str, tuple] = {mt: fam.layouts for mt, fam in FAMILY_OF.items()}

#: The supported model types.
ARCHITECTURES = tuple(LAYOUTS)


def detect_architecture(config: Mapping[str, Any] | None, tensor_names: Sequence[str] = ()) -> str:
    """Architecture from ``config["model_type"]``, else ``config["architectures"]``, else (only
    when the config has no model_type) tensor names. ``ValueError`` (listing the supported
    ones and how to pass a custom layer map) when none fits."""
    config = config or {}
    mt = config.get("model_type")
    if isinstance(mt, str) and mt in LAYOUTS:
        return mt
    for cls in config.get("architectures") or ():
        for fam in FAMILIES.values():
            for pre, arch in fam.class_prefixes.items():
                # a longer class name of another model (GPTNeoXJapanese) is not this one
                if isinstance(cls, str) and cls.startswith(pre) and not cls.startswith(pre + "J"):
                    return arch
    if mt:  # a config that names an unsupported model is not second-guessed from tensor names
        raise ValueError(
            f"unsupported architecture (model_type {mt!r}); supported: {list(ARCHITECTURES)}; "
            f"pass architecture=... if its tensors follow one of them, or {CUSTOM_HELP}"
        )
    names = set(tensor_names)
    for fam in FAMILIES.values():
        if first_prefix(names, fam.tensor_prefixes, fam.probe) is not None:
            return fam.model_types[0]
    raise ValueError(
        "unknown architecture (no model_type in the config and no known tensor names); "
        f"supported: {list(ARCHITECTURES)}; {CUSTOM_HELP}"
    )


def get_layout(
    config: Mapping[str, Any] | None,
    tensor_names: Sequence[str],
    shapes: Callable[[str], tuple],
    layout: str | Sequence[Sequence[Any]] = DEFAULT_CONFIG.layout,
    architecture: str | None = None,
) -> Layout:
    """The layout for a model, checked against its tensors.

    ``layout``: ``"reference"`` (GPT-NeoX: docs/spec.md section 1.1; other architectures have no published
    layout and use their ``"default"`` one, recorded as such), ``"heads"`` (GPT-NeoX true
    per-head QKV rows; the default layouts of the other architectures already follow the
    heads), ``"default"``, or a custom layer map. Every tensor must exist with the shape the
    config implies; otherwise ``ValueError``.
    """
    names = set(tensor_names)
    config = dict(config or {})
    if not isinstance(layout, str):
        return custom_layout(layout, shapes, names, architecture or str(config.get("model_type") or "custom"))
    if architecture is None:
        architecture = detect_architecture(config, tensor_names)
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
    check_layout(lay, names, shapes)
    return lay


def check_layout(lay: Layout, names: set[str], shapes: Callable[[str], tuple]) -> None:
    """``ValueError`` for a missing tensor or a shape that does not match the config."""
    for m in lay.matrices:
        if m.is_synthetic:
            continue
        if m.name not in names:
            missing_tensor(m.name, names)
        got = tuple(shapes(m.name))
        want = lay.expected_shape(m)
        if got != want:
            keys = ("hidden_size", "n_embd", "intermediate_size", "n_inner", "num_attention_heads",
                    "num_key_value_heads", "head_dim")
            cfg = {k: lay.config[k] for k in keys if lay.config.get(k) is not None}
            raise ValueError(
                f"tensor {m.name!r} has shape {got}, but the config ({cfg}) implies {want} "
                f"({lay.node_layers[m.in_layer].name} -> {lay.node_layers[m.out_layer].name}, "
                f"{m.orientation} orientation)"
            )

