"""Breakdown by layer (SPEC 11): a group's spectrum is analyze_graph on the out-edges of its
centres, on every architecture's tiny model; synthetic-only groups are listed with a note."""
from __future__ import annotations

import numpy as np
import pytest

from model_factory import ALL_ARCHS
from neuromfa_native import analyze_graph, analyze_sample, build_nin
from neuromfa_native.science.by_layer import groups_of

import tiny_series


def _reference(nin, codes, **kw):
    layer_of_src = nin.node_layer[np.searchsorted(nin.node_ids, nin.src)]
    sel = np.isin(layer_of_src, codes)
    return analyze_graph(nin.src[sel], nin.dst[sel], nin.weight[sel], **kw)


@pytest.mark.parametrize("arch", ALL_ARCHS)
@pytest.mark.slow
def test_group_spectrum_is_analyze_graph_on_the_edge_subset(arch, tiny_model):
    d = tiny_model(arch)
    kw = dict(min_edges=3)
    res = analyze_sample(d, 0, per_layer=8, by_layer=True, node_dimension=False, **kw)
    nin = build_nin(d, sample=0, per_layer=8)
    groups = {g: c for g, c, _ in groups_of(nin.layer_names)}
    rows = {r["group"]: r for r in res.by_layer}
    assert set(rows) == set(groups)
    checked = 0
    for g, row in rows.items():
        if row["note"]:
            assert np.isnan(row["alpha0"]) and row["n_centres"] == 0
            continue
        ref = _reference(nin, groups[g], **kw)
        assert row["alpha0"] == ref.alpha0 and row["width"] == ref.width and row["n_centres"] == ref.n_nodes
        checked += 1
    assert checked >= 3
    # nodes whose only out-edges are synthetic (QKV outputs; Llama gate/up products) are named,
    # not left out
    syn = [r for r in res.by_layer if r["note"].startswith("no centres")]
    kind = lambda g: g.split(":", 1)[1] if g.startswith("kind:") else g.split(".", 1)[1]  # noqa: E731
    assert syn and all(kind(r["group"]) in ("qkv", "q", "k", "v", "gate", "up") for r in syn)
    assert any(kind(r["group"]) in ("qkv", "q") for r in syn)


def test_full_network_groups_equal_the_edge_subsets(tmp_path):
    d = tiny_series.make_series_dirs(tmp_path, steps=(100,))[0]
    res = analyze_sample(d, None, per_layer=None, by_layer=True, node_dimension=False)
    nin = build_nin(d, per_layer=None)
    groups = {g: c for g, c, _ in groups_of(nin.layer_names)}
    for row in res.by_layer:
        if row["note"]:
            continue
        ref = _reference(nin, groups[row["group"]])
        assert row["alpha0"] == pytest.approx(ref.alpha0, rel=1e-12)
        assert row["n_centres"] == ref.n_nodes


@pytest.mark.slow
def test_by_layer_in_a_series(tmp_path):
    from neuromfa_native import analyze_series
    from neuromfa_native.science.by_layer import group_emergence, series_rows
    dirs = tiny_series.make_series_dirs(tmp_path / "c", steps=(0, 100, 1000))
    s = analyze_series(dirs, samples=2, per_layer=tiny_series.PER_LAYER, by_layer=True, n_bootstrap=20,
                       node_dimension=False, out=tmp_path / "run")
    rows = series_rows(s)
    assert rows and {"step", "checkpoint", "sample", "group", "alpha0", "width", "n_centres"} <= set(rows[0])
    groups, e = group_emergence(s)
    assert e.shape == (3, len(groups))
    assert np.all(e[0][np.isfinite(e[0])] == 0)
    from neuromfa_native.report.tables import write_report
    write_report(s, tmp_path / "run", plots=True)
    assert (tmp_path / "run" / "by_layer.csv").exists() and (tmp_path / "run" / "plots" / "by_layer.png").exists()
