"""Type stubs of the C++ core (cpp/bindings.cpp)."""
from typing import Any, Dict, List

import numpy as np

__version__: str

def openmp_enabled() -> bool: ...
def max_threads() -> int: ...
def onehop_boxes(
    src: np.ndarray, weight: np.ndarray, weight_kind: str, threshold: float, decimals: int, min_edges: int,
    n_threads: int,
) -> Dict[str, Any]: ...
def log_partition(
    indptr: np.ndarray, key: np.ndarray, count: np.ndarray, decimals: int, q: List[float], n_threads: int
) -> Dict[str, Any]: ...
