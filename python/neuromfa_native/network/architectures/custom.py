"""Custom layer maps: ``layout=[(tensor, input layer, output layer[, "conv1d"]), ...]`` for a
model no family covers.  See docs/architectures.md."""
from __future__ import annotations

from typing import Any, Callable, Sequence

from .base import Layout, MatrixSpec, NodeLayer, missing_tensor

#: How to pass a custom layer map (the end of every "unsupported architecture" error).
CUSTOM_HELP = (
    "pass a custom layer map instead: layout=[(tensor name, input layer, output layer), ...] "
    "in network order, e.g. layout=[('layers.0.fc1.weight', 'in', 'hidden'), "
    "('layers.0.fc2.weight', 'hidden', 'out')]; tensors are read in torch (out, in) "
    "orientation, add a 4th element 'conv1d' for weights stored (in, out)"
)


def custom_layout(
    layer_map: Sequence[Sequence[Any]], shapes: Callable[[str], tuple], names: set[str], architecture: str = "custom"
) -> Layout:
    """Layout from an ordered list of ``(tensor, input layer, output layer[, orientation])``.

    Node layers are numbered in order of first appearance; their sizes come from the tensor
    shapes and must agree wherever a layer is used. Every node layer is sampled with its own
    draw of ``S`` neurons, in that order.
    """
    if isinstance(layer_map, (str, bytes)) or not isinstance(layer_map, Sequence) or len(layer_map) == 0:
        raise ValueError(f"layout must be a layout name or a non-empty list of (tensor, input, output); {CUSTOM_HELP}")
    sizes: dict[str, int] = {}
    order: list[str] = []
    entries: list[tuple[str, str, str, str]] = []
    for k, entry in enumerate(layer_map):
        if isinstance(entry, (str, bytes)) or not isinstance(entry, Sequence) or len(entry) not in (3, 4):
            raise ValueError(
                f"layout[{k}] must be (tensor name, input layer, output layer[, orientation]), got {entry!r}"
            )
        tensor, lin, lout = (str(x) for x in entry[:3])
        orient = str(entry[3]) if len(entry) == 4 else "torch"
        if orient not in ("torch", "conv1d"):
            raise ValueError(f"layout[{k}] orientation must be 'torch' or 'conv1d', got {orient!r}")
        if tensor not in names:
            missing_tensor(tensor, names)
        shp = tuple(shapes(tensor))
        if len(shp) != 2:
            raise ValueError(f"layout[{k}]: tensor {tensor!r} has shape {shp}, not a 2-d weight matrix")
        n_out, n_in = shp if orient == "torch" else shp[::-1]
        for layer, n in ((lin, n_in), (lout, n_out)):
            if layer not in sizes:
                sizes[layer] = n
                order.append(layer)
            elif sizes[layer] != n:
                raise ValueError(
                    f"layout[{k}]: tensor {tensor!r} ({orient} shape {shp}) gives layer {layer!r} "
                    f"size {n}, but an earlier tensor gave it size {sizes[layer]}"
                )
        entries.append((tensor, lin, lout, orient))
    pos = {name: i for i, name in enumerate(order)}
    nls = tuple(NodeLayer(n, sizes[n], n, sizes[n]) for n in order)
    mats = tuple(MatrixSpec(t, pos[a], pos[b], o) for t, a, b, o in entries)
    return Layout(architecture, "custom", nls, mats, {})
