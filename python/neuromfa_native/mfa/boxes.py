"""The box types: how the boxes around each centre node are grown (docs/spec.md section 2).

One row of :data:`BOX_TYPES` per box type: its name (the ``box=`` value and the CLI's
``--box`` choice), the core function that builds the box histograms of an edge list, and
whether it supports the streamed full network (``per_layer=None``).

Adding a box type is one new row here plus its core function (and, when it supports the full
network, its streamed table in :mod:`.analysis`); the CLI, the configuration and the checks
read this table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import _core

__all__ = ["BOX_TYPES", "BOXES", "BoxType", "DIRECTIONS"]

#: Directions a path box may walk the edges in.
DIRECTIONS = ("forward", "undirected")


@dataclass(frozen=True)
class BoxType:
    """One box type: ``histograms(src, dst, w, kind, threshold, decimals, min_edges, direction,
    n_threads)`` returns the core's CSR box histograms (``indptr``, ``key``, ``count``, ``centre``,
    ``n_sources``, ``n_distances``)."""

    name: str
    histograms: Callable[..., dict]
    full_network: bool
    #: what a centre needs, for the "no node kept" error
    centre_rule: str
    #: which nodes have distances, for that error (``str.format`` with ``n_sources``,
    #: ``threshold``, ``n_distances``, ``n_edges``)
    sources_rule: str
    #: whether the result depends on ``direction``
    directed: bool = False


def _edge_histograms(src, dst, w, kind, threshold, decimals, min_edges, direction, n_threads) -> dict:
    return _core.onehop_boxes(src, w, kind, threshold, decimals, min_edges, n_threads)


def _path_histograms(src, dst, w, kind, threshold, decimals, min_edges, direction, n_threads) -> dict:
    return _core.path_boxes(src, dst, w, kind, threshold, decimals, min_edges, direction == "undirected", n_threads)


#: name -> :class:`BoxType`; ``"edge"`` (one-hop boxes) is the reference.
BOX_TYPES = {
    "edge": BoxType(name="edge", histograms=_edge_histograms, full_network=True, centre_rule="distances",
                    sources_rule="{n_sources} nodes have distances 1 < d <= {threshold:g} "
                                 "({n_distances} of {n_edges} edges pass)"),
    "path": BoxType(name="path", histograms=_path_histograms, full_network=False,
                    centre_rule="nodes within the threshold",
                    sources_rule="{n_sources} nodes have edges with 1 < d <= {threshold:g}", directed=True),
}

#: The box type names, in table order.
BOXES = tuple(BOX_TYPES)
