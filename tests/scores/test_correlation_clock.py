"""docs/spec.md section 13 in the correlation table: the comparison with the training clock and
with weight RMS against a direct computation, Benjamini-Hochberg q-values against scipy, a reason
for every undefined partial rho, and whose scores they are."""
from __future__ import annotations

import json
import math
import warnings
import zlib

import numpy as np
import pytest
import scipy.stats as st

import neuromfa_native as nm
from neuromfa_native.mfa.stats import bootstrap_means, emergence_from_means
from neuromfa_native.scores.correlation import COLUMNS, correlate
from neuromfa_native.scores.provenance import ScoresModelWarning, model_mismatch, run_model
from neuromfa_native.scores.rows import bh_qvalues
from fake_series import fake
from tiny_series import make_series_dirs

STEPS = (0, 10, 30, 100, 300, 1000)


@pytest.mark.parametrize("seed", range(5))
def test_bh_qvalues_equal_scipy(seed):
    rng = np.random.default_rng(seed)
    p = rng.uniform(size=40) ** 3
    p[[3, 7]] = p[[5, 9]]  # ties
    p[[0, 11, 12]] = np.nan  # rows without a p-value are left out of the count
    p[20] = 0.0
    q = bh_qvalues(p)
    ok = np.isfinite(p)
    np.testing.assert_allclose(q[ok], st.false_discovery_control(p[ok], method="bh"), rtol=1e-14, atol=0)
    assert np.isnan(q[~ok]).all()
    assert bh_qvalues([]).size == 0 and np.isnan(bh_qvalues([np.nan])).all()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("clock")
    dirs = make_series_dirs(root / "ckpt", steps=STEPS)
    return nm.analyze_series(dirs, samples=4, per_layer=12, n_threads=1, stats=True, progress=False)


def _scores(steps, seed=0):
    """Two scores with stderr, not monotone in the step (so the comparison is not trivial)."""
    rng = np.random.default_rng(seed)
    a = np.linspace(0.3, 0.6, len(steps)) + rng.normal(0, 0.04, len(steps))
    b = rng.uniform(0.2, 0.8, len(steps))
    return {int(s): {"piqa": {"acc": (float(x), 0.02)}, "arc": {"acc": (float(y), 0.03)}}
            for s, x, y in zip(steps, a, b)}


def _direct(series, ev, task, n_boot, seed, ci):
    """rho(E), rho(step), rho(rms) with the score, and the replicates of |rho| differences, from
    the definition: one resampling of every checkpoint's samples for alpha0, width and rms
    (the series' seed), the score drawn from Normal(value, stderr), scipy's spearmanr each time."""
    arr = series.spectra_arrays()
    n = len(series.checkpoints)
    a0 = [arr["alpha0"][t][arr["kept"][t]] for t in range(n)]
    wd = [arr["width"][t][arr["kept"][t]] for t in range(n)]
    rms = [np.array([r.weight_stats.get("rms") for r in rs]) for rs in series.results]
    m = bootstrap_means({"alpha0": a0, "width": wd, "rms": rms}, n_boot, seed)
    e_rep = emergence_from_means(m["alpha0"], m["width"], series.baseline)
    y = np.array([ev[s][task]["acc"][0] for s in STEPS])
    err = np.array([ev[s][task]["acc"][1] for s in STEPS])
    noise = np.random.default_rng([seed, zlib.crc32(f"{task}\0acc".encode())]).standard_normal((n_boot, n))
    steps = np.array(STEPS, float)
    e, r = np.asarray(series.emergence), series.quantities()["rms"]
    point = {k: st.spearmanr(x, y).statistic for k, x in (("E", e), ("step", steps), ("rms", r))}
    sign = {k: 1.0 if v >= 0 else -1.0 for k, v in point.items()}
    diffs: dict = {"step": [], "rms": []}
    for b in range(n_boot):
        yb = y + err * noise[b]
        rho = {"E": st.spearmanr(e_rep[:, b], yb).statistic, "step": st.spearmanr(steps, yb).statistic,
               "rms": st.spearmanr(m["rms"][:, b], yb).statistic}
        for k in diffs:
            diffs[k].append(sign["E"] * rho["E"] - sign[k] * rho[k])
    q = [100 * (1 - ci) / 2, 100 * (1 + ci) / 2]
    return point, {k: np.percentile(v, q) for k, v in diffs.items()}, sign


def test_differences_to_the_clock_and_to_rms_equal_a_direct_computation(tiny):
    ev = _scores(STEPS)
    c = correlate(tiny, ev, n_boot=300, seed=4, ci=0.9)
    assert set(c.rows[0]) == set(COLUMNS)
    for task in ("piqa", "arc"):
        row = [r for r in c.rows if r["quantity"] == "E" and r["task"] == task][0]
        point, iv, sign = _direct(tiny, ev, task, 300, 4, 0.9)
        assert row["spearman"] == pytest.approx(point["E"], abs=1e-12)
        assert row["rho_step"] == pytest.approx(point["step"], abs=1e-12)
        assert row["rho_rms"] == pytest.approx(point["rms"], abs=1e-12)
        for k in ("step", "rms"):
            assert row[f"diff_{k}"] == pytest.approx(sign["E"] * point["E"] - sign[k] * point[k], abs=1e-12)
            assert [row[f"diff_{k}_lo"], row[f"diff_{k}_hi"]] == pytest.approx(iv[k], abs=1e-12)
    rms_row = [r for r in c.rows if r["quantity"] == "rms" and r["task"] == "piqa"][0]
    assert math.isnan(rms_row["diff_rms"]) and math.isfinite(rms_row["diff_step"])  # not against itself
    assert math.isfinite(rms_row["spearman_lo"])  # the rival statistics have their own interval now
    assert c.with_step["E"] == pytest.approx(st.spearmanr(tiny.emergence, STEPS).statistic, abs=1e-12)


def test_the_terminal_table_shows_e_first_with_the_clock_and_q(tiny):
    c = correlate(tiny, _scores(STEPS), n_boot=50)
    text = c.format(max_rows=3, more="--rows all prints them")
    lines = text.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("quantity"))
    assert "rho(E, step) = " in text and " q " in lines[head] and "vs step [interval]" in lines[head]
    assert [ln.split()[0] for ln in lines[head + 1:head + 3]] == ["E", "E"]
    assert f"of {len(c.rows)} rows have q < 0.05" in text
    assert text.rstrip().splitlines()[-1].endswith("more row(s); --rows all prints them") or \
        any(ln.endswith("more row(s); --rows all prints them") for ln in lines)
    assert "to_pandas" not in text


def test_every_undefined_partial_gives_its_reason(tiny):
    ev = _scores(STEPS)
    for s in STEPS:
        ev[s]["mono"] = {"acc": 0.1 + s / 2000}  # rises with the step, exactly
        ev[s]["flat"] = {"acc": 0.5}
    ev[STEPS[0]]["rare"] = {"acc": 0.1}
    ev[STEPS[1]]["rare"] = {"acc": 0.2}
    for covariate in ("step", "rms", "E", "alpha0"):
        c = correlate(tiny, ev, covariate=covariate, n_boot=0)
        for r in c.rows:
            assert math.isnan(r["partial_spearman"]) == bool(r["partial_note"]), r
        rows = {(r["quantity"], r["task"]): r for r in c.rows}
        assert rows[("width", "rare")]["partial_note"] == "fewer than 3 matched checkpoints"
        assert rows[("width", "flat")]["partial_note"] == "flat acc is constant over the matched checkpoints"
        if covariate != "step":
            assert rows[(covariate, "piqa")]["partial_note"] == "the covariate itself"
    c = correlate(tiny, ev, covariate="step", n_boot=0)
    row = [r for r in c.rows if r["quantity"] == "width" and r["task"] == "mono"][0]
    assert row["partial_note"].startswith("step orders the checkpoints exactly as mono acc")
    assert "undefined (1)" in c.format(max_rows=None) and "partial undefined: " in c.format(max_rows=None)


def test_partial_reason_names_reversed_orders():
    from neuromfa_native.scores.rows import partial_reason
    r = np.arange(1.0, 6.0)
    assert partial_reason("E", "piqa acc", "rms", 5, r, r[::-1].copy(), r) == \
        "rms orders the checkpoints exactly in the reverse order of piqa acc and as E does"
    assert partial_reason("E", "piqa acc", "rms", 5, r, np.array([1.0, 3, 2, 4, 5]), np.array([2.0, 1, 3, 5, 4])) == ""


# --- whose scores ----------------------------------------------------------------------------


def test_the_scores_model_is_kept_in_the_eval_table(tmp_path):
    assert nm.read_evals("pythia:160m").model == "EleutherAI/pythia-160m"
    assert nm.read_evals("pythia:160m-deduped:5shot").model == "EleutherAI/pythia-160m-deduped"
    d = tmp_path / "ev"
    d.mkdir()
    for s in (0, 1000):
        doc = {"results": {"piqa": {"acc": 0.5}},
               "config": {"model_args": f"pretrained=EleutherAI/pythia-70m,revision=step{s}"}}
        (d / f"r{s}.json").write_text(json.dumps(doc))
    assert nm.read_evals(d).model == "EleutherAI/pythia-70m"
    (d / "other_step2000.json").write_text(json.dumps({"results": {"piqa": {"acc": 0.6}},
                                              "config": {"model_args": {"pretrained": "/ckpts/run7/step2000"}}}))
    t = nm.read_evals(d)
    assert t.model == "/ckpts/run7, EleutherAI/pythia-70m" and "name 2 models" in t.notes[-1]
    csv = tmp_path / "s.csv"
    csv.write_text("model,step,task,metric,value\nmy-model,0,piqa,acc,0.5\nmy-model,10,piqa,acc,0.6\n")
    assert nm.read_evals(csv).model == "my-model"
    assert nm.read_evals({0: {"piqa": 0.5}}).model == ""


def test_a_mismatch_is_a_warning_naming_both(tiny, tmp_path):
    assert run_model(tiny).endswith("ckpt")
    assert model_mismatch("EleutherAI/pythia-160m", "/data/pythia-160m") == ""
    assert model_mismatch("", "x") == "" and model_mismatch("x", "") == ""
    rows = ["model,step,task,metric,value"] + [f"EleutherAI/pythia-160m,{s},piqa,acc,{0.3 + i / 20}"
                                               for i, s in enumerate(STEPS)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(ScoresModelWarning, match=r"the scores are of 'EleutherAI/pythia-160m' and the run's "
                                                r"checkpoints of '.*ckpt'"):
        c = correlate(tiny, tmp_path / "s.csv", n_boot=0)
    assert c.scores_model == "EleutherAI/pythia-160m" and c.run_model.endswith("ckpt")
    assert any("the scores are of" in n for n in c.notes)
    assert c.summary()["scores_model"] == "EleutherAI/pythia-160m"
    with warnings.catch_warnings():  # scores that name no model: nothing to warn about
        warnings.simplefilter("error")
        correlate(tiny, {s: {"piqa": 0.1 + i / 10} for i, s in enumerate(STEPS)}, n_boot=0)


def test_correlations_json_counts_the_rows_below_q(tiny):
    c = correlate(tiny, _scores(STEPS), n_boot=0)
    s = c.summary()
    assert s["n_rows"] == len(c.rows) and s["n_q_below_0_05"] == c.n_significant()
    assert s["n_q_below_0_05"] == sum(r["q_spearman"] < 0.05 for r in c.rows)
    assert s["n_E_q_below_0_05"] == c.n_significant(quantity="E") and s["n_E_rows"] == 2
    json.dumps(s, allow_nan=False)


def test_fake_runs_without_sources_name_no_model():
    s = fake([0, 1, 2], [[1.5], [1.4], [1.3]], [[0.4], [0.5], [0.6]])
    assert run_model(s) == ""


def test_a_hostile_model_name_reaches_the_terminal_escaped(tiny, tmp_path):
    rows = ["model,step,task,metric,value"] + [f"\"evil\x1b[2J\nname\",{s},piqa,acc,{0.3 + i / 20}"
                                               for i, s in enumerate(STEPS)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(ScoresModelWarning, match=r"evil\\x1b\[2J\\nname"):  # repr in the warning
        c = correlate(tiny, tmp_path / "s.csv", n_boot=0)
    text = c.format()
    assert "\x1b" not in text and "scores of evil\\x1b[2J\\nname;" in text


def test_rho_interval_and_q_values_of_the_rows_equal_a_direct_computation(tiny):
    """spearman_lo/hi: percentiles of scipy's rho over replicates built from the definition (one
    resampling of every checkpoint's samples, the score drawn from Normal(value, stderr));
    q_spearman and q_exact: scipy's Benjamini-Hochberg over the table's own p-values."""
    ev = _scores(STEPS)
    n_boot, seed, ci = 300, 4, 0.9
    c = correlate(tiny, ev, n_boot=n_boot, seed=seed, ci=ci)
    arr = tiny.spectra_arrays()
    n = len(tiny.checkpoints)
    m = bootstrap_means({k: [arr[k][t][arr["kept"][t]] for t in range(n)] for k in ("alpha0", "width")}, n_boot, seed)
    e_rep = emergence_from_means(m["alpha0"], m["width"], tiny.baseline)
    for task in ("piqa", "arc"):
        y = np.array([ev[s][task]["acc"][0] for s in STEPS])
        err = np.array([ev[s][task]["acc"][1] for s in STEPS])
        noise = np.random.default_rng([seed, zlib.crc32(f"{task}\0acc".encode())]).standard_normal((n_boot, n))
        reps = [st.spearmanr(e_rep[:, b], y + err * noise[b]).statistic for b in range(n_boot)]
        row = [r for r in c.rows if r["quantity"] == "E" and r["task"] == task][0]
        assert [row["spearman_lo"], row["spearman_hi"]] == pytest.approx(
            np.percentile(reps, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2]), abs=1e-12)
    for p, q in (("p_spearman", "q_spearman"), ("p_exact", "q_exact")):
        ps = np.array([r[p] for r in c.rows])
        ok = np.isfinite(ps)
        assert ok.sum() >= 4
        np.testing.assert_allclose(np.array([r[q] for r in c.rows])[ok],
                                   st.false_discovery_control(ps[ok], method="bh"), rtol=1e-12, atol=0)


def test_run_model_and_the_mismatch_sentence_on_known_runs():
    from types import SimpleNamespace as NS

    def run(*cps):
        return NS(checkpoints=[NS(source=s, revision=r) for s, r in cps])

    assert run_model(run(("EleutherAI/pythia-70m", "step0"), ("EleutherAI/pythia-70m", "step1000"))) == \
        "EleutherAI/pythia-70m"  # revisions of one hub model
    assert run_model(run(("/ckpt/run7/step0", None), ("/ckpt/run7/step100/", None))) == "/ckpt/run7"
    assert run_model(run(("/ckpt/run7/checkpoint-5/model.safetensors", None),
                         ("/ckpt/run7/global_step9", None))) == "/ckpt/run7"  # weights file and step folder dropped
    assert run_model(run(("/ckpt/a/step0", None), ("/ckpt/b/step0", None))) == "/ckpt"  # the common directory
    assert run_model(run(("/ckpt/a/step0", None), ("rel/step0", None))) == ""  # absolute and relative mixed
    assert run_model(run(("EleutherAI/pythia-70m", "step0"), ("/ckpt/step0", None))) == ""  # hub and local mixed
    assert run_model(run(("monitor:trainer", None), ("monitor:trainer", None))) == ""
    assert run_model(run(("/ckpt/step0", None), ("", None))) == ""
    assert model_mismatch("EleutherAI/pythia-70m, /ckpt/Pythia-160M", "/data/pythia-160m") == ""  # one of the named
    assert model_mismatch("EleutherAI/pythia-160m", "examples/pythia-tiny") == (
        "the scores are of 'EleutherAI/pythia-160m' and the run's checkpoints of 'examples/pythia-tiny': a "
        "correlation of one model's weights with another model's scores says nothing about either")


def test_hostile_task_and_metric_names_reach_the_terminal_escaped(tiny):
    ev = _scores(STEPS)
    for i, s in enumerate(STEPS):
        ev[s]["evil\x1b[2J\nname"] = {"acc\rx": 0.1 + i / 10}
        ev[s]["fl\x07at"] = {"acc": 0.5}  # constant: its partial is undefined, and the reason names it
    c = correlate(tiny, ev, covariate="step", n_boot=0, metric=None)  # every metric, "acc\rx" too
    text = c.format(max_rows=None)
    assert not any(ch in text for ch in "\x1b\r\x07")
    rows = [line for line in text.splitlines() if line.startswith("E ")]
    assert len(rows) == 4  # one line per E row: no name broke a row in two
    assert any("evil\\x1b[2J\\nname  acc\\rx" in line for line in rows)
    assert "partial undefined: fl\\x07at acc is constant over the matched checkpoints" in text
