"""Matrices that are parts of a stored tensor, as tensors of their own.

A layout may read a matrix from some rows of a fused tensor (Phi-3's ``qkv_proj``, OLMo-1's
``att_proj``, one expert of a 3-d ``gate_up_proj`` stack: :class:`~.architectures.RowPart`).
:class:`PartsSource` wraps a source and answers for those matrices by their own names, so
everything that reads a layout's matrices by name (sampled and full networks, streamed
analyses, controls, rival statistics) reads a part exactly like a tensor, and reads only the
rows it needs (a sampled network: the sampled rows of the stored tensor's row view).
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from ..io.base import TensorSource
from .architectures import Layout, RowPart

__all__ = ["PartsSource", "stored_rows", "with_parts"]


class PartsSource(TensorSource):
    """``base``'s tensors plus one tensor per part of ``parts`` (matrix name -> RowPart), each of
    shape ``(rows, stored columns)`` in torch orientation, with the stored tensor's dtype."""

    def __init__(self, base: TensorSource, parts: dict[str, RowPart], sizes: dict[str, int]):
        super().__init__(base.config, base.description)
        self.base, self._parts, self._sizes = base, dict(parts), dict(sizes)

    @property
    def batch_reads(self) -> bool:
        return bool(getattr(self.base, "batch_reads", False))

    def tensor_names(self) -> list[str]:
        return list(dict.fromkeys(self.base.tensor_names() + list(self._parts)))

    def shape(self, name: str) -> tuple[int, ...]:
        p = self._parts.get(name)
        return self.base.shape(name) if p is None else (self._sizes[name], int(p.shape[-1]))

    def dtype(self, name: str) -> str:
        p = self._parts.get(name)
        return self.base.dtype(name if p is None else p.tensor)

    def _rows(self, name: str, rows: Any) -> np.ndarray:
        n = self._sizes[name]
        idx = np.arange(n, dtype=np.int64) if rows is None else np.asarray(rows)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise ValueError(f"rows of tensor {name!r} must be None or a 1-d integer array")
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise ValueError(f"rows of tensor {name!r} out of range for size {n}")
        return self._parts[name].rows(idx % max(n, 1))

    def get(self, name: str) -> np.ndarray:
        if name not in self._parts:
            return self.base.get(name)
        # the part's rows only (one expert of a 3-d stack, not the stack widened to float32)
        out = self.get_slice(name)
        out.flags.writeable = False
        return out

    def get_slice(self, name: str, rows: Any = None, cols: Any = None, *, bf16_bits: bool = False) -> np.ndarray:
        p = self._parts.get(name)
        if p is None:
            return self.base.get_slice(name, rows, cols, bf16_bits=bf16_bits)
        return self.base.get_slice(p.tensor, self._rows(name, rows), cols, bf16_bits=bf16_bits)

    def byte_chunks(self, name: str) -> Iterable[bytes | memoryview]:
        if name not in self._parts:
            return self.base.byte_chunks(name)
        bits = self.dtype(name) == "bfloat16"
        return [np.ascontiguousarray(self.get_slice(name, bf16_bits=bits)).tobytes()]

    def metadata_fingerprint(self, names: Sequence[str] | None = None) -> str | None:
        return self.base.metadata_fingerprint(names)

    def prefetch_rows(self, wants: Sequence[tuple[str, Any]]) -> None:
        """The base's batched row reads (:meth:`~.ranged.RangedTensors.prefetch_rows`), with the
        rows of a part mapped to its stored tensor's rows (one request per stored tensor)."""
        prefetch = getattr(self.base, "prefetch_rows", None)
        if prefetch is None:
            return
        merged: dict[str, list] = {}
        for name, rows in wants:
            p = self._parts.get(name)
            merged.setdefault(name if p is None else p.tensor, []).append(
                np.asarray(rows, np.int64) if p is None else self._rows(name, rows))
        prefetch([(t, np.unique(np.concatenate(r))) for t, r in merged.items()])


def with_parts(src: TensorSource, lay: Layout) -> TensorSource:
    """``src`` itself, or a :class:`PartsSource` over it when ``lay`` reads parts of tensors."""
    parts = lay.parts
    if not parts:
        return src
    sizes = {m.name: lay.node_layers[m.out_layer].size for m in lay.matrices if m.part is not None}
    return PartsSource(src, parts, sizes)


def stored_rows(lay: Layout, draws: Sequence[Sequence[np.ndarray]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Stored tensor name -> (rows, columns) of its stored orientation that the sampled networks
    of ``draws`` (each a :meth:`~.architectures.Layout.sample`) read, sorted and unique: a part
    mapped to its stored tensor's rows, an N-d tensor's rows of its row view (what a reader's
    ``get_slice`` takes)."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for m in lay.matrices:
        if m.is_synthetic:
            continue
        ins = np.concatenate([d[m.in_layer] for d in draws])
        outs = np.concatenate([d[m.out_layer] for d in draws])
        if m.part is not None:
            outs = m.part.rows(outs)
        r, c = (ins, outs) if m.orientation == "conv1d" else (outs, ins)
        if m.tensor in out:
            r, c = np.concatenate([out[m.tensor][0], r]), np.concatenate([out[m.tensor][1], c])
        out[m.tensor] = (np.unique(r).astype(np.int64), np.unique(c).astype(np.int64))
    return out
