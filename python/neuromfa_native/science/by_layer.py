"""Where the change happens: spectra of groups of centres (SPEC 11).

The spectrum of a set ``C`` of centres is the SPEC 2-3 spectrum of the out-edges of the nodes
in ``C`` alone, exactly :func:`~.engine.analyze_graph` on that edge subset (for a streamed full
network: the rows of ``C`` of the dense one-hop table, the same thing).  Groups, from the
layout's node-layer names ``block<b>.<kind>``:

- ``kind:<kind>``: one node-layer kind pooled over all blocks (e.g. ``kind:mlp_hidden``);
- ``block<b>``: every node layer of block ``b``;
- ``block<b>.<kind>``: one node layer; in a mixture-of-experts block, that kind's node layers of
  all the block's experts (``block<b>.expert<e>.<kind>``) pooled, as ``kind:<kind>`` pools them
  over blocks too (a sampled network draws about ``2S / E`` neurons per expert: per-expert groups
  would be nearly empty).

A group whose nodes have only synthetic out-edges (GPT-NeoX/GPT-2 ``qkv`` nodes, Llama/BERT
``q``/``k``/``v`` nodes: weight 1, distance 1, never kept by the filter) has no centres in any
layout; it is listed with NaN and a note saying so, never left out.  The ``output`` layer has no
out-edges and is not a group.
"""
from __future__ import annotations

import re
from typing import Optional

import numpy as np

__all__ = ["BY_LAYER_COLUMNS", "groups_of", "by_layer_rows", "by_layer_table_rows"]

BY_LAYER_COLUMNS = ["step", "checkpoint", "sample", "group", "alpha0", "width", "n_centres", "note"]

_EXPERT = re.compile(r"expert\d+\.(.+)$")


def groups_of(layer_names, synthetic_sources=()) -> list:
    """``[(group, layer codes, note)]`` of a layout: kinds pooled, blocks, node layers."""
    kinds: dict = {}
    blocks: dict = {}
    single: dict = {}
    for code, name in enumerate(layer_names):
        if "." not in name:  # 'output': sinks only
            continue
        block, kind = name.split(".", 1)
        expert = _EXPERT.match(kind)
        if expert:  # block<b>.expert<e>.<kind>: the block's experts pooled
            kind = expert.group(1)
        kinds.setdefault(kind, []).append(code)
        blocks.setdefault(block, []).append(code)
        single.setdefault(f"{block}.{kind}", []).append(code)
    syn = set(synthetic_sources)

    def note(codes):
        return ("no centres: the only out-edges of these nodes are synthetic (weight 1, distance 1, never kept)"
                if codes and all(c in syn for c in codes) else "")

    out = [(f"kind:{k}", c, note(c)) for k, c in kinds.items()]
    out += [(b, c, note(c)) for b, c in sorted(blocks.items(), key=lambda kv: int(kv[0][5:]) if kv[0][5:].isdigit()
                                                 else 0)]
    out += [(n, c, note(c)) for n, c in single.items()]
    return out


def _synthetic_sources(lay) -> set:
    real = {m.in_layer for m in lay.matrices if not m.is_synthetic}
    return {m.in_layer for m in lay.matrices if m.is_synthetic} - real


def by_layer_rows(nin, lay, **graph_opts) -> list:
    """``[dict(group, alpha0, width, n_centres, note)]`` of a sampled network (edge list)."""
    from ..mfa.engine import analyze_graph

    src_layer = nin.node_layer[np.searchsorted(nin.node_ids, nin.src)]
    rows = []
    for group, codes, note in groups_of(nin.layer_names, _synthetic_sources(lay)):
        sel = np.isin(src_layer, codes)
        row = dict(group=group, alpha0=np.nan, width=np.nan, n_centres=0, note=note)
        if not note:
            try:
                s = analyze_graph(nin.src[sel], nin.dst[sel], nin.weight[sel], **graph_opts)
                row.update(alpha0=float(s.alpha0), width=float(s.width), n_centres=int(s.n_nodes))
            except ValueError as exc:
                row["note"] = f"no spectrum: {exc}"
        rows.append(row)
    return rows


def by_layer_table_rows(table: np.ndarray, lay, *, threshold: float, decimals: int, min_edges: int, q,
                        n_threads: Optional[int], params: Optional[dict] = None) -> list:
    """The same rows for a streamed full network, from the rows of its dense one-hop table."""
    from .. import _core
    from ..mfa.engine import spectrum_from_partition

    offs = lay.offsets
    rows = []
    for group, codes, note in groups_of(lay.layer_names, _synthetic_sources(lay)):
        row = dict(group=group, alpha0=np.nan, width=np.nan, n_centres=0, note=note)
        if not note:
            sub = np.concatenate([table[offs[c]:offs[c + 1]] for c in codes])
            try:
                p = _core.table_log_partition(sub, threshold, decimals, min_edges, list(map(float, q)),
                                              -1 if n_threads is None else n_threads)
                if p["centre"].size == 0:
                    raise ValueError(f"no node has min_edges={min_edges} kept distances")
                s = spectrum_from_partition(p, q, decimals=decimals, n_distances=p["n_distances"], params=params)
                row.update(alpha0=float(s.alpha0), width=float(s.width), n_centres=int(s.n_nodes))
            except ValueError as exc:
                row["note"] = f"no spectrum: {exc}"
        rows.append(row)
    return rows


def series_rows(series) -> list:
    """Rows of ``by_layer.csv``: one per (checkpoint, sample, group)."""
    out = []
    for cp, rs in zip(series.checkpoints, series.results):
        for r in rs:
            for row in r.by_layer or ():
                out.append(dict(step=cp.step, checkpoint=cp.label, sample=r.sample, **row))
    return out


def group_emergence(series) -> tuple:
    """``(groups, E)``: E of each group over the series (SPEC 4 with the group's own baseline:
    the means over samples of the group's alpha0 and width), ``E[t, g]``."""
    groups: list = []
    a: dict = {}
    w: dict = {}
    for t, rs in enumerate(series.results):
        for r in rs:
            for row in r.by_layer or ():
                g = row["group"]
                if g not in a:
                    groups.append(g)
                    a[g] = [[] for _ in series.results]
                    w[g] = [[] for _ in series.results]
                a[g][t].append(row["alpha0"])
                w[g][t].append(row["width"])
    b = series.baseline
    e = np.full((len(series.results), len(groups)), np.nan)
    for j, g in enumerate(groups):
        am = np.array([np.mean(x) if x else np.nan for x in a[g]])
        wm = np.array([np.mean(x) if x else np.nan for x in w[g]])
        with np.errstate(divide="ignore", invalid="ignore"):
            e[:, j] = (wm / wm[b]) * np.log(am[b] / am)
    return groups, e
