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
from neuromfa_native.checkpoint_reader import CheckpointReader, hub_url
from neuromfa_native.series import analyze_series

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


def test_evict_and_keep_give_the_same_numbers_from_the_offline_cache(steps, tmp_path, monkeypatch) -> None:
    from neuromfa_native.sources import hub_snapshot

    cache = tmp_path / "hub"
    for t, d in zip((0, 10, 100), steps):
        _put_revision(cache, "org/m", f"step{t}", Path(d))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
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
