"""correlate / correlate_models (docs/spec.md section 8): statistics equal to scipy.stats, the bootstrap interval,
the join, the quantity registry, and every bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
from fake_series import fake

from neuromfa_native.scores import rankcorr as _stats
from neuromfa_native.scores import correlation, quantities
from neuromfa_native.scores.correlation import COLUMNS, correlate, correlate_models, register_component, register_quantity

st = pytest.importorskip("scipy.stats")


# --------------------------------------------------------------------------------------------
# the statistics against scipy


def _pairs(seed: int, n: int, tied: bool):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = x * rng.uniform(-1, 1) + rng.normal(size=n)
    if tied:
        x, y = np.round(x), np.round(2 * y)
    return x, y


@pytest.mark.parametrize("tied", [False, True])
def test_spearman_kendall_pearson_equal_scipy(tied):
    for seed in range(80):
        n = 3 + seed % 40
        x, y = _pairs(seed, n, tied)
        if np.all(x == x[0]) or np.all(y == y[0]):
            continue
        ref = st.spearmanr(x, y)
        rho = _stats.spearman(x, y)
        assert abs(rho - ref.statistic) <= 1e-12
        p = _stats.spearman_pvalue(rho, n)
        assert p == pytest.approx(ref.pvalue, rel=1e-11, abs=1e-300)
        assert abs(_stats.kendall_tau_b(x, y) - st.kendalltau(x, y).statistic) <= 1e-12
        assert abs(_stats.pearson(x, y) - st.pearsonr(x, y).statistic) <= 1e-12


def test_t_tail_equals_scipy():
    for df in (1, 2, 3, 5, 10, 25, 100, 1000):
        for t in (0.0, 0.05, 0.5, 1.0, 2.5, 7.0, 30.0, 300.0):
            assert _stats.t_sf(t, df) == pytest.approx(st.t.sf(t, df), rel=1e-11, abs=1e-300)
            assert _stats.t_sf(-t, df) == pytest.approx(st.t.sf(-t, df), rel=1e-11)
    assert _stats.t_sf(math.inf, 3) == 0.0 and _stats.t_sf(-math.inf, 3) == 1.0


def test_column_ranks_equal_scipy_with_ties():
    rng = np.random.default_rng(3)
    a = np.round(rng.normal(size=(9, 200)), 1)
    np.testing.assert_array_equal(_stats.rank_columns(a), st.rankdata(a, axis=0))
    r = _stats.column_spearman(_stats.rank_columns(a[:, :100]), _stats.rank_columns(a[:, 100:]))
    ref = [st.spearmanr(a[:, i], a[:, 100 + i]).statistic for i in range(100)]
    np.testing.assert_allclose(r, ref, atol=1e-12)


def test_constant_input_is_nan_like_scipy():
    assert math.isnan(_stats.spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(_stats.kendall_tau_b([1, 1, 1], [1, 2, 3]))
    assert math.isnan(_stats.pearson([1, 1, 1], [1, 2, 3]))


# --------------------------------------------------------------------------------------------
# correlate on synthetic runs


def _run(n=8, k=5, seed=0, noise=0.01, steps=None):
    rng = np.random.default_rng(seed)
    steps = list(range(0, 100 * n, 100)) if steps is None else steps
    mu = np.linspace(1.7, 1.45, len(steps))
    a = mu[:, None] + noise * rng.standard_normal((len(steps), k))
    w = np.linspace(0.4, 0.8, len(steps))[:, None] + noise * rng.standard_normal((len(steps), k))
    return fake(steps, a, w), a, w


def test_point_statistics_are_scipy_on_the_joined_pairs():
    s, a, w = _run(n=10)
    rng = np.random.default_rng(1)
    ev = {st_: {"piqa": {"acc": (float(v), 0.01)}, "lambada": {"ppl": float(p)}}
          for st_, v, p in zip(s.steps, rng.uniform(0.5, 0.7, 10), rng.uniform(10, 50, 10))}
    c = correlate(s, ev, metric=None, n_boot=0)
    am, wm = a.mean(axis=1), w.mean(axis=1)
    e = (wm / wm[0]) * np.log(am[0] / am)
    assert len(c.rows) == 3 * 2 and set(c.rows[0]) == set(COLUMNS)
    for r in c.rows:
        x = {"E": e, "alpha0": am, "width": wm}[r["quantity"]]
        vals = [ev[t][r["task"]][r["metric"]] for t in s.steps]
        y = np.array([v[0] if isinstance(v, tuple) else v for v in vals], dtype=float)
        assert r["n"] == 10
        assert abs(r["spearman"] - st.spearmanr(x, y).statistic) <= 1e-12
        assert r["p_spearman"] == pytest.approx(st.spearmanr(x, y).pvalue, rel=1e-11)
        assert abs(r["kendall"] - st.kendalltau(x, y).statistic) <= 1e-12
        assert abs(r["pearson"] - st.pearsonr(x, y).statistic) <= 1e-12
        assert math.isnan(r["spearman_lo"])  # n_boot=0: no interval
        assert r["higher_is_better"] == (r["metric"] != "ppl")


def test_exactly_monotone_relation_gives_rho_one_and_a_degenerate_interval():
    steps = [0, 1, 2, 4, 8, 16, 32]
    a = np.repeat(np.linspace(1.7, 1.4, 7)[:, None], 4, axis=1)  # no sampling noise
    w = np.repeat(np.linspace(0.3, 0.9, 7)[:, None], 4, axis=1)
    ev = {s: {"piqa": 0.3 + 0.01 * i} for i, s in enumerate(steps)}  # no stderr
    c = correlate(fake(steps, a, w), ev, n_boot=200)
    row = {r["quantity"]: r for r in c.rows}
    assert row["E"]["spearman"] == pytest.approx(1.0, abs=1e-15)
    assert row["E"]["spearman_lo"] == pytest.approx(1.0) and row["E"]["spearman_hi"] == pytest.approx(1.0)
    assert row["E"]["kendall"] == 1.0 and row["alpha0"]["spearman"] == pytest.approx(-1.0, abs=1e-15)
    assert row["E"]["p_spearman"] == 0.0


def test_bootstrap_covers_the_true_rho_at_about_the_nominal_rate():
    """A known truth: per-checkpoint alpha0 means mu_t and scores s_t with rho(mu, s) = -0.41;
    each repetition observes K noisy samples per checkpoint and noisy scores with known stderr."""
    n, k, sd, se, reps = 12, 8, 0.03, 0.03, 120
    steps = list(range(0, 100 * n, 100))
    mu = np.linspace(1.7, 1.4, n)
    s = np.random.default_rng(4).permutation(np.linspace(0.2, 0.6, n))  # rho(mu, s) = -0.41
    true = _stats.spearman(mu, s)
    assert 0.2 < abs(true) < 0.8
    rng = np.random.default_rng(2)
    hits = 0
    for r in range(reps):
        a = mu[:, None] + sd * rng.standard_normal((n, k))
        obs = s + se * rng.standard_normal(n)
        ev = {t: {"task": (float(v), se)} for t, v in zip(steps, obs)}
        row = correlate(fake(steps, a, np.ones((n, k))), ev, quantities=["alpha0"], n_boot=300, seed=r).rows[0]
        hits += row["spearman_lo"] <= true <= row["spearman_hi"]
    assert 0.88 <= hits / reps <= 1.0


def test_bootstrap_is_seeded_and_scores_noise_moves_the_interval():
    s, _, _ = _run(n=9, noise=0.02)
    ev = {t: {"piqa": (0.5 + 0.01 * i, 0.02)} for i, t in enumerate(s.steps)}
    c1, c2 = correlate(s, ev, n_boot=300, seed=4), correlate(s, ev, n_boot=300, seed=4)
    assert c1.rows == c2.rows
    c3 = correlate(s, {t: {"piqa": 0.5 + 0.01 * i} for i, t in enumerate(s.steps)}, n_boot=300, seed=4)
    e1 = [r for r in c1.rows if r["quantity"] == "E"][0]
    e3 = [r for r in c3.rows if r["quantity"] == "E"][0]
    assert e1["spearman"] == e3["spearman"]
    assert e1["spearman_hi"] - e1["spearman_lo"] > e3["spearman_hi"] - e3["spearman_lo"]  # score noise widens it


def test_e_interval_per_checkpoint_is_the_series_own():
    """Same scheme and draw order as series.bootstrap_emergence: equal intervals for equal seeds."""
    from neuromfa_native.mfa.stats import bootstrap_emergence

    s, a, w = _run(n=7, k=6, noise=0.02)
    ev = {t: {"piqa": 0.4 + 0.02 * i} for i, t in enumerate(s.steps)}
    c = correlate(s, ev, n_boot=500, seed=3)
    ref = bootstrap_emergence(list(a), list(w), baseline=0, n_bootstrap=500, ci=0.95, seed=3)
    np.testing.assert_array_equal(c.intervals["E"], ref)


def test_partial_rho_given_a_covariate():
    s, a, w = _run(n=10, noise=0.2, seed=5)  # noisy enough that width does not order the checkpoints as alpha0
    rng = np.random.default_rng(9)
    ev = {t: {"piqa": float(v)} for t, v in zip(s.steps, rng.uniform(0.4, 0.6, 10))}
    c = correlate(s, ev, covariate="width", n_boot=0)
    am, wm = a.mean(axis=1), w.mean(axis=1)
    y = np.array([ev[t]["piqa"] for t in s.steps])
    r = [r for r in c.rows if r["quantity"] == "alpha0"][0]
    rxy, rxz, ryz = (st.spearmanr(am, y).statistic, st.spearmanr(am, wm).statistic, st.spearmanr(y, wm).statistic)
    assert r["partial_spearman"] == pytest.approx((rxy - rxz * ryz) / math.sqrt((1 - rxz ** 2) * (1 - ryz ** 2)),
                                                  abs=1e-12)
    assert r["covariate"] == "width" and r["partial_note"] == ""
    same = [r for r in c.rows if r["quantity"] == "width"][0]
    assert math.isnan(same["partial_spearman"]) and same["partial_note"] == "the covariate itself"
    c2 = correlate(s, ev, covariate="step", n_boot=0)
    assert all(row["covariate"] == "step" for row in c2.rows)
    with pytest.raises(ValueError, match="covariate 'rms' is neither 'step' nor a quantity"):
        correlate(s, ev, covariate="rms")


def test_the_join_is_visible():
    """Checkpoints without scores, scores without checkpoints, duplicated scores, partial run."""
    steps = [0, 1, 10, 100, 1000, 5000]
    s, a, w = _run(steps=steps, noise=0.02)
    # a partial run: step 5000 has no result yet
    res = list(s.results)
    res[-1] = ()
    s = type(s)(s.checkpoints, tuple(res))
    ev = {0: {"piqa": 0.25}, 1: {"piqa": 0.25}, 10: {"piqa": 0.3}, 100: {"piqa": 0.35}, 1000: {"piqa": 0.5},
          2000: {"piqa": 0.55}, 5000: {"piqa": 0.6}}
    c = correlate(s, ev, n_boot=0)
    j = c.join
    assert j.matched_steps == (0, 1, 10, 100, 1000)
    assert j.without_results == ("step5000",)
    assert j.scores_without_checkpoint == (2000,)
    assert j.duplicated_scores == {1: 0}
    assert c.rows[0]["n"] == 5
    text = c.format()
    assert "scores without checkpoint at 1 step(s): 2000" in text and "step 1 = step 0" in text
    assert repr(j) == ("<JoinReport: 5 matched; no result yet for 1 checkpoint(s): step5000; scores without "
                       "checkpoint at 1 step(s): 2000; identical scores at different steps: step 1 = step 0>")
    assert "no result yet for 1 checkpoint(s): step5000" in text
    ev2 = {t: v for t, v in ev.items() if t not in (1, 10)}
    c2 = correlate(s, ev2, n_boot=0)
    assert set(c2.join.without_scores) == {"step1", "step10"}


def test_fewer_than_three_matched_checkpoints_is_an_error():
    s, _, _ = _run(n=5)
    with pytest.raises(ValueError, match=r"only 2 checkpoint\(s\).*at least 3"):
        correlate(s, {0: {"piqa": 0.3}, 100: {"piqa": 0.4}, 99999: {"piqa": 0.5}})


def test_bad_arguments():
    s, _, _ = _run(n=5)
    ev = {t: {"piqa": 0.3 + 0.01 * i} for i, t in enumerate(s.steps)}
    with pytest.raises(ValueError, match="task.* nope not in the eval records"):
        correlate(s, ev, tasks=["nope"])
    with pytest.raises(ValueError, match="task 'piqa' has no metric f1; it has acc"):
        correlate(s, ev, tasks="piqa", metric="f1")
    with pytest.raises(ValueError, match="no task of 'mapping' has the metric f1;"):
        correlate(s, ev, metric="f1")
    with pytest.raises(ValueError, match=r"quantity\(ies\) rms not available for this run; available: E, alpha0, width"):
        correlate(s, ev, quantities=["rms"])
    with pytest.raises(ValueError, match="n_boot must be a non-negative integer"):
        correlate(s, ev, n_boot=-1)
    with pytest.raises(TypeError, match="run must be a Series or a run directory"):
        correlate(42, ev)
    with pytest.raises(ValueError, match="does not exist"):
        correlate("/nonexistent/run", ev)
    dup = fake([0, 0, 5], np.ones((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"several checkpoints at step\(s\) \[0\]"):
        correlate(dup, ev)


def test_registered_quantities_plug_in():
    """A control or rival statistic registers a component and a quantity and is correlated too."""
    s, a, w = _run(n=8, noise=0.02)
    register_component("width_doubled", lambda series: [2 * np.array([r.width for r in rs]) for rs in series.results])
    try:
        register_quantity("E_twice", ("alpha0", "width_doubled"), correlation.emergence_of("alpha0", "width_doubled"))
        ev = {t: {"piqa": 0.3 + 0.01 * i} for i, t in enumerate(s.steps)}
        assert "E_twice" in correlation.available_quantities(s)
        c = correlate(s, ev, n_boot=100)
        rows = {r["quantity"]: r for r in c.rows}
        assert rows["E_twice"]["spearman"] == rows["E"]["spearman"]  # E is invariant to scaling w
        np.testing.assert_allclose(c.values["E_twice"], c.values["E"], rtol=1e-12)
    finally:
        quantities.QUANTITIES.pop("E_twice", None)
        quantities._COMPONENTS.pop("width_doubled", None)
    with pytest.raises(ValueError, match="unknown component"):
        register_quantity("x", ("nope",), lambda m, b: m["nope"])


def test_quantities_a_run_reports_are_correlated_beside_e():
    """A run with a ``quantities()`` method (controls, rival statistics) has those quantities
    ranked beside E: scipy's values on their per-checkpoint values, no bootstrap interval (no
    per-sample values), and usable as the covariate; the registry's own E/alpha0/width win."""
    s0, a, w = _run(n=9, noise=0.02, seed=2)
    rng = np.random.default_rng(11)
    rms = np.linspace(0.02, 0.06, 9) + 0.02 * rng.standard_normal(9)
    e_gauss = 0.3 * np.linspace(0, 1, 9) + 0.05 * rng.standard_normal(9)
    reported = {"E": np.full(9, 99.0), "E_gaussian": e_gauss, "rms": rms}
    s = fake(list(s0.steps), a, w, quantities=reported)
    ev = {t: {"piqa": {"acc": (0.3 + 0.02 * i + 0.01 * rng.standard_normal(), 0.01)}} for i, t in enumerate(s.steps)}
    assert correlation.available_quantities(s) == ("E", "alpha0", "width", "E_gaussian", "rms")
    c = correlate(s, ev, n_boot=200, covariate="rms")
    rows = {r["quantity"]: r for r in c.rows}
    y = np.array([ev[t]["piqa"]["acc"][0] for t in s.steps])
    for name, x in (("E_gaussian", e_gauss), ("rms", rms)):
        assert rows[name]["spearman"] == pytest.approx(st.spearmanr(x, y).statistic, abs=1e-12)
        assert rows[name]["kendall"] == pytest.approx(st.kendalltau(x, y).statistic, abs=1e-12)
        assert rows[name]["pearson"] == pytest.approx(st.pearsonr(x, y).statistic, abs=1e-12)
        assert math.isnan(rows[name]["spearman_lo"]) and math.isnan(rows[name]["spearman_hi"])
        assert np.isnan(c.intervals[name]).all()
        np.testing.assert_array_equal(c.values[name], x)
    rxy, rxz, ryz = (st.spearmanr(e_gauss, y).statistic, st.spearmanr(e_gauss, rms).statistic,
                     st.spearmanr(y, rms).statistic)
    assert rows["E_gaussian"]["partial_spearman"] == pytest.approx(
        (rxy - rxz * ryz) / math.sqrt((1 - rxz ** 2) * (1 - ryz ** 2)), abs=1e-12)
    assert rows["E"]["spearman_lo"] < rows["E"]["spearman_hi"]  # E still from the samples, with its interval
    assert c.values["E"][0] == 0.0 and not np.any(c.values["E"] == 99.0)
    plain = correlate(fake(list(s0.steps), a, w), ev, n_boot=200)
    with_rms = correlate(s, ev, n_boot=200)
    own = [c for c in COLUMNS if "rms" not in c and c not in ("q_spearman", "q_exact")]  # rms adds its comparison, and rows
    assert ([{k: r[k] for k in own} for r in plain.rows if r["quantity"] == "E"]
            == [{k: r[k] for k in own} for r in with_rms.rows if r["quantity"] == "E"])
    bad = fake(list(s0.steps), a, w, quantities={"rms": rms[:4]})
    with pytest.raises(ValueError, match=r"quantity 'rms' has shape \(4,\); expected one value per checkpoint \(9,\)"):
        correlate(bad, ev)


def test_correlate_models_across_sizes():
    runs, evs = {}, {}
    rng = np.random.default_rng(0)
    for i, name in enumerate(["70m", "160m", "410m", "1b", "1.4b"]):
        s, _, _ = _run(n=4, steps=[0, 1000, 3000, 143000], seed=i, noise=0.01)
        a = np.array([[r.alpha0 for r in rs] for rs in s.results])
        a[-1] -= 0.02 * i  # bigger models end more regular
        runs[name] = fake(list(s.steps), a, np.array([[r.width for r in rs] for rs in s.results]))
        evs[name] = {143000: {"lambada": {"acc": (0.3 + 0.1 * i + 0.01 * rng.standard_normal(), 0.005)}}, 0: {"lambada": 0.0}}
    runs["no-final"] = fake([0, 1000], np.ones((2, 3)), np.ones((2, 3)))
    evs["no-final"] = {0: {"lambada": 0.1}}
    c = correlate_models(runs, evs, step=143000, n_boot=200)
    assert c.unit == "model" and c.labels == ("70m", "160m", "410m", "1b", "1.4b")
    assert c.join.without_step == ("no-final",)
    row = [r for r in c.rows if r["quantity"] == "E"][0]
    assert row["n"] == 5 and row["spearman"] == pytest.approx(1.0)
    x = c.values["E"]
    y = c.scores[("lambada", "acc")][0]
    assert abs(row["pearson"] - st.pearsonr(x, y).statistic) <= 1e-12
    with pytest.raises(ValueError, match=r"only 1 model\(s\)"):
        correlate_models({"a": runs["70m"], "b": runs["no-final"]}, evs | {"a": evs["70m"], "b": evs["no-final"]},
                         step=143000)
    with pytest.raises(ValueError, match="no eval source for model"):
        correlate_models({"x": runs["70m"]}, {}, step=0)


def test_to_pandas_and_repr_sorted_by_abs_rho():
    pd = pytest.importorskip("pandas")
    s, _, _ = _run(n=8, noise=0.03)
    rng = np.random.default_rng(4)
    ev = {t: {f"task{j}": float(v) for j, v in enumerate(rng.uniform(size=5))} for t in s.steps}
    c = correlate(s, ev, n_boot=50)
    df = c.to_pandas()
    assert list(df.columns) == list(COLUMNS) and len(df) == 15
    assert (np.diff(df["spearman"].abs().to_numpy()) <= 1e-15).all()
    assert repr(c).startswith("<Correlation over 8 checkpoints with ") and len(repr(c).splitlines()) == 1
    text = c.format(max_rows=10)
    assert text.splitlines()[0].startswith("Correlation over 8 checkpoints (steps 0..700)")
    assert "not the dependence between neighbouring checkpoints" in text and "more row(s)" in text
    assert isinstance(pd.read_csv(__import__("io").StringIO(c.to_csv())), pd.DataFrame)


def test_options_and_defaults_live_in_correlation_config():
    """One place for correlate's defaults and checks; config= gives them at once, keywords override."""
    from neuromfa_native import CorrelationConfig
    from neuromfa_native.cli import build_parser

    cfg = CorrelationConfig()
    assert (cfg.tasks, cfg.metric, cfg.quantities, cfg.n_boot, cfg.seed, cfg.covariate, cfg.ci) == (
        None, ("acc",), None, 2000, 0, None, 0.95)
    assert CorrelationConfig(tasks="piqa, lambada", metric=["acc", "loss"]).tasks == ("piqa", "lambada")
    args = build_parser().parse_args(["correlate", "run", "--evals", "x"])
    assert (args.metric, args.n_boot, args.seed) == ("acc", cfg.n_boot, cfg.seed)
    for bad, msg in ((dict(n_boot=-1), "n_boot must be a non-negative integer"), (dict(ci=1.0), r"ci must be in \(0, 1\)"),
                     (dict(seed=0.5), "seed must be an integer"), (dict(tasks=","), "tasks names nothing"),
                     (dict(metric=[1]), r"metric must be names \(str\)"), (dict(covariate=""), "covariate must be")):
        with pytest.raises((ValueError, TypeError), match=msg):
            CorrelationConfig(**bad)
    s, _, _ = _run(n=6)
    ev = {t: {"piqa": {"acc": 0.3 + 0.01 * i, "loss": 3 - 0.1 * i}} for i, t in enumerate(s.steps)}
    base = CorrelationConfig(metric="loss", n_boot=50, seed=3)
    c = correlate(s, ev, config=base)
    assert {r["metric"] for r in c.rows} == {"loss"} and c.n_boot == 50 and c.seed == 3
    c2 = correlate(s, ev, config=base, metric="acc")
    assert {r["metric"] for r in c2.rows} == {"acc"} and c2.n_boot == 50
    with pytest.raises(TypeError, match="config must be a CorrelationConfig"):
        correlate(s, ev, config={"n_boot": 5})


def test_correlate_models_takes_each_models_own_e_and_interval():
    """Across models: each model's E is that of its own run (relative to its own baseline) at the
    step, by the formula; its interval is its own run's E bootstrap, seeded (seed, model index)."""
    from neuromfa_native.mfa.stats import bootstrap_emergence

    runs, evs, aw = {}, {}, {}
    for i, name in enumerate(["a", "b", "c", "d"]):
        s, a, w = _run(n=3, steps=[0, 10, 20], seed=10 + i, noise=0.05)
        runs[name], aw[name] = s, (a, w)
        evs[name] = {20: {"piqa": 0.2 + 0.1 * i}}
    c = correlate_models(runs, evs, step=20, n_boot=300, seed=5, ci=0.9)
    assert c.labels == ("a", "b", "c", "d")
    for j, name in enumerate(c.labels):
        a, w = aw[name]
        am, wm = a.mean(axis=1), w.mean(axis=1)
        assert c.values["E"][j] == pytest.approx((wm[2] / wm[0]) * math.log(am[0] / am[2]), rel=1e-12)
        ref = bootstrap_emergence(list(a), list(w), baseline=0, n_bootstrap=300, ci=0.9, seed=[5, j])
        np.testing.assert_allclose(c.intervals["E"][j], ref[2], rtol=1e-12)
    row = [r for r in c.rows if r["quantity"] == "E"][0]
    assert row["spearman"] == pytest.approx(st.spearmanr(c.values["E"], [0.2, 0.3, 0.4, 0.5]).statistic, abs=1e-12)
