"""Sphinx configuration of the API reference (built from the package's numpydoc docstrings).

Build: ``sphinx-build -W --keep-going -b html docs/api build/api`` with the package installed.
"""
from importlib.metadata import version as _version

project = "neuromfa-native"
author = "neuromfa-native developers"
release = _version("neuromfa-native")
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
]
autosummary_generate = True
autodoc_typehints = "none"           # numpydoc's Parameters sections carry the types
numpydoc_show_class_members = False  # members are listed by autosummary tables instead
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
intersphinx_mapping = {}             # offline: no inventory is fetched when the docs build
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []
nitpicky = False
