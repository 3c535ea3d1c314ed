"""A small, lazy reader of the safetensors format (no torch, no ``safetensors`` package).

File layout (https://github.com/huggingface/safetensors):

- 8 bytes: ``N``, the header length, unsigned little-endian 64-bit;
- ``N`` bytes: a UTF-8 JSON object mapping each tensor name to
  ``{"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}`` (offsets relative to the
  start of the data section), plus an optional ``"__metadata__"`` dict of strings;
- the data section: every tensor's bytes, C order, little-endian.

The file is memory-mapped once; :meth:`SafetensorsFile.get` returns numpy views into it (no
copy, read-only) and :meth:`SafetensorsFile.get_slice` gathers only the requested rows and
columns, so the operating system pages in only what is touched.

``BF16`` has no numpy dtype: it is returned as ``float32`` (exact: the 16 bits are the high
half of the float32 pattern). ``F16`` stays ``float16``; ``F32``/``F64`` and the integer and
boolean types are returned as their numpy dtypes.

Sharded checkpoints (``model.safetensors.index.json`` with a ``weight_map``) are read by
:class:`ShardedSafetensors`, which opens each shard on first use.

Every header, local or read from a server, is checked by one function, :func:`parse_header`,
with the reference implementation's rules in exact integer arithmetic: a JSON object (no key
twice) of entries with a supported dtype, a shape of non-negative integers and
``data_offsets`` whose span is the shape's size; the tensors, in offset order, cover the data
section exactly, without gaps or overlaps; ``__metadata__`` maps strings to strings. Shard
names of an index are checked by :func:`check_shard_name`: plain file names inside the model
folder, never a path.
"""

from __future__ import annotations

import difflib
import json
import os
import struct
from pathlib import Path
from typing import Generic, Iterable, Mapping, Protocol, Sequence, TypeVar

import numpy as np

from .._fs import parse_json
from .._text import short as _short
from .._validation import capped_product, dims

__all__ = [
    "SAFETENSORS_DTYPES",
    "SafetensorsFile",
    "ShardedSafetensors",
    "TensorInfo",
    "bf16_to_float32",
    "check_shard_name",
    "open_safetensors",
    "parse_header",
    "parse_index",
    "write_safetensors",
]

#: safetensors dtype code -> (numpy storage dtype, numpy dtype of the arrays returned).
SAFETENSORS_DTYPES: dict[str, tuple[np.dtype, np.dtype]] = {
    "BOOL": (np.dtype("?"), np.dtype("?")),
    "U8": (np.dtype("u1"), np.dtype("u1")),
    "I8": (np.dtype("i1"), np.dtype("i1")),
    "U16": (np.dtype("<u2"), np.dtype("<u2")),
    "I16": (np.dtype("<i2"), np.dtype("<i2")),
    "U32": (np.dtype("<u4"), np.dtype("<u4")),
    "I32": (np.dtype("<i4"), np.dtype("<i4")),
    "U64": (np.dtype("<u8"), np.dtype("<u8")),
    "I64": (np.dtype("<i8"), np.dtype("<i8")),
    "F16": (np.dtype("<f2"), np.dtype("<f2")),
    "BF16": (np.dtype("<u2"), np.dtype("<f4")),
    "F32": (np.dtype("<f4"), np.dtype("<f4")),
    "F64": (np.dtype("<f8"), np.dtype("<f8")),
}

#: Human names of the stored dtypes, used by ``dtype()`` of the providers.
DTYPE_NAMES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "U32": "uint32",
    "I32": "int32",
    "U64": "uint64",
    "I64": "int64",
    "F16": "float16",
    "BF16": "bfloat16",
    "F32": "float32",
    "F64": "float64",
}

MAX_HEADER = 100 * 1024 * 1024  # the reference implementation refuses headers above 100 MB


def bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """Widen raw bfloat16 bit patterns (``uint16``) to ``float32`` exactly."""
    raw = np.asarray(raw)
    if raw.dtype != np.uint16:
        raise TypeError(f"bf16_to_float32: raw must be uint16 bit patterns, got dtype {raw.dtype}")
    return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)


def close_names(name: str, names: Iterable[str], n: int = 5) -> str:
    close = difflib.get_close_matches(name, list(names), n=n, cutoff=0.5)
    return f"; close names: {close}" if close else ""


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _header_entry(where: str, entry: object, data_size: int) -> tuple[str, tuple[int, ...], int, int]:
    """One tensor's ``(dtype, shape, begin, end)`` (offsets relative to the data section)."""
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
        raise ValueError(f"{where}: header entry must have dtype, shape and data_offsets, got {_short(entry)}")
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or dtype not in SAFETENSORS_DTYPES:
        raise ValueError(
            f"{where}: unknown or unsupported dtype {_short(dtype)}; supported: {sorted(SAFETENSORS_DTYPES)}"
        )
    if not isinstance(entry["shape"], list):
        raise ValueError(f"{where}: shape must be a list of non-negative integers, got {_short(entry['shape'])}")
    shape = dims(entry["shape"], f"{where}: shape")
    offs = entry["data_offsets"]
    if not isinstance(offs, list) or len(offs) != 2 or not all(_is_count(o) for o in offs) or offs[0] > offs[1]:
        raise ValueError(f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, got {_short(offs)}")
    if offs[1] > data_size:
        raise ValueError(
            f"{where}: data_offsets {_short(offs)} go beyond the data section ({data_size} bytes): truncated file"
        )
    span, itemsize = offs[1] - offs[0], SAFETENSORS_DTYPES[dtype][0].itemsize
    n = capped_product(shape, data_size // itemsize)  # exact up to the data's size, never multiplied past it
    if n * itemsize != span:
        need = n * itemsize if n <= data_size // itemsize else f"more than the {data_size} bytes of the data section"
        raise ValueError(f"{where}: data_offsets {offs} span {span} bytes but shape {_short(list(shape))} of {dtype} "
                         f"needs {need}")
    return dtype, shape, offs[0], offs[1]


def parse_header(raw: bytes, data_size: int, where: object) -> tuple[dict, dict]:
    """Validate a safetensors header (the ``N`` bytes after the length) by the reference
    implementation's rules (see the module docs) for a data section of ``data_size`` bytes.

    Returns ``({name: (dtype, shape, begin, end)}, metadata)`` in header order, offsets
    relative to the data section. Raises ``ValueError`` naming ``where`` (and the tensor).
    The one check of every header: local files and those read by range from a server.
    """
    header = parse_json(raw, f"{where}: corrupt safetensors header (not UTF-8 JSON)", unique_keys=True)
    if not isinstance(header, dict):
        raise ValueError(f"{where}: corrupt safetensors header: expected a JSON object, got {type(header).__name__}")
    meta = header.pop("__metadata__", None)
    if meta is not None and (not isinstance(meta, dict)
                             or not all(isinstance(v, str) for v in meta.values())):
        raise ValueError(f"{where}: __metadata__ must be a JSON object of strings, got {_short(meta)}")
    entries = {name: _header_entry(f"{where}: tensor {name!r}", e, data_size) for name, e in header.items()}
    end = 0
    for name, (_, _, b, e) in sorted(entries.items(), key=lambda kv: kv[1][2:]):
        if b != end:
            what = "overlaps the previous tensor" if b < end else f"leaves a gap after byte {end}"
            raise ValueError(f"{where}: tensor {name!r}: data_offsets {[b, e]} {what}; the tensors must cover "
                             "the data section in order, without gaps or overlaps")
        end = e
    if end != data_size:
        raise ValueError(f"{where}: the tensors cover {end} of the {data_size} bytes of the data section "
                         "(trailing bytes, or a truncated header)")
    return entries, dict(meta or {})


def check_shard_name(name: object, index: object) -> str:
    """``name`` when it is a plain file name (a shard of an index lies in the index's folder);
    ``ValueError`` naming the index for a path (``../x``, ``/etc/x``, ``a/b``), an empty name
    or one that is not a string. The name is checked, not where it resolves (hub snapshots
    are links into ``blobs/``)."""
    if (not isinstance(name, str) or name in ("", ".", "..") or any(c in name for c in "/\\\0")
            or (len(name) > 1 and name[1] == ":") or len(name) > 255):
        raise ValueError(f"{index}: shard {_short(name)} is not a plain file name in the model's folder "
                         "(a shard name may not be a path)")
    return name


def parse_index(raw: bytes, where: object) -> tuple[dict, dict]:
    """``(weight_map, metadata)`` of a sharded index (``*.safetensors.index.json``,
    ``pytorch_model.bin.index.json``): tensor name -> plain shard file name (see
    :func:`check_shard_name`). ``ValueError`` naming ``where`` otherwise."""
    index = parse_json(raw, f"{where}: corrupt index")
    wmap = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(wmap, dict) or not all(isinstance(v, str) for v in wmap.values()):
        raise ValueError(f"{where}: index must hold a 'weight_map' of tensor name -> shard file")
    for shard in set(wmap.values()):
        check_shard_name(shard, where)
    meta = index.get("metadata")
    return dict(wmap), dict(meta) if isinstance(meta, dict) else {}


def as_index(idx: object, length: int, what: str, name: str) -> np.ndarray | slice:
    """Validate a row/column selection: None (all) or a 1-d integer index array."""
    if idx is None:
        return slice(None)
    arr = np.asarray(idx)
    if arr.ndim != 1 or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise ValueError(
            f"{what} of tensor {name!r} must be None or a 1-d integer array, "
            f"got shape {arr.shape} dtype {arr.dtype}"
        )
    arr = arr.astype(np.intp, copy=False)
    if arr.size and (arr.min() < -length or arr.max() >= length):
        raise ValueError(
            f"{what} of tensor {name!r} out of range for size {length}: "
            f"min {arr.min()}, max {arr.max()}"
        )
    return arr


def row_view(shape: Sequence[int], name: str) -> tuple[int, int]:
    """``(rows, columns)`` of a tensor's 2-d row view: an ``N``-d tensor (``N >= 2``, e.g. a 3-d
    stack of experts ``(E, R, C)``) is sliced as the ``(prod(shape[:-1]), shape[-1])`` matrix of
    its rows in C order (row ``e * R + r`` is expert ``e``'s row ``r``)."""
    if len(shape) < 2:
        raise ValueError(f"slicing needs a tensor of 2 or more dimensions; {name} has shape {tuple(shape)}")
    return int(np.prod(shape[:-1], dtype=np.int64)), int(shape[-1])


def gather(array: np.ndarray, rows: object, cols: object, name: str) -> np.ndarray:
    """``array[rows][:, cols]`` for a 2-d array (or the 2-d row view of an N-d one:
    :func:`row_view`), touching only the selected elements.

    ``rows``/``cols`` are None (everything) or 1-d integer arrays (any order, repeats
    allowed). Used on memory maps, where fancy indexing with ``np.ix_`` reads only the
    selected elements' pages.
    """
    array = array.reshape(row_view(array.shape, repr(name)))
    r = as_index(rows, array.shape[0], "rows", name)
    c = as_index(cols, array.shape[1], "cols", name)
    if isinstance(r, slice) and isinstance(c, slice):
        return np.array(array)
    if isinstance(r, slice):
        return np.array(array[:, c])
    if isinstance(c, slice):
        return np.array(array[r, :])
    return np.array(array[np.ix_(r, c)])


def _pread_into(fd: int, dst: memoryview, pos: int) -> int:
    data = os.pread(fd, len(dst), pos)
    dst[: len(data)] = data
    return len(data)


class TensorInfo:
    """Header entry of one tensor: dtype code, shape and absolute byte range in the file."""

    __slots__ = ("name", "dtype", "shape", "begin", "end")

    def __init__(self, name: str, dtype: str, shape: tuple[int, ...], begin: int, end: int):
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.begin = begin
        self.end = end

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"TensorInfo({self.name!r}, {self.dtype}, {self.shape}, [{self.begin}, {self.end}))"


class _HeaderEntry(Protocol):
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> tuple[int, ...]: ...


E = TypeVar("E", bound=_HeaderEntry)


class HeaderQueries(Generic[E]):
    """Name, shape and dtype queries over ``self._entries`` (``{name: entry}`` in header order),
    shared by the local and the ranged readers; a subclass says in :meth:`_where` what its
    error messages name."""

    _entries: dict[str, E]

    def _where(self) -> object:
        raise NotImplementedError

    def tensor_names(self) -> list[str]:
        """Names of the tensors, in header order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def info(self, name: str) -> E:
        """Header entry of ``name``; ``ValueError`` listing close names if it is missing."""
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"{self._where()}: no tensor named {name!r}{close_names(name, self._entries)}") from None

    def shape(self, name: str) -> tuple[int, ...]:
        return self.info(name).shape

    def dtype(self, name: str) -> str:
        """Stored dtype as a numpy-style name (``"float16"``, ``"bfloat16"``, ...)."""
        return DTYPE_NAMES[self.info(name).dtype]


class SafetensorsFile(HeaderQueries[TensorInfo]):
    """One ``.safetensors`` file, parsed and validated eagerly, memory-mapped lazily.

    Parameters
    ----------
    path:
        the file. Every problem (truncated file, bad header, offsets out of range or not
        matching the shape, unknown dtype) raises ``ValueError`` naming the file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"safetensors file {str(self.path)!r} does not exist or is not a file")
        size = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError(
                    f"{self.path}: truncated safetensors file ({size} bytes, the 8-byte "
                    "header length is missing)"
                )
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                raise ValueError(
                    f"{self.path}: header length {n} goes beyond the end of the file "
                    f"({size} bytes): truncated or not a safetensors file"
                )
            if n > MAX_HEADER:
                raise ValueError(f"{self.path}: header length {n} exceeds {MAX_HEADER} bytes")
            raw = fh.read(n)
        self._data_start = 8 + n
        entries, self.metadata = parse_header(raw, size - self._data_start, self.path)
        self._entries: dict[str, TensorInfo] = {
            name: TensorInfo(name, dtype, shape, self._data_start + b, self._data_start + e)
            for name, (dtype, shape, b, e) in entries.items()}
        self._mm: np.memmap | None = None

    # ------------------------------------------------------------------ queries
    def _where(self) -> object:
        return self.path

    # ------------------------------------------------------------------ data
    def _map(self) -> np.memmap:
        if self._mm is None:
            self._mm = np.memmap(self.path, dtype=np.uint8, mode="r")
        return self._mm

    def raw(self, name: str) -> np.ndarray:
        """Read-only view of the stored values (``BF16`` as ``uint16`` bit patterns)."""
        info = self.info(name)
        storage = SAFETENSORS_DTYPES[info.dtype][0]
        if info.end == info.begin:
            view = np.zeros(info.shape, dtype=storage)
            view.flags.writeable = False
            return view
        return self._map()[info.begin : info.end].view(storage).reshape(info.shape)

    def get(self, name: str) -> np.ndarray:
        """The whole tensor: a read-only memory-mapped view (``BF16`` becomes a float32 copy)."""
        info = self.info(name)
        raw = self.raw(name)
        if info.dtype == "BF16":
            return bf16_to_float32(raw)
        return raw

    def get_slice(self, name: str, rows: object = None, cols: object = None, *,
                  bf16_bits: bool = False) -> np.ndarray:
        """``tensor[rows][:, cols]`` of a 2-d tensor (an N-d one: of its 2-d row view,
        :func:`row_view`), reading only the selected rows.

        ``rows``/``cols``: None (all) or 1-d integer index arrays (any order, repeats
        allowed). The selected rows are read with positioned reads (``os.preadv``), runs of
        consecutive rows in one call, not through the memory map: page faults on a map pull
        in neighbouring pages too (fault-around), which for a few random rows of a large
        matrix would touch most of it. Returns a new array (``BF16`` widened to float32, or
        kept as its ``uint16`` bit patterns with ``bf16_bits=True``).
        """
        info = self.info(name)
        where = f"{self.path}:{name}"
        n_rows, n_cols = row_view(info.shape, where)
        r = as_index(rows, n_rows, "rows", where)
        c = as_index(cols, n_cols, "cols", where)
        if isinstance(r, slice):
            out = gather(self.raw(name), None, cols, where)
        else:
            r = np.where(r < 0, r + n_rows, r)
            if r.size and np.all(np.diff(r) > 0):  # ascending, no repeats (e.g. a row range): no gather
                block = self._read_rows(info, r)
                out = block if isinstance(c, slice) else block[:, c]
            else:
                uniq, inverse = np.unique(r, return_inverse=True)
                block = self._read_rows(info, uniq)
                out = block[inverse] if isinstance(c, slice) else block[np.ix_(inverse, c)]
        if info.dtype == "BF16" and not bf16_bits:
            return bf16_to_float32(out)
        return out

    def _read_rows(self, info: TensorInfo, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (sorted, unique) of a tensor's 2-d row view, read from the file."""
        storage = SAFETENSORS_DTYPES[info.dtype][0]
        row_bytes = info.shape[-1] * storage.itemsize
        buf = np.empty(len(rows) * row_bytes, np.uint8)  # every byte is read into: no zeroing
        if len(rows) == 0 or row_bytes == 0:
            return buf.view(storage).reshape(len(rows), info.shape[-1])
        view = memoryview(buf)  # type: ignore[arg-type]  # numpy's stubs: ndarray has no __buffer__
        starts = np.concatenate([[0], np.flatnonzero(np.diff(rows) != 1) + 1])
        ends = np.concatenate([starts[1:], [len(rows)]])
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for a, b in zip(starts.tolist(), ends.tolist()):
                pos = info.begin + int(rows[a]) * row_bytes
                dst = view[a * row_bytes : b * row_bytes]
                while len(dst):
                    n = os.preadv(fd, [dst], pos) if hasattr(os, "preadv") else _pread_into(fd, dst, pos)
                    if n <= 0:
                        raise ValueError(f"{self.path}: file shrank while reading tensor {info.name!r}")
                    dst, pos = dst[n:], pos + n
        finally:
            os.close(fd)
        return buf.view(storage).reshape(len(rows), info.shape[-1])

    def byte_range(self, name: str) -> tuple[int, int]:
        """Absolute ``[begin, end)`` byte range of ``name`` in the file."""
        info = self.info(name)
        return info.begin, info.end

    def raw_bytes(self, name: str) -> memoryview:
        """The stored bytes of ``name`` (a view into the memory map)."""
        info = self.info(name)
        if info.end == info.begin:
            return memoryview(b"")
        return memoryview(self._map()[info.begin : info.end])  # type: ignore[arg-type]  # numpy's stubs: ndarray has no __buffer__

    def close(self) -> None:
        """Drop the memory map (views handed out keep it alive until they are freed)."""
        self._mm = None

    def __repr__(self) -> str:
        return f"SafetensorsFile({str(self.path)!r}, {len(self._entries)} tensors)"


class ShardedSafetensors:
    """A sharded checkpoint described by ``model.safetensors.index.json``.

    The index's ``weight_map`` maps tensor names to shard file names (relative to the index's
    folder). Shards are opened on first use; each shard's header must list the tensors the
    index assigns to it.
    """

    def __init__(self, index_path: str | os.PathLike):
        self.path = Path(index_path)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raise ValueError(f"safetensors index {str(self.path)!r} does not exist") from None
        except OSError as exc:
            raise ValueError(f"{self.path}: cannot be read: {exc.strerror or exc}") from None
        wmap, self.metadata = parse_index(raw, self.path)
        self._weight_map: dict[str, str] = wmap
        self._shards: dict[str, SafetensorsFile] = {}
        for shard in sorted(set(wmap.values())):
            p = self.path.parent / shard
            if not p.is_file():
                raise ValueError(f"{self.path}: shard {shard!r} listed in weight_map is missing ({p})")

    def shard(self, name: str) -> SafetensorsFile:
        """The opened shard holding tensor ``name``."""
        try:
            fname = self._weight_map[name]
        except KeyError:
            raise ValueError(
                f"{self.path}: no tensor named {name!r}{close_names(name, self._weight_map)}"
            ) from None
        f = self._shards.get(fname)
        if f is None:
            f = SafetensorsFile(self.path.parent / fname)
            self._shards[fname] = f
        if name not in f:
            raise ValueError(
                f"{self.path}: weight_map puts {name!r} in {fname!r}, but that shard does not hold it"
            )
        return f

    def tensor_names(self) -> list[str]:
        return list(self._weight_map)

    def __contains__(self, name: object) -> bool:
        return name in self._weight_map

    def info(self, name: str) -> TensorInfo:
        return self.shard(name).info(name)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.shard(name).shape(name)

    def dtype(self, name: str) -> str:
        return self.shard(name).dtype(name)

    def raw(self, name: str) -> np.ndarray:
        return self.shard(name).raw(name)

    def get(self, name: str) -> np.ndarray:
        return self.shard(name).get(name)

    def get_slice(self, name: str, rows: object = None, cols: object = None, *,
                  bf16_bits: bool = False) -> np.ndarray:
        return self.shard(name).get_slice(name, rows, cols, bf16_bits=bf16_bits)

    def raw_bytes(self, name: str) -> memoryview:
        return self.shard(name).raw_bytes(name)

    def close(self) -> None:
        for f in self._shards.values():
            f.close()

    def __repr__(self) -> str:
        return f"ShardedSafetensors({str(self.path)!r}, {len(self._weight_map)} tensors)"


def open_safetensors(path: str | os.PathLike) -> SafetensorsFile | ShardedSafetensors:
    """Open a ``.safetensors`` file or a ``*.safetensors.index.json`` sharded index."""
    p = Path(path)
    if p.name.endswith(".index.json"):
        return ShardedSafetensors(p)
    return SafetensorsFile(p)


def write_safetensors(
    path: str | os.PathLike,
    tensors: Mapping[str, np.ndarray],
    metadata: Mapping[str, str] | None = None,
    dtypes: Mapping[str, str] | None = None,
) -> None:
    """Write numpy arrays as a safetensors file (small helper for tests and tools).

    ``dtypes`` may force a stored code per tensor, e.g. ``{"w": "BF16"}`` with a uint16
    array of bit patterns.
    """
    codes = {v[0]: k for k, v in SAFETENSORS_DTYPES.items() if k != "BF16"}
    header: dict = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs: list[bytes] = []
    off = 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr)
        code = (dtypes or {}).get(name) or codes.get(a.dtype.newbyteorder("<"))
        if code is None:
            raise TypeError(f"write_safetensors: tensor {name!r} has unsupported dtype {a.dtype}")
        storage = SAFETENSORS_DTYPES[code][0]
        b = a.astype(storage, copy=False).tobytes()
        # np.shape, not a.shape: ascontiguousarray makes a 0-d array (a scalar parameter) 1-d
        header[name] = {"dtype": code, "shape": list(np.shape(arr)), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hb)))
        fh.write(hb)
        for b in blobs:
            fh.write(b)
