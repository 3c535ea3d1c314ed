"""neuromfa_native: neuron-based multifractal analysis (NeuroMFA) with a C++/OpenMP core."""
from importlib.metadata import PackageNotFoundError, version as _version

from ._core import openmp_enabled
from .engine import Spectrum, analyze_graph, emergence, spectrum_from_tau

try:
    __version__ = _version("neuromfa-native")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "Spectrum",
    "analyze_graph",
    "emergence",
    "openmp_enabled",
    "spectrum_from_tau",
    "__version__",
]
