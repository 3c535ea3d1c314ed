"""Layer maps: which weight matrices of a model make its neuron interaction network (NIN).

One module per architecture family, each with one :class:`~.base.Family` record (model types,
``config["architectures"]`` class-name prefixes, tensor-name prefixes, layouts, builder):

=============  ==============================  ==========================================
module         model types                     layouts
=============  ==============================  ==========================================
``gpt_neox``   ``gpt_neox``                    ``"reference"`` (published), ``"heads"``
``gpt2``       ``gpt2``                        ``"default"``
``llama``      ``llama``, ``mistral``,         ``"default"``
               ``qwen2``
``bert``       ``bert``                        ``"default"``
``custom``     any (a layer map you pass)      ``"custom"``
=============  ==============================  ==========================================

:mod:`.registry` detects the family of a checkpoint and builds its :class:`Layout`;
:mod:`.base` holds the structures and the helpers builders share.

Adding an architecture: a module ``architectures/<family>.py`` with its builder
``(config, tensor names, shapes, layout name) -> Layout`` and its ``FAMILY = Family(...)``
record, and one entry in :data:`.registry.FAMILIES`; a model type that follows an existing
family's tensors is one more name in that family's ``model_types`` and ``class_prefixes``.
See docs/architectures.md for every layout.
"""
from .base import Family, Layout, MatrixSpec, NodeLayer
from .custom import custom_layout
from .registry import ARCHITECTURES, FAMILIES, LAYOUTS, check_layout, detect_architecture, get_layout

__all__ = [
    "ARCHITECTURES",
    "FAMILIES",
    "Family",
    "LAYOUTS",
    "Layout",
    "MatrixSpec",
    "NodeLayer",
    "check_layout",
    "custom_layout",
    "detect_architecture",
    "get_layout",
]
