"""Never lose work: runs killed with SIGKILL resume to the same results, recomputing only what
was unfinished; stray temp files and damaged results are never trusted; a different
configuration is refused."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from neuromfa_native import analyze_series
from neuromfa_native.run.store import RunStore, load_run
from tiny_series import PER_LAYER, make_series_dirs
from paths import TESTS

K = 4
ARGS = ["--samples", str(K), "--per-layer", str(PER_LAYER), "--threads", "1", "--no-plots", "--bootstrap", "200"]
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return [str(d) for d in make_series_dirs(tmp_path_factory.mktemp("ckpts"), steps=(0, 30, 900))]


@pytest.fixture(scope="module")
def reference(dirs, tmp_path_factory):
    """An uninterrupted run (in process) of the same series."""
    out = tmp_path_factory.mktemp("ref") / "run"
    s = analyze_series(dirs, samples=K, per_layer=PER_LAYER, n_threads=1, out=out, n_bootstrap=200)
    return s


KILL_DRIVER = TESTS / "kill_driver.py"


def _cli(args, kill_after=None, **kw):
    cmd = [sys.executable, "-m", "neuromfa_native.cli"] if kill_after is None else \
        [sys.executable, str(KILL_DRIVER), str(kill_after)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120, **kw)


def _result_files(out: Path) -> list:
    return sorted(p for p in (out / "results").rglob("*.npz"))


def _numbers(series) -> list:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in series.sample_rows()]


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume(dirs, reference, tmp_path):
    out = tmp_path / "run"
    total = len(dirs) * K
    present = 0
    for n in (1, 3, 5):
        p = _cli(["analyze", *dirs, "--out", str(out), *ARGS], kill_after=n)
        assert p.returncode == -signal.SIGKILL, p.stderr
        present += n
        files = _result_files(out)
        assert len(files) == present  # everything finished is on disk, nothing more
        # what is there loads and validates, and equals the uninterrupted run
        partial = load_run(out)
        assert len(partial.missing) == total - present
        ref = {(r["checkpoint"], r["sample"]): r for r in _numbers(reference)}
        for r in _numbers(partial):
            assert r == ref[(r["checkpoint"], r["sample"])]
    p = _cli(["analyze", *dirs, "--out", str(out), *ARGS])
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_computed"] == total - present and summary["n_reused"] == present
    assert summary["complete"] and summary["missing"] == []
    final = load_run(out)
    assert _numbers(final) == _numbers(reference)
    np.testing.assert_array_equal(final.emergence, reference.emergence)
    np.testing.assert_array_equal(final.emergence_ci, reference.emergence_ci)
    # a third run has nothing left to do
    p = _cli(["analyze", *dirs, "--out", str(out), *ARGS])
    assert p.returncode == 0 and "0 computed, 12 reused" in p.stdout


@pytest.mark.slow
def test_sigkill_at_an_arbitrary_moment(dirs, reference, tmp_path):
    """Kill from outside while results are being written (possibly mid-write)."""
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "neuromfa_native.cli", "analyze", *dirs, "--out", str(out),
                             *ARGS], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "results").is_dir() and len(_result_files(out)) >= 2:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n = len(_result_files(out))
    p = _cli(["analyze", *dirs, "--out", str(out), *ARGS])
    assert p.returncode == 0, p.stderr
    assert not list(out.rglob(".tmp-*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_computed"] + summary["n_reused"] == len(dirs) * K and summary["n_reused"] == n
    assert _numbers(load_run(out)) == _numbers(reference)


# numpy's np.load leaks its file handle when a truncated .npz fails to open as a zip (the
# handle is popped from its ExitStack before NpzFile raises): numpy's, not the store's.
@pytest.mark.filterwarnings(r"ignore:unclosed file <_io.BufferedReader name='.*\.npz'>:ResourceWarning")
@pytest.mark.slow
def test_stray_temp_and_damaged_files_are_not_trusted(dirs, reference, tmp_path):
    out = tmp_path / "run"
    kw = dict(samples=K, per_layer=PER_LAYER, n_threads=1, out=out, n_bootstrap=200)
    analyze_series(dirs, **kw)
    files = _result_files(out)
    # a half-written temp file (as left by kill -9 during a write) and a truncated result
    tmp = files[0].parent / ".tmp-sample-00000.npz-abc123"
    tmp.write_bytes(files[0].read_bytes()[:100])
    data = files[1].read_bytes()
    files[1].write_bytes(data[: len(data) // 2])
    # a result flipped in place: the zip CRC (or the header checksum) catches it
    data = bytearray(files[2].read_bytes())
    data[len(data) // 3] ^= 0xFF
    files[2].write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match=r"could not be trusted"):
        s = analyze_series(dirs, **kw)
    assert s.n_computed == 2 and s.n_reused == len(dirs) * K - 2 and not tmp.exists()
    assert (files[1].parent / (files[1].name + ".corrupt")).exists()
    assert _numbers(s) == _numbers(reference)


@pytest.mark.slow
def test_changed_configuration_is_refused_unless_overwrite(dirs, tmp_path):
    out = tmp_path / "run"
    base = ["analyze", dirs[0], dirs[1], "--out", str(out), "--samples", "2", "--per-layer", str(PER_LAYER),
            "--threads", "1", "--no-plots"]
    assert _cli(base).returncode == 0
    p = _cli([*base, "--threshold", "100"])
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "Traceback" not in p.stderr
    assert "another configuration (threshold: 150.0 -> 100.0)" in p.stderr and "--overwrite" in p.stderr
    p = _cli([*base, "--box", "path", "--per-layer", "8"])
    assert p.returncode == 1 and "box: 'edge' -> 'path'" in p.stderr and "per_layer: 12 -> 8" in p.stderr
    p = _cli([*base, "--threshold", "100", "--overwrite"])
    assert p.returncode == 0, p.stderr
    assert load_run(out).config["threshold"] == 100.0
    # aggregation-only options (samples, baseline, filter, bootstrap) reuse the results
    p = _cli([*base, "--threshold", "100", "--samples", "3", "--baseline", "step30", "--filter", "both"])
    assert p.returncode == 0 and "2 computed, 4 reused" in p.stdout
    # adding a checkpoint reuses the others
    p = _cli([*base[:3], dirs[2], *base[3:], "--threshold", "100", "--samples", "3"])
    assert p.returncode == 0 and "3 computed, 6 reused" in p.stdout


def test_changed_weights_are_not_matched_with_old_results(tmp_path):
    d = make_series_dirs(tmp_path / "c", steps=(0, 100))
    out = tmp_path / "run"
    kw = dict(samples=2, per_layer=PER_LAYER, n_threads=1, out=out)
    first = analyze_series([str(x) for x in d], **kw)
    make_series_dirs(tmp_path / "other", steps=(1000,))
    (d[1] / "model.safetensors").write_bytes((tmp_path / "other/step1000/model.safetensors").read_bytes())
    second = analyze_series([str(x) for x in d], **kw)
    assert second.n_computed == 2 and second.n_reused == 2
    assert second.fingerprints[1] != first.fingerprints[1]
    assert second.alpha0_mean[1] != first.alpha0_mean[1]


def test_not_a_run_directory_and_locking(dirs, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no neuromfa run"):
        analyze_series(dirs[:1], samples=1, per_layer=PER_LAYER, out=tmp_path)
    out = tmp_path / "run"
    cfg = dict(per_layer=PER_LAYER)
    with RunStore(out, cfg):
        with pytest.raises(ValueError, match="another neuromfa run is writing"):
            RunStore(out, cfg)
    RunStore(out, cfg).close()  # the lock is released


def test_written_files_follow_the_umask(tmp_path):
    from neuromfa_native._fs import atomic_write_text
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_a_failing_checkpoint_does_not_lose_the_others(dirs, tmp_path):
    """One checkpoint whose weights hold a NaN: every other result is stored, the error names
    the checkpoint, run.json says 'failed', and a rerun after the repair computes only it."""
    import json
    import shutil

    from neuromfa_native.io.safetensors import write_safetensors
    from tiny_series import weights

    series_dirs = []
    for d in map(Path, dirs[:3]):
        shutil.copytree(d, tmp_path / d.name)
        series_dirs.append(tmp_path / d.name)
    bad = series_dirs[1]
    w = weights(int(bad.name.removeprefix("step")))
    name = "gpt_neox.layers.0.attention.query_key_value.weight"
    poisoned = dict(w)
    poisoned[name] = np.full_like(w[name], np.nan)
    write_safetensors(bad / "model.safetensors", poisoned)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=rf"2 of 6 tasks failed.*{bad.name}"), \
            pytest.warns(RuntimeWarning, match=rf"{bad.name}: non-finite weights \(NaN or inf\) in {name} \(3072\)"):
        analyze_series(series_dirs, samples=2, per_layer=PER_LAYER, out=out, n_threads=1)
    assert len(_result_files(out)) == 4
    assert json.loads((out / "run.json").read_text())["status"] == "failed"
    write_safetensors(bad / "model.safetensors", w)
    computed = []
    analyze_series(series_dirs, samples=2, per_layer=PER_LAYER, out=out, n_threads=1,
                   on_result=lambda c, r: computed.append(c.label))
    assert sorted(computed) == [bad.name, bad.name]
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
