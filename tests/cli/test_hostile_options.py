"""Options, names and scores that used to give a traceback or a wrong number (docs/bad-inputs.md):
integer flags have upper bounds and one-line errors, an empty source is no directory, a step
in a name is read with its unit or not at all, a position is never joined with a training
step, an infinite stderr is no measurement, a step beyond 2**53 is refused.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_series import PER_LAYER, make_series_dirs

import neuromfa_native as nm
from neuromfa_native import _validation as check
from neuromfa_native.cli import main
from neuromfa_native.run.checkpoints import parse_step


def _one_line_error(capsys, argv, code=None) -> str:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse: exit status 2
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == (code if code is not None else rc) and rc in (1, 2), (rc, err)
    assert err.startswith("neuromfa: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(("flag", "value"), [
    ("--samples", "99999999999999999999"), ("--samples", str(check.MAX_SAMPLES + 1)),
    ("--jobs", "99999999999"), ("--bootstrap", "300000000"), ("--threads", "99999999999999999999"),
    ("--min-edges", "99999999999999999999"), ("--per-layer", "99999999999999999999"),
])
def test_integer_flags_have_bounds(capsys, tmp_path, flag, value) -> None:
    err = _one_line_error(capsys, ["analyze", "examples/pythia-tiny/step0", flag, value, "--out",
                                   str(tmp_path / "o"), "-q", "--no-plots"], 2)
    assert flag in err and "at most" in err
    assert not (tmp_path / "o").exists()


def test_correlate_bounds_its_bootstrap(capsys, tmp_path) -> None:
    run = tmp_path / "run"
    nm.analyze_series(make_series_dirs(tmp_path / "c", steps=(0, 10, 100)), samples=1, per_layer=PER_LAYER,
                      n_threads=1, out=run)
    err = _one_line_error(capsys, ["correlate", str(run), "--evals", "pythia:70m", "--bootstrap", "300000000"], 2)
    assert f"--bootstrap must be at most {check.MAX_BOOTSTRAP}" in err  # the flag's parser: the config's bound


@pytest.mark.parametrize(("kw", "msg"), [
    (dict(samples=10**20), "samples must be at most"), (dict(samples=[0, 2**40]), "a sample index must be at most"),
    (dict(n_bootstrap=3 * 10**8), "n_bootstrap must be at most"), (dict(min_edges=2**63), "min_edges must be at most"),
    (dict(per_layer=10**30), "per_layer must be at most"), (dict(samples=["0", "1"]), "integer indices"),
])
def test_the_library_bounds_the_same_options(kw, msg) -> None:
    with pytest.raises((ValueError, TypeError), match=msg):
        nm.AnalysisConfig(**kw)


@pytest.mark.parametrize("cls", ["AnalysisConfig", "CorrelationConfig"])
def test_a_negative_seed_is_refused_by_both_configurations(cls) -> None:
    """numpy's generators take no negative seed: refused before any work, naming the seed."""
    with pytest.raises(ValueError, match=r"^seed must be a non-negative integer.*got -1$"):
        getattr(nm, cls)(seed=-1)
    assert getattr(nm, cls)(seed=2**70).seed == 2**70  # any non-negative integer is a seed


@pytest.mark.parametrize("argv", [["analyze", "examples/pythia-tiny/step0", "--out", "OUT"], ["report", "OUT"],
                                  ["correlate", "OUT", "--evals", "pythia:70m"]])
def test_a_negative_seed_flag_is_one_line_before_any_work(capsys, tmp_path, argv) -> None:
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    err = _one_line_error(capsys, [*argv, "--no-plots", "--seed", "-1"], 2)
    assert "--seed must be >= 0, got -1" in err
    assert not (tmp_path / "o").exists()  # nothing computed, nothing stored


def test_a_run_json_with_a_negative_seed_is_not_valid(tmp_path) -> None:
    run = tmp_path / "run"
    nm.analyze_series(make_series_dirs(tmp_path / "c", steps=(0, 10)), samples=1, per_layer=PER_LAYER,
                      n_threads=1, out=run)
    info = json.loads((run / "run.json").read_text())
    info["aggregation"]["seed"] = -1
    (run / "run.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"run\.json' is not a valid run\.json: 'aggregation': seed must be a "
                                         "non-negative integer"):
        nm.load_run(run)


def test_threads_bounded_before_the_core_sees_them() -> None:
    with pytest.raises(ValueError, match="n_threads must be at most"):
        nm.analyze("examples/pythia-tiny/step0", samples=1, per_layer=8, n_threads=10**12)


@pytest.mark.parametrize("argv", [["analyze", ""], ["analyze", "examples/pythia-tiny/step0", "--evals", ""],
                                  ["correlate", "x", "--evals", " "], ["analyze", "examples/pythia-tiny/step0",
                                                                       "--out", ""]])
def test_an_empty_name_is_refused_by_the_cli(capsys, argv) -> None:
    err = _one_line_error(capsys, argv, 2)
    assert "must not be empty" in err


def test_an_empty_name_is_refused_by_the_library(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the current directory holds results a silent '.' would read
    (tmp_path / "results_step1.json").write_text(json.dumps({"results": {"piqa": {"acc": 0.5}}}))
    with pytest.raises(ValueError, match="empty name"):
        nm.read_evals("")
    with pytest.raises(ValueError, match="empty name"):
        nm.read_evals(["", "x.json"])
    with pytest.raises(ValueError, match="empty name"):
        nm.resolve_source("")
    with pytest.raises(ValueError, match="empty name"):
        nm.make_series(["examples/pythia-tiny/step0", ""])


# ----------------------------------------------------------------------------- steps


@pytest.mark.parametrize(("name", "step"), [
    ("step1000", 1000), ("step1k", 1000), ("step1K", 1000), ("step2.5k", 2500), ("step3M", 3_000_000),
    ("checkpoint-500", 500), ("global_step20", 20), ("pythia-1b-step143000", 143000), ("step16.bin", 16),
    ("step1000_final", 1000),
    ("step1x", None), ("step1.5", None), ("step1000v2", None), ("step1.0001k", None), ("early", None),
    ("step" + "9" * 30, None),
])
def test_a_step_in_a_name_is_read_with_its_unit_or_not_at_all(name, step) -> None:
    assert parse_step(name) == step


def test_explicit_steps_are_range_checked() -> None:
    with pytest.raises(ValueError, match=r"steps must lie in \[0, 2\*\*53\]"):
        nm.make_series(["examples/pythia-tiny/step0", "examples/pythia-tiny/step16"], steps=[0, 10**30])
    with pytest.raises(ValueError, match="must be an integer"):
        nm.make_series(["examples/pythia-tiny/step0", "examples/pythia-tiny/step16"], steps=[0, 1.5])


def test_positions_are_never_joined_with_training_steps(tmp_path) -> None:
    """Checkpoints named early/mid/late/last get positions 0..3; Pythia's scores are at steps
    0, 1, 2, 4, ...: before, the two were joined (a correlation of unrelated pairs)."""
    dirs = make_series_dirs(tmp_path / "c", steps=(0, 10, 100, 1000))
    named = []
    for d, new in zip(dirs, ("early", "mid", "late", "last")):
        d.rename(d.with_name(new))
        named.append(d.with_name(new))
    s = nm.analyze_series(named, samples=2, per_layer=PER_LAYER, n_threads=1)
    assert [c.step for c in s.checkpoints] == [0, 1, 2, 3] and not s.checkpoints[0].step_parsed
    with pytest.raises(ValueError, match=r"no step known for 4 checkpoint\(s\)"):
        nm.correlate(s, "pythia:70m", n_boot=0)
    given = nm.analyze_series(named, samples=2, per_layer=PER_LAYER, n_threads=1, steps=[0, 1, 2, 4])
    with pytest.warns(UserWarning, match="the scores are of 'EleutherAI/pythia-70m'"):  # another model's scores
        corr = nm.correlate(given, "pythia:70m", n_boot=0, tasks=["piqa"])  # steps the user gave: joined
    assert corr.join.matched_steps == (0, 1, 2, 4)


def test_an_eval_file_named_with_a_unit_is_read_as_what_it_says(tmp_path) -> None:
    for name, v in (("results_step1k.json", 0.5), ("results_step2k.json", 0.6)):
        (tmp_path / name).write_text(json.dumps({"results": {"piqa": {"acc": v}}}))
    assert nm.read_evals(tmp_path).steps.tolist() == [1000, 2000]
    (tmp_path / "results_step3x.json").write_text(json.dumps({"results": {"piqa": {"acc": 0.7}}}))
    with pytest.raises(ValueError, match="no step"):
        nm.read_evals(tmp_path)


# ----------------------------------------------------------------------------- scores


HUGE = "1" + "0" * 400  # a JSON integer no float holds


@pytest.mark.parametrize(("acc", "err", "field"), [(HUGE, "0.01", "acc,none"), ("0.5", HUGE, "acc_stderr,none")])
def test_a_score_too_large_for_a_float_is_one_line_naming_the_file(tmp_path, capsys, acc, err, field) -> None:
    ev = tmp_path / "evals"
    ev.mkdir()
    for s, v, e in ((0, acc, err), (10, "0.5", "0.01"), (100, "0.6", "0.01")):
        (ev / f"step{s}.json").write_text(f'{{"results": {{"t": {{"acc,none": {v}, "acc_stderr,none": {e}}}}}}}')
    with pytest.raises(ValueError, match=rf"step0\.json: t {field} is not a finite number: an integer of 401 digits") \
            as exc:
        nm.read_evals(ev)
    assert "\n" not in str(exc.value)
    run = tmp_path / "run"
    nm.analyze_series(make_series_dirs(tmp_path / "c", steps=(0, 10, 100)), samples=1, per_layer=PER_LAYER,
                      n_threads=1, out=run)
    err = _one_line_error(capsys, ["correlate", str(run), "--evals", str(ev), "-q", "--no-plots"], 1)
    assert "step0.json" in err and "not a finite number" in err


@pytest.mark.parametrize(("mapping", "msg"), [
    ({0: {"t": 10**400}, 1: {"t": 0.5}}, r"mapping\[0\]\['t'\] acc is not a finite number"),
    ({0: {"t": (0.5, 10**400)}, 1: {"t": 0.5}}, r"mapping\[0\]\['t'\] acc stderr is not a finite number"),
    ({10**5000: {"t": 0.5}}, r"step must be an integer in \[0, 2\*\*53\], got an integer of 5001 digits"),
])
def test_a_mapping_value_too_large_for_a_float_is_one_line(mapping, msg) -> None:
    with pytest.raises(ValueError, match=msg):
        nm.read_evals(mapping)


@pytest.mark.parametrize("bad", [float("inf"), "inf", "Infinity", 1e400])
def test_an_infinite_stderr_is_refused(tmp_path, bad) -> None:
    with pytest.raises(ValueError, match="stderr is not finite"):
        nm.read_evals({0: {"piqa": {"acc": (0.5, bad)}}, 1: {"piqa": {"acc": (0.6, 0.01)}}})
    p = tmp_path / "s.csv"
    p.write_text(f"step,task,metric,value,stderr\n0,piqa,acc,0.5,{bad}\n")
    with pytest.raises(ValueError, match=r"s\.csv: row 1 stderr is not finite"):
        nm.read_evals(p)
    (tmp_path / "results_step1.json").write_text('{"results": {"piqa": {"acc": 0.5, "acc_stderr": Infinity}}}')
    with pytest.raises(ValueError, match="acc_stderr is not finite"):
        nm.read_evals(tmp_path / "results_step1.json")


@pytest.mark.parametrize("step", ["1e30", "99999999999999999999", "-1"])
def test_a_step_out_of_range_is_one_line(tmp_path, step) -> None:
    p = tmp_path / "s.csv"
    p.write_text(f"step,task,metric,value\n{step},piqa,acc,0.5\n")
    with pytest.raises(ValueError, match=r"integer step in \[0, 2\*\*53\]"):
        nm.read_evals(p)
    with pytest.raises(ValueError, match=r"step must be an integer in \[0, 2\*\*53\]"):
        nm.read_evals({int(float(step)): {"piqa": 0.5}})


def test_a_missing_stderr_still_reads_as_unknown() -> None:
    ev = nm.read_evals({0: {"piqa": {"acc": (0.5, None)}}, 1: {"piqa": {"acc": (0.6, "nan")}}})
    assert np.isnan(ev.stderr).all()


def test_a_gzip_table_that_inflates_without_end_is_refused(tmp_path) -> None:
    import gzip
    import tracemalloc
    p = tmp_path / "bomb.csv.gz"
    with gzip.open(p, "wb", compresslevel=9) as gz:
        gz.write(b"step,task,metric,value\n")
        row = b"0,piqa,acc,0.5\n" * 65536
        for _ in range(120):  # 118 MB of rows in about 120 kB
            gz.write(row)
    assert p.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="inflates to more than 64 MB"):
            nm.read_evals(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 << 20


@pytest.mark.slow
def test_a_parquet_table_of_repeated_strings_is_refused(tmp_path) -> None:
    pa = pytest.importorskip("pyarrow", reason="Parquet needs pyarrow")
    import pyarrow.parquet as pq
    n = 1 << 16
    task = pa.array(["t" * 1024] * n).dictionary_encode()
    t = pa.table({"step": pa.array(np.zeros(n, np.int64)), "task": task, "metric": pa.array(["acc"] * n),
                  "value": pa.array(np.full(n, 0.5))})
    p = tmp_path / "bomb.parquet"
    pq.write_table(t, p, compression="zstd")
    assert p.stat().st_size < 1 << 20  # 64 MB of task names in a small file
    with pytest.raises(ValueError, match="inflates to more than 64 MB"):
        nm.read_evals(p)
