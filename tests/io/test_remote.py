"""Range reads over HTTP (remote.py) against a real server on 127.0.0.1 (range_server.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from neuromfa_native.science.analysis import analyze_sample
from neuromfa_native.network.nin import build_nin, get_layout
from neuromfa_native.io.ranged import LocalFile
from neuromfa_native.io.remote import LinkModel, RemoteFile, resolve_url
from neuromfa_native.io.safetensors import SafetensorsFile, write_safetensors
from neuromfa_native.io.sources import resolve_source
from neuromfa_native.io.torch_zip import open_torch_zip
from range_server import RangeServer

try:
    import torch
except ImportError:  # the .bin checkpoints below are written with torch.save
    torch = None
_needs_torch = pytest.mark.skipif(torch is None, reason="torch is optional; these .bin checkpoints are written with torch.save")

KINDS = ("safetensors", "sharded-safetensors", pytest.param("bin", marks=_needs_torch),
         pytest.param("sharded-bin", marks=_needs_torch))


@pytest.fixture(scope="module")
def served(tiny_model, tmp_path_factory):
    """One folder per checkpoint kind, all holding the same gpt_neox weights."""
    root = tmp_path_factory.mktemp("served")
    st = tiny_model("gpt_neox")
    shutil.copytree(st, root / "safetensors")
    src = resolve_source(st)
    names = src.tensor_names()
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    d = root / "sharded-safetensors"
    d.mkdir()
    shutil.copy(st / "config.json", d)
    for f, ns in halves.items():
        write_safetensors(d / f, {n: np.array(src.get(n)) for n in ns})
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {n: f for f, ns in halves.items() for n in ns}}))
    if torch is None:
        return root
    bn = tiny_model("gpt_neox", fmt="bin")
    shutil.copytree(bn, root / "bin")
    sd = torch.load(bn / "pytorch_model.bin", weights_only=True)
    d = root / "sharded-bin"
    d.mkdir()
    shutil.copy(st / "config.json", d)
    wm = {}
    bnames = list(sd)
    for i, ns in enumerate((bnames[: len(bnames) // 2], bnames[len(bnames) // 2:])):
        f = f"pytorch_model-0000{i + 1}-of-00002.bin"
        torch.save({n: sd[n] for n in ns}, d / f)
        wm.update({n: f for n in ns})
    (d / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": wm}))
    return root


def _data_spans(folder: Path) -> dict[str, tuple[str, int, int]]:
    """name -> (file name, begin, end) of every tensor's bytes, from the local files."""
    out = {}
    for f in sorted(folder.iterdir()):
        if f.suffix == ".safetensors":
            sf = SafetensorsFile(f)
            out.update({n: (f.name, *sf.byte_range(n)) for n in sf.tensor_names()})
        elif f.suffix == ".bin":
            z = open_torch_zip(LocalFile(f))
            out.update({n: (f.name, *z.info(n).span) for n in z.tensor_names()})
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.slow
def test_remote_equals_local_and_reads_only_used_rows(served, kind) -> None:
    local = served / kind
    with RangeServer(served) as srv:
        src = resolve_url(srv.url(kind))
        assert src.size == sum(f.stat().st_size for f in local.iterdir() if f.suffix in (".bin", ".safetensors"))
        header_bytes = srv.bytes_served
        srv.reset()
        a = build_nin(src, sample=3, per_layer=4)
        np.testing.assert_array_equal(a.edge_array(), build_nin(local, sample=3, per_layer=4).edge_array())
        # nothing outside the used tensors, and less than the used tensors whole
        lay = get_layout(src.config, src.tensor_names(), src.shape)
        used = set(lay.tensor_names)
        spans = _data_spans(local)
        for fname, s, e in srv.ranges:
            for n, (f2, b, end) in spans.items():
                if f2 == fname and s < end and b < e and end > b:
                    assert n in used, f"read bytes of unused tensor {n}"
        used_bytes = sum(spans[n][2] - spans[n][1] for n in used)
        assert 0 < srv.bytes_served < used_bytes
        assert src.bytes_read == header_bytes + srv.bytes_served
        r1 = analyze_sample(src, 1, per_layer=8)
        r2 = analyze_sample(local, 1, per_layer=8)
        assert (r1.alpha0, r1.width) == (r2.alpha0, r2.width)
        full = analyze_sample(src, None, per_layer=None)
        assert full.alpha0 == analyze_sample(local, None, per_layer=None).alpha0
        srv.reset()
        before = src.bytes_read
        fp = src.fingerprint()
        assert src.bytes_read == before and srv.bytes_served == 0  # from the server's ETags, no reading
        assert fp == resolve_url(srv.url(kind)).fingerprint()


def test_folder_file_and_resolve_source(served) -> None:
    with RangeServer(served) as srv:
        a = resolve_source(srv.url("safetensors/model.safetensors"))
        b = resolve_source(srv.url("safetensors/"))
        assert a.config["model_type"] == "gpt_neox" == b.config["model_type"]
        np.testing.assert_array_equal(build_nin(a, per_layer=4).edge_array(), build_nin(b, per_layer=4).edge_array())
        with pytest.raises(ValueError, match=r"revision='x' only applies to hub ids"):
            resolve_source(srv.url("safetensors"), revision="x")


def test_not_found(served) -> None:
    with RangeServer(served) as srv:
        with pytest.raises(ValueError, match=r"no weights found: tried \['model.safetensors.index.json'"):
            resolve_url(srv.url("nothing-here"))
        with pytest.raises(ValueError, match=r"nothing.safetensors: not found"):
            resolve_url(srv.url("safetensors/nothing.safetensors"))


def test_server_ignoring_range_is_an_error(served) -> None:
    with RangeServer(served, mode="ignore-range") as srv:
        with pytest.raises(ValueError, match=r"ignores Range requests"):
            build_nin(resolve_url(srv.url("safetensors")), per_layer=4)


@pytest.mark.parametrize("kind", ["safetensors", pytest.param("bin", marks=_needs_torch)])
@pytest.mark.slow
def test_short_reads_are_completed(served, kind) -> None:
    with RangeServer(served, mode="short") as srv:
        a = build_nin(resolve_url(srv.url(kind)), sample=2, per_layer=4)
    np.testing.assert_array_equal(a.edge_array(), build_nin(served / kind, sample=2, per_layer=4).edge_array())


@_needs_torch
@pytest.mark.slow
def test_dropped_connection_is_retried_or_an_error(served) -> None:
    want = build_nin(served / "bin", sample=2, per_layer=4).edge_array()
    with RangeServer(served, mode="drop", drops=2) as srv:
        np.testing.assert_array_equal(build_nin(resolve_url(srv.url("bin")), sample=2, per_layer=4).edge_array(), want)
    with RangeServer(served, mode="drop", drops=10**6) as srv:
        with pytest.raises(ValueError, match=r"failed after 3 tries"):
            build_nin(resolve_url(srv.url("bin")), sample=2, per_layer=4)


def test_merge_plan_follows_the_link() -> None:
    class F(RemoteFile):
        def __init__(self, link):
            self.link, self.workers, self.size, self.name = link, 16, 10**9, "x"

    ranges = [(0, 100), (1_000, 1_100), (50_000, 50_100)]
    # 16 requests in flight (per request: latency / 16); a gap is merged while the batch stays
    # bound by its requests: (bytes + gap) / bandwidth < requests x per-request cost
    assert F(LinkModel(1e-6, 1e9)).plan(ranges) == ranges  # 1 us per request: nothing merged
    assert F(LinkModel(1.6, 1e6)).plan(ranges) == [(0, 50_100)]  # 0.1 s per request at 1 MB/s: all merged
    assert F(LinkModel(0.016, 1e6)).plan(ranges) == [(0, 1_100), (50_000, 50_100)]  # 1 ms: the small gap only
    assert F(LinkModel(0.016, 1e6)).plan([(0, 100), (100, 200)]) == [(0, 200)]  # touching: always one


def test_plan_of_a_batch_merges_the_smallest_gaps_of_all_groups_first() -> None:
    class F(RemoteFile):
        def __init__(self, link):
            self.link, self.workers, self.size, self.name = link, 32, 10**9, "x"

    a = [(0, 10), (20, 30)]  # a 10-byte gap
    b = [(1_000, 1_010), (1_500, 1_510), (5_000, 5_010)]  # gaps of 490 and 3490 bytes
    # 5 requests of 1 ms at 1 MB/s: merging pays while (bytes + gap) / 1e6 < requests x 1 ms
    plan = F(LinkModel(0.02, 1e6, per_request=0.001)).plan_groups([a, b])
    assert plan == [[(0, 30)], [(1_000, 1_510), (5_000, 5_010)]]  # never across groups (tensors)
    assert F(LinkModel(0.02, 1e6, per_request=0.0)).plan_groups([a, b]) == [a, b]


def test_import_pulls_no_fsspec() -> None:
    import subprocess
    import sys

    code = ("import sys, neuromfa_native, neuromfa_native.io.sources, neuromfa_native.io.torch_zip; "
            "print([m for m in ('fsspec', 'aiohttp', 'torch', 'http.client', 'ssl', 'neuromfa_native.io.http') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_hub_urls_are_parsed_with_revisions_holding_slashes() -> None:
    from neuromfa_native.io.hub import parse_hub_url

    assert parse_hub_url("hf://org/m@step1000") == ("org/m", "step1000", "")
    assert parse_hub_url("hf://org/m@step1000/model.safetensors") == ("org/m", "step1000", "model.safetensors")
    assert parse_hub_url("hf://org/m@refs/pr/1/config.json") == ("org/m", "refs/pr/1", "config.json")
    assert parse_hub_url("hf://org/m") == ("org/m", None, "")
    assert parse_hub_url("hf://org/m/sub/model.safetensors") == ("org/m", None, "sub/model.safetensors")
    for bad in ("hf://org", "hf://org/m@", "hf:///m"):
        with pytest.raises(ValueError, match="expected hf://org/name"):
            parse_hub_url(bad)


def test_plan_reads_through_when_requests_cost_more_than_bytes() -> None:
    class F(RemoteFile):
        def __init__(self, link):
            self.link, self.workers, self.size, self.name = link, 32, 10**9, "x"

    ranges = [(i * 10_000, i * 10_000 + 2_000) for i in range(100)]  # 100 rows of 2 kB, 1 MB apart in all
    # a Python client: 4 ms per request at 100 MB/s: 100 requests (0.4 s) cost far more than 1 MB
    # (0.01 s): merged down to where requests and bytes take about as long (2 requests, 8 ms)
    plan = F(LinkModel(0.02, 100e6, per_request=0.004)).plan(ranges)
    assert len(plan) <= 2 and plan[0][0] == 0 and plan[-1][1] == 992_000
    # 1 us per request at 1 GB/s: 100 requests (0.1 ms) cost less than their bytes; nothing merged
    assert F(LinkModel(1e-4, 1e9, per_request=1e-6)).plan(ranges) == ranges


def test_link_model_measures_bandwidth_and_request_cost() -> None:
    link = LinkModel(latency=0.02)
    link.observe_batch(100 << 20, 1.0 + 0.02, n_requests=4)  # 4 large requests in parallel: one latency, 100 MB in 1 s
    assert link.bandwidth == pytest.approx((100 << 20) / 1.0)
    link.observe_batch(64 * 2048, 0.256 + 64 * 2048 / link.bandwidth, n_requests=64)  # 64 small ones: 4 ms each
    assert link.per_request == pytest.approx(0.004) and link.calibrated


def test_samples_of_a_checkpoint_are_fetched_in_one_batch_each_byte_once(served, tmp_path) -> None:
    from neuromfa_native.run.runner import analyze_series

    opts = dict(samples=5, per_layer=4, check_identical=False, n_threads=1)
    with RangeServer(served) as srv:
        s = analyze_series([srv.url("safetensors")], **opts)
        ranges = sorted(srv.ranges)
    ref = analyze_series([str(served / "safetensors")], **opts)
    assert [r.spectrum for r in s.results[0]] == [r.spectrum for r in ref.results[0]]
    for (f1, _, b1), (f2, a2, _) in zip(ranges, ranges[1:]):
        assert f1 != f2 or b1 <= a2, "a byte was fetched twice"
    spans = _data_spans(served / "safetensors")
    lay = get_layout(s_config(served), list(spans), SafetensorsFile(served / "safetensors" / "model.safetensors").shape)
    used = [spans[n] for n in set(lay.tensor_names)]
    data_start = min(b for _, b, _ in spans.values())  # the header lies before
    fetched = sum(b - a for _, a, b in ranges if a >= data_start)
    assert 0 < fetched <= sum(e - b for _, b, e in used)  # never more than the used tensors whole


def s_config(served: Path) -> dict:
    return json.loads((served / "safetensors" / "config.json").read_text())


@_needs_torch
@pytest.mark.slow
def test_killed_mid_download_then_resumed(served, tmp_path) -> None:
    """SIGKILL a series while the server is slowly serving the second checkpoint's rows: what is
    stored is the first checkpoint's results only, and the rerun reuses them and computes the
    rest, equal to a run from the local files, counting only what it read."""
    import signal
    import subprocess
    import sys
    import time

    from neuromfa_native.run.runner import analyze_series

    out = tmp_path / "run"
    opts = dict(samples=3, per_layer=4, n_threads=1)
    files = lambda: sorted((out / "results").rglob("*.npz")) if (out / "results").exists() else []  # noqa: E731
    with RangeServer(served, latency=0.2) as srv:
        urls = [srv.url("safetensors"), srv.url("bin")]
        code = ("import sys; from neuromfa_native.run.runner import analyze_series; "
                f"analyze_series({urls!r}, out={str(out)!r}, sort=False, **{opts!r})")
        p = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 90
            while len(files()) < 3 and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            seen = srv.requests
            while srv.requests == seen and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)  # the next request (checkpoint 2's rows) is being served
            assert p.poll() is None, p.stderr.read().decode() if p.stderr else ""
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)
            p.stderr.close()
        assert p.returncode == -signal.SIGKILL
        assert len(files()) == 3  # checkpoint 1's samples, nothing of checkpoint 2
        again = analyze_series(urls, out=out, sort=False, **opts)
        assert not list(out.rglob(".tmp-*"))  # a temp file a kill could leave is cleaned by the rerun
    assert (again.n_reused, again.n_computed) == (3, 3) and again.complete
    local = analyze_series([str(served / "safetensors"), str(served / "bin")], sort=False, check_identical=False, **opts)
    assert [[r.spectrum for r in rs] for rs in again.results] == [[r.spectrum for r in rs] for rs in local.results]
    reading = json.loads((out / "run.json").read_text())["reading"]
    assert list(reading["checkpoints"]) == [again.labels[1]] and reading["bytes_read"] > 0


@pytest.mark.slow
def test_http_needs_no_fsspec_and_other_schemes_go_through_it(served) -> None:
    """http(s):// is read by the package's own client (a process where fsspec cannot be imported
    reads it); file:// and other schemes still go through fsspec, with the same numbers."""
    import subprocess
    import sys

    want = build_nin(served / "safetensors", sample=2, per_layer=4).edge_array()
    with RangeServer(served) as srv:
        code = ("import sys; sys.modules['fsspec'] = None; from neuromfa_native.network.nin import build_nin; "
                f"n = build_nin({srv.url('safetensors')!r}, sample=2, per_layer=4); print(n.edge_array().sum())")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == float(want.sum())
    pytest.importorskip("fsspec", reason="fsspec is optional; it reads the schemes other than http(s) and hf")
    src = resolve_url((served / "safetensors").as_uri())
    np.testing.assert_array_equal(build_nin(src, sample=2, per_layer=4).edge_array(), want)
