"""What every tensor provider is (:class:`TensorSource`), and how a source string is told
apart: a URL (:func:`is_url`, read by range, :mod:`.remote`) or a hub id (:func:`is_hub_id`).

The readers (:mod:`.ranged`, :mod:`.torch_zip`, :mod:`.remote`) build on this module and
:mod:`.sources` dispatches to them; nothing here imports either.

Fingerprint: ``blake2b`` (16-byte digest) over, for each tensor in sorted name order, the name,
the stored dtype name, the shape and the raw little-endian bytes of the tensor. Equal weights
give the same fingerprint whatever the container (safetensors, ``.bin``, in-memory module).
It reads every byte of the tensors it covers (about 1 GB/s on one core).
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .safetensors import close_names

__all__ = ["TensorSource", "is_hub_id", "is_url"]

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._/-]+)?$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # https://, hf://, file://, s3://: see remote.py


def is_url(source: Any) -> bool:
    """True for a URL string (``scheme://...``), read by range by :mod:`.remote`."""
    return isinstance(source, str) and bool(_URL.match(source))


def hub_offline() -> bool:
    """True when the hub is not to be asked (files come from the local cache only).

    That is ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``, which huggingface_hub also honours)
    set now, or huggingface_hub already in offline mode: it reads the variable once, when it is
    imported, and refuses every request after, even once the variable is unset.  Asking it then
    would only fail; this answer agrees with what it will do.
    """
    if any(os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")
           for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    hc = sys.modules.get("huggingface_hub.constants")  # never imported here: only asked if loaded
    if hc is None:
        return False
    mode = getattr(hc, "is_offline_mode", None)
    return bool(mode() if callable(mode) else getattr(hc, "HF_HUB_OFFLINE", False))


def is_hub_id(source: Any) -> bool:
    """True for a string shaped like a hub id ``org/name[@revision]`` that is not a local path."""
    return (isinstance(source, str) and not is_url(source) and bool(HUB_ID.match(source))
            and not source.startswith((".", "/", "~")) and not Path(source).exists())


class TensorSource:
    """Base class of the providers: a named set of tensors plus a config dict."""

    #: where the tensors come from (a path, a hub id, "state dict", ...)
    description: str = ""

    def __init__(self, config: Mapping[str, Any] | None, description: str):
        self.config: dict[str, Any] = dict(config or {})
        self.description = description

    def tensor_names(self) -> list[str]:
        raise NotImplementedError

    def shape(self, name: str) -> tuple[int, ...]:
        raise NotImplementedError

    def dtype(self, name: str) -> str:
        raise NotImplementedError

    def get(self, name: str) -> np.ndarray:
        raise NotImplementedError

    def get_slice(self, name: str, rows: Any = None, cols: Any = None, *, bf16_bits: bool = False) -> np.ndarray:
        """``tensor[rows][:, cols]`` as a new array; bfloat16 is widened to float32 exactly, or
        returned as its ``uint16`` bit patterns with ``bf16_bits=True`` (for the engine's
        ``bf16`` weight kind: half the bytes, and binned by table look-up)."""
        raise NotImplementedError

    def byte_chunks(self, name: str) -> Iterable[memoryview | bytes]:
        """The tensor's bytes in C order, little-endian, in pieces (what :meth:`fingerprint`
        hashes, and what the fingerprint pass scans for non-finite values)."""
        raise NotImplementedError

    def metadata_fingerprint(self, names: Sequence[str] | None = None) -> str | None:
        """A fingerprint taken from what the server says about the files (a content hash, an
        ETag), without reading the weights; None (the default) where the bytes must be read.
        Sources read by range from a server override it (:mod:`.remote`)."""
        del names
        return None

    def fingerprint(self, names: Sequence[str] | None = None) -> str:
        """Hex ``blake2b`` digest of the given tensors (default: all), see module docs."""
        known = set(self.tensor_names())
        chosen = sorted(known if names is None else set(names))
        for n in chosen:
            if n not in known:
                raise ValueError(f"fingerprint: no tensor {n!r} in {self.description}{close_names(n, known)}")
        h = hashlib.blake2b(digest_size=16)
        for n in chosen:
            h.update(f"{n}\0{self.dtype(n)}\0{self.shape(n)}\0".encode())
            for chunk in self.byte_chunks(n):
                h.update(chunk)
        return h.hexdigest()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r}, {len(self.tensor_names())} tensors)"
