"""``pytorch_model.bin`` without torch: torch's zip checkpoints, read lazily (SPEC 12).

``torch.save`` (since torch 1.6) writes a zip archive, every entry *stored* (uncompressed):

- ``<archive>/data.pkl``: a pickle (protocol 2) of the state dict, in which each tensor is
  ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`` and
  each storage a *persistent id* ``("storage", torch.HalfStorage, key, location, numel)``;
- ``<archive>/data/<key>``: the raw little-endian bytes of storage ``key``;
- ``<archive>/byteorder`` (``little``; absent in old files, which are little-endian), version
  files and a serialization id.

:func:`open_torch_zip` reads the zip's central directory, then ``data.pkl`` through
:class:`RestrictedUnpickler`, an interpreter of exactly the opcodes torch's own weights-only
unpickler (``torch/_weights_only_unpickler.py``) accepts, with this module's stand-ins for the
few globals torch writes for plain tensors; every other global is refused (``ValueError``
naming it) *before* anything is called, as ``torch.load(weights_only=True)`` does. No code from
the file runs, and torch is not imported. Nothing a file does outlives its reading: every
unpickler makes its own stand-ins (immutable storage types, its own rebuild functions), and the
opcodes that set attributes or create objects (``BUILD``, ``NEWOBJ``) act only where torch's
unpickler lets them: ``BUILD`` on a fresh ``OrderedDict`` (the state dict's ``_metadata``, read
and dropped), ``NEWOBJ`` of an ``OrderedDict``; ``INST``, ``OBJ`` and every opcode torch's
unpickler does not know are refused. The result is a :class:`~.ranged.RangedTensors`: rows are
then read by byte range from the stored entries (positioned reads locally, range requests
remotely).

Accepted globals: ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``,
``torch._utils._rebuild_parameter`` (no hooks), ``torch.Size``, and the storage types
``torch.{Half,BFloat16,Float,Double,Long,Int,Short,Char,Byte,Bool}Storage``. Refused with a
clear error: anything else (``os.system``, ``builtins.eval``, tensor subclasses, quantized or
sparse tensors, untyped storages), a compressed entry (refused before anything is
decompressed: torch writes every entry stored), an entry whose bytes do not match its CRC, a
big-endian archive, a tensor reaching beyond its storage. Every read is bounded by the entry's
declared size. Views (a transpose, or a tensor whose strides repeat its storage) are handled:
read over the span of their storage and strided in memory, never materialised beyond what the
storage and the rows asked for need (see :mod:`.ranged`). The legacy non-zip format
(torch < 1.6) is not read here; it needs torch.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
import zlib
from collections.abc import Mapping
from typing import Any, Callable

from .._text import short as _short
from .._validation import MAX_DIM, capped_product, dims
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

#: the largest ``data.pkl`` read: a state dict of 100k tensors takes about 25 MB
_MAX_PICKLE = 32 << 20
_MAX_BYTEORDER = 64
#: bytes the zip's own structures (end record, central directory) may take; a state dict of
#: 100k tensors needs a few MB
_MAX_DIRECTORY = 64 << 20


class _StorageType:
    """A storage type named in the pickle (one per unpickler, immutable)."""

    __slots__ = ("code", "torch_name")
    code: str
    torch_name: str

    def __init__(self, torch_name: str):
        object.__setattr__(self, "torch_name", torch_name)
        object.__setattr__(self, "code", TORCH_STORAGE_CODES[torch_name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"storage type {self.torch_name} is read-only")


class _Storage:
    __slots__ = ("code", "key", "numel")

    def __init__(self, key: str, code: str, numel: int):
        self.key, self.code, self.numel = key, code, numel


class _TensorRef:
    __slots__ = ("offset", "shape", "storage", "strides")

    def __init__(self, storage: _Storage, offset: int, shape: tuple, strides: tuple):
        self.storage, self.offset, self.shape, self.strides = storage, offset, shape, strides


def _nonneg(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _ints(x: Any, what: str) -> tuple:
    """A size or stride: at most 64 non-negative integers, none above 2**63 (checked before any
    arithmetic on them, see :func:`~.._validation.dims`)."""
    if not isinstance(x, tuple) or not all(_nonneg(v) for v in x):
        raise pickle.UnpicklingError(f"tensor {what} must be a tuple of non-negative integers, got {_short(x)}")
    return dims(x, f"tensor {what}")


def _count(v: Any, what: str) -> int:
    """A storage offset or element count: a non-negative integer, at most 2**63."""
    if not _nonneg(v):
        raise pickle.UnpicklingError(f"{what} must be a non-negative integer, got {_short(v)}")
    if v > MAX_DIM:
        raise pickle.UnpicklingError(f"{what} is above 2**63 elements: {_short(v)}")
    return v


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                       backward_hooks: Any = None, metadata: Any = None) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"_rebuild_tensor_v2 needs a storage, got {type(storage).__name__}")
    _count(storage_offset, "tensor storage offset")
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


def _new_ordered_dict(*args: Any) -> collections.OrderedDict:
    if args:  # torch writes OrderedDict() and fills it with SETITEMS
        raise pickle.UnpicklingError("OrderedDict called with arguments: not what torch writes")
    return collections.OrderedDict()


def _size(dims: Any = ()) -> tuple:
    return _ints(tuple(dims) if isinstance(dims, (tuple, list)) else dims, "size")


#: bytes of Python objects every pickle may build, beyond 16 per byte of the pickle
_OBJECT_BUDGET = 64 << 20
#: what an opcode may build, in bytes (64 for the rest; strings are charged as read)
_COST = {"EMPTY_DICT": 640, "EMPTY_SET": 640, "EMPTY_LIST": 128, "MARK": 128, "REDUCE": 640, "NEWOBJ": 640,
         "TUPLE": 128, "TUPLE1": 128, "TUPLE2": 128, "TUPLE3": 128, "BINUNICODE": 64, "LONG1": 320}
#: the deepest nesting of containers a pickle may build: a state dict (with its ``_metadata``,
#: in a training checkpoint) needs fewer than 10 levels. Deeper ones are refused as they are
#: built, before anything hashes or walks them (CPython hashes a tuple recursively in C).
MAX_DEPTH = 32
_CONTAINERS = (tuple, list, dict, collections.OrderedDict, set)

_OPS = {getattr(pickle, name)[0]: name for name in (
    # exactly the opcodes of torch's weights-only unpickler
    "GLOBAL", "NEWOBJ", "REDUCE", "BUILD", "APPEND", "APPENDS", "SETITEM", "SETITEMS", "MARK", "TUPLE",
    "TUPLE1", "TUPLE2", "TUPLE3", "NONE", "NEWFALSE", "NEWTRUE", "EMPTY_TUPLE", "EMPTY_LIST", "EMPTY_DICT",
    "EMPTY_SET", "BININT", "BININT1", "BININT2", "BINFLOAT", "BINUNICODE", "SHORT_BINSTRING", "BINPERSID",
    "BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT", "LONG1", "PROTO", "STOP")}


class RestrictedUnpickler:
    """Unpickles a torch ``data.pkl`` into stand-ins, accepting only plain-tensor globals and
    the opcodes of torch's weights-only unpickler (see the module docs). Each instance has its
    own stand-ins; nothing it reads changes another."""

    def __init__(self, data: bytes, where: str):
        self.data, self.pos, self.where = bytes(data), 0, where
        self.storages: dict[str, _Storage] = {}
        types = {n: _StorageType(n) for n in TORCH_STORAGE_CODES}
        self._odict = lambda *a: _new_ordered_dict(*a)
        self._globals: dict[tuple[str, str], Any] = {
            ("collections", "OrderedDict"): self._odict,
            ("torch._utils", "_rebuild_tensor_v2"): lambda *a: _rebuild_tensor_v2(*a),
            ("torch._utils", "_rebuild_parameter"): lambda *a: _rebuild_parameter(*a),
            ("torch", "Size"): lambda *a: _size(*a),
            **{("torch", n): t for n, t in types.items()},
        }
        self._callables = [v for v in self._globals.values() if callable(v)]

    # -- reading the stream -----------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise pickle.UnpicklingError("pickle data was truncated")
        out, self.pos = self.data[self.pos: end], end
        return out

    def _byte(self) -> int:
        if self.pos >= len(self.data):
            raise pickle.UnpicklingError("pickle data was truncated")
        self.pos += 1
        return self.data[self.pos - 1]

    def _line(self) -> str:
        end = self.data.find(b"\n", self.pos, self.pos + 257) - self.pos
        if end < 0:
            raise pickle.UnpicklingError("GLOBAL name too long or unterminated")
        raw = self._read(end + 1)[:-1]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise pickle.UnpicklingError(f"GLOBAL name is not UTF-8: {raw!r}") from None

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._globals[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused global '{module}.{name}' (not one torch writes for plain tensors; "
                f"allowed: {sorted(f'{m}.{n}' for m, n in self._globals)})"[:400]
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        if (type(pid) is not tuple or len(pid) != 5 or pid[0] != "storage"
                or not isinstance(pid[1], _StorageType) or not isinstance(pid[2], str)
                or not isinstance(pid[3], str) or not _nonneg(pid[4])):
            raise pickle.UnpicklingError(f"refused persistent id {_short(pid)} (expected a typed torch storage)")
        _, stype, key, _location, numel = pid
        _count(numel, f"storage {_short(key)}")
        s = self.storages.get(key)
        if s is None:
            s = self.storages[key] = _Storage(key, stype.code, numel)
        elif s.code != stype.code or s.numel != numel:
            raise pickle.UnpicklingError(f"storage {_short(key)} is used as {s.code} of {s.numel} and "
                                         f"{stype.code} of {numel} elements")
        return s

    # -- the interpreter --------------------------------------------------------------------
    def load(self) -> Any:
        """The unpickled object (``pickle.UnpicklingError`` for anything refused or malformed)."""
        self.stack: list = []
        self.marks: list = []
        self.memo: dict = {}
        self._depths: dict[int, tuple[int, Any]] = {}  # id -> (nesting, the container: kept alive)
        budget = _OBJECT_BUDGET + 16 * len(self.data)  # bytes of Python objects the pickle may build
        while True:
            op = self._byte()
            name = _OPS.get(op)
            if name is None:
                raise pickle.UnpicklingError(f"unsupported pickle opcode {bytes([op])!r} (not one torch's "
                                             "weights-only unpickler accepts)")
            budget -= _COST.get(name, 64)
            if budget < 0:
                raise pickle.UnpicklingError("the pickle builds more objects than a state dict of its size")
            if name == "STOP":
                if not self.stack:
                    raise pickle.UnpicklingError("empty stack at STOP")
                return self.stack.pop()
            _STEPS[name](self)

    def _pop(self) -> Any:
        if not self.stack:
            raise pickle.UnpicklingError("pickle stack underflow")
        return self.stack.pop()

    def _top(self) -> Any:
        if not self.stack:
            raise pickle.UnpicklingError("pickle stack underflow")
        return self.stack[-1]

    def _pop_mark(self) -> list:
        if not self.marks:
            raise pickle.UnpicklingError("no MARK on the stack")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def _call(self, func: Any, args: Any) -> Any:
        if not any(func is c for c in self._callables):
            raise pickle.UnpicklingError(f"refused call of {type(func).__name__} (not an allowed global)")
        if type(args) is not tuple:
            raise pickle.UnpicklingError(f"call arguments must be a tuple, got {type(args).__name__}")
        try:
            return func(*args)
        except TypeError as exc:
            raise pickle.UnpicklingError(f"bad arguments: {exc}") from None

    def _reduce(self) -> None:
        args = self._pop()
        self.stack[-1:] = [self._call(self._top(), args)]

    def _newobj(self) -> None:
        args, cls = self._pop(), self._pop()
        if cls is not self._odict:
            raise pickle.UnpicklingError("NEWOBJ only creates an OrderedDict")
        self.stack.append(self._call(cls, args))

    def _build(self) -> None:
        state, inst = self._pop(), self._top()
        if type(inst) is not collections.OrderedDict:
            raise pickle.UnpicklingError(f"BUILD of a {type(inst).__name__}: torch's unpickler builds only "
                                         "tensors, parameters and OrderedDict")
        if not isinstance(state, (dict, tuple)) and state is not None:
            raise pickle.UnpicklingError(f"BUILD state of an OrderedDict must be a dict, got {type(state).__name__}")
        # the state dict's ``_metadata`` (module versions): read and dropped, never set

    def _depth(self, x: Any) -> int:
        return self._depths.get(id(x), (1,))[0] if type(x) in _CONTAINERS else 0

    def _holds(self, box: Any, items: Any) -> Any:
        """``box`` now holds ``items``: its nesting, refused past :data:`MAX_DEPTH` levels. Each
        container nesting deeper than 1 is kept alive, so that no other object takes its id."""
        depth = max(self._depth(box), 1 + max(map(self._depth, items), default=0))
        if depth > MAX_DEPTH:
            raise pickle.UnpicklingError(f"containers nested deeper than {MAX_DEPTH} levels (a state dict needs "
                                         "fewer than 10)")
        if depth > 1:
            self._depths[id(box)] = (depth, box)
        return box

    def _setitems(self, items: list) -> None:
        target = self._top()
        if type(target) not in (dict, collections.OrderedDict):
            raise pickle.UnpicklingError(f"SETITEM on a {type(target).__name__}: only dicts")
        if len(items) % 2:
            raise pickle.UnpicklingError("SETITEMS with an odd number of items")
        keys = items[::2]
        bad = [type(k).__name__ for k in keys if not isinstance(k, (str, int))]
        if bad:  # checked before hashing: torch writes string keys (integers in optimizer states)
            raise pickle.UnpicklingError(f"dict key of type {bad[0]}: not a string or an integer")
        self._holds(target, items[1::2])
        target.update(zip(keys, items[1::2]))

    def _append(self, items: list) -> None:
        target = self._top()
        if type(target) is not list:
            raise pickle.UnpicklingError(f"APPEND on a {type(target).__name__}: only lists")
        self._holds(target, items)
        target.extend(items)

    def _tuple(self, n: int) -> None:
        if len(self.stack) < n:
            raise pickle.UnpicklingError("pickle stack underflow")
        items = tuple(self.stack[len(self.stack) - n:]) if n else ()
        self.stack[len(self.stack) - n:] = [self._holds(items, items)]

    def _tuple_mark(self) -> None:
        items = tuple(self._pop_mark())
        self.stack.append(self._holds(items, items))

    def _persid(self) -> None:
        self.stack.append(self.persistent_load(self._pop()))

    def _get(self, idx: int) -> None:
        try:
            self.stack.append(self.memo[idx])
        except KeyError:
            raise pickle.UnpicklingError(f"memo key {idx} not found") from None

    def _put(self, idx: int) -> None:
        self.memo[idx] = self._top()

    def _global(self) -> None:
        module, name = self._line(), self._line()
        self.stack.append(self.find_class(module, name))

    def _mark(self) -> None:
        self.marks.append(self.stack)
        self.stack = []

    def _proto(self) -> None:
        if self._byte() > pickle.HIGHEST_PROTOCOL:
            raise pickle.UnpicklingError("unknown pickle protocol")

    def _unicode(self) -> None:
        (n,) = struct.unpack("<I", self._read(4))
        try:
            self.stack.append(self._read(n).decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError as exc:
            raise pickle.UnpicklingError(f"string is not UTF-8: {exc}") from None

    def _short_binstring(self) -> None:
        raw = self._read(self._byte())
        try:
            self.stack.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise pickle.UnpicklingError(f"string is not UTF-8: {exc}") from None


_STEPS: dict[str, Callable[[RestrictedUnpickler], None]] = {
    "GLOBAL": RestrictedUnpickler._global,
    "NEWOBJ": RestrictedUnpickler._newobj,
    "REDUCE": RestrictedUnpickler._reduce,
    "BUILD": RestrictedUnpickler._build,
    "APPEND": lambda u: u._append([u._pop()]),
    "APPENDS": lambda u: u._append(u._pop_mark()),
    "SETITEM": lambda u: u._setitems(list(reversed([u._pop(), u._pop()]))),
    "SETITEMS": lambda u: u._setitems(u._pop_mark()),
    "MARK": RestrictedUnpickler._mark,
    "TUPLE": lambda u: u._tuple_mark(),
    "TUPLE1": lambda u: u._tuple(1),
    "TUPLE2": lambda u: u._tuple(2),
    "TUPLE3": lambda u: u._tuple(3),
    "NONE": lambda u: u.stack.append(None),
    "NEWFALSE": lambda u: u.stack.append(False),
    "NEWTRUE": lambda u: u.stack.append(True),
    "EMPTY_TUPLE": lambda u: u.stack.append(()),
    "EMPTY_LIST": lambda u: u.stack.append([]),
    "EMPTY_DICT": lambda u: u.stack.append({}),
    "EMPTY_SET": lambda u: u.stack.append(set()),
    "BININT": lambda u: u.stack.append(struct.unpack("<i", u._read(4))[0]),
    "BININT1": lambda u: u.stack.append(u._byte()),
    "BININT2": lambda u: u.stack.append(struct.unpack("<H", u._read(2))[0]),
    "BINFLOAT": lambda u: u.stack.append(struct.unpack(">d", u._read(8))[0]),
    "BINUNICODE": RestrictedUnpickler._unicode,
    "SHORT_BINSTRING": RestrictedUnpickler._short_binstring,
    "BINPERSID": RestrictedUnpickler._persid,
    "BINGET": lambda u: u._get(u._byte()),
    "LONG_BINGET": lambda u: u._get(struct.unpack("<I", u._read(4))[0]),
    "BINPUT": lambda u: u._put(u._byte()),
    "LONG_BINPUT": lambda u: u._put(struct.unpack("<I", u._read(4))[0]),
    "LONG1": lambda u: u.stack.append(int.from_bytes(u._read(u._byte()), "little", signed=True)),
    "PROTO": RestrictedUnpickler._proto,
}


class _ReaderIO(io.RawIOBase):
    """A seekable read-only file object over a byte reader, for ``zipfile`` to parse the central
    directory with: it may read at most :data:`_MAX_DIRECTORY` bytes in all."""

    def __init__(self, reader: Any):
        self.reader, self.pos, self.budget = reader, 0, _MAX_DIRECTORY

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, off: int, whence: int = 0) -> int:
        self.pos = {0: 0, 1: self.pos, 2: self.reader.size}[whence] + off
        return self.pos

    def read(self, size: int = -1) -> bytes:
        n = max(0, min(self.reader.size - self.pos, size if size is not None and size >= 0 else self.reader.size))
        if n > self.budget:
            raise zipfile.BadZipFile(f"the zip directory claims more than {_MAX_DIRECTORY} bytes")
        return super().read(n) or b""

    def readinto(self, b: Any) -> int:
        n = max(0, min(len(b), self.reader.size - self.pos))
        if n > self.budget:
            raise zipfile.BadZipFile(f"the zip directory claims more than {_MAX_DIRECTORY} bytes")
        if n:
            self.budget -= n
            self.reader.readinto_many([(self.pos, memoryview(b).cast("B")[:n])])
            self.pos += n
        return n


def is_torch_zip(reader: Any) -> bool:
    """True if the file starts like a zip archive (torch's format since 1.6)."""
    return reader.size >= 4 and reader.read(0, 4) == b"PK\x03\x04"


def open_torch_zip(reader: Any) -> RangedTensors:
    """Parse a torch zip checkpoint (see module docs) without reading any tensor.

    ``reader`` is a byte reader (:class:`~.ranged.LocalFile`, a remote one) or a path.
    Raises ``ValueError`` naming the file for anything that is not plain weights.
    """
    if not hasattr(reader, "readinto_many"):
        reader = LocalFile(reader)
    where = reader.name
    try:
        zf = zipfile.ZipFile(_ReaderIO(reader))  # type: ignore[arg-type]
        infos = {i.filename: i for i in zf.infolist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, OverflowError, EOFError,
            UnicodeDecodeError, NotImplementedError) as exc:
        raise ValueError(f"{where}: not a readable zip archive ({exc})") from None
    pkls = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pkls) != 1:
        raise ValueError(f"{where}: not a torch checkpoint: expected one '<archive>/data.pkl' in the zip, "
                         f"found {pkls or sorted(infos)[:10]}")
    _check_stored(infos, where)
    prefix = pkls[0][: -len("data.pkl")]
    if prefix + "byteorder" in infos:
        order = _read_entry(reader, infos[prefix + "byteorder"], _MAX_BYTEORDER, where)
        if order.strip() != b"little":
            raise ValueError(f"{where}: big-endian torch checkpoint; only little-endian archives are read")
    data = _read_entry(reader, infos[pkls[0]], _MAX_PICKLE, where)
    try:
        obj = RestrictedUnpickler(data, where).load()
    except (pickle.UnpicklingError, RecursionError, MemoryError, OverflowError, ValueError) as exc:
        raise ValueError(f"{where}: refused, as torch.load(weights_only=True) would: {exc}") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where}: refused: expected a state dict (name -> tensor), got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, _TensorRef)]
    if bad:
        raise ValueError(f"{where}: refused: state dict entries must be str -> tensor; not so for {_short(bad[:3])}")
    refs: dict[str, _TensorRef] = dict(obj)
    used = sorted({r.storage.key for r in refs.values()})
    starts = _storage_offsets(reader, infos, prefix, used, where)
    entries = {}
    for name, r in refs.items():
        s = r.storage
        entries[name] = _entry(name, r, starts[s.key], infos[f"{prefix}data/{s.key}"].file_size, where)
    return RangedTensors(reader, entries)


def _check_stored(infos: Mapping[str, zipfile.ZipInfo], where: str) -> None:
    """Every entry stored, as torch writes them (nothing is ever decompressed); storage entries
    are named first."""
    for info in sorted(infos.values(), key=lambda i: "/data/" not in i.filename):
        if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
            kind = "storage" if "/data/" in info.filename else "zip"
            raise ValueError(f"{where}: {kind} entry {info.filename!r} is compressed (method {info.compress_type}); "
                             "torch writes every entry stored: re-save it with torch.save or convert it to "
                             "safetensors")


def _local_data_start(reader: Any, infos: list, where: str) -> list:
    """Absolute offset of each entry's data (read from its 30-byte local file header)."""
    heads = [bytearray(30) for _ in infos]
    jobs = []
    for info, buf in zip(infos, heads):
        if info.header_offset < 0 or info.header_offset + 30 > reader.size:
            raise ValueError(f"{where}: the local header of {info.filename!r} lies beyond the file: corrupt zip")
        jobs.append((info.header_offset, memoryview(buf)))
    reader.readinto_many(jobs)
    out = []
    for info, buf in zip(infos, heads):
        sig, *_, n_name, n_extra = struct.unpack("<4s5H3L2H", bytes(buf))
        if sig != b"PK\x03\x04":
            raise ValueError(f"{where}: bad local header for {info.filename!r}: corrupt zip")
        start = info.header_offset + 30 + n_name + n_extra
        if start + info.file_size > reader.size:
            raise ValueError(f"{where}: entry {info.filename!r} ({info.file_size} bytes) reaches beyond the end of "
                             f"the file ({reader.size} bytes): truncated file")
        out.append(start)
    return out


def _read_entry(reader: Any, info: zipfile.ZipInfo, limit: int, where: str) -> bytes:
    """The bytes of a stored entry: its declared size, at most ``limit``, CRC checked."""
    if info.file_size > limit:
        raise ValueError(f"{where}: {info.filename!r} is {info.file_size} bytes, more than a state dict needs "
                         f"({limit})")
    (start,) = _local_data_start(reader, [info], where)
    data = reader.read(start, info.file_size) if info.file_size else b""
    if zlib.crc32(data) & 0xFFFFFFFF != info.CRC:
        raise ValueError(f"{where}: {info.filename!r} does not match its CRC: corrupt zip")
    return data


def _storage_offsets(reader: Any, infos: Mapping[str, zipfile.ZipInfo], prefix: str, keys: list,
                     where: str) -> dict:
    """Absolute offset of each stored storage entry's data."""
    chosen = []
    for k in keys:
        info = infos.get(f"{prefix}data/{k}")
        if info is None:
            raise ValueError(f"{where}: data.pkl refers to storage {k!r}, but the zip has no {prefix}data/{k}"[:300])
        chosen.append(info)
    return dict(zip(keys, _local_data_start(reader, chosen, where)))


def _entry(name: str, r: _TensorRef, data_start: int, data_len: int, where: str) -> TensorEntry:
    s = r.storage
    code = s.code
    isz = TensorEntry(name, code, (), 0).itemsize
    if s.numel * isz > data_len:
        raise ValueError(f"{where}: storage {s.key!r} claims {s.numel} elements of {code}, "
                         f"but its entry holds {data_len} bytes: truncated or corrupt")
    if capped_product(r.shape, ((1 << 63) - 1) // isz) * isz >= 1 << 63:  # never multiplied past the bound
        raise ValueError(f"{where}: tensor {name!r} of size {_short(r.shape)} is too large for any array "
                         "(2**63 bytes or more)")
    strides = None if is_c_contiguous(r.shape, r.strides) else r.strides
    e = TensorEntry(name, code, r.shape, data_start + r.offset * isz, strides)
    if e.span[1] - data_start > s.numel * isz:
        raise ValueError(f"{where}: tensor {name!r} (offset {r.offset}, size {r.shape}, stride {r.strides}) "
                         f"reaches beyond its storage of {s.numel} elements"[:400])
    return e
