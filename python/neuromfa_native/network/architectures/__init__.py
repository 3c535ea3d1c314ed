"""Layer maps: which weight matrices of a model make its neuron interaction network (NIN).

One module per architecture family, each with one :class:`~.base.Family` record (model types,
``config["architectures"]`` class-name prefixes, tensor-name prefixes, layouts, builder):

=============  ==============================  ==========================================
module         model types                     layouts
=============  ==============================  ==========================================
``gpt_neox``   ``gpt_neox``                    ``"reference"`` (published), ``"heads"``
``gpt2``       ``gpt2``                        ``"default"``
``llama``      ``llama``, ``mistral``,         ``"default"``
               ``qwen2``, ``qwen3``,
               ``smollm3``, ``gemma2``
``olmo``       ``olmo``, ``olmo2``, ``olmo3``  ``"default"``
``hf_olmo``    ``hf_olmo`` (OLMo-1 original)   ``"default"``
``olmoe``      ``olmoe``, ``qwen3_moe``        ``"default"`` (pooled experts), ``"per_expert"``
``mixtral``    ``mixtral``                     ``"default"`` (pooled experts), ``"per_expert"``
``apertus``    ``apertus``                     ``"default"``
``phi3``       ``phi3``                        ``"default"``
``bloom``      ``bloom``                       ``"default"``
``falcon``     ``falcon``                      ``"default"``
``gptj``       ``gptj``                        ``"default"``
``opt``        ``opt``                         ``"default"``
``bert``       ``bert``                        ``"default"``
``custom``     any (a layer map you pass)      ``"custom"``
=============  ==============================  ==========================================

:mod:`.registry` detects the family of a checkpoint and builds its :class:`Layout`;
:mod:`.base` holds the structures and the helpers builders share; :mod:`.decoder` lays out the
decoder blocks most families share (attention, gated/plain/mixture-of-experts MLP);
:mod:`.propose` explains a model no family serves.

Adding an architecture: a module ``architectures/<family>.py`` with its builder
``(config, tensor names, shapes, layout name) -> Layout`` (most are a few lines over
:func:`.decoder.decoder_layout`) and its ``FAMILY = Family(...)`` record, and one entry in
:data:`.registry.FAMILIES`; a model type that follows an existing family's tensors is one more
name in that family's ``model_types`` and ``class_prefixes``.
See docs/architectures.md for every layout.
"""
from .base import Family, Layout, MatrixSpec, NodeLayer, RowPart
from .custom import custom_layout
from .registry import (ARCHITECTURES, FAMILIES, LAYOUTS, UnsupportedArchitecture, check_layout, detect_architecture,
                       family_of, get_layout)

__all__ = [
    "ARCHITECTURES",
    "FAMILIES",
    "Family",
    "LAYOUTS",
    "Layout",
    "MatrixSpec",
    "NodeLayer",
    "RowPart",
    "UnsupportedArchitecture",
    "check_layout",
    "custom_layout",
    "detect_architecture",
    "family_of",
    "get_layout",
]
