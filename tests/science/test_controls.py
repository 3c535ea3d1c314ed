"""Null-network controls (SPEC 9) against their definitions on small networks."""
from __future__ import annotations

import numpy as np
import pytest

from neuromfa_native import analyze, analyze_sample, build_nin
from neuromfa_native.science.controls import build_variants
from neuromfa_native.science.nulls import CONTROLS, Control, check_controls, control_rng, needing_baseline
from neuromfa_native.network.nin import load_layout

import tiny_series
from paths import ROOT

S = tiny_series.PER_LAYER


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return tiny_series.make_series_dirs(tmp_path_factory.mktemp("ctl"), steps=(0, 100))


def _blocks(nin, lay, samples):
    """``{tensor: (U as (out, in) from the edge list, sampled rows, sampled cols)}``."""
    out = {}
    offs = lay.offsets
    for m in lay.matrices:
        if m.is_synthetic:
            continue
        i_ids, o_ids = offs[m.in_layer] + samples[m.in_layer], offs[m.out_layer] + samples[m.out_layer]
        sel = np.isin(nin.src, i_ids) & np.isin(nin.dst, o_ids)
        u = np.zeros((o_ids.size, i_ids.size))
        u[np.searchsorted(np.sort(o_ids), nin.dst[sel]), np.searchsorted(np.sort(i_ids), nin.src[sel])] = \
            nin.weight[sel]
        out[m.name] = (u, np.sort(samples[m.out_layer]), np.sort(samples[m.in_layer]))
    return out


def test_each_control_follows_its_definition(ckpts):
    src, lay = load_layout(ckpts[1])
    k = 2
    samples = lay.sample(S, k)
    base_src, _ = load_layout(ckpts[0])
    _, _, _, base_rms = build_variants(base_src, lay, sample=k, per_layer=S)
    nin, nets, _, rms = build_variants(src, lay, sample=k, per_layer=S, controls=("gaussian", "shuffle", "scaled"),
                                       scale_to=base_rms)
    ref = build_nin(ckpts[1], sample=k, per_layer=S)
    np.testing.assert_array_equal(nin.src, ref.src)
    np.testing.assert_array_equal(nin.weight, ref.weight)
    real = _blocks(nin, lay, samples)
    gauss, shuf, scal = (_blocks(nets[c], lay, samples) for c in ("gaussian", "shuffle", "scaled"))
    gz = []
    for name, (u, rows, _) in real.items():
        full_rows = src.get(name)[rows].astype(float)
        r = np.sqrt(np.mean(full_rows ** 2))  # RMS over the full rows the network reads
        assert rms[name] == pytest.approx(r, rel=1e-12)
        # shuffle: the same multiset of used weights
        np.testing.assert_array_equal(np.sort(shuf[name][0], axis=None), np.sort(u, axis=None))
        assert not np.array_equal(shuf[name][0], u)
        # scaled: the baseline RMS restored over the same rows
        base_rows = base_src.get(name)[rows].astype(float)
        np.testing.assert_allclose(scal[name][0], u * np.sqrt(np.mean(base_rows ** 2)) / r, rtol=1e-12)
        gz.append(gauss[name][0].reshape(-1) / r)
    # gaussian: standard normal draws once divided by the row RMS
    z = np.concatenate(gz)
    assert abs(z.mean()) < 0.05 and z.std() == pytest.approx(1.0, abs=0.05)
    from scipy.stats import kstest
    assert kstest(z, "norm").pvalue > 1e-3


def test_draws_depend_on_sample_and_tensor_only(ckpts):
    a = control_rng(3, "t", "gaussian").standard_normal(5)
    np.testing.assert_array_equal(a, control_rng(3, "t", "gaussian").standard_normal(5))
    assert not np.array_equal(a, control_rng(4, "t", "gaussian").standard_normal(5))
    assert not np.array_equal(a, control_rng(3, "u", "gaussian").standard_normal(5))
    # the same draws for every checkpoint: the shuffle permutation is the same
    src0, lay = load_layout(ckpts[0])
    src1, _ = load_layout(ckpts[1])
    n0 = build_variants(src0, lay, sample=1, per_layer=S, controls=("shuffle", "gaussian"))
    n1 = build_variants(src1, lay, sample=1, per_layer=S, controls=("shuffle", "gaussian"))
    for c in ("shuffle", "gaussian"):
        np.testing.assert_array_equal(n0[1][c].src, n1[1][c].src)
    g0, g1 = n0[1]["gaussian"].weight, n1[1]["gaussian"].weight
    ratio = g1 / g0  # per tensor a constant (the ratio of the RMS); 1 on the synthetic 0/1 edges
    assert np.unique(np.round(ratio, 9)).size <= 1 + len([m for m in lay.matrices if not m.is_synthetic])


def test_controls_identical_across_threads_and_runs(ckpts):
    r1 = analyze_sample(ckpts[1], 0, per_layer=S, controls=("gaussian", "shuffle"), stats=True, n_threads=1)
    r2 = analyze_sample(ckpts[1], 0, per_layer=S, controls=("gaussian", "shuffle"), stats=True, n_threads=2)
    for c in ("gaussian", "shuffle"):
        np.testing.assert_array_equal(r1.controls[c].tau, r2.controls[c].tau)
    np.testing.assert_array_equal(r1.weight_stats.values, r2.weight_stats.values)
    plain = analyze_sample(ckpts[1], 0, per_layer=S)
    np.testing.assert_array_equal(plain.spectrum.tau, r1.spectrum.tau)  # the real network is unchanged


def test_controls_validation(ckpts):
    with pytest.raises(ValueError, match="unknown control"):
        check_controls(("gauss",), series=False)
    with pytest.raises(ValueError, match="needs a series"):
        analyze(ckpts[0], samples=1, per_layer=S, controls=("scaled",))
    with pytest.raises(ValueError, match="needs a series"):
        analyze_sample(ckpts[0], None, per_layer=None, controls=("scaled",))
    assert check_controls("shuffle,gaussian", series=False) == ("gaussian", "shuffle")


def test_the_controls_are_one_registry(ckpts, monkeypatch):
    """The configuration, the series-only rule and the builders read CONTROLS: a new row (here a
    sign flip, which 1/|w| cannot see: a known answer) works everywhere without another edit."""
    from neuromfa_native import AnalysisConfig, CONTROLS as PUBLIC
    assert PUBLIC is CONTROLS and needing_baseline(CONTROLS) == ("scaled",)
    with pytest.raises(ValueError, match=r"unknown controls \['negated'\]; choose from \('gaussian', 'shuffle', 'scaled'\)"):
        AnalysisConfig(controls="negated")
    flip = Control(name="negated", build=lambda u, **_: -u, keeps="everything 1/|w| sees", removes="the signs", short="1/|w|",
                   replaces="-U", keeps_dtype=True)
    monkeypatch.setitem(CONTROLS, "negated", flip)
    assert AnalysisConfig(controls="negated,gaussian").controls == ("gaussian", "negated")
    r = analyze_sample(ckpts[1], 0, per_layer=S, controls=("negated",), n_threads=1)
    assert r.controls["negated"] == r.spectrum  # the same distances: the same spectrum, bit for bit
    full = analyze_sample(ckpts[1], None, per_layer=None, controls=("negated",), node_dimension=False, n_threads=1)
    assert full.controls["negated"] == full.spectrum
    monkeypatch.setitem(CONTROLS, "negated", Control(**{**flip.__dict__, "needs_baseline": True}))
    with pytest.raises(ValueError, match="the 'negated' control needs a series"):
        analyze(ckpts[0], samples=1, per_layer=S, controls=("negated",))


def test_the_controls_table_of_the_docs_is_the_registry():
    text = (ROOT / "docs" / "controls.md").read_text().replace("`", "")
    for c in CONTROLS.values():
        row = next(line for line in text.splitlines() if line.startswith(f"| {c.name} "))
        cells = [x.strip() for x in row.strip("|").split("|")]
        assert cells[1:] == [c.replaces, c.keeps, c.removes], c.name
        assert ("series only" in cells[0]) is c.needs_baseline


def _write_series(root, weight_fn, steps):
    import json

    from neuromfa_native.io.safetensors import write_safetensors
    dirs = []
    for t in steps:
        d = root / f"step{t}"
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(tiny_series.config()))
        write_safetensors(d / "model.safetensors", weight_fn(t))
        dirs.append(d)
    return dirs


def test_pure_scale_series_has_zero_scaled_E(tmp_path):
    from neuromfa_native import analyze_series
    w0 = {k: v.astype(np.float64) * 3 for k, v in tiny_series.weights(1000).items()}
    scale = {0: 1.0, 1: 1.5, 2: 2.5}
    dirs = _write_series(tmp_path, lambda t: {k: v * scale[t] for k, v in w0.items()}, (0, 1, 2))
    s = analyze_series(dirs, samples=3, per_layer=S, controls=("gaussian", "shuffle", "scaled"), n_bootstrap=50,
                       node_dimension=False)
    q = s.quantities()
    assert np.all(np.abs(q["E_scaled"]) < 1e-9)
    assert np.abs(q["E"][1:]).max() > 1e-3  # the real network does change with the scale
    rows = s.control_rows()
    assert {r["control"] for r in rows} == {"none", "gaussian", "shuffle", "scaled"}
    assert len(rows) == 3 * 4 and all(r["n"] == 3 for r in rows)
    real = [r for r in rows if r["control"] == "none"]
    np.testing.assert_allclose([r["E"] for r in real], s.emergence)


def test_constant_rms_series_has_zero_gaussian_E(tmp_path):
    from neuromfa_native import analyze_series
    w0 = {k: v.astype(np.float64) for k, v in tiny_series.weights(1000).items()}

    def weights(t):  # each row permuted: every row keeps its RMS, the network changes
        rng = np.random.default_rng(t)
        return {k: rng.permuted(v, axis=1) if t else v for k, v in w0.items()}

    dirs = _write_series(tmp_path, weights, (0, 1, 2))
    s = analyze_series(dirs, samples=3, per_layer=S, controls=("gaussian",), stats=True, n_bootstrap=50,
                       node_dimension=False)
    q = s.quantities()
    assert np.all(np.abs(q["E_gaussian"]) < 1e-9)
    assert np.abs(q["E"][1:]).max() > 1e-3
    np.testing.assert_allclose(q["rms"], q["rms"][0], rtol=1e-12)
    assert {"rms", "kurtosis", "weibull_k", "kept_fraction"} <= set(q)


def test_full_network_controls_equal_the_null_edge_lists(ckpts):
    from neuromfa_native import analyze_graph, iter_full_matrices
    res = analyze_sample(ckpts[1], None, per_layer=None, controls=("gaussian", "shuffle"), stats=True,
                         node_dimension=False)
    for c in ("gaussian", "shuffle"):
        src, dst, wt = [], [], []
        for fm in iter_full_matrices(ckpts[1], include_synthetic=False):
            w = np.asarray(fm.weight, dtype=np.float64)
            rng = control_rng(None, fm.name, c)
            v = rng.standard_normal(w.shape) * np.sqrt(np.mean(w ** 2)) if c == "gaussian" else \
                w.reshape(-1)[rng.permutation(w.size)].reshape(w.shape)
            jj, ii = np.nonzero(v)
            src.append(fm.in_ids[ii]), dst.append(fm.out_ids[jj]), wt.append(v[jj, ii])
        ref = analyze_graph(np.concatenate(src), np.concatenate(dst), np.concatenate(wt))
        np.testing.assert_allclose(res.controls[c].tau, ref.tau, rtol=1e-12, atol=1e-12)
        assert res.controls[c].alpha0 == pytest.approx(ref.alpha0, rel=1e-12)
    assert res.weight_stats.get("rms") > 0


def test_path_box_controls_are_analyze_graph_on_the_null_network(ckpts):
    from neuromfa_native import analyze_graph
    res = analyze_sample(ckpts[1], 1, per_layer=S, box="path", controls=("shuffle", "gaussian"),
                         node_dimension=False)
    src, lay = load_layout(ckpts[1])
    _, nets, _, _ = build_variants(src, lay, sample=1, per_layer=S, controls=("shuffle", "gaussian"))
    for c, nin in nets.items():
        ref = analyze_graph(nin.src, nin.dst, nin.weight, box="path")
        np.testing.assert_array_equal(res.controls[c].tau, ref.tau)
