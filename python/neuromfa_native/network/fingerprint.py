"""Which bytes a network is: the weight fingerprint that keys every stored result, the pass
that also counts non-finite weights, and identical checkpoints found by fingerprint."""
from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

import numpy as np

from .. import _core
from ..io.hub import hub_fingerprint, parse_hub_url
from ..io.sources import resolve_source
from .architectures import get_layout

__all__ = ["find_identical", "fingerprint", "fingerprint_and_scan"]


def fingerprint(
    source: Any,
    *,
    layout: str | Sequence[Sequence[Any]] | None = "reference",
    revision: str | None = None,
    architecture: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> str:
    """Hex digest of the weight bytes a network uses (see :meth:`.sources.TensorSource.fingerprint`).

    With ``layout=None`` every tensor of the checkpoint is hashed; a layout that does not fit the
    checkpoint is an error (hashing other tensors would key results by the wrong bytes).

    Parameters
    ----------
    source:
        a checkpoint (anything :func:`~.sources.resolve_source` takes).
    layout:
        the layout whose tensors are hashed, or ``None`` for every tensor.
    revision, architecture, config:
        as for :func:`build_nin`.

    Returns
    -------
    str
        32 hex digits (blake2b-128 of the names, dtypes, shapes and bytes).

    Raises
    ------
    ValueError, TypeError
        a source that cannot be read or a layout that does not fit it.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> fp = nm.fingerprint("examples/pythia-tiny/step0")
    >>> len(fp), fp == nm.fingerprint("examples/pythia-tiny/step0")
    (32, True)
    """
    src = resolve_source(source, revision=revision, config=config)
    names: Sequence[str] | None = None
    if layout is not None:
        names = get_layout(src.config, src.tensor_names(), src.shape, layout, architecture).tensor_names
    return src.fingerprint(names)


def fingerprint_and_scan(
    source: Any,
    *,
    layout: str | Sequence[Sequence[Any]] | None = "reference",
    revision: str | None = None,
) -> tuple[str, dict[str, int]]:
    """:func:`fingerprint` and, in the same pass over the bytes, the number of non-finite
    (NaN or infinite) weights of every hashed floating-point tensor that has any.

    Returns ``(digest, {tensor name: count})``; the digest equals :func:`fingerprint`'s.  A
    sampled network reads only the sampled rows, so this is where a non-finite weight outside
    them is seen.  A remote source identified by the server's metadata
    (:meth:`~.sources.TensorSource.metadata_fingerprint`) is not read: its counts are empty
    (a non-finite weight in a sampled row still fails that sample).
    """
    if revision is None and isinstance(source, str) and source.startswith("hf://"):
        repo, rev, path = parse_hub_url(source)
        if not path:  # a hub revision: from the hub's hashes, before any byte is read
            return hub_fingerprint(repo, rev), {}
    src = resolve_source(source, revision=revision)
    known = src.tensor_names()
    names = sorted(known) if layout is None else sorted(
        set(get_layout(src.config, known, src.shape, layout).tensor_names))
    fp = src.metadata_fingerprint(names)
    if fp is not None:  # a remote checkpoint identified by the server's hashes: no byte is read
        return fp, {}
    return _hash_and_scan(src, names)


def _hash_and_scan(src: Any, names: Sequence[str]) -> tuple[str, dict[str, int]]:
    """The digest of :meth:`~.sources.TensorSource.fingerprint` and the non-finite counts in one
    pass over the bytes: ``hashlib``'s blake2b (one sequential stream, its value must not
    change: results are stored by it; the GIL released, so checkpoints hash in parallel) and
    the core's count (``_core.count_nonfinite``: the exponent bits, no numpy temporaries). The
    hash bounds the pass (about 0.9 GB/s a core here; measured in bench/bench_overhead.py)."""
    h = hashlib.blake2b(digest_size=16)
    bad: dict[str, int] = {}
    for n in names:
        h.update(f"{n}\0{src.dtype(n)}\0{src.shape(n)}\0".encode())
        count = _NonFiniteCounter(src.dtype(n))
        for chunk in src.byte_chunks(n):  # the bytes TensorSource.fingerprint hashes
            h.update(chunk)
            count.add(chunk)
        if count.total:
            bad[n] = count.total
    return h.hexdigest(), bad


#: the float types whose non-finite values (NaN, inf: exponent bits all ones) the pass counts,
#: and their sizes in bytes
_FLOAT_SIZES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


class _NonFiniteCounter:
    """Counts NaN/inf values in a tensor's little-endian bytes, given chunk by chunk (a chunk
    may end inside a value: the remainder is kept for the next one)."""

    def __init__(self, dtype: str):
        self.dtype = dtype
        self.size = _FLOAT_SIZES.get(dtype)
        self.rest = b""
        self.total = 0

    def add(self, chunk: Any) -> None:
        if self.size is None:
            return
        data = self.rest + bytes(chunk) if self.rest else chunk
        n = len(data) // self.size
        if n:  # the core: the exponent bits of each value, in parallel, GIL released
            self.total += _core.count_nonfinite(np.frombuffer(data, np.uint8, n * self.size), self.dtype, 1)
        self.rest = bytes(data[n * self.size:])


def find_identical(
    sources: Sequence[Any],
    *,
    layout: str | Sequence[Sequence[Any]] | None = "reference",
    revision: str | None = None,
) -> list[list[int]]:
    """Groups of checkpoints whose weights are byte-identical.

    Returns a list of groups, each the sorted indices (into ``sources``) of two or more
    sources with the same :func:`fingerprint`; groups are ordered by their first index.
    An empty list means all checkpoints differ.

    Parameters
    ----------
    sources:
        checkpoints (anything :func:`~.sources.resolve_source` takes).
    layout, revision:
        as for :func:`fingerprint`.

    Returns
    -------
    list of list of int
        the groups of identical checkpoints (empty when all differ).

    Raises
    ------
    ValueError, TypeError
        a source that cannot be read or a layout that does not fit it.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> nm.find_identical(["examples/pythia-tiny/step0", "examples/pythia-tiny/step0", "examples/pythia-tiny/step16"])
    [[0, 1]]
    """
    if isinstance(sources, (str, bytes)) or not isinstance(sources, Sequence):
        raise TypeError(f"sources must be a sequence of sources, got {type(sources).__name__}")
    by_hash: dict[str, list[int]] = {}
    for k, s in enumerate(sources):
        by_hash.setdefault(fingerprint(s, layout=layout, revision=revision), []).append(k)
    return sorted((g for g in by_hash.values() if len(g) > 1), key=lambda g: g[0])
