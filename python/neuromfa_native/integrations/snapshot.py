"""The monitor's snapshot of a live model: the rows and columns of each weight matrix that the
sampled networks read (docs/spec.md section 1.2), copied to CPU on the training thread, and a
:class:`~neuromfa_native.io.base.TensorSource` that answers for them exactly as a checkpoint of
the model would.  With the controls or the rival statistics the copied rows are whole (their RMS
and statistics are taken over the full rows, docs/spec.md sections 9 and 10).

torch is imported only inside :func:`take_snapshot` (a torch model is then at hand)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

import numpy as np

from ..io.base import TensorSource
from ..io.safetensors import row_view
from ..io.sources import StateDictSource
from ..network.parts import stored_rows

__all__ = ["Shapes", "Snapshot", "plan_snapshot", "take_snapshot"]


class Shapes(TensorSource):
    """Names, shapes and dtypes of live tensors (no data read), to pick the layout."""

    def __init__(self, tensors: Mapping[str, Any], config: Optional[dict], description: str):
        super().__init__(config, description)
        self._t = tensors

    def tensor_names(self) -> list:
        return list(self._t)

    def shape(self, name: str) -> tuple:
        return tuple(int(s) for s in self._t[name].shape)

    def dtype(self, name: str) -> str:
        return str(self._t[name].dtype).replace("torch.", "")


class Snapshot(TensorSource):
    """The sampled rows and columns of a model's weight matrices, copied to CPU.

    It answers ``get_slice`` for any rows/columns inside the copied ones with exactly the
    values (and dtype) of the live tensor, so :func:`~neuromfa_native.analyze_sample` builds
    the same sampled networks from it as from a checkpoint of the model."""

    def __init__(self, blocks: Mapping[str, tuple], names: Sequence[str], shapes: Mapping[str, tuple],
                 dtypes: Mapping[str, str], config: Optional[dict], description: str):
        super().__init__(config, description)
        self._blocks = dict(blocks)  # name -> (rows, cols: sorted int64 indices, the copied CPU tensor)
        self._names, self._shapes, self._dtypes = list(names), dict(shapes), dict(dtypes)

    def tensor_names(self) -> list:
        return self._names

    def shape(self, name: str) -> tuple:
        return self._shapes[name]

    def dtype(self, name: str) -> str:
        return self._dtypes[name]

    @property
    def nbytes(self) -> int:
        return int(sum(t.element_size() * t.numel() for _, _, t in self._blocks.values()))

    def get(self, name: str) -> np.ndarray:
        raise ValueError(f"the monitor's snapshot holds only the sampled rows of {name!r}, not the whole tensor")

    @staticmethod
    def _pos(have: np.ndarray, want: Any, n: int, what: str, name: str) -> np.ndarray:
        w = np.asarray(want, dtype=np.int64) % max(n, 1)
        p = np.searchsorted(have, w)
        if w.size and (p.max() >= have.size or np.any(have[np.minimum(p, have.size - 1)] != w)):
            raise ValueError(f"{what} of {name!r} asked for are not in the monitor's snapshot")
        return p

    def get_slice(self, name: str, rows: Any = None, cols: Any = None, *, bf16_bits: bool = False) -> np.ndarray:
        if name not in self._blocks:
            raise ValueError(f"tensor {name!r} is not in the monitor's snapshot")
        r, c, t = self._blocks[name]
        n_rows, n_cols = row_view(self._shapes[name], repr(name))  # an N-d tensor: its 2-d row view
        if cols is None and rows is not None and c.size == n_cols:  # full rows copied (controls, statistics)
            cols = c
        if rows is None or cols is None:
            raise ValueError(f"the monitor's snapshot holds only sampled rows and columns of {name!r}")
        sub = StateDictSource({name: t}, None, self.description)
        return sub.get_slice(name, self._pos(r, rows, n_rows, "rows", name),
                             self._pos(c, cols, n_cols, "columns", name), bf16_bits=bf16_bits)

    def byte_chunks(self, name: str):
        r, c, t = self._blocks[name]
        yield np.ascontiguousarray(r).tobytes()
        yield np.ascontiguousarray(c).tobytes()
        yield from StateDictSource({name: t}, None, self.description).byte_chunks(name)

    def key(self) -> str:
        """Digest of the copied weights (and their positions): the run directory's key."""
        return "live-" + self.fingerprint(list(self._blocks))


def plan_snapshot(lay: Any, per_layer: int, samples: Sequence[int], shape: Optional[Callable] = None) -> dict:
    """stored tensor name -> (rows, cols) that the samples read, sorted (a fused tensor's parts
    and transformers 5's 3-d expert stacks through their rows: :func:`~..network.parts.stored_rows`);
    with ``shape`` (name -> stored shape), every column of those rows: the full rows that the
    controls and rival statistics read (docs/spec.md sections 9 and 10)."""
    plan = stored_rows(lay, [lay.sample(per_layer, k) for k in samples])
    if shape is not None:
        plan = {name: (r, np.arange(row_view(shape(name), repr(name))[1], dtype=np.int64))
                for name, (r, _) in plan.items()}
    return plan


def take_snapshot(tensors: Mapping[str, Any], plan: Mapping[str, tuple], names: Sequence[str],
                  config: Optional[dict], description: str, cache: Optional[dict] = None) -> Snapshot:
    """Copy the planned rows/columns of live torch tensors to CPU (the only work done on the
    training thread)."""
    import torch

    cache = {} if cache is None else cache
    blocks: dict = {}
    with torch.no_grad():
        for name, (r, c) in plan.items():
            t = tensors[name].detach()
            if t.device.type == "meta":
                raise ValueError(f"tensor {name!r} is on the meta device (no data)")
            key = (name, str(t.device))
            if key not in cache:
                cache[key] = (torch.as_tensor(r, device=t.device), torch.as_tensor(c, device=t.device))
            ri, ci = cache[key]
            rows = t if t.dim() == 2 else t.reshape(-1, t.shape[-1])  # an N-d tensor: its row view
            sub = rows.index_select(0, ri).index_select(1, ci)  # new tensors: later updates do not reach them
            blocks[name] = (r, c, sub.cpu() if sub.device.type != "cpu" else sub)
    shapes = {n: tuple(int(s) for s in tensors[n].shape) for n in names}
    dtypes = {n: str(tensors[n].dtype).replace("torch.", "") for n in names}
    return Snapshot(blocks, names, shapes, dtypes, config, description)
