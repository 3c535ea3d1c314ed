"""``neuromfa correlate`` and ``neuromfa analyze --evals`` end to end (docs/correlation.md)."""
from __future__ import annotations

import csv
import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_series import PER_LAYER, make_series_dirs
from paths import ROOT

ROOT = ROOT
EXAMPLE = ROOT / "examples" / "pythia-tiny"
STEPS = (0, 10, 30, 100, 300, 1000)
CSV_COLUMNS = ["quantity", "task", "metric", "higher_is_better", "n", "spearman", "spearman_lo", "spearman_hi",
               "p_spearman", "q_spearman", "p_exact", "q_exact", "kendall", "pearson", "rho_step", "diff_step",
               "diff_step_lo", "diff_step_hi", "rho_rms", "diff_rms", "diff_rms_lo", "diff_rms_hi",
               "interval_excludes_point", "partial_spearman", "covariate", "partial_note"]


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "neuromfa_native.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg"))


def _write_harness(d: Path, steps, v03=True) -> Path:
    """lm-evaluation-harness files for the tiny series: accuracy rising, perplexity falling."""
    d.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(steps):
        if v03:
            res = {"piqa": {"acc": 0.5 + 0.02 * i, "acc_stderr": 0.01},
                   "lambada_openai": {"acc": 0.1 + 0.05 * i ** 0.5, "acc_stderr": 0.005, "ppl": 900 / (1 + i),
                                      "ppl_stderr": 5.0}}
        else:
            res = {"piqa": {"alias": "piqa", "acc,none": 0.5 + 0.02 * i, "acc_stderr,none": 0.01}}
        doc = {"results": res, "versions": {}, "config": {"model_args": f"pretrained=ckpt/step{s},revision=step{s}"}}
        (d / f"tiny_step{s}.json").write_text(json.dumps(doc))
    return d


def _digest(run: Path) -> dict:
    out = {}
    for p in sorted(run.rglob("*")):
        rel = p.relative_to(run).as_posix()
        if p.is_file() and rel not in ("correlations.csv", "correlations.json") \
                and not rel.startswith("plots/correlation_"):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tinyc")
    dirs = make_series_dirs(root / "ckpt", steps=STEPS)
    out = root / "run"
    p = _cli("analyze", *dirs, "--out", out, "--samples", 3, "--per-layer", PER_LAYER, "--threads", 1,
             "--no-plots", "-q")
    assert p.returncode == 0, p.stderr
    return out, _write_harness(root / "evals", STEPS)


@pytest.mark.slow
def test_correlate_prints_sorted_table_writes_csv_and_plots_and_keeps_the_run(tiny_run, tmp_path):
    src, evals = tiny_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    before = _digest(run)
    p = _cli("correlate", run, "--evals", evals, "--metric", "acc,ppl", "--bootstrap", 300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith(f"Correlation over {len(STEPS)} checkpoints (steps 0..1000) with {evals};")
    assert "not the dependence between neighbouring checkpoints" in lines[1]
    body = [ln for ln in lines[3:] if ln and ln.split()[0] in ("E", "alpha0", "width")]
    assert len(body) == 9
    rhos = [abs(float(ln.replace(" (lower better)", "").split()[4])) for ln in body]
    assert rhos == sorted(rhos, reverse=True)
    assert "correlations.csv, correlations.json, plots/correlation_scatter.png" in p.stdout
    assert p.stderr == ""  # the scores name the run's own model (ckpt): no warning
    with open(run / "correlations.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == CSV_COLUMNS and len(rows) == 9
    ppl = [r for r in rows if r["metric"] == "ppl"]
    assert ppl and all(r["higher_is_better"] == "False" for r in ppl)
    for name in ("correlation_scatter", "correlation_training", "correlation_heatmap"):
        assert (run / "plots" / f"{name}.png").stat().st_size > 1000
    assert _digest(run) == before  # nothing of the run was rewritten


def test_correlate_covariate_tasks_and_no_plots(tiny_run, tmp_path):
    src, evals = tiny_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    p = _cli("correlate", run, "--evals", evals, "--tasks", "piqa", "--covariate", "step", "--no-plots",
             "--bootstrap", 0, "-q")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and not (run / "plots").exists()
    rows = list(csv.DictReader(io.StringIO((run / "correlations.csv").read_text())))
    assert {r["task"] for r in rows} == {"piqa"} and {r["covariate"] for r in rows} == {"step"}


def test_a_partial_run_correlates_what_it_has(tiny_run, tmp_path):
    src, evals = tiny_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    info = json.loads((run / "run.json").read_text())
    last = info["series"][-1]
    shutil.rmtree(run / "results" / (last.get("key") or last["fingerprint"]))  # the last checkpoint's results are gone
    p = _cli("correlate", run, "--evals", evals, "--no-plots", "--bootstrap", 50)
    assert p.returncode == 0, p.stderr
    assert f"Correlation over {len(STEPS) - 1} checkpoints" in p.stdout
    assert "join: no result yet for 1 checkpoint(s): step1000" in p.stdout


@pytest.mark.slow
def test_unmatched_steps_are_listed(tiny_run, tmp_path):
    src, _ = tiny_run
    evals = _write_harness(tmp_path / "ev", (0, 10, 30, 2000, 5000), v03=False)
    run = tmp_path / "run"
    shutil.copytree(src, run)
    p = _cli("correlate", run, "--evals", evals, "--no-plots", "--bootstrap", 0)
    assert p.returncode == 0, p.stderr
    assert "join: no score for 3 checkpoint(s): step100, step300, step1000" in p.stdout
    assert "join: scores without checkpoint at 2 step(s): 2000, 5000" in p.stdout
    evals2 = _write_harness(tmp_path / "ev2", (0, 10, 7777), v03=False)
    p = _cli("correlate", run, "--evals", evals2, "--no-plots")
    assert p.returncode == 1
    assert p.stderr.startswith("neuromfa: error: only 2 checkpoint(s) of the run have both a result and a score")
    assert p.stderr.count("\n") == 1


@pytest.mark.slow
def test_bad_eval_sources_are_one_line_errors(tiny_run, tmp_path):
    src, _ = tiny_run
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x_step1.json").write_text("{oops")
    for evals, msg in ((bad, "is not JSON"), ("pythia:99b", "unknown Pythia eval source 'pythia:99b'; known:"),
                       (tmp_path / "missing", "does not exist")):
        p = _cli("correlate", src, "--evals", evals, "--no-plots")
        assert p.returncode == 1 and msg in p.stderr and p.stderr.count("\n") == 1, p.stderr
    p = _cli("correlate", src)
    assert p.returncode == 2 and "--evals" in p.stderr
    p = _cli("correlate", tmp_path / "norun", "--evals", "pythia:160m")
    assert p.returncode == 1 and "does not exist" in p.stderr


@pytest.mark.slow
def test_analyze_with_evals_correlates_at_the_end(tiny_run, tmp_path):
    src, evals = tiny_run
    dirs = sorted(glob.glob(str(src.parent / "ckpt" / "step*")))
    out = tmp_path / "run2"
    shutil.copytree(src, out)  # resumes: every result is reused
    p = _cli("analyze", *dirs, "--out", out, "--samples", 3, "--per-layer", PER_LAYER, "--threads", 1,
             "--evals", evals, "--bootstrap", 200)
    assert p.returncode == 0, p.stderr
    assert "Correlation over 6 checkpoints" in p.stdout and (out / "correlations.csv").is_file()
    assert (out / "plots" / "correlation_heatmap.png").is_file() and (out / "plots" / "emergence.png").is_file()


@pytest.mark.slow
def test_example_end_to_end(tmp_path):
    """The README quick start: analyze the bundled example, then correlate with its scores."""
    evals = EXAMPLE / "evals"
    srcs = sorted(glob.glob(str(EXAMPLE / "step*")))
    if not srcs or not evals.is_dir():
        pytest.skip("the bundled example or its evals/ is not there")
    out = tmp_path / "out"
    p = _cli("analyze", *srcs, "--out", out, "--samples", 3, "--no-plots", "-q", timeout=600)
    assert p.returncode == 0, p.stderr
    p = _cli("correlate", out, "--evals", evals, "--metric", "acc,loss", "--bootstrap", 500)
    assert p.returncode == 0, p.stderr
    assert f"Correlation over {len(srcs)} checkpoints" in p.stdout
    rows = list(csv.DictReader(io.StringIO((out / "correlations.csv").read_text())))
    e_acc = [r for r in rows if (r["quantity"], r["metric"]) == ("E", "acc")][0]
    assert int(e_acc["n"]) == len(srcs) and float(e_acc["spearman"]) > 0.8  # E rises with accuracy here
