"""The installed package's version, for the files a run writes (``run.json``, reports)."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("neuromfa-native")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"
