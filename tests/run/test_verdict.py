"""The verdict of docs/spec.md section 13 on series whose answer is known by construction, and
its shares' intervals against a slow bootstrap written from the definition."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

import neuromfa_native as nm
from neuromfa_native.run.series import summarize
from neuromfa_native.mfa.stats import emergence_from_means
from neuromfa_native.run.verdict import THRESHOLDS, left_out_notes, paired_means
from tiny_series import constant_rms_weights, scale_growth_weights, write_checkpoints

STEPS = (0, 100, 1000)
OPTS = dict(samples=4, per_layer=12, n_threads=1, progress=False)


def _series(root, weights: dict, controls=("gaussian", "scaled"), **kw):
    return nm.analyze_series(write_checkpoints(root, weights), controls=controls, **OPTS, **kw)


@pytest.fixture(scope="module")
def scale_only(tmp_path_factory):
    """Weights that only grow in scale (x1, x2, x4)."""
    return _series(tmp_path_factory.mktemp("scale"), {t: scale_growth_weights(k) for k, t in enumerate(STEPS)},
                   stats=True)


@pytest.fixture(scope="module")
def constant_rms(tmp_path_factory):
    """Every row keeps its RMS while the distribution of |w| widens."""
    return _series(tmp_path_factory.mktemp("rms"), {t: constant_rms_weights(f) for t, f in zip(STEPS, (1.0, 0.5, 0.0))},
                   stats=True)


def test_weights_that_only_grow_in_scale_are_scale(scale_only):
    s = scale_only
    ctl = s.control_rows()
    e_scaled = [r["E"] for r in ctl if r["control"] == "scaled"]
    assert e_scaled == [0.0, 0.0, 0.0]  # the scaled control is the baseline's network, bit for bit
    v = nm.verdict(s)
    assert v.label == "scale" and v.step == 1000 and v.checkpoint == "step1000"
    assert v.E_scaled == 0.0 and v.remainder_share == 0.0
    assert v.E == pytest.approx(float(s.emergence[-1]))
    assert v.gaussian_share == pytest.approx(v.E_gaussian / v.E)
    assert v.remainder_share_hi < THRESHOLDS["scale_remainder_max"]
    assert v.gaussian_share_lo > THRESHOLDS["scale_gaussian_min"]
    assert v.sentence.startswith("E is mostly weight scale: at step1000 (E = ")
    assert "remainder's upper bound" in v.reason


def test_constant_row_rms_with_a_changing_distribution_is_beyond_scale(constant_rms):
    s = constant_rms
    rms = s.quantities()["rms"]
    assert rms[0] == rms[1] == rms[2]  # the same bits at every step: by construction
    assert np.ptp(s.quantities()["kurtosis"]) > 0  # while the distribution of |w| changes
    v = nm.verdict(s)
    assert v.E_gaussian == 0.0 and v.gaussian_share == 0.0
    assert v.E_scaled == v.E and v.remainder_share == 1.0  # the scaled factor is exactly 1
    assert v.label == "beyond_scale", v.sentence
    assert v.remainder_share_lo > THRESHOLDS["beyond_remainder_min"]
    assert v.gaussian_share_hi < THRESHOLDS["beyond_gaussian_max"]
    assert v.sentence.startswith("E is more than weight scale")


def test_a_series_without_change_has_no_emergence(tmp_path):
    w = scale_growth_weights(0)
    with pytest.warns(UserWarning, match="byte-identical checkpoints"):
        s = _series(tmp_path, {t: w for t in STEPS})
    v = nm.verdict(s)
    assert v.E == 0.0 and v.E_lo <= 0 <= v.E_hi
    assert v.label == "no_emergence"
    assert "contains 0" in v.reason and v.sentence.startswith("No emergence to explain")
    assert math.isnan(v.gaussian_share)  # a share of E = 0 is not defined
    # every sample kept, no filter: some replicates have E = 0 exactly (0/0 shares), which is no
    # news where there is no emergence, and no filter dropped anything
    reps = paired_means(s, ("none",), s.bootstrap["n_bootstrap"], s.bootstrap["seed"])
    e_rep = emergence_from_means(reps[("none", "alpha0")], reps[("none", "width")], s.baseline)[-1]
    assert (e_rep == 0).sum() > 0 and s.filter == "none"
    assert v.notes == ()


@pytest.mark.parametrize("controls, named", [((), "lacks the gaussian and scaled controls"),
                                             (("gaussian", "shuffle"), "lacks the scaled control"),
                                             (("scaled",), "lacks the gaussian control")])
def test_a_run_without_the_two_controls_is_undetermined_and_says_which_flag(tmp_path, controls, named):
    s = _series(tmp_path, {t: scale_growth_weights(k) for k, t in enumerate(STEPS)}, controls=controls)
    v = nm.verdict(s)
    assert v.label == "undetermined"
    assert named in v.reason and "--controls gaussian,scaled" in v.reason
    assert v.sentence == f"Undetermined: {v.reason}."
    assert math.isnan(v.gaussian_share) and math.isnan(v.remainder_share)
    assert s.verdict().to_dict() == v.to_dict()


def test_the_verdict_step_can_be_named_and_the_baseline_is_undetermined(scale_only):
    assert nm.verdict(scale_only, step=100).checkpoint == "step100"
    assert nm.verdict(scale_only, step="step100").step == 100
    v = nm.verdict(scale_only, step=0)
    assert v.label == "undetermined" and "is the baseline" in v.reason
    with pytest.raises(ValueError, match="step must be a training step or a checkpoint label of the run, got 5"):
        nm.verdict(scale_only, step=5)


def test_to_dict_is_json_with_the_required_keys(scale_only):
    d = nm.verdict(scale_only).to_dict()
    for k in ("label", "step", "gaussian_share", "gaussian_share_lo", "gaussian_share_hi", "remainder_share",
              "remainder_share_lo", "remainder_share_hi", "reason", "sentence"):
        assert k in d
    json.dumps(d, allow_nan=False)


# --- the paired bootstrap against a slow one written from the definition --------------------


def _slow_intervals(series, t: int, n_boot: int, seed, level: float) -> dict:
    """Percentile intervals of E_c(t) / E(t) for c in gaussian, scaled: per checkpoint (in order)
    one (n_boot, K) draw of sample indices; in replicate i each network's mean over the drawn
    samples it has (its spectrum present and kept), E from those means, the ratio."""
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(rs), size=(n_boot, len(rs))) if len(rs) else None for rs in series.results]

    def spec(r, c):
        return r.spectrum if c == "none" else r.controls.get(c)

    def mean(u, i, c, key):
        vals = [getattr(spec(series.results[u][j], c), key) for j in draws[u][i]
                if spec(series.results[u][j], c).passes(series.filter)]
        return sum(vals) / len(vals) if vals else math.nan  # NaN propagates: the replicate has no value

    b = series.baseline
    ratios: dict = {"gaussian": [], "scaled": [], "none": []}
    missing = []  # a network drew no kept sample at the baseline or at t
    for i in range(n_boot):
        e = {}
        missing.append(any(math.isnan(mean(u, i, c, k)) for u in (b, t) for c in ("none", "gaussian", "scaled")
                           for k in ("alpha0", "width")))
        for c in ("none", "gaussian", "scaled"):
            e[c] = (mean(t, i, c, "width") / mean(b, i, c, "width")) * math.log(mean(b, i, c, "alpha0")
                                                                               / mean(t, i, c, "alpha0"))
        ratios["none"].append(e["none"])
        for c in ("gaussian", "scaled"):
            ratios[c].append(e[c] / e["none"])
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]
    both = np.isfinite(ratios["gaussian"]) & np.isfinite(ratios["scaled"])  # a replicate without a kept sample
    lost = dict(missing=sum(missing), zero=sum(1 for m, e in zip(missing, ratios["none"]) if not m and e == 0),
                total=int((~both).sum()))
    return {c: np.percentile(np.asarray(v)[np.isfinite(v)], q) for c, v in ratios.items()}, lost


def _with_bootstrap(series, n_boot: int, seed: int, filter: str = "none", results=None):
    return summarize(series.checkpoints, results or series.results, config=series.config, samples=series.samples,
                     baseline=series.baseline, filter=filter, fingerprints=series.fingerprints, n_bootstrap=n_boot,
                     ci=0.9, seed=seed)


def test_shares_intervals_equal_a_slow_reference_bootstrap(scale_only):
    s = _with_bootstrap(scale_only, 300, 7)
    v = nm.verdict(s)
    ref, lost = _slow_intervals(s, 2, 300, 7, 0.9)
    assert lost == dict(missing=0, zero=0, total=0) and v.notes == ()
    assert [v.gaussian_share_lo, v.gaussian_share_hi] == pytest.approx(ref["gaussian"], rel=1e-12)
    assert [v.remainder_share_lo, v.remainder_share_hi] == pytest.approx(ref["scaled"], rel=1e-12, abs=1e-15)
    # the draw is the series' own: the real network's replicates give E's interval
    assert list(s.emergence_ci[2]) == pytest.approx(ref["none"], rel=1e-12)


def test_shares_intervals_with_dropped_samples_equal_the_slow_reference(constant_rms):
    """A spectrum filter that drops some samples of some networks: the same draw, and each
    network's mean over the drawn samples it kept."""
    s0 = constant_rms
    drop = {(0, 1, "none"), (2, 0, "gaussian"), (2, 3, "scaled"), (2, 2, "none")}

    def failing(spec):
        return dataclasses.replace(spec, f=np.asarray(spec.f) + 1.0)  # f > 0: dropped by f_positive

    results = []
    for t, rs in enumerate(s0.results):
        new = []
        for r in rs:
            ctl = {c: failing(x) if (t, r.sample, c) in drop else x for c, x in r.controls.items()}
            spec = failing(r.spectrum) if (t, r.sample, "none") in drop else r.spectrum
            new.append(dataclasses.replace(r, spectrum=spec, controls=ctl))
        results.append(new)
    s = _with_bootstrap(s0, 200, 3, filter="f_positive", results=results)
    v = nm.verdict(s)
    ref, lost = _slow_intervals(s, 2, 200, 3, 0.9)
    assert lost["missing"] > 0 and lost["zero"] == 0 and lost["total"] == lost["missing"]
    assert v.notes == (f"{lost['missing']} of 200 bootstrap replicates drew, at the baseline or the verdict step, no "
                       "sample of a network that the spectrum filter 'f_positive' keeps, and were left out of the "
                       "shares' intervals",)
    assert [v.gaussian_share_lo, v.gaussian_share_hi] == pytest.approx(ref["gaussian"], rel=1e-9, abs=1e-12)
    assert [v.remainder_share_lo, v.remainder_share_hi] == pytest.approx(ref["scaled"], rel=1e-9)
    reps = paired_means(s, ("none", "gaussian"), 200, 3)
    assert np.isnan(reps[("none", "alpha0")]).any()  # a replicate that drew only dropped samples has no mean


def test_a_missing_control_without_a_filter_is_not_blamed_on_a_filter(constant_rms):
    """No filter, but the gaussian control is missing for two samples of the verdict step: the
    replicates that drew neither of the others are counted, and the note names no filter."""
    s0 = constant_rms
    results = [[dataclasses.replace(r, controls={c: x for c, x in r.controls.items()
                                                 if not (t == 2 and r.sample in (0, 1) and c == "gaussian")})
                for r in rs] for t, rs in enumerate(s0.results)]
    s = _with_bootstrap(s0, 200, 5, results=results)
    v = nm.verdict(s)
    drawn = np.random.default_rng(5)
    idx = [drawn.integers(0, len(rs), size=(200, len(rs))) for rs in s.results][2]
    expected = int(np.all(idx < 2, axis=1).sum())  # only samples 0 and 1 drawn at the verdict step
    assert expected > 0
    assert v.notes == (f"{expected} of 200 bootstrap replicates drew, at the baseline or the verdict step, no sample "
                       "for which a network has a spectrum, and were left out of the shares' intervals",)
    assert "filter" not in v.notes[0]


@pytest.mark.parametrize("counts, filt, label, expected", [
    ((0, 0, 0), "none", "scale", []),
    ((3, 0, 0), "none", "scale", ["3 of 100 bootstrap replicates drew, at the baseline or the verdict step, no sample "
                                  "for which a network has a spectrum, and were left out of the shares' intervals"]),
    ((3, 0, 0), "both", "mixed", ["3 of 100 bootstrap replicates drew, at the baseline or the verdict step, no sample "
                                  "of a network that the spectrum filter 'both' keeps, and were left out of the "
                                  "shares' intervals"]),
    ((0, 39, 0), "none", "no_emergence", []),  # E = 0 replicates are no news where there is no emergence
    ((0, 39, 0), "none", "mixed", ["39 of 100 bootstrap replicates have E = 0 exactly at the verdict step (the "
                                   "resampled alpha0 mean equals the baseline's), where a share E_control / E is "
                                   "undefined; they were left out of the shares' intervals"]),
    ((0, 0, 2), "none", "scale", ["2 of 100 bootstrap replicates gave a share that is not finite (a control's E is "
                                  "not finite) and were left out of the shares' intervals"]),
])
def test_left_out_replicates_are_counted_by_cause(counts, filt, label, expected):
    assert left_out_notes(*counts, n_bootstrap=100, filter=filt, label=label) == expected


# --- one checkpoint ---------------------------------------------------------------------------


def test_one_checkpoint_gives_the_contrast_with_the_controls_not_an_e(tmp_path):
    d = write_checkpoints(tmp_path, {1000: scale_growth_weights(2)})
    s = nm.analyze_series(d, controls=("gaussian", "shuffle"), **OPTS)
    v = nm.verdict(s)
    assert v.label == "undetermined" and "one checkpoint" in v.reason
    rows = nm.checkpoint_contrast(s)
    assert [r["network"] for r in rows] == ["real", "gaussian", "shuffle"] == [r["network"] for r in v.contrast]
    real = rows[0]
    assert real["alpha0"] == pytest.approx(float(s.alpha0_mean[0]))
    assert real["alpha0_lo"] <= real["alpha0"] <= real["alpha0_hi"]
    for r in rows[1:]:
        ctl = [x.controls[r["network"]] for x in s.results[0]]
        assert r["alpha0"] == pytest.approx(np.mean([c.alpha0 for c in ctl]))
        assert r["d_width"] == pytest.approx(r["width"] - real["width"])
        assert r["d_alpha0_lo"] <= r["d_alpha0"] <= r["d_alpha0_hi"]
    assert "one checkpoint has no E" in v.sentence and "cannot say whether training built it" in v.sentence
    assert "E = 0" not in v.sentence


def test_one_checkpoint_without_controls_says_how_to_compare_it(tmp_path):
    s = nm.analyze_series(write_checkpoints(tmp_path, {0: scale_growth_weights(0)}), **OPTS)
    v = nm.verdict(s)
    assert v.label == "undetermined" and "--controls gaussian,shuffle" in v.reason and v.contrast == ()


@pytest.mark.parametrize("e, g, r, label", [
    ((0.5, -0.01, 0.9), (0.9, 0.8, 1.0), (0.1, 0.0, 0.2), "no_emergence"),  # E's interval contains 0 first
    ((0.5, 0.0, 0.9), (0.9, 0.8, 1.0), (0.1, 0.0, 0.2), "no_emergence"),  # ... its bound included
    ((0.5, 0.4, 0.6), (0.9, 0.76, 1.0), (0.1, 0.0, 0.24), "scale"),
    ((0.5, 0.4, 0.6), (0.9, 0.75, 1.0), (0.1, 0.0, 0.24), "mixed"),  # strict: a bound on the threshold fails
    ((0.5, 0.4, 0.6), (0.9, 0.76, 1.0), (0.1, 0.0, 0.25), "mixed"),
    ((-0.5, -0.6, -0.4), (0.1, 0.0, 0.49), (0.9, 0.51, 1.0), "beyond_scale"),  # a negative E has shares too
    ((0.5, 0.4, 0.6), (0.1, 0.0, 0.5), (0.9, 0.51, 1.0), "mixed"),
    ((0.5, 0.4, 0.6), (0.7, 0.66, 0.74), (0.09, 0.09, 0.09), "mixed"),  # pythia-tiny at S = 64
    ((0.5, 0.4, 0.6), (0.9, float("nan"), 1.0), (0.1, 0.0, 0.2), "undetermined"),
])
def test_the_labels_follow_the_rules_of_section_13_in_order(e, g, r, label):
    from neuromfa_native.run.verdict import label_of

    got, reason = label_of(e[1], e[2], g, r)
    assert got == label and reason


# --- every printed sentence on a case with a known answer -------------------------------------


def _pct(x: float) -> str:
    return f"{round(100 * x)}%"


def _shares_text(v) -> str:
    return (f"a Gaussian network with the same row RMS reproduces {_pct(v.gaussian_share)} "
            f"[{_pct(v.gaussian_share_lo)}, {_pct(v.gaussian_share_hi)}] of E, and with the growth of the weight scale "
            f"divided out {_pct(v.remainder_share)} [{_pct(v.remainder_share_lo)}, {_pct(v.remainder_share_hi)}] of "
            f"it remains ({round(100 * v.ci)}% intervals)")


def test_the_scale_and_beyond_scale_sentences_whole(scale_only, constant_rms):
    v = nm.verdict(scale_only)
    assert v.remainder_share == 0.0 and " divided out 0% [" in v.sentence  # E_scaled = 0 by construction
    assert v.sentence == (f"E is mostly weight scale: at step1000 (E = {v.E:.3f} [{v.E_lo:.3f}, {v.E_hi:.3f}]) "
                          f"{_shares_text(v)}.")
    v = nm.verdict(constant_rms)
    assert " reproduces 0% [" in v.sentence and " divided out 100% [" in v.sentence  # shares 0 and 1 exactly
    assert v.sentence == (f"E is more than weight scale: at step1000 (E = {v.E:.3f} [{v.E_lo:.3f}, {v.E_hi:.3f}]) "
                          f"{_shares_text(v)}.")


def test_the_reasons_and_sentences_of_section_13_word_for_word():
    from neuromfa_native.run.verdict import _sentence, label_of

    nan = (math.nan,) * 3
    e = (0.5, 0.4, 0.6)
    assert label_of(0.4, 0.6, (0.9, 0.76, 1.0), (0.1, 0.0, 0.24)) == (
        "scale", "the remainder's upper bound 24% is below 25% and the Gaussian share's lower bound 76% above 75%")
    assert label_of(-0.6, -0.4, (0.1, 0.0, 0.49), (0.9, 0.51, 1.0)) == (
        "beyond_scale", "the remainder's lower bound 51% is above 50% and the Gaussian share's upper bound 49% "
        "below 50%")
    label, reason = label_of(0.4, 0.6, (0.7, 0.66, 0.74), (0.09, 0.09, 0.09))
    assert (label, reason) == ("mixed", "neither rule holds: 'scale' needs the remainder's upper bound below 25% and "
                               "the Gaussian share's lower bound above 75%; 'beyond_scale' the remainder's lower bound "
                               "above 50% and the Gaussian share's upper bound below 50%")
    assert _sentence(label, "step2000", e, (0.7, 0.66, 0.74), (0.09, 0.09, 0.09), reason, 0.95) == (
        "E is neither clearly weight scale nor clearly more (mixed): at step2000 (E = 0.500 [0.400, 0.600]) a "
        "Gaussian network with the same row RMS reproduces 70% [66%, 74%] of E, and with the growth of the weight "
        "scale divided out 9% [9%, 9%] of it remains (95% intervals).")
    label, reason = label_of(-0.01, 0.9, nan, nan)
    assert (label, reason) == ("no_emergence", "E's interval [-0.010, +0.900] contains 0: there is no emergence to "
                               "explain")
    assert _sentence(label, "ckpt (step 5)", (0.5, -0.01, 0.9), nan, nan, reason, 0.9) == (
        "No emergence to explain: at ckpt (step 5) E = 0.500 [-0.010, 0.900] (90% interval), an interval that "
        "contains 0.")
    label, reason = label_of(0.4, 0.6, (0.9, math.nan, 1.0), (0.1, 0.0, 0.2))
    assert (label, reason) == ("undetermined", "a share's interval is undefined (a bootstrap replicate of E, or of a "
                               "control's E, is not finite)")
    assert _sentence(label, "step5", e, nan, nan, reason, 0.95) == f"Undetermined: {reason}."


def test_the_contrast_sentence_word_for_word():
    from neuromfa_native.run.verdict import contrast_sentence

    real = dict(network="real", alpha0=2.5, alpha0_lo=2.4, alpha0_hi=2.6, width=1.25, width_lo=1.2, width_hi=1.3)
    gauss = dict(network="gaussian", d_alpha0=-0.125, d_alpha0_lo=-0.2, d_alpha0_hi=-0.05, d_width=0.5,
                 d_width_lo=0.25, d_width_hi=0.75)
    assert contrast_sentence([], "step0", 0.95) == ""
    assert contrast_sentence([real, gauss], "step0", 0.9) == (
        "At step0 the real network has alpha0 = 2.500 [2.400, 2.600] and width 1.250 [1.200, 1.300] (90% "
        "intervals); the gaussian control, which keeps only the weight scale, differs by -0.125 [-0.200, -0.050] "
        "in alpha0 and +0.500 [+0.250, +0.750] in width. A difference whose interval excludes 0 says that what the "
        "control removes shapes this network's spectrum now; it cannot say whether training built it, nor whether "
        "E is more than weight scale: that needs checkpoints over training, the first one included.")


def test_the_contrast_intervals_equal_a_slow_reference_bootstrap(scale_only):
    """Per checkpoint (in order) one (n_boot, K) draw of sample indices from one generator; in
    replicate i each network's mean over the drawn samples, the control's minus the real one's."""
    n_boot, seed, level = 150, 11, 0.9
    s = _with_bootstrap(scale_only, n_boot, seed)
    t = len(s.checkpoints) - 1
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(rs), size=(n_boot, len(rs))) for rs in s.results]
    rows = nm.checkpoint_contrast(s)
    assert [r["network"] for r in rows] == ["real", "gaussian", "scaled"]
    q = [100 * (1 - level) / 2, 100 * (1 + level) / 2]

    def value(r, c, key):
        return getattr(r.spectrum if c == "none" else r.controls[c], key)

    for row in rows:
        c = "none" if row["network"] == "real" else row["network"]
        for key in ("alpha0", "width"):
            own = np.array([value(r, c, key) for r in s.results[t]])
            real = np.array([value(r, "none", key) for r in s.results[t]])
            assert row[key] == pytest.approx(own.mean(), rel=1e-12)
            assert [row[f"{key}_lo"], row[f"{key}_hi"]] == pytest.approx(
                np.percentile([own[d].mean() for d in draws[t]], q), rel=1e-12)
            if c == "none":
                assert math.isnan(row[f"d_{key}"])
                continue
            assert row[f"d_{key}"] == pytest.approx(own.mean() - real.mean(), rel=1e-12, abs=1e-15)
            assert [row[f"d_{key}_lo"], row[f"d_{key}_hi"]] == pytest.approx(
                np.percentile([own[d].mean() - real[d].mean() for d in draws[t]], q), rel=1e-9, abs=1e-12)
        assert row["n"] == len(s.results[t])


def test_the_share_interval_rule_and_the_repr_on_known_values():
    from neuromfa_native.run.verdict import Verdict, interval

    rep = np.arange(101, dtype=float)  # percentiles of 0..100 are the percentages themselves
    assert interval(rep, 0.9) == pytest.approx((5.0, 95.0))
    half = np.r_[np.arange(50.0), [np.nan] * 50]  # half finite: the interval of those
    assert interval(half, 0.5) == pytest.approx(tuple(np.percentile(np.arange(50.0), [25, 75])))
    fewer = np.r_[np.arange(49.0), [np.nan] * 51]  # fewer than half finite: no interval
    assert all(math.isnan(x) for x in interval(fewer, 0.5)) and all(math.isnan(x) for x in interval([], 0.5))
    nan = math.nan
    v = Verdict(label="scale", step=5, checkpoint="step5", baseline="step0", E=0.5, E_lo=0.4, E_hi=0.6,
                E_gaussian=0.45, E_scaled=0.05, gaussian_share=0.9, gaussian_share_lo=0.8, gaussian_share_hi=1.0,
                remainder_share=0.1, remainder_share_lo=0.0, remainder_share_hi=0.2, reason="r", sentence="s")
    assert repr(v) == "<Verdict at step5: scale; gaussian share 90% [80%, 100%], remainder 10% [0%, 20%]>"
    assert str(v) == "s"
    u = dataclasses.replace(v, label="undetermined", checkpoint="", gaussian_share=nan, remainder_share_hi=nan)
    assert repr(u) == "<Verdict: undetermined; gaussian share nan [80%, 100%], remainder 10% [0%, nan]>"
    d = u.to_dict()
    assert d["gaussian_share"] is None and d["remainder_share_hi"] is None and json.dumps(d, allow_nan=False)
