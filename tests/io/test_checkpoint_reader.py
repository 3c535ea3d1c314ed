"""--cache keep|evict|none (checkpoint_reader.py): bounded disk for hub series, read accounting."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from range_server import RangeServer
from tiny_series import make_series_dirs
from neuromfa_native import cli
from neuromfa_native.io.checkpoint_reader import CheckpointReader, hub_url
from neuromfa_native.run.runner import analyze_series

pytest.importorskip("huggingface_hub", reason="huggingface_hub is optional (the hub extra); the cache modes manage its cache")
OPTS = dict(samples=2, per_layer=8, check_identical=False)


def _commit(rev: str) -> str:
    return (rev.encode().hex() * 40)[:40]


def _put_revision(cache: Path, repo: str, rev: str, folder: Path) -> None:
    """What huggingface_hub leaves after a download: blobs by content, snapshot links, a ref."""
    import hashlib

    base = cache / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / _commit(rev)
    snap.mkdir(parents=True, exist_ok=True)
    (base / "blobs").mkdir(exist_ok=True)
    for f in folder.iterdir():
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        blob = base / "blobs" / digest
        if not blob.exists():
            shutil.copy(f, blob)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    (base / "refs").mkdir(exist_ok=True)
    (base / "refs" / rev).write_text(_commit(rev))


@pytest.fixture
def steps(tmp_path):
    return make_series_dirs(tmp_path / "steps", [0, 10, 100])


def _tree(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def test_evict_deletes_only_what_this_run_downloaded(steps, tmp_path) -> None:
    cache = tmp_path / "hub"
    _put_revision(cache, "org/m", "step0", Path(steps[0]))  # already cached before the run
    before = _tree(cache)
    revs = {"step0": Path(steps[0]), "step10": Path(steps[1]), "step100": Path(steps[0])}  # step100 == step0

    def download(repo, rev, cache_dir):  # stands in for snapshot_download: writes the same layout
        base = Path(cache_dir) / ("models--" + repo.replace("/", "--"))
        if not (base / "snapshots" / _commit(rev)).exists():
            _put_revision(Path(cache_dir), repo, rev, revs[rev])
        return str(base / "snapshots" / _commit(rev))

    r = CheckpointReader([("org/m", rv) for rv in revs], "evict", cache_dir=cache, download=download)
    for i in range(3):
        src = r.open(i)
        assert src.config["model_type"] == "gpt_neox"
        got, size = r.read_stats(i, src)
        assert size > 0 and got == (0 if i != 1 else size)  # step0 cached, step100's blobs shared with it
        r.release(i)
    r.close()
    assert _tree(cache) == before  # step10 and step100 (links, refs, step10's blobs) gone, step0 intact
    assert before <= _tree(cache)  # nothing that was cached before is gone


def test_evict_and_keep_give_the_same_numbers_from_the_offline_cache(steps, tmp_path, monkeypatch, hub_mode) -> None:
    from neuromfa_native.io.sources import hub_snapshot

    cache = tmp_path / "hub"
    for t, d in zip((0, 10, 100), steps):
        _put_revision(cache, "org/m", f"step{t}", Path(d))
    hub_mode(offline=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    hub_snapshot.cache_clear()
    before = _tree(cache)
    keep = analyze_series("org/m", revisions=["step0", "step10", "step100"], **OPTS)
    evict = analyze_series("org/m", revisions=["step0", "step10", "step100"], cache="evict", out=tmp_path / "run",
                           **OPTS)  # a run directory: fingerprints too (from the cache, offline)
    assert _tree(cache) == before  # all was cached already: nothing deleted
    for a, b in zip(keep.results, evict.results):
        assert [r.alpha0 for r in a] == [r.alpha0 for r in b]
    with pytest.raises(ValueError, match=r"cache must be one of \('keep', 'evict', 'none'\)"):
        analyze_series("org/m", revisions=["step0"], cache="sometimes", **OPTS)


def test_hub_url() -> None:
    assert hub_url("EleutherAI/pythia-160m", "step1000") == "hf://EleutherAI/pythia-160m@step1000"
    assert hub_url("EleutherAI/pythia-160m@step1000", None) == "hf://EleutherAI/pythia-160m@step1000"
    assert hub_url("https://x/y", None) is None


@pytest.mark.slow
def test_url_series_records_what_it_read(steps, tmp_path, capsys) -> None:
    root = Path(steps[0]).parent
    with RangeServer(root) as srv:
        urls = [srv.url(Path(d).name) for d in steps]
        out = tmp_path / "run"
        s = analyze_series(urls, out=out, cache="none", **{**OPTS, "check_identical": True})
        local = analyze_series(steps, **OPTS)
        for a, b in zip(s.results, local.results):
            assert [r.alpha0 for r in a] == [r.alpha0 for r in b]
        reading = json.loads((out / "run.json").read_text())["reading"]
        size = sum((Path(d) / "model.safetensors").stat().st_size for d in steps)
        assert reading["size"] == size and reading["n_known"] == 3
        # all counted (on 127.0.0.1 the link's cost model reads these tiny tensors whole per
        # sample; test_remote.py checks that only used rows are read)
        assert 0 < reading["bytes_read"] <= srv.bytes_served
        rc = cli.main(["analyze", *urls, "--out", str(tmp_path / "cli"), "--no-plots", "--samples", "2",
                       "--per-layer", "8", "--cache", "none"])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("read ") and " kB of " in last, last
    np.testing.assert_equal(len(s.results), 3)


def _serve_as_hub(root: Path, repo: str, folder: Path, commit: str, rev: str = "main") -> None:
    """The endpoints ``snapshot_download`` asks a hub for, as files under ``root`` (served by
    RangeServer with an ``X-Repo-Commit`` header): the revision's info, its file tree, and the
    files under ``<repo>/resolve/<commit>/``."""
    files = root / repo / "resolve" / commit
    shutil.copytree(folder, files)
    names = sorted(p.name for p in files.iterdir())
    api = root / "api" / "models" / repo
    (api / "revision").mkdir(parents=True, exist_ok=True)
    (api / "revision" / rev).write_text(json.dumps(
        {"id": repo, "sha": commit, "siblings": [{"rfilename": n} for n in names]}))
    (api / "tree").mkdir(exist_ok=True)
    (api / "tree" / commit).write_text(json.dumps(
        [{"type": "file", "path": n, "size": (files / n).stat().st_size, "oid": "0" * 40} for n in names]))


def _hub_env(srv: RangeServer, cache: Path) -> dict:
    env = dict(os.environ, HF_ENDPOINT=srv.url().rstrip("/"), HF_HUB_CACHE=str(cache),
               HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_XET="1")
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    return env


@pytest.mark.slow
def test_evict_with_the_real_snapshot_download(steps, tmp_path) -> None:
    """--cache evict through huggingface_hub's own snapshot_download from a local endpoint: the
    numbers of the local files, and nothing of the series left in the cache afterwards."""
    import subprocess
    import sys

    root, cache = tmp_path / "srv", tmp_path / "hub"
    revs = ["step0", "step10", "step100", "step1000"]  # step100: step10's files (shared blobs)
    for rev, d in zip(revs, [steps[0], steps[1], steps[1], steps[2]]):
        _serve_as_hub(root, "org/m", Path(d), _commit(rev), rev)
    code = ("from neuromfa_native.run.runner import analyze_series\n"
            f"s = analyze_series('org/m', revisions={revs!r}, cache='evict', samples=2, per_layer=8,"
            " check_identical=False)\n"
            "print('ALPHA0', [[r.alpha0 for r in rs] for rs in s.results])\n")
    def commit_of(path: str) -> dict:  # the commit a resolve URL names, as the hub answers
        parts = path.split("/")
        return {"X-Repo-Commit": parts[4]} if len(parts) > 5 and parts[3] == "resolve" else {}

    with RangeServer(root, headers=commit_of) as srv:
        out = subprocess.run([sys.executable, "-c", code], env=_hub_env(srv, cache), capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        served = srv.bytes_served
    copy = shutil.copytree(steps[1], tmp_path / "copy10")
    local = analyze_series([steps[0], steps[1], copy, steps[2]], steps=[0, 10, 100, 1000], **OPTS)
    assert out.stdout.split("ALPHA0", 1)[1].strip() == repr([[r.alpha0 for r in rs] for rs in local.results])
    assert served >= sum((Path(d) / "model.safetensors").stat().st_size for d in steps)  # really downloaded
    # (step100's blobs were already there, fetched while step10 was analysed: it links them, and
    # they go with its eviction)
    base = cache / "models--org--m"
    left = {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() or p.is_symlink()}
    assert not {f for f in left if f.startswith(("blobs/", "snapshots/"))}, left  # all evicted


@pytest.mark.slow
def test_kill_inside_the_hub_download_leaves_no_corrupt_cache_entry(steps, tmp_path) -> None:
    """SIGKILL while huggingface_hub itself downloads (HF_ENDPOINT -> a local server, not
    HF_HUB_OFFLINE): no snapshot link to a partial file, no partial blob under a final name;
    the rerun completes the cache and gives the local numbers."""
    import hashlib
    import subprocess
    import sys
    import time

    from neuromfa_native.science.analysis import analyze_sample

    commit, repo = _commit("main"), "org/m"
    root, cache = tmp_path / "srv", tmp_path / "hub"
    _serve_as_hub(root, repo, Path(steps[1]), commit)
    weights = Path(steps[1]) / "model.safetensors"
    size = weights.stat().st_size
    want = analyze_sample(steps[1], 0, per_layer=8).alpha0
    code = ("import sys\nfrom neuromfa_native.science.analysis import analyze_sample\n"
            f"print('ALPHA0', repr(analyze_sample('{repo}', 0, revision='main', per_layer=8).alpha0))\n")

    def run(srv):
        return subprocess.Popen([sys.executable, "-c", code], env=_hub_env(srv, cache), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    base = cache / ("models--" + repo.replace("/", "--"))
    with RangeServer(root, headers={"X-Repo-Commit": commit}, bandwidth=size / 6) as srv:  # ~6 s for the weights
        proc = run(srv)
        deadline = time.monotonic() + 120
        while srv.bytes_served < size // 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"the download ended before the kill: {proc.communicate()}"
        assert list((base / "blobs").glob("*.incomplete")), "no download in progress at the kill"
        proc.kill()
        proc.communicate()
    snap = base / "snapshots" / commit
    assert not (snap / "model.safetensors").exists()  # no link to a partial file
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    whole = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (base / "blobs").iterdir()
             if not p.name.endswith(".incomplete")}
    assert digest not in whole and all(  # every blob under a final name is a whole served file
        any(hashlib.sha256(f.read_bytes()).hexdigest() == h for f in Path(steps[1]).iterdir()) for h in whole)
    with RangeServer(root, headers={"X-Repo-Commit": commit}) as srv:
        proc = run(srv)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert srv.bytes_served <= size + 64 * 1024  # the weights once (resumed or from the start), not twice
    assert float(out.split("ALPHA0")[1]) == want
    assert hashlib.sha256((snap / "model.safetensors").read_bytes()).hexdigest() == digest
    # the killed run's partial file, which huggingface_hub leaves and never reuses, is gone
    assert not list((base / "blobs").glob("*.incomplete"))


def test_a_partial_download_in_progress_is_left_alone(tmp_path) -> None:
    from filelock import FileLock

    from neuromfa_native.io.sources import clear_dead_partials

    blobs = tmp_path / "models--org--m" / "blobs"
    blobs.mkdir(parents=True)
    dead, live, shared = (blobs / n for n in ("aaa.0123abcd.incomplete", "bbb.89abcdef.incomplete", "ccc.incomplete"))
    for p in (dead, live, shared):
        p.write_bytes(b"partial")
    (tmp_path / ".locks" / "models--org--m").mkdir(parents=True)
    with FileLock(str(tmp_path / ".locks" / "models--org--m" / "bbb.lock")):  # bbb is being downloaded
        assert clear_dead_partials("org/m", str(tmp_path)) == [dead.name]
    assert not dead.exists() and live.exists() and shared.exists()  # shared: old huggingface_hub resumes it
