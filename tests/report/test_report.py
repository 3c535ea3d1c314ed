"""Reports from finished and partial run directories: tables, summary, spectra arrays, plots."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from neuromfa_native import cli
from neuromfa_native.report.tables import format_table, write_report, write_tables
from neuromfa_native import analyze_series
from neuromfa_native.run.store import load_run
from tiny_series import PER_LAYER, make_series_dirs

K = 3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rep")
    dirs = [str(d) for d in make_series_dirs(root / "ckpt", steps=(0, 3, 40, 2000))]
    out = root / "run"
    s = analyze_series(dirs, samples=K, per_layer=PER_LAYER, n_threads=1, out=out)
    return s, out


def test_load_run_equals_the_run(run):
    s, out = run
    r = load_run(out)
    assert r.labels == s.labels and r.samples == s.samples and r.config == s.config
    np.testing.assert_array_equal(r.emergence, s.emergence)
    np.testing.assert_array_equal(r.emergence_ci, s.emergence_ci)
    assert [x["alpha0"] for x in r.sample_rows()] == [x["alpha0"] for x in s.sample_rows()]
    assert r.node_dimension_rows() == s.node_dimension_rows()
    a, b = r.results[1][0].spectrum, s.results[1][0].spectrum
    for name in ("q", "tau", "alpha", "f", "radius", "log_z", "tau_r2"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.notes == b.notes and a.params == b.params and not a.alpha.flags.writeable


def test_report_reaggregates_without_recomputing(run):
    s, out = run
    r = load_run(out, baseline="step40", n_bootstrap=100, ci=0.8, seed=3)
    assert r.baseline == 2 and r.emergence[2] == 0 and r.bootstrap == dict(n_bootstrap=100, ci=0.8, seed=3)
    assert "E [80% CI]" in format_table(r)


def test_partial_run_report(run, tmp_path, capsys):
    import shutil
    s, out = run
    part = tmp_path / "partial"
    shutil.copytree(out, part)
    files = sorted((part / "results").rglob("*.npz"))
    last = json.loads((part / "run.json").read_text())["series"][-1]
    key_last = last.get("key") or last["fingerprint"]  # the last checkpoint's folder under results/
    for p in files:
        if p.parent.name == key_last or p.name == "sample-00002.npz":
            p.unlink()
    rc = cli.main(["report", str(part), "--no-plots"])
    text = capsys.readouterr().out
    assert rc == 0
    assert "partial run: 6 result(s) missing" in text
    last = [line for line in text.splitlines() if line.split()[:2] == ["2000", "step2000"]][0]
    assert " 0 " in last and "nan" in last
    summary = json.loads((part / "summary.json").read_text())
    assert not summary["complete"] and ["step2000", 0] in summary["missing"]
    assert summary["checkpoints"][-1]["alpha0_mean"] is None  # NaN is written as null
    arr = np.load(part / "spectra.npz")
    assert arr["present"].sum() == 6 and np.isnan(arr["alpha"][3]).all()


@pytest.mark.slow
def test_report_waits_for_the_report_lock_and_loads_after_it(run, tmp_path):
    """`neuromfa report` while another report is being written waits for it, then loads the
    run as it is then (here: with results removed meanwhile), not as it was when it started."""
    import fcntl
    import shutil
    import subprocess
    import sys
    import time

    s, out = run
    part = tmp_path / "run"
    shutil.copytree(out, part)
    with open(part / ".report.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # another writer holds the lock
        proc = subprocess.Popen([sys.executable, "-m", "neuromfa_native.cli", "report", str(part), "--no-plots"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert proc.poll() is None and not (part / "summary.json").exists()  # still waiting
        last = json.loads((part / "run.json").read_text())["series"][-1]
        for p in (part / "results" / (last.get("key") or last["fingerprint"])).glob("*.npz"):
            p.unlink()  # the state changes while it waits
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "partial run: 3 result(s) missing" in stdout
    assert not json.loads((part / "summary.json").read_text())["complete"]


def test_report_lock_needs_a_run_directory(tmp_path, capsys):
    from neuromfa_native.run.store import report_lock

    with pytest.raises(ValueError, match="does not exist"):
        with report_lock(tmp_path / "nope"):
            pass
    assert cli.main(["report", str(tmp_path)]) == 1  # not a run: an error, and no lock file left there
    assert "no run.json" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_tables_and_files(run, tmp_path):
    s, _ = run
    written = {p.name for p in write_tables(s, tmp_path)}
    assert {"samples.csv", "checkpoints.csv", "node_dimensions.csv", "spectra.npz", "summary.json"} <= written
    header = (tmp_path / "samples.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["step", "checkpoint", "sample", "alpha0", "width", "kept"]
    arr = np.load(tmp_path / "spectra.npz")
    assert arr["alpha"].shape == (4, K, 60) and list(arr["step"]) == [0, 3, 40, 2000]
    assert list(arr["label"]) == ["step0", "step3", "step40", "step2000"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"version", "config", "baseline", "bootstrap", "checkpoints", "identical"} <= set(summary)
    assert summary["config"]["threshold"] == 150.0 and len(summary["config"]["q"]) == 61
    if "samples.parquet" in written:
        import pyarrow.parquet as pq
        t = pq.read_table(tmp_path / "checkpoints.parquet")
        assert t.num_rows == 4 and t.column("step").to_pylist() == [0, 3, 40, 2000]


def test_format_table(run):
    s, _ = run
    lines = format_table(s).splitlines()
    assert len(lines) == 5 and lines[1].split()[:3] == ["0", "step0", str(K)] and "baseline" in lines[1]
    assert "±" in lines[2] and "[" in lines[2]


@pytest.mark.slow
def test_plots(run, tmp_path):
    mpl = pytest.importorskip("matplotlib", reason="matplotlib is optional; this test draws a figure")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    from neuromfa_native.plots import series as plotting
    s, _ = run
    for fn in (plotting.plot_spectra, plotting.plot_alpha0, plotting.plot_width, plotting.plot_emergence):
        ax = fn(s)
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
        plt.close(ax.figure)
    _, ax = plt.subplots()
    assert plotting.plot_emergence(s, ax=ax) is ax
    assert ax.get_xscale() == "symlog"  # steps 3..2000 span decades
    lo, hi = ax.get_xlim()
    assert lo <= 0 <= hi  # step 0 still shows
    assert "step0" in ax.get_ylabel()
    plt.close("all")
    _, ax = plt.subplots()
    plotting.step_axis(ax, [0, 10, 20, 30])
    assert ax.get_xscale() == "linear"
    plt.close("all")
    written = write_report(s, tmp_path)
    pngs = sorted(p.name for p in written if p.suffix == ".png")
    assert pngs == ["alpha0.png", "emergence.png", "node_dimensions.png", "overview.png", "spectra.png", "width.png"]
    assert all(p.stat().st_size > 10_000 for p in written if p.suffix == ".png")


def test_node_dimension_plot(run):
    pytest.importorskip("matplotlib", reason="matplotlib is optional; this test draws a figure")
    import matplotlib.pyplot as plt

    from neuromfa_native.plots import series as plotting
    s, _ = run
    ax = plotting.plot_node_dimensions(s)
    assert ax.get_ylabel() == "node fractal dimension" and ax.get_title()
    kinds = [t.get_text() for t in ax.get_xticklabels()]
    assert kinds and all(not k.startswith("block") for k in kinds)  # pooled over blocks
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        f"step {s.checkpoints[0].step:,}", f"step {s.checkpoints[-1].step:,}"]
    plt.close("all")


def test_many_checkpoints_get_a_colour_bar(run):
    pytest.importorskip("matplotlib", reason="matplotlib is optional; this test draws a figure")
    import matplotlib.pyplot as plt

    from neuromfa_native.plots import series as plotting
    from neuromfa_native.run.series import summarize
    s, _ = run
    cps = [c.__class__(c.source, None, f"{c.label}x{i}", c.step + 10000 * i) for i in range(3) for c in s.checkpoints]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big = summarize(cps, [r for _ in range(3) for r in s.results], config=s.config, samples=s.samples)
    ax = plotting.plot_spectra(big)
    assert ax.get_legend() is None and len(ax.figure.axes) == 2  # the colour bar
    plt.close("all")
