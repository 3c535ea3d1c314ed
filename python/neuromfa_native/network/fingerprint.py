"""Which bytes a network is: the weight fingerprint, the pass that also counts non-finite
weights, identical checkpoints found by fingerprint, and the digest of the network a layout
builds from them (:func:`network_digest`).

A stored result is keyed by both (:func:`result_key`): the weights alone do not make the network,
``config.json`` shapes it too (GPT-NeoX's ``num_attention_heads`` with ``layout="heads"``, Llama's
``num_key_value_heads`` and ``head_dim``, the number of blocks), so a corrected config never
meets the results of the old one."""
from __future__ import annotations

import functools
import hashlib
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from .. import _core
from ..config import DEFAULT_CONFIG
from ..io.hub import hub_fingerprint, parse_hub_url
from ..io.sources import resolve_source
from .architectures import get_layout

__all__ = ["find_identical", "fingerprint", "fingerprint_and_scan", "network_digest", "result_key"]


def fingerprint(
    source: Any,
    *,
    layout: str | Sequence[Sequence[Any]] | None = DEFAULT_CONFIG.layout,
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


def hub_revision_fingerprint(source: Any, revision: Optional[str] = None) -> Optional[str]:
    """The fingerprint of a hub revision read by range (``hf://org/name@rev``) from the hub's
    own hashes of its ``config.json`` and weight files, before any byte is read; None for any
    other source. The hashes fix the config, hence the network too (for a given layout option)."""
    if revision is None and isinstance(source, str) and source.startswith("hf://"):
        repo, rev, path = parse_hub_url(source)
        if not path:
            return hub_fingerprint(repo, rev)
    return None


def fingerprint_and_scan(
    source: Any,
    *,
    layout: str | Sequence[Sequence[Any]] | None = DEFAULT_CONFIG.layout,
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
    hub = hub_revision_fingerprint(source, revision)
    if hub is not None:
        return hub, {}
    src = resolve_source(source, revision=revision)
    known = src.tensor_names()
    names = sorted(known) if layout is None else sorted(
        set(get_layout(src.config, known, src.shape, layout).tensor_names))
    return scan_names(src, names)


def scan_names(src: Any, names: Sequence[str]) -> tuple[str, dict[str, int]]:
    """:func:`fingerprint_and_scan` of the tensors ``names`` of an opened source, for a caller
    that has built the layout already (the runner: the layout is not built a second time)."""
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


def _callable_id(f: Optional[Callable]) -> str:
    """A stable description of a layout's index map or synthetic block: the function's dotted
    name and, for a ``functools.partial``, its bound arguments (head sizes, offsets)."""
    if f is None:
        return ""
    if isinstance(f, functools.partial):
        kw = sorted((k, repr(v)) for k, v in f.keywords.items())
        return f"{_callable_id(f.func)}({[repr(a) for a in f.args]}, {kw})"
    name = f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', type(f).__name__)}"
    cells = getattr(f, "__closure__", None) or ()
    return name + "".join(f"[{c.cell_contents!r}]" for c in cells)


def network_digest(layout: Any) -> str:
    """16 hex digits naming the network a :class:`~.architectures.base.Layout` builds: its node
    layers (names, sizes, how they are drawn), its matrices (tensors, orientations) and the
    index maps and synthetic blocks with their parameters (head sizes). Two configs that build
    the same network from the same tensors give the same digest; any change to it another.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> from neuromfa_native.network.nin import load_layout
    >>> _, ref = load_layout("examples/pythia-tiny/step0", "reference")
    >>> _, heads = load_layout("examples/pythia-tiny/step0", "heads")
    >>> len(network_digest(ref)), network_digest(ref) == network_digest(heads)
    (16, False)
    """
    h = hashlib.blake2b(digest_size=8)
    h.update(f"network-v1\0{layout.architecture}\0{layout.name}\0".encode())
    for nl in layout.node_layers:
        h.update(f"N\0{nl.name}\0{nl.size}\0{nl.draw}\0{nl.draw_size}\0{nl.draw_factor}\0"
                 f"{_callable_id(nl.expand)}\0".encode())
    for m in layout.matrices:
        h.update(f"M\0{m.name}\0{m.in_layer}\0{m.out_layer}\0{m.orientation}\0{m.nnz}\0"
                 f"{_callable_id(m.synthetic)}\0".encode())
    return h.hexdigest()


def result_key(weights: str, network: str) -> str:
    """The key of a stored result: the weight fingerprint and the network digest."""
    return f"{weights}-{network}"


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
    layout: str | Sequence[Sequence[Any]] | None = DEFAULT_CONFIG.layout,
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
