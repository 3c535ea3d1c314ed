"""Tensors read by byte range from a file: the common part of the torch-zip and remote readers.

A *byte reader* is any object with

- ``name`` (for messages) and ``size`` (bytes in the file);
- ``readinto_many(jobs)``: fill each ``(position, memoryview)`` of ``jobs`` with the file's
  bytes from that position, exactly (a short read is an error, never zero-filled);
- ``bytes_read``: bytes fetched so far.

:class:`LocalFile` is the local one (positioned reads, ``os.pread``); :mod:`.remote` has the
remote one over HTTP or fsspec (planned ranges, requests in parallel).

:class:`RangedTensors` is a table of tensors (dtype code, shape, strides, absolute byte offset)
over one byte reader, with the same ``get``/``get_slice`` contract as
:class:`~.safetensors_io.SafetensorsFile`: only the selected rows of a 2-d tensor are read,
runs of consecutive rows in one piece. A tensor whose strides are not C-contiguous (torch
saves views such as a transpose with their storage) is read whole over the byte span it
covers, then strided in memory: correct, but reads the whole span. Nothing is materialised
beyond what the span and the rows asked for need: a view whose strides repeat its storage (a
zero stride, overlapping windows) is returned by :meth:`RangedTensors.get` as a read-only view
over the span, its rows are gathered from that view, and its bytes are hashed in chunks.

:class:`RangedSource` is the :class:`~.sources.TensorSource` over one or several such tables.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import dims
from .safetensors import SAFETENSORS_DTYPES, HeaderQueries, as_index, bf16_to_float32, close_names, row_view
from .base import TensorSource

__all__ = ["LocalFile", "RangedSource", "RangedTensors", "TensorEntry"]

_CHUNK = 1 << 24


class LocalFile:
    """A local file read with positioned reads (no memory map: nothing it reads stays resident)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_file():
            raise ValueError(f"{self.name!r} does not exist or is not a file")
        self.size = self.path.stat().st_size
        self.bytes_read = 0

    def readinto_many(self, jobs: Sequence[tuple[int, memoryview]]) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for pos, dst in jobs:
                if pos < 0 or pos + len(dst) > self.size:
                    raise ValueError(f"{self.name}: read of {len(dst)} bytes at {pos} goes beyond the end "
                                     f"of the file ({self.size} bytes): truncated file")
                while len(dst):
                    n = os.preadv(fd, [dst], pos) if hasattr(os, "preadv") else _pread_into(fd, dst, pos)
                    if n <= 0:
                        raise ValueError(f"{self.name}: file shrank while reading it")
                    self.bytes_read += n
                    dst, pos = dst[n:], pos + n
        finally:
            os.close(fd)

    def read(self, pos: int, n: int) -> bytes:
        buf = bytearray(n)
        self.readinto_many([(pos, memoryview(buf))])
        return bytes(buf)


def _pread_into(fd: int, dst: memoryview, pos: int) -> int:
    data = os.pread(fd, len(dst), pos)
    dst[: len(data)] = data
    return len(data)


@dataclass(frozen=True)
class TensorEntry:
    """One tensor: dtype code (``"F16"``, ``"BF16"``, ...), shape, strides in elements (None:
    C-contiguous) and the absolute byte offset of its first element in the file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    strides: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        # bounded before any arithmetic on them: a product of huge integers costs quadratic time
        dims(self.shape, f"tensor {self.name!r}: shape")
        if self.strides is not None:
            dims(self.strides, f"tensor {self.name!r}: strides")

    @property
    def itemsize(self) -> int:
        return SAFETENSORS_DTYPES[self.dtype][0].itemsize

    @property
    def span(self) -> tuple[int, int]:
        """``[begin, end)`` bytes covering every element."""
        if any(s == 0 for s in self.shape):
            return self.offset, self.offset
        if self.strides is None:  # Python integers: a product never wraps
            return self.offset, self.offset + math.prod(self.shape) * self.itemsize
        last = sum((n - 1) * s for n, s in zip(self.shape, self.strides))
        return self.offset, self.offset + (last + 1) * self.itemsize


def c_strides(shape: Sequence[int]) -> tuple[int, ...]:
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return tuple(reversed(out))


def is_c_contiguous(shape: Sequence[int], strides: Sequence[int]) -> bool:
    """True when ``strides`` (elements) lay out ``shape`` in C order (size-1 dims: any stride)."""
    if any(n == 0 for n in shape):
        return True
    return all(n == 1 or s == c for n, s, c in zip(shape, strides, c_strides(shape)))


class RangedTensors(HeaderQueries[TensorEntry]):
    """Tensors of one file, read by byte range through a byte reader (see module docs)."""

    def __init__(self, reader: Any, entries: Mapping[str, TensorEntry]):
        self.reader = reader
        self._entries = dict(entries)
        self._rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name -> (rows held, their block)
        for e in self._entries.values():
            begin, end = e.span
            if begin < 0 or end > reader.size:
                raise ValueError(f"{reader.name}: tensor {e.name!r} lies at bytes [{begin}, {end}), beyond the "
                                 f"end of the file ({reader.size} bytes): truncated file")

    def _where(self) -> object:
        return self.reader.name

    def _read(self, jobs: list[tuple[int, memoryview]]) -> None:
        jobs = [j for j in jobs if len(j[1])]  # an empty tensor reads nothing
        if jobs:
            self.reader.readinto_many(jobs)

    def _span_view(self, e: TensorEntry, widen: bool = False) -> np.ndarray:
        """A read-only strided view of a non-contiguous tensor over its span's bytes (read once;
        ``widen``: BF16 widened to float32 on the span, not on the logical size)."""
        storage = SAFETENSORS_DTYPES[e.dtype][0]
        begin, end = e.span
        buf = np.empty(end - begin, np.uint8)
        self._read([(begin, memoryview(buf))])  # type: ignore[arg-type]  # numpy's stubs: ndarray has no __buffer__
        flat = buf.view(storage)
        if widen and e.dtype == "BF16":
            flat = bf16_to_float32(flat)
        strides = tuple(s * flat.itemsize for s in e.strides or ())
        if any(n == 0 for n in e.shape):
            return np.zeros(e.shape, flat.dtype)
        return np.lib.stride_tricks.as_strided(flat, shape=e.shape, strides=strides, writeable=False)

    @staticmethod
    def _amplifies(e: TensorEntry) -> bool:
        """Whether the tensor holds more elements than the bytes it spans (repeated storage)."""
        begin, end = e.span
        return math.prod(e.shape) * e.itemsize > end - begin

    def raw(self, name: str) -> np.ndarray:
        """The stored values (``BF16`` as ``uint16`` bit patterns): a new C-contiguous array, or,
        for a view that repeats its storage, a read-only strided view over the storage read."""
        e = self.info(name)
        if e.strides is not None:
            view = self._span_view(e)
            return view if self._amplifies(e) else np.ascontiguousarray(view)
        storage = SAFETENSORS_DTYPES[e.dtype][0]
        begin, end = e.span
        buf = np.empty(end - begin, np.uint8)
        self._read([(begin, memoryview(buf))])  # type: ignore[arg-type]  # numpy's stubs: ndarray has no __buffer__
        return buf.view(storage).reshape(e.shape)

    def get(self, name: str) -> np.ndarray:
        """The whole tensor (read-only; ``BF16`` widened to float32 exactly)."""
        e = self.info(name)
        if e.strides is not None:
            view = self._span_view(e, widen=True)
            return view if self._amplifies(e) else _readonly(np.ascontiguousarray(view))
        out = self.raw(name)
        if e.dtype == "BF16":
            out = bf16_to_float32(out)
        out.flags.writeable = False
        return out

    def get_slice(self, name: str, rows: object = None, cols: object = None, *,
                  bf16_bits: bool = False) -> np.ndarray:
        """``tensor[rows][:, cols]`` of a 2-d tensor (an N-d one: of its 2-d row view,
        :func:`~.safetensors.row_view`), reading only the selected rows (a non-contiguous tensor:
        its whole span, gathered from). Same contract as :meth:`~.safetensors.SafetensorsFile.get_slice`."""
        e = self.info(name)
        where = f"{self.reader.name}:{name}"
        n_rows, n_cols = row_view(e.shape, where)
        r = as_index(rows, n_rows, "rows", where)
        c = as_index(cols, n_cols, "cols", where)
        if e.strides is not None:
            view = self._span_view(e)
            if view.ndim != 2:
                if self._amplifies(e):  # a reshape would materialise the repeated storage
                    raise ValueError(f"{where}: an {view.ndim}-d tensor whose strides repeat its storage cannot be "
                                     "read as rows")
                view = view.reshape(n_rows, n_cols)
            out = view[r] if isinstance(c, slice) else view[r][:, c] if isinstance(r, slice) else view[np.ix_(r, c)]
            out = np.array(out)
        elif isinstance(r, slice):
            full = self.raw(name).reshape(n_rows, n_cols)
            out = full[r] if isinstance(c, slice) else full[r][:, c]
            out = np.array(out)
        else:
            r = np.where(r < 0, r + n_rows, r)
            if r.size and np.all(np.diff(r) > 0):
                block = self._read_rows(e, r)
                out = block if isinstance(c, slice) else block[:, c]
            else:
                uniq, inverse = np.unique(r, return_inverse=True)
                block = self._read_rows(e, uniq)
                out = block[inverse] if isinstance(c, slice) else block[np.ix_(inverse, c)]
        if e.dtype == "BF16" and not bf16_bits:
            return bf16_to_float32(out)
        return out

    def prefetch_rows(self, wants: Sequence[tuple[str, np.ndarray]]) -> None:
        """Read the rows of several tensors in one batch (one planned, parallel batch of
        requests on a remote file instead of one round trip per tensor) and hold them:
        :meth:`get_slice` then takes any subset of them from memory, until the next prefetch
        of that tensor replaces them. ``wants``: (name, sorted unique non-negative rows);
        rows already held are not read again."""
        groups: list[list[tuple[int, memoryview]]] = []
        for name, rows in wants:
            e = self.info(name)
            rows = np.asarray(rows, np.intp)
            if len(e.shape) < 2 or e.strides is not None or self._held(name, rows) is not None:
                continue
            groups.append([])
            self._rows[name] = (rows, self._row_jobs(e, rows, groups[-1]))
        if hasattr(self.reader, "readinto_groups"):  # remote: merged per tensor, fetched together
            self.reader.readinto_groups(groups)
        else:
            self._read([j for g in groups for j in g])

    def _row_jobs(self, e: TensorEntry, rows: np.ndarray, jobs: list) -> np.ndarray:
        storage = SAFETENSORS_DTYPES[e.dtype][0]
        row_bytes = e.shape[-1] * storage.itemsize
        buf = np.empty(len(rows) * row_bytes, np.uint8)
        if len(rows) and row_bytes:
            view = memoryview(buf)  # type: ignore[arg-type]  # numpy's stubs: ndarray has no __buffer__
            starts = np.concatenate([[0], np.flatnonzero(np.diff(rows) != 1) + 1])
            ends = np.concatenate([starts[1:], [len(rows)]])
            jobs.extend((e.offset + int(rows[a]) * row_bytes, view[a * row_bytes: b * row_bytes])
                        for a, b in zip(starts.tolist(), ends.tolist()))
        return buf.view(storage).reshape(len(rows), e.shape[-1])

    def _held(self, name: str, rows: np.ndarray) -> np.ndarray | None:
        """The given (sorted unique) rows from the prefetched block, or None if not all held."""
        held = self._rows.get(name)
        if held is None or not len(held[0]):
            return None
        at = np.minimum(np.searchsorted(held[0], rows), len(held[0]) - 1)
        return held[1][at] if np.array_equal(held[0][at], rows) else None

    def _read_rows(self, e: TensorEntry, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.intp)
        got = self._held(e.name, rows)
        if got is not None:
            return got
        jobs: list[tuple[int, memoryview]] = []
        out = self._row_jobs(e, rows, jobs)
        if jobs:
            self._read(jobs)
        return out

    def byte_chunks(self, name: str) -> Iterable[memoryview]:
        """The tensor's bytes in C order, little-endian, in pieces of at most 16 MB (a view: its
        elements gathered piece by piece, never the whole logical tensor at once)."""
        e = self.info(name)
        if e.strides is not None and not self._amplifies(e):  # a transpose: no larger than its span
            mv = memoryview(np.ascontiguousarray(self._span_view(e)).reshape(-1).view(np.uint8))  # type: ignore[arg-type]  # numpy's stubs
            for s in range(0, len(mv), _CHUNK):
                yield mv[s: s + _CHUNK]
            return
        if e.strides is not None:
            view = self._span_view(e)
            n = math.prod(e.shape)
            step = 1 << 18  # elements per piece: its index arrays and bytes stay a few MB
            for a in range(0, n, step):
                idx = np.unravel_index(np.arange(a, min(n, a + step)), e.shape)
                yield memoryview(np.ascontiguousarray(view[idx]).view(np.uint8))  # type: ignore[arg-type]  # numpy's stubs
            return
        begin, end = e.span
        buf = memoryview(bytearray(min(_CHUNK, max(end - begin, 1))))
        pos = begin
        while pos < end:
            n = min(len(buf), end - pos)
            self._read([(pos, buf[:n])])
            yield buf[:n]
            pos += n


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class RangedSource(TensorSource):
    """A :class:`~.sources.TensorSource` over one or more :class:`RangedTensors` (shards).

    ``bytes_read`` and ``size`` sum over the files: what this source fetched so far, and the
    checkpoint's size on disk (or on the server)."""

    def __init__(self, stores: Sequence[RangedTensors], config: Mapping[str, Any] | None, description: str):
        super().__init__(config, description)
        self.stores = list(stores)
        self._where: dict[str, RangedTensors] = {}
        for s in self.stores:  # a later shard wins, as dict.update of torch.load results does
            for n in s.tensor_names():
                self._where[n] = s
        self.extra_bytes_read = 0  # index/config files, counted by the resolver

    def _store(self, name: str) -> RangedTensors:
        try:
            return self._where[name]
        except KeyError:
            raise ValueError(f"{self.description}: no tensor named {name!r}{close_names(name, self._where)}") from None

    @property
    def bytes_read(self) -> int:
        return self.extra_bytes_read + sum(r.bytes_read for r in {id(s.reader): s.reader for s in self.stores}.values())

    @property
    def size(self) -> int:
        return sum(r.size for r in {id(s.reader): s.reader for s in self.stores}.values())

    def tensor_names(self) -> list[str]:
        return list(self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._store(name).shape(name)

    def dtype(self, name: str) -> str:
        return self._store(name).dtype(name)

    def get(self, name: str) -> np.ndarray:
        return self._store(name).get(name)

    def get_slice(self, name: str, rows: Any = None, cols: Any = None, *, bf16_bits: bool = False) -> np.ndarray:
        return self._store(name).get_slice(name, rows, cols, bf16_bits=bf16_bits)

    def byte_chunks(self, name: str) -> Iterable[memoryview]:
        return self._store(name).byte_chunks(name)

    def prefetch_rows(self, wants: Sequence[tuple[str, Any]]) -> None:
        """Batch-read the rows of several tensors (see :meth:`RangedTensors.prefetch_rows`);
        the shards are read in parallel."""
        by_store: dict[int, tuple[RangedTensors, list]] = {}
        for name, rows in wants:
            st = self._store(name)
            n = row_view(st.shape(name), name)[0] if len(st.shape(name)) >= 2 else 0
            r = np.unique(np.where(np.asarray(rows) < 0, np.asarray(rows) + n, np.asarray(rows)))
            by_store.setdefault(id(st), (st, []))[1].append((name, r))
        if len(by_store) == 1:
            st, w = next(iter(by_store.values()))
            st.prefetch_rows(w)
        elif by_store:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(by_store)) as ex:
                list(ex.map(lambda sw: sw[0].prefetch_rows(sw[1]), by_store.values()))
