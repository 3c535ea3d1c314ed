"""``pytorch_model.bin`` without torch: torch's zip checkpoints, read lazily (SPEC 12).

``torch.save`` (since torch 1.6) writes a zip archive, every entry *stored* (uncompressed):

- ``<archive>/data.pkl``: a pickle of the state dict, in which each tensor is
  ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`` and
  each storage a *persistent id* ``("storage", torch.HalfStorage, key, location, numel)``;
- ``<archive>/data/<key>``: the raw little-endian bytes of storage ``key``;
- ``<archive>/byteorder`` (``little``; absent in old files, which are little-endian), version
  files and a serialization id.

:func:`open_torch_zip` reads the zip's central directory, then ``data.pkl`` through
:class:`RestrictedUnpickler`, a ``pickle.Unpickler`` whose ``find_class`` returns this
module's own stand-ins for the few globals torch writes for plain tensors and refuses every
other global (``ValueError`` naming it) *before* anything is called, as
``torch.load(weights_only=True)`` does; ``persistent_load`` accepts only storage ids. No code
from the file runs, and torch is not imported. The result is a
:class:`~.rangeio.RangedTensors`: rows are then read by byte range from the stored entries
(positioned reads locally, range requests remotely).

Accepted globals: ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``torch._utils._rebuild_parameter`` (no hooks), ``torch.Size``, and the storage types
``torch.{Half,BFloat16,Float,Double,Long,Int,Short,Char,Byte,Bool}Storage``. Refused with a
clear error: anything else (``os.system``, ``builtins.eval``, tensor subclasses, quantized or
sparse tensors, untyped storages), a compressed entry, a big-endian archive, a tensor reaching
beyond its storage. Non-contiguous tensors (a saved view) are handled: read over their span and
strided in memory. The legacy non-zip format (torch < 1.6) is not read here; it needs torch.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from collections.abc import Mapping
from typing import Any

from .ranged import LocalFile, RangedTensors, TensorEntry, is_c_contiguous

__all__ = ["TORCH_STORAGE_CODES", "RestrictedUnpickler", "is_torch_zip", "open_torch_zip"]

#: torch storage type name -> safetensors dtype code
TORCH_STORAGE_CODES = {
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "FloatStorage": "F32",
    "DoubleStorage": "F64",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
}

_MAX_PICKLE = 256 << 20


class _StorageType:
    __slots__ = ("code", "torch_name")

    def __init__(self, torch_name: str):
        self.torch_name = torch_name
        self.code = TORCH_STORAGE_CODES[torch_name]


class _Storage:
    __slots__ = ("code", "key", "numel")

    def __init__(self, key: str, code: str, numel: int):
        self.key, self.code, self.numel = key, code, numel


class _TensorRef:
    __slots__ = ("offset", "shape", "storage", "strides")

    def __init__(self, storage: _Storage, offset: int, shape: tuple, strides: tuple):
        self.storage, self.offset, self.shape, self.strides = storage, offset, shape, strides


def _ints(x: Any, what: str) -> tuple[int, ...]:
    if not isinstance(x, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in x):
        raise pickle.UnpicklingError(f"tensor {what} must be a tuple of non-negative integers, got {x!r}")
    return x


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"_rebuild_tensor_v2 needs a storage, got {type(storage).__name__}")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise pickle.UnpicklingError(f"tensor storage offset must be a non-negative integer, got {storage_offset!r}")
    shape, strides = _ints(size, "size"), _ints(stride, "stride")
    if len(shape) != len(strides):
        raise pickle.UnpicklingError(f"tensor size {shape} and stride {strides} differ in length")
    if backward_hooks or metadata:
        raise pickle.UnpicklingError("tensor with backward hooks or Python attributes: not a plain tensor")
    return _TensorRef(storage, storage_offset, shape, strides)


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> _TensorRef:
    if not isinstance(data, _TensorRef):
        raise pickle.UnpicklingError(f"_rebuild_parameter needs a tensor, got {type(data).__name__}")
    if backward_hooks:
        raise pickle.UnpicklingError("parameter with backward hooks: not a plain tensor")
    return data


_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch", "Size"): tuple,
    **{("torch", n): _StorageType(n) for n in TORCH_STORAGE_CODES},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a torch ``data.pkl`` into stand-ins, accepting only plain-tensor globals."""

    def __init__(self, file: Any, where: str):
        super().__init__(file, encoding="utf-8")
        self.where = where
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused global '{module}.{name}' (not one torch writes for plain tensors; "
                f"allowed: {sorted(f'{m}.{n}' for m, n in _ALLOWED)})"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        if (not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[4], int) or pid[4] < 0):
            raise pickle.UnpicklingError(f"refused persistent id {pid!r} (expected a typed torch storage)")
        _, stype, key, _location, numel = pid
        s = self.storages.get(key)
        if s is None:
            s = self.storages[key] = _Storage(key, stype.code, numel)
        elif s.code != stype.code:
            raise pickle.UnpicklingError(f"storage {key!r} is used as {s.code} and {stype.code}")
        return s


class _ReaderIO(io.RawIOBase):
    """A seekable read-only file object over a byte reader (for ``zipfile``)."""

    def __init__(self, reader: Any):
        self.reader, self.pos = reader, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = {0: 0, 1: self.pos, 2: self.reader.size}[whence] + off
        return self.pos

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), self.reader.size - self.pos))
        if n:
            self.reader.readinto_many([(self.pos, memoryview(b).cast("B")[:n])])
            self.pos += n
        return n


def is_torch_zip(reader: Any) -> bool:
    """True if the file starts like a zip archive (torch's format since 1.6)."""
    return reader.size >= 4 and reader.read(0, 4) == b"PK\x03\x04"


def open_torch_zip(reader: Any) -> RangedTensors:
    """Parse a torch zip checkpoint (see module docs) without reading any tensor.

    ``reader`` is a byte reader (:class:`~.rangeio.LocalFile`, a remote one) or a path.
    Raises ``ValueError`` naming the file for anything that is not plain weights.
    """
    if not hasattr(reader, "readinto_many"):
        reader = LocalFile(reader)
    where = reader.name
    try:
        zf = zipfile.ZipFile(_ReaderIO(reader))  # type: ignore[arg-type]
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{where}: not a readable zip archive ({exc})") from None
    infos = {i.filename: i for i in zf.infolist()}
    pkls = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise ValueError(f"{where}: not a torch checkpoint: expected one '<archive>/data.pkl' in the zip, "
                         f"found {pkls or sorted(infos)[:10]}")
    prefix = pkls[0][: -len("data.pkl")]
    if infos[pkls[0]].file_size > _MAX_PICKLE:
        raise ValueError(f"{where}: data.pkl is {infos[pkls[0]].file_size} bytes, more than a state dict needs")
    order = infos.get(prefix + "byteorder")
    if order is not None and zf.read(order).strip() != b"little":
        raise ValueError(f"{where}: big-endian torch checkpoint; only little-endian archives are read")
    try:
        obj = RestrictedUnpickler(io.BytesIO(zf.read(pkls[0])), where).load()
    except Exception as exc:  # UnpicklingError from the allow-list, or a malformed stream
        raise ValueError(f"{where}: refused, as torch.load(weights_only=True) would: {exc}") from exc
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, _TensorRef)]
    if bad:
        raise ValueError(f"{where}: state dict entries must be str -> tensor; not so for {bad[:3]!r}")
    refs: dict[str, _TensorRef] = dict(obj)
    used = sorted({r.storage.key for r in refs.values()})
    starts = _storage_offsets(reader, zf, infos, prefix, used, where)
    entries = {}
    for name, r in refs.items():
        s = r.storage
        entries[name] = _entry(name, r, starts[s.key], infos[f"{prefix}data/{s.key}"].file_size, where)
    return RangedTensors(reader, entries)


def _storage_offsets(reader: Any, zf: zipfile.ZipFile, infos: dict, prefix: str, keys: list[str],
                     where: str) -> dict[str, int]:
    """Absolute offset of each stored storage entry's data (read from the local file headers)."""
    heads = {}
    for k in keys:
        info = infos.get(f"{prefix}data/{k}")
        if info is None:
            raise ValueError(f"{where}: data.pkl refers to storage {k!r}, but the zip has no {prefix}data/{k}")
        if info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{where}: storage entry {info.filename!r} is compressed (method {info.compress_type}); "
                             "torch writes them stored: re-save it with torch.save or convert it to safetensors")
        heads[k] = (info, bytearray(30))
    reader.readinto_many([(info.header_offset, memoryview(buf)) for info, buf in heads.values()])
    out = {}
    for k, (info, buf) in heads.items():
        sig, *_, n_name, n_extra = struct.unpack("<4s5H3L2H", bytes(buf))
        if sig != b"PK\x03\x04":
            raise ValueError(f"{where}: bad local header for {info.filename!r}: corrupt zip")
        out[k] = info.header_offset + 30 + n_name + n_extra
    return out


def _entry(name: str, r: _TensorRef, data_start: int, data_len: int, where: str) -> TensorEntry:
    s = r.storage
    code = s.code
    probe = TensorEntry(name, code, r.shape, 0)
    isz = probe.itemsize
    if s.numel * isz > data_len:
        raise ValueError(f"{where}: storage {s.key!r} claims {s.numel} elements of {code}, "
                         f"but its entry holds {data_len} bytes: truncated or corrupt")
    strides = None if is_c_contiguous(r.shape, r.strides) else r.strides
    e = TensorEntry(name, code, r.shape, data_start + r.offset * isz, strides)
    if e.span[1] - data_start > s.numel * isz:
        raise ValueError(f"{where}: tensor {name!r} (offset {r.offset}, size {r.shape}, stride {r.strides}) "
                         f"reaches beyond its storage of {s.numel} elements")
    return e
