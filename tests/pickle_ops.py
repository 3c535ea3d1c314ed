"""Pickle opcodes written by hand, and torch's zip container around them: what the hostile
``pytorch_model.bin`` tests (tests/io/test_hostile_torch_zip.py) build their files from.

The benign helpers write exactly what ``torch.save`` writes for a plain state dict (pickle
protocol 2, ``_rebuild_tensor_v2`` over typed storages, every zip entry stored); the tests then
splice opcodes an attacker would add.
"""
from __future__ import annotations

import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np


def glob(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def text(s: str) -> bytes:
    raw = s.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw


def integer(n: int) -> bytes:
    if -(2**31) <= n < 2**31:
        return pickle.BININT + struct.pack("<i", n)
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return pickle.LONG1 + bytes([len(raw)]) + raw


def tup(*items: bytes) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def dict_of(items: dict) -> bytes:
    return pickle.EMPTY_DICT + pickle.MARK + b"".join(text(k) + v for k, v in items.items()) + pickle.SETITEMS


def storage_pid(key: str, storage: str, numel: int) -> bytes:
    return tup(text("storage"), glob("torch", storage), text(key), text("cpu"), integer(numel)) + pickle.BINPERSID


def tensor(key: str, storage: str, numel: int, shape: tuple, stride: tuple, offset: int = 0) -> bytes:
    """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``."""
    hooks = glob("collections", "OrderedDict") + pickle.EMPTY_TUPLE + pickle.REDUCE
    args = tup(storage_pid(key, storage, numel), integer(offset), tup(*map(integer, shape)),
               tup(*map(integer, stride)), pickle.NEWFALSE, hooks)
    return glob("torch._utils", "_rebuild_tensor_v2") + args + pickle.REDUCE


def state_dict(items: dict, prefix: bytes = b"") -> bytes:
    """A protocol-2 pickle of ``{name: tensor}``; ``prefix`` runs first (its result popped)."""
    body = b"".join(text(k) + v for k, v in items.items())
    return (pickle.PROTO + b"\x02" + prefix + pickle.EMPTY_DICT + pickle.MARK + body + pickle.SETITEMS
            + pickle.STOP)


def write_bin(path: Path, pkl: bytes, storages: dict, *, compress: dict | None = None,
              byteorder: bytes | None = b"little") -> Path:
    """A zip laid out as torch.save writes it (every entry stored unless ``compress`` names a
    compression for an entry: ``{"data.pkl": zipfile.ZIP_BZIP2}``)."""
    compress = compress or {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl, compress_type=compress.get("data.pkl", zipfile.ZIP_STORED))
        if byteorder is not None:
            z.writestr("archive/byteorder", byteorder, compress_type=compress.get("byteorder", zipfile.ZIP_STORED))
        for key, raw in storages.items():
            z.writestr(f"archive/data/{key}", raw, compress_type=compress.get(key, zipfile.ZIP_STORED))
        z.writestr("archive/version", b"3\n")
    return path


#: The innocent checkpoint every hostile test reads again afterwards.
INNOCENT_W = (np.arange(12, dtype=np.float16).reshape(3, 4) / 8).astype(np.float16)
INNOCENT_V = np.linspace(-1, 1, 5).astype(np.float32)


def write_innocent(path: Path) -> Path:
    pkl = state_dict({"w": tensor("0", "HalfStorage", 12, (3, 4), (4, 1)),
                      "wt": tensor("0", "HalfStorage", 12, (4, 3), (1, 4)),
                      "v": tensor("1", "FloatStorage", 5, (5,), (1,))})
    return write_bin(path, pkl, {"0": INNOCENT_W.tobytes(), "1": INNOCENT_V.tobytes()})
