"""What every result dataclass of the package shares: read-only arrays, read-only mappings, and
an ``__eq__`` that compares arrays by value (the generated one would raise on them).

Result classes are ``@dataclass(frozen=True, eq=False)`` with ``__eq__ = fields_equal``; they
hold numpy arrays made read-only by :func:`readonly` and mappings made read-only by
:func:`frozen_mapping`.  Missing numbers are NaN (never ``None``) in every result.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Optional

import numpy as np


def readonly(a: Any, dtype: Any = None) -> np.ndarray:
    """``a`` as a C-contiguous numpy array of ``dtype`` that cannot be written (no copy when it
    already is one; the caller hands the array over)."""
    a = np.ascontiguousarray(a, dtype=dtype)
    a.setflags(write=False)
    return a


class FrozenMapping(Mapping):
    """A read-only mapping that pickles (results travel between processes; a
    ``types.MappingProxyType`` does not pickle).  Compares equal to any mapping of the same
    items."""

    __slots__ = ("_items",)

    def __init__(self, items: Any = ()):
        self._items = dict(items)

    def __getitem__(self, key: Any) -> Any:
        return self._items[key]

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"FrozenMapping({self._items!r})"

    def __reduce__(self):
        return (FrozenMapping, (self._items,))


def frozen_mapping(d: Optional[Mapping] = None) -> Mapping:
    """A read-only copy of ``d`` (lists inside become tuples, dicts frozen mappings)."""
    def freeze(x: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return tuple(freeze(y) for y in x)
        if isinstance(x, Mapping):
            return FrozenMapping({k: freeze(y) for k, y in x.items()})
        return x
    return FrozenMapping({k: freeze(x) for k, x in dict(d or {}).items()})


def thawed(x: Any) -> Any:
    """Plain (JSON-friendly) ``dict``/``list`` copies of frozen mappings and tuples."""
    if isinstance(x, Mapping):
        return {k: thawed(y) for k, y in x.items()}
    if isinstance(x, (tuple, list)):
        return [thawed(y) for y in x]
    return x


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def fields_equal(self: Any, other: Any) -> Any:
    """``__eq__`` of a result dataclass: same class, every field equal (arrays by value, NaN
    equal to NaN)."""
    if other.__class__ is not self.__class__:
        return NotImplemented
    return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in dataclasses.fields(self))
