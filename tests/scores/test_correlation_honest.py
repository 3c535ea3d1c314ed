"""What the correlation table may claim (docs/correlation.md): the exact permutation p-value of
Spearman's rho beside scipy's t approximation, with its own Benjamini-Hochberg q-value and
count, and the rows whose percentile interval excludes its own point value, each on a case
with a known answer."""
from __future__ import annotations

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from fake_series import fake
from neuromfa_native.report.answers import correlation_summary
from neuromfa_native.report.page import read_csv
from neuromfa_native.report.science_sections import correlation_headline
from neuromfa_native.scores import rankcorr as rc
from neuromfa_native.scores.correlation import COLUMNS, correlate
from neuromfa_native.scores.rows import bh_qvalues

st = pytest.importorskip("scipy.stats")


# --------------------------------------------------------------------------------------------
# the exact p-value of rho


def _vector_rho(y):
    """Spearman's rho of every row's permuted x with y, for scipy.stats.permutation_test."""
    def statistic(x, axis):
        rx = st.rankdata(x, axis=axis)
        ry = st.rankdata(y)
        dx = rx - rx.mean(axis=axis, keepdims=True)
        dy = ry - ry.mean()
        return (dx * dy).sum(axis=axis) / np.sqrt((dx ** 2).sum(axis=axis) * (dy ** 2).sum())
    return statistic


@pytest.mark.parametrize("tied", [False, True])
def test_exact_pvalue_equals_scipy_permutation_test(tied):
    rng = np.random.default_rng(5 + tied)
    for trial in range(24):
        n = 3 + trial % 6  # 3..8
        x = rng.normal(size=n)
        y = x * rng.uniform(-1.5, 1.5) + rng.normal(size=n)
        if tied:
            x, y = np.round(x), np.round(y)
        if np.all(x == x[0]) or np.all(y == y[0]):
            continue
        ref = st.permutation_test((x,), _vector_rho(y), permutation_type="pairings", vectorized=True,
                                  n_resamples=math.factorial(n), alternative="two-sided").pvalue
        got = rc.spearman_exact_pvalue(rc.rankdata(x), rc.rankdata(y))
        assert got == pytest.approx(ref, rel=1e-12, abs=0), (n, x, y)


@pytest.mark.slow
def test_exact_pvalue_of_nine_pairs_equals_a_brute_force_count():
    """9! = 362,880 orders, counted with scipy's spearmanr on every one (vectorised by rows)."""
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=9), rng.normal(size=9)
    y[2] = y[5]  # a tie
    obs = st.spearmanr(x, y).statistic
    perms = np.array(list(itertools.permutations(range(9))))
    ranks_y = st.rankdata(y)
    ranks_x = st.rankdata(x)[perms]
    dx, dy = ranks_x - ranks_x.mean(axis=1, keepdims=True), ranks_y - ranks_y.mean()
    null = (dx * dy).sum(axis=1) / np.sqrt((dx ** 2).sum(axis=1) * (dy ** 2).sum())
    tol = 1e-12
    p = min(1.0, 2 * min(np.mean(null <= obs + tol), np.mean(null >= obs - tol)))
    assert rc.spearman_exact_pvalue(rc.rankdata(x), rc.rankdata(y)) == pytest.approx(p, rel=1e-12)


def test_exact_pvalue_known_answers_and_smallest_p():
    r3 = rc.rankdata([1.0, 2.0, 3.0])
    assert rc.spearman_exact_pvalue(r3, r3) == pytest.approx(2 / 6)  # 2 of the 6 orders are perfect
    assert rc.spearman_exact_pvalue(r3, r3[::-1].copy()) == pytest.approx(2 / 6)
    assert rc.spearman_exact_pvalue(r3, rc.rankdata([1.0, 3.0, 2.0])) == 1.0  # rho = 0.5
    for n in range(3, rc.EXACT_MAX_N + 1):
        r = rc.rankdata(np.arange(n, dtype=float))
        assert rc.spearman_exact_pvalue(r, r) == pytest.approx(rc.exact_min_p(n)) == pytest.approx(2 / math.factorial(n))
    assert rc.exact_min_p(3) == pytest.approx(1 / 3) and rc.exact_min_p(4) == pytest.approx(1 / 12)
    assert math.isnan(rc.spearman_exact_pvalue(r3, rc.rankdata([2.0, 2.0, 2.0])))  # a constant side
    assert math.isnan(rc.exact_min_p(rc.EXACT_MAX_N + 1))
    with pytest.raises(ValueError, match="at most 9 pairs"):
        rc.spearman_exact_pvalue(rc.rankdata(np.arange(10.0)), rc.rankdata(np.arange(10.0)))


def _three_checkpoints(n_tasks=60, seed=0):
    """The reviewer's known answer: scores with no relation at all to the run, 60 tasks over 3
    checkpoints; a third of the rows are a perfect order by chance."""
    s = fake([0, 250, 2000], [[1.5, 1.51], [1.4, 1.41], [1.3, 1.32]], [[0.4, 0.41], [0.5, 0.5], [0.6, 0.62]])
    rng = np.random.default_rng(seed)
    ev = {t: {f"task{k}": float(v) for k, v in enumerate(rng.random(n_tasks))} for t in (0, 250, 2000)}
    return correlate(s, ev, metric=None, quantities=["E"], n_boot=0)


def test_random_scores_over_three_checkpoints_are_not_significant_by_the_exact_count():
    c = _three_checkpoints()
    perfect = [r for r in c.rows if abs(r["spearman"]) == 1.0]
    assert 10 < len(perfect) < 40  # about one row in three, by chance
    for r in c.rows:
        x = np.asarray(c.values["E"])
        y = np.asarray(c.scores[(r["task"], r["metric"])][0])
        assert r["p_spearman"] == pytest.approx(st.spearmanr(x, y).pvalue, abs=1e-15)  # still scipy's
        assert r["p_exact"] == pytest.approx(2 / 6 if abs(r["spearman"]) == 1 else 1.0)
    np.testing.assert_allclose([r["q_exact"] for r in c.rows],
                               st.false_discovery_control([r["p_exact"] for r in c.rows], method="bh"), rtol=1e-14)
    assert c.n_significant() == len(perfect)  # the t approximation: q = 0 for every perfect order
    assert c.n_significant(exact=True) == 0
    s = c.summary()
    assert s["n_q_below_0_05"] == len(perfect) and s["n_q_exact_below_0_05"] == 0
    assert s["n_E_q_exact_below_0_05"] == 0
    text = c.format(max_rows=5)
    last = [ln for ln in text.splitlines() if "q_exact < 0.05" in ln]
    assert len(last) == 1 and last[0].startswith("0 of 60 rows have q_exact < 0.05")
    assert f"{len(perfect)} of 60 rows have q < 0.05 by the t approximation" in last[0]
    assert "the exact count is the valid one" in last[0]
    assert "n = 3: the smallest exact p is 0.33" in text
    head = next(ln for ln in text.splitlines() if ln.startswith("quantity"))
    assert "p exact" in head and "q exact" in head


def test_the_report_and_the_sensitivity_grid_count_from_the_exact_q(tmp_path):
    c = _three_checkpoints()
    n_t = c.n_significant()
    (tmp_path / "correlations.csv").write_text(c.to_csv())
    rows = read_csv(tmp_path / "correlations.csv")
    assert correlation_summary(SimpleNamespace(table=lambda name: rows)) == {
        "E_rows_q_below_0_05": n_t, "E_rows_q_exact_below_0_05": 0,
        **{f"rho_E_task{k}": pytest.approx(r["spearman"]) for k, r in
           ((int(r["task"][4:]), r) for r in c.rows)},
        **{f"E_vs_step_task{k}": pytest.approx(r["diff_step"]) for k, r in ((int(r["task"][4:]), r) for r in c.rows)}}
    head = correlation_headline(rows)
    assert (f"0 of 60 rows have an exact q &lt; 0.05 (Benjamini-Hochberg over exact permutation p-values, 0 of 60 of "
            f"E's; with 3 checkpoints the t approximation's count, {n_t}, is not valid") in head


def test_with_ten_checkpoints_or_more_the_exact_columns_are_the_t_approximation():
    steps = list(range(0, 1100, 100))
    rng = np.random.default_rng(2)
    a = np.linspace(1.7, 1.4, 11)[:, None] + 0.01 * rng.standard_normal((11, 4))
    s = fake(steps, a, np.ones((11, 4)))
    ev = {t: {"piqa": float(v), "arc": float(w)} for t, v, w in zip(steps, rng.random(11), np.linspace(0, 1, 11))}
    c = correlate(s, ev, n_boot=0)
    assert any(math.isfinite(r["p_exact"]) for r in c.rows)
    np.testing.assert_array_equal([r["p_exact"] for r in c.rows], [r["p_spearman"] for r in c.rows])
    np.testing.assert_array_equal([r["q_exact"] for r in c.rows], [r["q_spearman"] for r in c.rows])
    text = c.format()
    assert "exact" not in next(ln for ln in text.splitlines() if ln.startswith("quantity"))
    assert f"{c.n_significant()} of {len(c.rows)} rows have q < 0.05 (Benjamini-Hochberg" in text
    np.testing.assert_array_equal(bh_qvalues([r["p_exact"] for r in c.rows]), [r["q_exact"] for r in c.rows])


def test_the_new_columns_are_in_the_csv():
    for name in ("p_exact", "q_exact", "interval_excludes_point"):
        assert name in COLUMNS
    c = _three_checkpoints(n_tasks=4)
    header = c.to_csv().splitlines()[0].split(",")
    assert header == list(COLUMNS)


# --------------------------------------------------------------------------------------------
# intervals that exclude their own point


def _ordered_as_e(k=5, noise=0.02, seed=3):
    """Eight checkpoints whose E values lie closer together than their samples' noise, and a
    score ordered exactly as E (rho = 1): resampling swaps neighbours, so the replicates of rho
    sit below 1, while the step, in another order than E, has no noise at all."""
    rng = np.random.default_rng(seed)
    steps = [0, 1, 2, 4, 8, 16, 32, 64]
    mu = 1.6 - 0.003 * rng.permutation(8)  # E's order is not the step's
    mu[0] = 1.6
    a = mu[:, None] + noise * rng.standard_normal((8, k))
    s = fake(steps, a, np.ones((8, k)))
    am = a.mean(axis=1)
    e = np.log(am[0] / am)
    ranks = np.argsort(np.argsort(e))
    ev = {t: {"t": 0.1 + r / 10} for t, r in zip(steps, ranks)}
    return s, ev, e


def test_an_interval_that_excludes_its_point_is_flagged_and_not_read_as_worse():
    s, ev, e = _ordered_as_e()
    c = correlate(s, ev, metric=None, quantities=["E"], n_boot=400, seed=1)
    r = c.rows[0]
    steps = np.array([0, 1, 2, 4, 8, 16, 32, 64], float)
    rho_step = st.spearmanr(steps, e).statistic
    assert r["spearman"] == pytest.approx(1.0, abs=1e-15)  # the known answer
    assert r["rho_step"] == pytest.approx(rho_step, abs=1e-12) and 0 < rho_step < 1
    assert r["diff_step"] == pytest.approx(1 - rho_step, abs=1e-12)  # E orders them more like the score
    assert r["spearman_hi"] < 1.0 and r["diff_step_hi"] < r["diff_step"]  # both intervals exclude their point
    assert r["interval_excludes_point"] == "spearman, diff_step"
    text = c.format()
    row_line = next(ln for ln in text.splitlines() if ln.startswith("E "))
    assert row_line.count("]*") == 2  # the interval of rho and that of vs step
    assert f"[{r['spearman_lo']:+.3f}, {r['spearman_hi']:+.3f}]*" in row_line  # the point's 3 decimals
    assert "* the interval excludes its own point" in text
    assert "noise attenuates a correlation" in text and "the step has none" in text
    for word in ("worse", "better", "no better"):
        assert word not in text.replace("higher_is_better", "")
    head = correlation_headline([{k: (str(v) if isinstance(v, str) else v) for k, v in r.items()}])
    assert "worse" not in head and "better" not in head
    assert "above the training step" in head and "excludes the point" in head
    both = correlation_headline([dict(r), dict(c.rows[0], quantity="alpha0")])
    assert "1 other quantity correlates at least as strongly (alpha0)" in both


def test_an_interval_that_contains_its_point_is_not_flagged():
    steps = [0, 1, 2, 4, 8, 16, 32]
    a = np.repeat(np.linspace(1.7, 1.4, 7)[:, None], 4, axis=1)  # no sampling noise: a degenerate interval
    c = correlate(fake(steps, a, np.ones((7, 4))), {s: {"piqa": 0.3 + 0.01 * i} for i, s in enumerate(steps)},
                  n_boot=100, quantities=["E"])
    r = c.rows[0]
    assert r["spearman_lo"] == pytest.approx(1.0) and r["interval_excludes_point"] == ""
    assert "]*" not in c.format() and "excludes its own point" not in c.format()
    c0 = correlate(fake(steps, a, np.ones((7, 4))), {s: {"piqa": 0.3 + 0.01 * i} for i, s in enumerate(steps)},
                   n_boot=0, quantities=["E"])
    assert c0.rows[0]["interval_excludes_point"] == ""  # no interval: nothing to flag
