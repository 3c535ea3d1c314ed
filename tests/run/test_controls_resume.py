"""A run with controls and statistics killed with SIGKILL resumes to the same numbers; a changed
control set is refused (the results are stored like the real ones: atomic, config-checked)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest

from neuromfa_native.run.runner import analyze_series
from neuromfa_native.run.store import load_run
from tiny_series import PER_LAYER, make_series_dirs
from paths import TESTS

K = 3
CTL = ["--controls", "gaussian,shuffle,scaled", "--stats"]
ARGS = ["--samples", str(K), "--per-layer", str(PER_LAYER), "--threads", "1", "--no-plots", "--bootstrap", "100",
        "--no-node-dimension", *CTL]
KILL_DRIVER = TESTS / "kill_driver.py"
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def _cli(args, kill_after=None):
    cmd = [sys.executable, "-m", "neuromfa_native.cli"] if kill_after is None else \
        [sys.executable, str(KILL_DRIVER), str(kill_after)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=180)


@pytest.mark.slow
def test_killed_run_with_controls_resumes_to_the_same_numbers(tmp_path):
    dirs = [str(d) for d in make_series_dirs(tmp_path / "ckpts", steps=(0, 30, 900))]
    ref = analyze_series(dirs, samples=K, per_layer=PER_LAYER, n_threads=1, n_bootstrap=100, node_dimension=False,
                         controls=("gaussian", "shuffle", "scaled"), stats=True)
    out = tmp_path / "run"
    p = _cli(["analyze", *dirs, "--out", str(out), *ARGS], kill_after=4)  # baseline done, one more
    assert p.returncode == -signal.SIGKILL, p.stderr
    partial = load_run(out)
    assert len(partial.missing) == 3 * K - 4
    p = _cli(["analyze", *dirs, "--out", str(out), *ARGS])
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_computed"] == 3 * K - 4 and summary["n_reused"] == 4
    assert "scale-only" in summary["controls"]
    final = load_run(out)
    for name, v in ref.quantities().items():
        np.testing.assert_array_equal(final.quantities()[name], v, err_msg=name)
    assert final.control_rows() == ref.control_rows()
    assert (out / "controls.csv").exists() and (out / "stats.csv").exists()
    # another control set is another configuration: refused without --overwrite
    p = _cli(["analyze", *dirs, "--out", str(out), *ARGS[:-3], "--controls", "gaussian"])
    assert p.returncode != 0 and "overwrite" in p.stderr
