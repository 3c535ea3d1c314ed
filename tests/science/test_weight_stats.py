"""Rival statistics (SPEC 10) against numpy/scipy on the same rows; pooled = element-weighted."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.optimize as so
import scipy.stats as st

import neuromfa_native as nm
from neuromfa_native import _core
from neuromfa_native.science.controls import build_variants
from neuromfa_native.network.nin import load_layout
from neuromfa_native.science.weight_stats import STATISTICS, StatsAccumulator, weibull_fit

import tiny_series


def _scipy_fit(a):
    """scipy's ``weibull_min.fit(a, floc=0)`` with its default optimizer (Nelder-Mead) run to a
    tight tolerance: at the default tolerance scipy stops up to ~2e-4 short of the optimum."""
    opt = lambda f, x0, args=(), disp=0: so.fmin(f, x0, args=args, xtol=1e-12, ftol=1e-14, maxiter=20000,  # noqa: E731
                                                  maxfun=40000, disp=0)
    return st.weibull_min.fit(a, floc=0, optimizer=opt)


def _reference(blocks: list, threshold: float = 150.0) -> dict:
    """The statistics of the concatenated elements (and rows) of ``blocks`` with numpy/scipy."""
    x = np.concatenate([b.astype(np.float64).reshape(-1) for b in blocks])
    a = np.abs(x)
    k, _, lam = _scipy_fit(a[a > 0])
    rows = np.concatenate([np.abs(b.astype(np.float64)).sum(axis=1) for b in blocks])
    return dict(rms=np.sqrt(np.mean(x * x)), mean_abs=a.mean(), kurtosis=st.kurtosis(x), weibull_k=k,
                weibull_lambda=lam, kept_fraction=np.mean((a >= 1 / threshold) & (a < 1)), mean_strength=rows.mean())


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_statistics_match_numpy_scipy(dtype):
    rng = np.random.default_rng(1)
    blocks = {"a": (rng.standard_t(4, (20, 37)) * 0.03).astype(dtype),
              "b": (rng.normal(0, 0.1, (9, 50))).astype(dtype)}
    blocks["b"][0, :5] = 0
    acc = StatsAccumulator(150.0, 2)
    for name, b in blocks.items():
        acc.add(name, b[:7])  # a tensor may come in several row blocks
        acc.add(name, b[7:])
    ws = acc.result()
    assert ws.tensors == ("a", "b", "all") and ws.statistics == STATISTICS
    for name, b in blocks.items():
        ref = _reference([b])
        for s in STATISTICS:
            tol = 1e-4 if s.startswith("weibull") else 1e-9
            assert ws.get(s, name) == pytest.approx(ref[s], rel=tol), (name, s)
    pooled = _reference(list(blocks.values()))
    for s in STATISTICS:
        if s == "mean_strength":
            continue
        tol = 1e-4 if s.startswith("weibull") else 1e-9
        assert ws.get(s) == pytest.approx(pooled[s], rel=tol), s
    # mean_strength pooled: the element-weighted combination of the per-tensor values
    n = np.array([b.size for b in blocks.values()], float)
    ms = np.array([ws.get("mean_strength", t) for t in blocks])
    assert ws.get("mean_strength") == pytest.approx(n @ ms / n.sum(), rel=1e-12)
    # the element-weighted combination of rms^2, mean_abs, kept_fraction equals the pooled value
    for s, f in (("rms", np.square), ("mean_abs", lambda v: v), ("kept_fraction", lambda v: v)):
        comb = n @ f(np.array([ws.get(s, t) for t in blocks])) / n.sum()
        assert f(ws.get(s)) == pytest.approx(comb, rel=1e-12)


def test_bfloat16_histogram_is_exact():
    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.05, (16, 16)).astype(np.float32)
    bits = (w.view(np.uint32) >> 16).astype(np.uint16)  # truncate to bfloat16
    widened = (bits.astype(np.uint32) << 16).view(np.float32)
    acc = StatsAccumulator()
    acc.add("t", bits, "bf16")
    ref = _reference([widened])
    for s in STATISTICS:
        assert acc.result().get(s, "t") == pytest.approx(ref[s], rel=1e-4 if s.startswith("weibull") else 1e-9)


def test_weibull_fit_matches_scipy_and_is_thread_independent():
    rng = np.random.default_rng(3)
    x = st.weibull_min.rvs(0.8, scale=0.03, size=4000, random_state=rng)
    k, lam = weibull_fit(x)
    kr, _, lr = _scipy_fit(x)
    assert k == pytest.approx(kr, rel=1e-6) and lam == pytest.approx(lr, rel=1e-6)
    # scipy's default tolerance lands near, but never above, the likelihood of the exact fit
    kd, _, ld = st.weibull_min.fit(x, floc=0)
    assert k == pytest.approx(kd, rel=1e-3) and lam == pytest.approx(ld, rel=1e-3)
    ll = lambda k_, l_: st.weibull_min.logpdf(x, k_, scale=l_).sum()  # noqa: E731
    assert ll(k, lam) >= ll(kd, ld) - 1e-9
    # counts are weights: repeating values equals counting them
    u, c = np.unique(np.maximum(np.round(x, 4), 1e-4), return_counts=True)
    assert weibull_fit(u, c) == pytest.approx(weibull_fit(np.repeat(u, c)), rel=1e-12)
    w = rng.normal(0, 0.02, (300, 70))
    m1 = _core.weight_moments(w, "f64", 150.0, 1)
    m2 = _core.weight_moments(w, "f64", 150.0, 2)
    assert all(m1[k] == m2[k] for k in ("s1", "s2", "s3", "s4", "s_abs", "n_kept"))
    with pytest.raises(ValueError, match="positive"):
        weibull_fit([0.0, 1.0])


def test_sampled_network_stats_cover_the_read_rows(tmp_path):
    d = tiny_series.make_series_dirs(tmp_path, steps=(100,))[0]
    src, lay = load_layout(d)
    nin, nets, ws, rms = build_variants(src, lay, sample=3, per_layer=tiny_series.PER_LAYER, stats=True)
    samples = lay.sample(tiny_series.PER_LAYER, 3)
    blocks = []
    for m in lay.matrices:
        if m.is_synthetic:
            continue
        rows = src.get(m.name)[samples[m.out_layer]]  # the full rows of the sampled output neurons
        blocks.append(rows)
        assert ws.get("rms", m.name) == pytest.approx(np.sqrt(np.mean(rows.astype(float) ** 2)), rel=1e-12)
        assert rms[m.name] == pytest.approx(ws.get("rms", m.name), rel=1e-15)
    ref = _reference(blocks)
    for s in ("rms", "mean_abs", "kurtosis", "kept_fraction"):
        assert ws.get(s) == pytest.approx(ref[s], rel=1e-9)
    assert ws.get("weibull_k") == pytest.approx(ref["weibull_k"], rel=1e-4)


@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_weight_moments_16bit_equals_the_widened_values(kind):
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 1 << 16, (13, 17), dtype=np.uint16)
    bits[(bits & 0x7C00) == 0x7C00] = 0 if kind == "f16" else bits[(bits & 0x7C00) == 0x7C00]
    if kind == "f16":
        wide = bits.view(np.float16).astype(np.float64)
    else:
        bits[(bits & 0x7F80) == 0x7F80] = 0
        wide = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    m = _core.weight_moments(bits, kind, 150.0, 2)
    r = _core.weight_moments(np.ascontiguousarray(wide), "f64", 150.0, 2)
    for k in ("n", "n_zero", "n_kept", "s1", "s2", "s_abs"):
        assert m[k] == r[k], k
    h = _core.HalfStats(kind, 150.0, True)
    h.add(bits.reshape(-1), 2)
    s = h.finish()
    for k in ("n", "n_zero", "n_kept"):
        assert s[k] == r[k], k
    for k in ("s1", "s2", "s_abs"):
        assert s[k] == pytest.approx(r[k], rel=1e-12, abs=1e-300), k
    mags = np.bincount(bits.reshape(-1) & 0x7FFF, minlength=1 << 15).astype(np.float64)
    mags[0] = 0  # zeros are not magnitudes of the fit
    np.testing.assert_array_equal(h.pooled_counts(), mags)


def _half_stats(bits, kind, blocks=1, n_threads=1, fit=True):
    """``_core.HalfStats`` of one tensor given in ``blocks`` row blocks: its finish() dict."""
    h = _core.HalfStats(kind, 150.0, fit)
    for b in np.array_split(np.asarray(bits).reshape(-1), blocks):
        h.add(b, n_threads)
    return h.finish()


@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_half_stats_equal_the_widened_values_and_the_plain_fit(kind):
    rng = np.random.default_rng(5)
    w = rng.standard_normal(40000) * 0.02
    w[:50] *= 1e-4  # subnormal float16 patterns too
    w[50:60] = 0.0
    if kind == "f16":
        bits = w.astype(np.float16).view(np.uint16)
        wide = bits.view(np.float16).astype(np.float64)
    else:
        bits = (w.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
        wide = (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    m = _half_stats(bits, kind, blocks=3)
    assert m["n"] == w.size and m["n_zero"] == int(np.sum(wide == 0)) and m["n_nonfinite"] == 0
    assert m["n_kept"] == int(np.sum((np.abs(wide) >= 1 / 150.0) & (np.abs(wide) < 1)))
    for k, p in (("s1", 1), ("s2", 2), ("s3", 3), ("s4", 4)):
        assert m[k] == pytest.approx(np.sum(wide ** p), rel=1e-12, abs=1e-300)
    assert m["s_abs"] == pytest.approx(np.abs(wide).sum(), rel=1e-12)
    x, c = np.unique(np.abs(wide[wide != 0]), return_counts=True)
    ref = _core.weibull_fit(x, c.astype(np.float64))
    assert m["shape"] == pytest.approx(ref["shape"], rel=1e-12)
    assert m["scale"] == pytest.approx(ref["scale"], rel=1e-12)
    # the same numbers without the fit (the controls' RMS), and with the fit NaN
    m0 = _half_stats(bits, kind, blocks=3, fit=False)
    fit_keys = ("shape", "scale", "iterations", "converged")
    assert {k: m0[k] for k in m0 if k not in fit_keys} == {k: m[k] for k in m if k not in fit_keys}
    assert m["converged"] and not m0["converged"] and m0["iterations"] == 0
    assert np.isnan(m0["shape"]) and np.isnan(m0["scale"])


@pytest.mark.parametrize("shape", [(3, 5), (70, 300), (400, 90)])
@pytest.mark.slow
def test_sigma_max_equals_numpy(shape):
    from neuromfa_native.science.weight_stats import sigma_max
    rng = np.random.default_rng(shape[0])
    w = rng.standard_normal(shape) * 0.02 + rng.standard_normal((shape[0], 1)) * 0.01
    assert sigma_max(w) == pytest.approx(np.linalg.norm(w, 2), rel=1e-10)
    assert sigma_max(w.astype(np.float16)) == pytest.approx(np.linalg.norm(w.astype(np.float16).astype(float), 2),
                                                            rel=1e-10)


def test_full_network_stable_rank_is_numpy_on_each_tensor(tmp_path):
    from neuromfa_native import analyze_sample, iter_full_matrices
    d = tiny_series.make_series_dirs(tmp_path, steps=(50,))[0]
    res = analyze_sample(d, None, per_layer=None, stats=True, node_dimension=False)
    ws = res.weight_stats
    assert "stable_rank" in ws.statistics
    ns, srs = [], []
    for fm in iter_full_matrices(d, include_synthetic=False):
        w = np.asarray(fm.weight, dtype=np.float64)
        ref = np.sum(w ** 2) / np.linalg.norm(w, 2) ** 2
        assert ws.get("stable_rank", fm.name) == pytest.approx(ref, rel=1e-9)
        ns.append(w.size), srs.append(ref)
    assert ws.get("stable_rank") == pytest.approx(np.dot(ns, srs) / np.sum(ns), rel=1e-9)


def _bits16(w, kind):
    if kind == "f16":
        return np.asarray(w).astype(np.float16).view(np.uint16)
    return (np.asarray(w, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


def _wide16(bits, kind):
    if kind == "f16":
        return bits.view(np.float16).astype(np.float64)
    return (bits.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


@pytest.mark.parametrize("kind", ["f16", "bf16"])
@pytest.mark.parametrize("shape", [0.3, 1.3, 8.0, 60.0])
def test_half_stats_fit_equals_the_plain_fit_over_shapes(kind, shape):
    """The 16-bit fit (models of the runs of mantissas, then exact Newton steps over every
    pattern) against the plain fit on the distinct |w|, from very spread (subnormal patterns) to
    very narrow |w|."""
    rng = np.random.default_rng(int(shape * 10))
    w = st.weibull_min.rvs(shape, scale=0.02, size=30000, random_state=rng) * rng.choice([-1, 1], 30000)
    bits = _bits16(w, kind)
    wide = _wide16(bits, kind)
    m = _half_stats(bits, kind, blocks=2)
    x, c = np.unique(np.abs(wide[wide != 0]), return_counts=True)
    ref = _core.weibull_fit(x, c.astype(np.float64))
    assert m["shape"] == pytest.approx(ref["shape"], rel=1e-12)
    assert m["scale"] == pytest.approx(ref["scale"], rel=1e-12)
    assert m["n"] == w.size and m["n_zero"] == int(np.sum(wide == 0))
    for k, p in (("s1", 1), ("s2", 2), ("s3", 3), ("s4", 4)):
        assert m[k] == pytest.approx(np.sum(wide ** p), rel=1e-12, abs=1e-300)


def test_half_stats_clears_each_tensor_and_pools_the_magnitudes():
    rng = np.random.default_rng(9)
    a = _bits16(rng.standard_normal(5000) * 0.02, "f16")
    a[:3] = 0x7C00  # +inf: counted as non-finite, then cleared with the rest
    b = _bits16(rng.standard_t(3, 3000) * 0.05, "f16")
    h = _core.HalfStats("f16", 150.0, True)
    h.add(a, 1)
    ma = h.finish()
    h.add(b, 1)
    mb = h.finish()
    assert ma["n"] == a.size and ma["n_nonfinite"] == 3
    assert mb == _half_stats(b, "f16")  # nothing of the first tensor is left in the table
    assert h.tensors == 2
    fin = np.concatenate([a[3:], b])
    mags = np.bincount(fin & 0x7FFF, minlength=1 << 15).astype(np.float64)
    mags[0] = 0
    np.testing.assert_array_equal(h.pooled_counts(), mags)
    x = _wide16(fin, "f16")
    u, c = np.unique(np.abs(x[x != 0]), return_counts=True)
    ref = _core.weibull_fit(u, c.astype(np.float64))
    pf = h.pooled_fit()
    assert pf["shape"] == pytest.approx(ref["shape"], rel=1e-12) and pf["scale"] == pytest.approx(ref["scale"], rel=1e-12)


def test_half_stats_threads_give_the_same_bits():
    rng = np.random.default_rng(4)
    bits = _bits16(rng.standard_normal((1 << 21) + 999) * 0.02, "bf16")  # over two count blocks
    assert _half_stats(bits, "bf16", n_threads=2) == _half_stats(bits, "bf16", n_threads=1)


def test_half_stats_refuses_bad_options():
    with pytest.raises(ValueError, match="weight_kind"):
        _core.HalfStats("f32", 150.0, True)
    with pytest.raises(ValueError, match="threshold"):
        _core.HalfStats("f16", 1.0, True)
    with pytest.raises(ValueError, match="fit=False"):
        _core.HalfStats("f16", 150.0, False).pooled_fit()
    with pytest.raises(TypeError):
        _core.HalfStats("f16", 150.0, True).add(np.zeros(4, np.float16), 1)  # the bit patterns, as uint16


@pytest.mark.parametrize("kind", ["f16", "bf16"])
def test_half_stats_fit_of_very_narrow_magnitudes(kind):
    """Weibull shapes in the thousands (LayerNorm-like weights near 1): the exact step must not
    overflow (a review found k stuck near 1000 before)."""
    rng = np.random.default_rng(0)
    for w in (np.array([0.5, 0.4998, 0.5, 0.5]), 1 + 5e-4 * rng.standard_normal(5000)):
        bits = _bits16(w, kind)
        wide = _wide16(bits, kind)
        x, c = np.unique(np.abs(wide), return_counts=True)
        if x.size < 2:
            continue
        ref = _core.weibull_fit(x, c.astype(np.float64))
        m = _half_stats(bits, kind)
        assert ref["shape"] > 100
        assert m["shape"] == pytest.approx(ref["shape"], rel=1e-11)
        assert m["scale"] == pytest.approx(ref["scale"], rel=1e-11)


def test_non_finite_weights_raise_and_leave_the_accumulator_whole():
    a = np.full((2, 8), 0.25, np.float16)
    a[0, 3] = np.inf
    acc = StatsAccumulator(150.0, 1)
    acc.add("a", a)
    with pytest.raises(ValueError, match="tensor 'a' has 1 non-finite"):
        acc.rms("a")
    acc.add("b", np.full((1, 4), 0.5, np.float16))
    ws = acc.result()  # still complete: 'a' of its finite weights
    assert ws.tensors == ("a", "b", "all") and ws.get("rms", "b") == 0.5


@pytest.mark.parametrize("values", [[0.5], [0.5, -0.5], [1e-6], [0.25, 0.5]])
def test_half_stats_fit_of_one_or_two_distinct_magnitudes(values):
    bits = _bits16(np.repeat(values, 7), "f16")
    m = _half_stats(bits, "f16")
    a = np.unique(np.abs(_wide16(bits, "f16")))
    if a.size == 1:
        assert np.isnan(m["shape"]) and np.isnan(m["scale"])
    else:
        ref = _core.weibull_fit(a, np.full(a.size, 7.0))
        assert m["shape"] == pytest.approx(ref["shape"], rel=1e-12)


def test_half_stats_docstring_example_runs():
    # --doctest-modules reads only .py files: the example in cpp/bindings.cpp is run here
    import doctest

    tests = doctest.DocTestFinder(recurse=False).find(_core.HalfStats, "HalfStats", globs={})
    assert tests and tests[0].examples
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for t in tests:
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0


def test_every_fit_dict_says_whether_it_converged():
    rng = np.random.default_rng(2)
    x = rng.weibull(1.5, 500) * 0.02
    f = _core.weibull_fit(x, np.ones_like(x))
    assert f["converged"] is True and f["iterations"] >= 1
    capped = _core.weibull_fit(x, np.ones_like(x), max_iter=1)
    assert capped["converged"] is False and capped["iterations"] == 1 and np.isfinite(capped["shape"])
    with pytest.raises(ValueError, match="max_iter"):
        _core.weibull_fit(x, np.ones_like(x), max_iter=0)
    h = _core.HalfStats("f16", 150.0, True)
    h.add(x.astype(np.float16).view(np.uint16), 1)
    for d in (h.finish(), h.pooled_fit()):
        assert d["converged"] is True and d["iterations"] >= 1


def _capped_fit(monkeypatch):
    """_core.weibull_fit stopped after two Newton steps: a real fit that did not converge."""
    real = _core.weibull_fit
    monkeypatch.setattr(_core, "weibull_fit", lambda x, c: real(x, c, max_iter=2))


def test_a_fit_that_did_not_converge_is_nan_with_a_note(monkeypatch):
    """Regression: the bindings dropped ``converged``, so a fit stopped at its iteration cap came
    back as a number; now it is NaN, recorded in WeightStats.notes and warned."""
    _capped_fit(monkeypatch)
    rng = np.random.default_rng(4)
    w = (rng.standard_normal((40, 30)) * 0.02).astype(np.float32)
    acc = StatsAccumulator(threshold=150.0, n_threads=1)
    acc.add("w", w)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        ws = acc.result()
    assert np.isnan(ws.get("weibull_k", "w")) and np.isnan(ws.get("weibull_lambda", "w"))
    assert np.isnan(ws.get("weibull_k")) and np.isnan(ws.get("weibull_lambda"))
    assert np.isfinite(ws.get("rms", "w"))  # only the fit is lost
    assert any("tensor 'w'" in n for n in ws.notes) and any("pooled" in n for n in ws.notes)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        assert all(np.isnan(weibull_fit(np.abs(w[w != 0]))))


def test_a_16bit_fit_that_did_not_converge_is_nan_with_a_note(monkeypatch):
    """The 16-bit path reads ``converged`` from HalfStats's dicts too (here forced, as no real
    count table stops the fit short)."""
    class NotConverging(_core.HalfStats):
        def finish(self):
            return {**super().finish(), "converged": False, "iterations": 200}

        def pooled_fit(self):
            return {**super().pooled_fit(), "converged": False, "iterations": 200}

    monkeypatch.setattr(_core, "HalfStats", NotConverging)
    w = (np.random.default_rng(6).standard_normal((40, 30)) * 0.02).astype(np.float16)
    acc = StatsAccumulator(threshold=150.0, n_threads=1)
    acc.add("w", w.view(np.uint16), kind="f16")
    with pytest.warns(RuntimeWarning, match="did not converge"):
        ws = acc.result()
    assert np.isnan(ws.get("weibull_k", "w")) and np.isnan(ws.get("weibull_k"))
    assert len(ws.notes) == 2 and np.isfinite(ws.get("rms"))


def test_converged_fits_leave_no_note():
    w = (np.random.default_rng(8).standard_normal((40, 30)) * 0.02).astype(np.float16)
    acc = StatsAccumulator(threshold=150.0, n_threads=1)
    acc.add("w", w.view(np.uint16), kind="f16")
    ws = acc.result()
    assert ws.notes == () and np.isfinite(ws.get("weibull_k"))


def test_the_note_of_a_fit_that_did_not_converge_survives_the_run_directory(monkeypatch, tmp_path):
    """A result stored with a WeightStats note reads back with the note (and the NaNs)."""
    from neuromfa_native.run.store import result_from_npz, result_to_npz
    from neuromfa_native.science.analysis import SampleResult

    _capped_fit(monkeypatch)
    w = (np.random.default_rng(4).standard_normal((40, 30)) * 0.02).astype(np.float32)
    acc = StatsAccumulator(threshold=150.0, n_threads=1)
    acc.add("w", w)
    with pytest.warns(RuntimeWarning, match="did not converge"):
        ws = acc.result()
    src = np.repeat(np.arange(4), 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        spec = nm.analyze_graph(src, np.arange(48) + 10, np.linspace(0.01, 0.5, 48), min_edges=5)
    r = SampleResult(checkpoint="c", sample=0, spectrum=spec, n_network_nodes=1, n_network_edges=2, seconds=0.0,
                     weight_stats=ws)
    p = tmp_path / "r.npz"
    p.write_bytes(result_to_npz(r, key="k", chash="h"))
    back = result_from_npz(p, key="k", chash="h")
    assert back.weight_stats == ws and back.weight_stats.notes == ws.notes and ws.notes
