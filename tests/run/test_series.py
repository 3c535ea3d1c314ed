"""Checkpoint series: ordering and steps, same neurons per checkpoint, E and its bootstrap CI,
identical checkpoints, baselines, partial results."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import neuromfa_native as nm
from neuromfa_native import Checkpoint, analyze_series, make_series
from neuromfa_native.run.checkpoints import parse_step
from neuromfa_native.run.series import summarize
from neuromfa_native.mfa.stats import bootstrap_emergence
from tiny_series import PER_LAYER, make_series_dirs

OPTS = dict(samples=3, per_layer=PER_LAYER, n_threads=1)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return make_series_dirs(tmp_path_factory.mktemp("series"), identical={"step5": "step0"})


@pytest.fixture(scope="module")
def series(dirs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyze_series([str(d) for d in dirs], **OPTS)


@pytest.mark.parametrize("name, step", [("step1000", 1000), ("step0", 0), ("checkpoint-500", 500),
                                        ("global_step20", 20), ("run3/ckpt_7", 7), ("final", None),
                                        ("stepping", None), ("epoch2-step30", 30)])
def test_parse_step(name, step):
    assert parse_step(name) == step


def test_make_series_sorts_glob_order_by_step(dirs):
    glob_order = sorted(str(d) for d in dirs)  # step0 step10 step100 step1000 step5
    cps = make_series(glob_order)
    assert [c.step for c in cps] == [0, 5, 10, 100, 1000]
    assert [c.label for c in cps] == ["step0", "step5", "step10", "step100", "step1000"]
    kept = make_series(glob_order, sort=False)
    assert [c.label for c in kept] == ["step0", "step10", "step100", "step1000", "step5"]


def test_make_series_positions_when_a_name_has_no_step(tmp_path):
    for n in ("init", "mid", "final"):
        (tmp_path / n).mkdir()
    cps = make_series([str(tmp_path / n) for n in ("init", "mid", "final")])
    assert [c.step for c in cps] == [0, 1, 2] and not any(c.step_parsed for c in cps)
    assert [c.label for c in cps] == ["init", "mid", "final"]


def test_make_series_revisions():
    cps = make_series("EleutherAI/pythia-14m", revisions="step1000,step0,step143000")
    assert [c.spec for c in cps] == ["EleutherAI/pythia-14m@step0", "EleutherAI/pythia-14m@step1000",
                                     "EleutherAI/pythia-14m@step143000"]
    assert [c.label for c in cps] == ["step0", "step1000", "step143000"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(sources=["a/b", "c/d"], revisions=["step0"]), "exactly one hub id"),
    (dict(sources=["a/b@step1"], revisions=["step0"]), "already names a revision"),
    (dict(sources=["a/b"], revisions=["step0", ""]), "revisions must be non-empty"),
    (dict(sources=["a/b@step1", "c/b@step1"]), "same training step"),
    (dict(sources=[]), "at least one"),
    (dict(sources=["x/y@step1"], steps=[1, 2]), "one value per checkpoint"),
])
def test_make_series_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_series(kwargs.pop("sources"), **kwargs)


def test_make_series_rejects_tensors():
    with pytest.raises(TypeError, match="paths or hub ids"):
        make_series([{"w": np.zeros(3)}])


def test_same_neurons_as_per_checkpoint_analyze(series, dirs):
    by_label = {c.label: k for k, c in enumerate(series.checkpoints)}
    for d in dirs[:2]:
        a = nm.analyze(str(d), samples=3, per_layer=PER_LAYER, n_threads=1)
        k = by_label[d.name]
        assert series.alpha0_mean[k] == pytest.approx(a.alpha0_mean, abs=1e-12)
        assert series.width_std[k] == pytest.approx(a.width_std, abs=1e-12)
        np.testing.assert_array_equal([r.alpha0 for r in series.results[k]], a.alpha0)


def test_emergence_matches_spec_formula(series):
    e = nm.emergence(series.alpha0_mean, series.width_mean)
    np.testing.assert_allclose(series.emergence, e, rtol=0, atol=1e-15)
    assert series.emergence[0] == 0.0
    assert series.emergence[-1] > 0.1  # the drifting tiny series becomes more regular
    rows = series.checkpoint_rows()
    assert [r["step"] for r in rows] == [0, 5, 10, 100, 1000]
    assert rows[0]["is_baseline"] and not rows[1]["is_baseline"]


def test_bootstrap_interval(series):
    ci = series.emergence_ci
    assert ci.shape == (5, 2)
    np.testing.assert_array_equal(ci[0], [0.0, 0.0])  # the baseline
    assert np.all(ci[:, 0] <= ci[:, 1])
    assert np.all(ci[2:, 0] <= series.emergence[2:]) and np.all(series.emergence[2:] <= ci[2:, 1])
    a0 = [np.array([r.alpha0 for r in rs]) for rs in series.results]
    wd = [np.array([r.width for r in rs]) for rs in series.results]
    np.testing.assert_array_equal(bootstrap_emergence(a0, wd, seed=0), ci)  # seeded: reproducible
    assert not np.array_equal(bootstrap_emergence(a0, wd, seed=1), ci)
    narrow = bootstrap_emergence(a0, wd, ci=0.5)
    assert np.all(narrow[2:, 1] - narrow[2:, 0] <= ci[2:, 1] - ci[2:, 0])


def test_bootstrap_constant_samples_collapse_to_e():
    a0 = [np.full(4, 1.5), np.full(3, 1.2)]
    wd = [np.full(4, 0.4), np.full(3, 0.6)]
    ci = bootstrap_emergence(a0, wd, n_bootstrap=50)
    e = nm.emergence([1.5, 1.2], [0.4, 0.6])[1]
    np.testing.assert_allclose(ci[1], [e, e])


@pytest.mark.parametrize("kw, match", [(dict(n_bootstrap=0), "n_bootstrap"), (dict(ci=1.0), "ci must"),
                                       (dict(ci=0), "ci must")])
def test_bootstrap_options_are_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_emergence([np.ones(2)], [np.ones(2)], **kw)


def test_identical_checkpoints_reported_and_analysed_once(dirs):
    with pytest.warns(UserWarning, match="byte-identical checkpoints.*step0 = step5"):
        s = analyze_series([str(d) for d in dirs], **OPTS)
    assert s.identical_to == (None, "step0", None, None, None)
    assert s.n_computed == 4 * 3  # five checkpoints, four distinct weight sets
    assert s.fingerprints[0] == s.fingerprints[1] and len(set(s.fingerprints)) == 4
    assert s.alpha0_mean[0] == s.alpha0_mean[1]
    assert [r.checkpoint for r in s.results[1]] == ["step5"] * 3
    assert s.checkpoint_rows()[1]["identical_to"] == "step0"


def test_no_identity_check_when_asked(dirs):
    s = analyze_series([str(d) for d in dirs[:2]], check_identical=False, **OPTS)
    assert s.fingerprints == (None, None) and s.identical_to == (None, None)


def test_baseline_by_label_step_and_index(series, dirs):
    srcs = [str(d) for d in dirs]
    for baseline in ("step10", "10", 2, str(dirs[1])):  # dirs[1] is step10
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = summarize(series.checkpoints, series.results, config=series.config, samples=series.samples,
                          baseline=baseline)
        assert s.baseline == 2 and s.emergence[2] == 0.0
        np.testing.assert_allclose(s.emergence, nm.emergence(series.alpha0_mean, series.width_mean, baseline=2))
    with pytest.raises(ValueError, match="baseline 'step7' names no checkpoint"):
        analyze_series(srcs, baseline="step7", **OPTS)
    with pytest.raises(ValueError, match="baseline must index"):
        analyze_series(srcs, baseline=9, **OPTS)


def test_partial_results_give_nan_not_errors(series):
    res = [list(rs) for rs in series.results]
    res[3] = []  # nothing yet for step100
    res[4] = res[4][:1]
    s = summarize(series.checkpoints, res, config=series.config, samples=series.samples)
    assert np.isnan(s.alpha0_mean[3]) and np.isnan(s.emergence[3]) and np.all(np.isnan(s.emergence_ci[3]))
    assert s.alpha0_std[4] == 0.0 and np.isfinite(s.emergence[4])
    assert not s.complete and ("step100", 0) in s.missing and len(s.missing) == 3 + 2
    s0 = summarize(series.checkpoints, [[]] + res[1:], config=series.config, samples=series.samples)
    assert np.all(np.isnan(s0.emergence))  # no baseline yet


def test_filter_applies_to_statistics(series):
    s = summarize(series.checkpoints, series.results, config=series.config, samples=series.samples,
                  filter="both")
    kept = [[r for r in rs if r.spectrum.passes("both")] for rs in series.results]
    assert list(s.n_kept) == [len(k) for k in kept]
    assert {r["kept"] for r in s.sample_rows()} <= {True, False}
    with pytest.raises(ValueError, match="filter must be one of"):
        summarize(series.checkpoints, series.results, config=series.config, samples=series.samples, filter="x")


def test_tables_and_arrays(series):
    rows = series.sample_rows()
    assert len(rows) == 5 * 3 and rows[0]["step"] == 0 and rows[0]["checkpoint"] == "step0"
    nd = series.node_dimension_rows()
    assert nd and {"step", "checkpoint", "layer", "mean", "n_measured"} <= set(nd[0])
    arr = series.spectra_arrays()
    assert arr["alpha"].shape == (5, 3, 60) and arr["tau"].shape == (5, 3, 61) and arr["present"].all()
    np.testing.assert_array_equal(arr["alpha0"][2], [r.alpha0 for r in series.results[2]])
    df = series.table()
    assert list(df["step"]) == [0, 5, 10, 100, 1000]


def test_checkpoint_objects_pass_through(series):
    cps = series.checkpoints[2:]
    assert make_series(list(cps)) == cps
    with pytest.raises(ValueError, match="listed twice"):
        make_series([cps[0], dataclasses.replace(cps[0], label="other", step=99)])
    assert isinstance(cps[0], Checkpoint) and cps[0].to_dict()["label"] == "step10"


def test_full_network_series(dirs):
    s = analyze_series([str(d) for d in dirs[2:4]], per_layer=None, n_threads=1, node_dimension=False)
    assert s.samples == (0, 1, 2, 3, 4, 5, 6, 7, 8, 9) and s.complete
    assert [len(r) for r in s.results] == [1, 1] and s.results[0][0].sample is None
    assert s.alpha0_std[0] == 0.0 and np.isfinite(s.emergence[1])


def test_parameter_errors_name_the_parameter(dirs):
    srcs = [str(d) for d in dirs[:2]]
    for kw, match in [(dict(samples=0), "samples must be >= 1"), (dict(box="cube"), "box must be one of"),
                      (dict(threshold=0.5), "threshold"), (dict(per_layer=0), "per_layer"),
                      (dict(filter="nope"), "filter must be one of"), (dict(n_threads=0), "n_threads")]:
        with pytest.raises(ValueError, match=match):
            analyze_series(srcs, **{**OPTS, **kw})
    with pytest.raises(TypeError, match="executor must be"):
        analyze_series(srcs, executor=object(), **OPTS)


@pytest.mark.parametrize("kwargs,match", [
    (dict(layout="typo"), "layout"),
    (dict(per_layer=None, box="path"), "path boxes need a sampled network"),
])
def test_bad_configuration_fails_before_any_work(dirs, tmp_path, kwargs, match):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        analyze_series(dirs, **{"samples": 2, "per_layer": PER_LAYER, "out": out, "n_threads": 1, **kwargs})
    # nothing fingerprinted or claimed as running
    assert not (out / "fingerprints.json").exists()
    assert not (out / "results").exists() or not any((out / "results").iterdir())


def test_fingerprint_with_a_layout_that_does_not_fit_is_an_error(dirs):
    with pytest.raises(ValueError):
        nm.fingerprint(dirs[0], layout="typo")


def test_in_process_series_opens_each_checkpoint_once(dirs, series, tmp_path, monkeypatch):
    """A .bin checkpoint is torch.load-ed once for all its samples, not once per sample; the
    numbers equal those of the same weights read from safetensors."""
    torch = pytest.importorskip("torch", reason="torch is optional; this test reads or writes torch objects")
    from tiny_series import config, weights
    import json

    bins = []
    for t in (10, 100):
        d = tmp_path / f"step{t}"
        d.mkdir()
        (d / "config.json").write_text(json.dumps(config()))
        torch.save({k: torch.from_numpy(v) for k, v in weights(t).items()}, d / "pytorch_model.bin")
        bins.append(str(d))
    import neuromfa_native.io.torch_zip as tz

    calls, loads = [], []
    real_open = tz.open_torch_zip
    monkeypatch.setattr(tz, "open_torch_zip", lambda *a, **kw: calls.append(a[0]) or real_open(*a, **kw))
    monkeypatch.setattr(torch, "load", lambda *a, **kw: loads.append(a[0]))
    s = analyze_series(bins, check_identical=False, **OPTS)
    # once per checkpoint (2 checkpoints x 3 samples; per sample it was 6), plus the up-front
    # layout check of the first checkpoint; the zip .bin is read without torch.load (torch_zip.py)
    assert len(calls) == 1 + 2 and s.complete and not loads
    by_label = dict(zip(series.labels, series.results))
    for label, rs in zip(s.labels, s.results):
        for r, ref in zip(rs, by_label[label]):
            assert (r.checkpoint, r.sample) == (ref.checkpoint, ref.sample)
            np.testing.assert_array_equal(r.spectrum.alpha, ref.spectrum.alpha)
            np.testing.assert_array_equal(r.spectrum.f, ref.spectrum.f)
