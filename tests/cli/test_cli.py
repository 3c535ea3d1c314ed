"""End-to-end tests of the ``neuromfa`` command: the bundled example, tiny generated series,
help texts, exit codes and one-line errors."""
from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from neuromfa_native import cli
from tiny_series import PER_LAYER, make_series_dirs
from paths import ROOT

ROOT = ROOT
EXAMPLE = ROOT / "examples" / "pythia-tiny"


def _run(args, **kw):
    return subprocess.run([sys.executable, "-m", "neuromfa_native.cli", *args], capture_output=True, text=True,
                          timeout=180, **kw)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return [str(d) for d in make_series_dirs(tmp_path_factory.mktemp("tiny"), identical={"step1": "step0"})]


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """The README command on the bundled example, as a shell would expand ``step*``."""
    srcs = sorted(glob.glob(str(EXAMPLE / "step*")))
    if not srcs:
        pytest.skip("the bundled example examples/pythia-tiny is not there")
    out = tmp_path_factory.mktemp("example") / "out"
    t0 = time.perf_counter()
    p = _run(["analyze", *srcs, "--out", str(out)], env=dict(os.environ, OMP_NUM_THREADS="2"))
    return p, out, time.perf_counter() - t0, srcs


@pytest.mark.slow
def test_example_prints_the_e_table(example_run):
    # How long it takes is measured by bench/bench_example.py (docs/benchmarks.md), not here.
    p, out, _, srcs = example_run
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[:2] == ["step", "checkpoint"] and "E [95% CI]" in lines[0]
    steps = [int(line.split()[0]) for line in lines[1:1 + len(srcs)]]
    assert steps == sorted(steps) and steps[0] == 0  # sorted by step, not glob order
    assert "baseline" in lines[1]
    e_last = float(lines[len(srcs)].split("[")[0].split()[-1])
    assert e_last > 0  # the trained model is more regular than its initialisation


@pytest.mark.slow
def test_example_outputs(example_run):
    p, out, _, srcs = example_run
    for name in ("run.json", "summary.json", "samples.csv", "checkpoints.csv", "node_dimensions.csv",
                 "spectra.npz", "plots/spectra.png", "plots/alpha0.png", "plots/width.png",
                 "plots/emergence.png", "plots/overview.png"):
        assert (out / name).is_file(), name
    pytest.importorskip("pyarrow", reason="pyarrow is optional; it writes the Parquet tables")
    import pandas as pd
    for name in ("samples", "checkpoints", "node_dimensions"):
        # pandas < 3's default float parser is off by an ulp or so on some values; pandas 3 parses
        # exactly by default and deprecates the option
        exact = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
        a = pd.read_csv(out / f"{name}.csv", **exact)
        b = pd.read_parquet(out / f"{name}.parquet")
        assert list(a.columns) == list(b.columns) and len(a) == len(b)
        num = b.select_dtypes("number").columns
        np.testing.assert_allclose(a[num].to_numpy(float), b[num].to_numpy(float), rtol=1e-15, equal_nan=True)
    samples = pd.read_csv(out / "samples.csv")
    assert len(samples) == 10 * len(srcs)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["per_layer"] == 32 and summary["version"] and summary["complete"]
    assert summary["run"]["status"] == "complete"
    assert len(summary["checkpoints"]) == len(srcs)


def test_tiny_series_end_to_end(tiny, tmp_path):
    out = tmp_path / "run"
    p = _run(["analyze", *tiny, "--out", str(out), "--samples", "3", "--per-layer", str(PER_LAYER),
              "--threads", "1", "--no-plots", "--baseline", "step10"])
    assert p.returncode == 0, p.stderr
    assert "neuromfa: warning: byte-identical checkpoints" in p.stderr and "step0 = step1" in p.stderr
    assert "identical to step0" in p.stdout
    row = [line for line in p.stdout.splitlines() if line.split()[:2] == ["10", "step10"]][0]
    assert "+0.0000 [+0.0000, +0.0000]" in row and "baseline" in row
    assert "12 computed, 0 reused" in p.stdout  # step1 shares step0's results: 4 x 3 tasks
    assert not (out / "plots").exists()
    ck = (out / "checkpoints.csv").read_text().splitlines()
    assert ck[0].startswith("step,checkpoint,source,n_samples,n_kept,alpha0_mean")
    assert "identical_to" in ck[0] and ",step0," in ck[2]


@pytest.mark.parametrize("pyarrow", [True, False])
def test_the_last_line_says_when_no_parquet_table_was_written(pyarrow, tiny, tmp_path, capsys, monkeypatch):
    """A plain install writes CSV only; the run's last line says so once (and how to get Parquet)."""
    if pyarrow:
        pytest.importorskip("pyarrow")
    else:
        monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ImportError
    out = tmp_path / "run"
    assert cli.main(["analyse", *tiny[:2], "--out", str(out), "--samples", "1", "--per-layer", str(PER_LAYER),
                     "--threads", "1", "--no-plots"]) == 0  # the spelling of the help text works too
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("2 computed, 0 reused") or last.startswith("1 computed, 1 reused")
    assert ("Parquet tables need pyarrow (pip install 'neuromfa-native[tables]')" in last) is not pyarrow
    assert any(out.glob("*.parquet")) is pyarrow
    assert cli.main(["report", str(out), "--no-plots"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert ("Parquet tables need pyarrow" in last) is not pyarrow


def test_analyse_is_analyze(capsys):
    args = cli.build_parser().parse_args(["analyse", "x", "--samples", "3"])
    assert args.command == "analyse" and args.samples == 3  # main maps the alias to the command
    assert cli.ALIASES["analyse"] == "analyze" and cli.COMMANDS[cli.ALIASES["analyse"]] is cli.analyze.cmd_analyze
    with pytest.raises(SystemExit):
        cli.main(["analyse", "--help"])
    assert capsys.readouterr().out.startswith("usage: neuromfa analyze")


def test_revisions_form_goes_to_the_hub_ids(monkeypatch, capsys, tmp_path, hub_mode):
    hub_mode(offline=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    rc = cli.main(["analyze", "nobody-x/no-model", "--revisions", "step0,step10", "--out", str(tmp_path / "o"),
                   "--no-plots", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("neuromfa: error: could not find 'nobody-x/no-model' at revision 'step0'")
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", ["analyze", "report", "correlate"])
def test_plots_without_matplotlib_are_refused_before_any_work(command, monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    argv = {"analyze": ["analyze", str(tmp_path / "no-such-checkpoint"), "--out", str(tmp_path / "o")],
            "report": ["report", str(tmp_path / "no-such-run")],
            "correlate": ["correlate", str(tmp_path / "no-such-run"), "--evals", "pythia:70m"]}[command]
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 1 and "plots need matplotlib (pip install matplotlib); or pass --no-plots" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_info(tiny):
    p = _run(["info", tiny[0]])
    assert p.returncode == 0, p.stderr
    assert "architecture  gpt_neox (layout reference)" in p.stdout
    assert "gpt_neox.layers.0.attention.query_key_value.weight" in p.stdout
    p = _run(["info", tiny[0], "--json", "--fingerprint", "--per-layer", "8"])
    d = json.loads(p.stdout)
    assert d["sampled"]["per_layer"] == 8 and len(d["fingerprint"]) == 32


@pytest.mark.parametrize("argv", [[], ["analyze"], ["report"], ["info"]])
def test_help_everywhere_with_examples(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([*argv, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: neuromfa" in out
    if argv:
        assert "examples:" in out


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "analyze" in capsys.readouterr().err


@pytest.mark.parametrize("args, rc, message", [
    (["analyze", "no/such/dir/step0"], 1, "is not an existing file or directory"),
    (["analyze", "{tiny0}", "--threshold", "0.5"], 1, "threshold must be a finite number > 1"),
    (["analyze", "{tiny0}", "--baseline", "step77"], 1, "baseline 'step77' names no checkpoint"),
    (["analyze", "{tiny0}", "--per-layer", "999"], 1, "999"),
    (["analyze", "{tiny0}", "--box", "cube"], 2, "argument --box: invalid choice: 'cube'"),
    (["analyze", "{tiny0}", "--samples", "0"], 2, "--samples must be >= 1"),
    (["analyze", "{tiny0}", "--jobs", "2", "--scheduler", "tcp://x:1"], 1, "exclude each other"),
    (["report", "{tmp}/nothing"], 1, "does not exist"),
    (["info", "{tmp}"], 1, "holds no weights"),
    (["frobnicate"], 2, "invalid choice"),
])
def test_user_errors_are_one_line(args, rc, message, tiny, tmp_path, capsys):
    args = [a.format(tiny0=tiny[0], tmp=tmp_path) for a in args]
    if args[0] == "analyze":
        args += ["--out", str(tmp_path / "out"), "--no-plots", "-q"]
    try:
        code = cli.main(args)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == rc, err
    assert err.startswith("neuromfa: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert message in err


@pytest.mark.slow
def test_debug_shows_the_traceback(tmp_path):
    p = _run(["--debug", "report", str(tmp_path)])
    assert p.returncode != 0 and "Traceback" in p.stderr and "ValueError" in p.stderr
    p = _run(["report", str(tmp_path)])
    assert p.returncode == 1 and "Traceback" not in p.stderr


def test_a_reader_that_goes_away_is_no_error():
    """`neuromfa info ... | head -1`: the reader closes the pipe before the command writes; no
    error line and no traceback, the status a shell gives a command ended by SIGPIPE."""
    p = subprocess.Popen([sys.executable, "-m", "neuromfa_native", "info", "examples/pythia-tiny/step0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # gone before the interpreter has even started
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait(timeout=120) == 141 and err == ""
