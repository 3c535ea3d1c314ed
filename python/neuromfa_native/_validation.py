"""The checks of user input, written once: every public function and the configuration use them.

Each check takes the value and the parameter's name, returns the value in its canonical form
(an ``int``, a ``float``, a contiguous array) and raises ``ValueError``/``TypeError`` naming the
parameter and the bad value.  Private to the package: the names here are not public API.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Optional, Sequence

import numpy as np

from ._text import short

#: Upper bounds of the integer options (a larger value is a one-line error, never an overflow
#: or an allocation the machine cannot hold): counts of neurons or distances, samples per
#: checkpoint (and the largest sample index), bootstrap replicates, threads, training steps
#: (exact as floats: steps are plotted and used as covariates).
MAX_COUNT = 2**31 - 1
MAX_SAMPLES = 100_000
MAX_SAMPLE_INDEX = 2**32 - 1
MAX_BOOTSTRAP = 100_000
MAX_THREADS = 4096
#: checkpoints one pattern's values may name (`--values`); the longest published series has a few hundred
MAX_VALUES = 100_000
MAX_STEP = 2**53
#: The largest dimension, stride or offset (in elements) a file may give, and the most
#: dimensions of a tensor: checked before any arithmetic on them (a product of huge integers
#: costs quadratic time). An int64 holds the one; numpy allows 64 dimensions.
MAX_DIM = 2**63
MAX_RANK = 64

#: The reference moments -3.0, -2.9, ..., 3.0 (61 values, correctly rounded decimals).
DEFAULT_Q = np.arange(-30, 31) / 10.0
DEFAULT_Q.setflags(write=False)


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (``bool`` is not)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _at_most(value: int, name: str, maximum: Optional[int]) -> int:
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return int(value)


def positive_int(value: Any, name: str, maximum: Optional[int] = MAX_COUNT) -> int:
    """``value`` as an ``int`` in ``[1, maximum]``."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return _at_most(value, name, maximum)


def non_negative_int(value: Any, name: str, zero_means: str, maximum: Optional[int] = MAX_COUNT) -> int:
    """``value`` as an ``int`` in ``[0, maximum]`` (0 means ``zero_means``)."""
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer (0 = {zero_means}), got {value!r}")
    return _at_most(value, name, maximum)


def confidence_level(ci: Any, name: str = "ci") -> float:
    """``ci`` as a ``float`` in (0, 1) (the level of a two-sided interval)."""
    if not isinstance(ci, (int, float, np.floating)) or isinstance(ci, bool) or not 0 < ci < 1:
        raise ValueError(f"{name} must be in (0, 1), got {ci!r}")
    return float(ci)


def integer(value: Any, name: str) -> int:
    """``value`` as an ``int``."""
    if not is_int(value):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def dims(values: Any, what: str) -> tuple:
    """``values`` (a shape or strides read from a file: a list or tuple of non-negative
    integers) as a tuple; ``ValueError`` naming ``what`` for more than :data:`MAX_RANK` of
    them or one above :data:`MAX_DIM`. Nothing is multiplied or formatted beyond a bound."""
    if not isinstance(values, (list, tuple)) or not all(is_int(v) and v >= 0 for v in values):
        raise ValueError(f"{what} must be a list of non-negative integers, got {short(values)}")
    if len(values) > MAX_RANK:
        raise ValueError(f"{what} has {len(values)} dimensions, more than {MAX_RANK}")
    big = [v for v in values if v > MAX_DIM]
    if big:
        raise ValueError(f"{what} has a dimension above 2**63, too large for any array: {short(big[0])}")
    return tuple(int(v) for v in values)


def capped_product(values: Sequence[int], cap: int) -> int:
    """The product of ``values`` (non-negative integers) when it is at most ``cap``, else
    ``cap + 1``: the multiplication stops as soon as the product passes ``cap``."""
    if 0 in values:
        return 0
    out = 1
    for v in values:
        out *= v
        if out > cap:
            return cap + 1
    return out


def seed(value: Any, name: str = "seed") -> int:
    """``value`` as a non-negative ``int`` (numpy's random generators take no negative seed)."""
    if integer(value, name) < 0:
        raise ValueError(f"{name} must be a non-negative integer (numpy's random generators take no negative "
                         f"seed), got {short(value)}")
    return int(value)


def positive_int_or_none(value: Any, name: str, none_means: str) -> Optional[int]:
    """``value`` as an ``int >= 1``, or ``None`` (which means ``none_means``)."""
    if value is not None and (not is_int(value) or value < 1):
        raise ValueError(f"{name} must be a positive integer or None ({none_means}), got {value!r}")
    return None if value is None else _at_most(value, name, MAX_COUNT)


def positive_number(value: Any, name: str) -> float:
    """``value`` as a positive finite ``float``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def one_of(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` when it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def names(value: Any, name: str, choices: Sequence[str]) -> tuple:
    """A subset of ``choices`` (a sequence, or one comma-separated string) in the order of
    ``choices``; ``None`` is none."""
    if value is None:
        return ()
    if isinstance(value, str):
        value = [c for c in value.split(",") if c.strip()]
    try:
        given = [str(c).strip() for c in value]
    except TypeError:
        raise TypeError(f"{name} must be a sequence of names from {tuple(choices)}, got {value!r}") from None
    bad = [c for c in given if c not in choices]
    if bad:
        raise ValueError(f"unknown {name} {bad}; choose from {tuple(choices)}")
    return tuple(c for c in choices if c in given)


def moments(q: Any) -> np.ndarray:
    """Moments ``q``: 1-d, at least 2, finite, strictly increasing; ``None`` is :data:`DEFAULT_Q`."""
    if q is None:
        return DEFAULT_Q
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 1 or q.size < 2:
        raise ValueError(f"q must be a 1-d sequence of at least 2 moments, got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ValueError("q must hold finite moments")
    if np.any(np.diff(q) <= 0):
        raise ValueError("q must be strictly increasing")
    return q


def box_params(threshold: Any, min_edges: Any, decimals: Any) -> tuple:
    """``(threshold, min_edges, decimals)`` of the box counting, as ``(float, int, int)``."""
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise TypeError(f"threshold must be a number, got {threshold!r}") from None
    if not np.isfinite(threshold) or threshold <= 1:
        raise ValueError(f"threshold must be a finite number > 1 (distances are 1/|w| > 1), got {threshold!r}")
    if not is_int(min_edges) or min_edges < 1:
        # 0 would make nodes whose every distance was filtered out centres with empty boxes
        raise ValueError(f"min_edges must be an integer >= 1, got {min_edges!r}")
    _at_most(min_edges, "min_edges", MAX_COUNT)
    if not is_int(decimals) or not -15 <= decimals <= 15:
        raise ValueError(f"decimals must be an integer in [-15, 15], got {decimals!r}")
    return threshold, int(min_edges), int(decimals)


def samples(value: Any) -> tuple:
    """Sample indices from a count K (0..K-1) or explicit distinct non-negative indices."""
    if is_int(value):
        if value < 1:
            raise ValueError(f"samples must be >= 1, got {value}")
        return tuple(range(_at_most(value, "samples", MAX_SAMPLES)))
    if isinstance(value, (str, bytes)):
        raise TypeError(f"samples must be a count or a sequence of indices, got {value!r}")
    try:
        ids = [s for s in value]
    except TypeError:
        raise TypeError(f"samples must be a count or a sequence of indices, got {value!r}") from None
    if not all(is_int(s) for s in ids):
        raise TypeError(f"samples must be a count or a sequence of integer indices, got {value!r}"[:300])
    if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
        raise ValueError(f"samples must be a positive count or distinct non-negative indices, got {value!r}"[:300])
    _at_most(len(ids), "the number of samples", MAX_SAMPLES)
    _at_most(max(ids), "a sample index", MAX_SAMPLE_INDEX)
    return tuple(int(s) for s in ids)


# GNU OpenMP does not survive fork(): a child forked after the parent ran a parallel region
# hangs in its first one.  Children of a fork therefore compute on one thread (and say so once);
# spawn or forkserver process pools keep all threads.
_FORKED_CHILD: Any = False


def _after_fork_in_child() -> None:
    global _FORKED_CHILD
    _FORKED_CHILD = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def threads(n_threads: Any) -> int:
    """OpenMP threads for the core: a positive count, or -1 for all cores (``None`` or -1)."""
    global _FORKED_CHILD
    if not (n_threads is None or n_threads == -1) and (not is_int(n_threads) or n_threads < 1):
        raise ValueError(f"n_threads must be a positive integer, -1 or None, got {n_threads!r}")
    if n_threads is not None:
        _at_most(n_threads, "n_threads", MAX_THREADS)
    if _FORKED_CHILD and n_threads != 1:
        if _FORKED_CHILD is True:
            warnings.warn("neuromfa_native runs on one thread in a fork()ed process (GNU OpenMP is not fork-safe); "
                          "use a 'spawn' or 'forkserver' process pool to keep all threads", RuntimeWarning,
                          stacklevel=3)
            _FORKED_CHILD = "warned"
        return 1
    return -1 if n_threads is None or n_threads == -1 else int(n_threads)


def ids(a: Any, name: str, check_negative: bool = True) -> np.ndarray:
    """1-d int64 node ids; negative ids are refused here unless the core checks them itself."""
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {a.shape}")
    if a.dtype.kind in "iu":
        if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{name} holds ids beyond the int64 range")
        out = np.ascontiguousarray(a, dtype=np.int64)
    elif a.dtype.kind == "f":
        if a.size and not np.all(np.isfinite(a)):
            raise ValueError(f"{name} holds NaN or infinite ids")
        out = a.astype(np.int64)
        if not np.array_equal(out, a):
            raise ValueError(f"{name} holds non-integer ids")
    elif a.size == 0:
        out = np.zeros(0, np.int64)
    else:
        raise TypeError(f"{name} must hold integer node ids, got dtype {a.dtype}")
    if check_negative and out.size and out.min() < 0:
        i = int(np.argmax(out < 0))
        raise ValueError(f"{name} holds negative node ids (first at index {i}: {out[i]})")
    return out


def weights(w: Any) -> tuple:
    """Weights as a contiguous array plus the kind string the core expects (no silent copy)."""
    w = np.asarray(w)
    if w.ndim != 1:
        raise ValueError(f"weight must be 1-dimensional, got shape {w.shape}")
    if w.dtype == np.float16:
        return np.ascontiguousarray(w).view(np.uint16), "f16"
    if w.dtype.name == "bfloat16":  # ml_dtypes / jax bfloat16
        return np.ascontiguousarray(w).view(np.uint16), "bf16"
    if w.dtype == np.float32:
        return np.ascontiguousarray(w), "f32"
    if w.dtype == np.float64:
        return np.ascontiguousarray(w), "f64"
    if w.dtype.kind in "iuf":
        return np.ascontiguousarray(w, dtype=np.float64), "f64"
    raise TypeError(f"weight must be a real floating-point array, got dtype {w.dtype}")
