"""Hub checkpoints over a simulated link: bytes, requests and wall time per cache mode and merge rule.

    python bench/bench_hub.py [--shapes 160m,410m,2.8b] [--samples 1,10] [--factors 1,0.25,0]
                              [--latency 0.02] [--bandwidth 100e6] [--formats safetensors,bin]

The hub is tests/hub_emulator.py on 127.0.0.1 (``/api``, ``/resolve`` answering 302 to a CDN
host 127.0.0.2, the CDN honouring Range), every request delayed by ``--latency`` and all
bytes sharing one ``--bandwidth`` cap; the library reaches it through ``HF_ENDPOINT``, as it
would the real hub. Checkpoints: bench/checkpoints.py (random fp16, Pythia shapes; ``bin``: the
same weights through ``torch.save``).

For each shape and K samples (per_layer=32), in a fresh process each:

- ``none`` (range reads, ``nm.analyze("hf://...", samples=K)``) with each merge factor of
  ``--factors`` (:attr:`LinkModel.merge_factor`: 1 = the fastest plan by the link's measured
  model, 0 = the rows asked for only);
- ``keep`` (``snapshot_download`` through the same link into an empty cache, then analyse).

Recorded per case: wall time, bytes the server sent, requests (CDN ranges, resolves, API
calls), the bytes of the rows the K samples use (the union over samples of the used rows of
every used tensor) and of the used tensors whole. Writes bench/results/hub.json.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _measure import machine, run_job, save  # noqa: E402
from checkpoints import make  # noqa: E402

PER_LAYER = 32


def _env(endpoint, cache):
    os.environ.update(HF_ENDPOINT=endpoint, HF_HUB_CACHE=cache, HF_HUB_DISABLE_TELEMETRY="1",
                      HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_XET="1")
    os.environ.pop("HF_HUB_OFFLINE", None)


def none_job(endpoint, repo, rev, samples, factor):
    """Range reads: nm.analyze of the hf:// URL, all K samples' rows in one batch."""
    _env(endpoint, tempfile.mkdtemp())
    from neuromfa_native import analyze
    from neuromfa_native.io.http import transport
    from neuromfa_native.io.hub import stats
    from neuromfa_native.io.linkmodel import LinkModel

    LinkModel.merge_factor = float(factor)
    t0 = time.perf_counter()
    analyze(f"hf://{repo}@{rev}", samples=samples, per_layer=PER_LAYER, n_threads=2)
    seconds = time.perf_counter() - t0
    counts = transport().counts()
    return dict(seconds=seconds, bytes=transport().bytes_received, data_requests=counts.get("data", (0, 0))[0],
                resolves=counts.get("resolvers", (0, 0))[0], api_calls=stats.api_calls)


def keep_job(endpoint, repo, rev, samples):
    """Download (snapshot_download through the link into an empty cache), then analyse; then
    analyse again from the cache (what every later analysis of a kept checkpoint costs)."""
    cache = tempfile.mkdtemp()
    _env(endpoint, cache)
    from neuromfa_native import analyze
    from neuromfa_native.io.sources import hub_snapshot

    t0 = time.perf_counter()
    try:
        analyze(repo, revision=rev, samples=samples, per_layer=PER_LAYER, n_threads=2)
        first = time.perf_counter() - t0
        hub_snapshot.cache_clear()
        os.environ["HF_HUB_OFFLINE"] = "1"
        t1 = time.perf_counter()
        analyze(repo, revision=rev, samples=samples, per_layer=PER_LAYER, n_threads=2)
        again = time.perf_counter() - t1
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return dict(seconds=first, again_seconds=again)


def rows_used(folder, samples):
    """(bytes of the union of the samples' used rows, bytes of the used tensors whole)."""
    import numpy as np

    from neuromfa_native.network.nin import load_layout

    src, lay = load_layout(folder, "reference")
    draws = [lay.sample(PER_LAYER, s) for s in range(samples)]
    rows = whole = 0
    for m in lay.matrices:
        if m.is_synthetic:
            continue
        n_rows, n_cols = src.shape(m.name)
        isz = np.dtype(np.float16).itemsize if src.dtype(m.name) == "float16" else 4
        layer = m.in_layer if m.orientation == "conv1d" else m.out_layer
        used = np.unique(np.concatenate([d[layer] for d in draws]))
        rows += len(used) * n_cols * isz
        whole += n_rows * n_cols * isz
    return rows, whole


def make_bin_folder(folder):
    from bench_remote import make_bin

    return make_bin(folder)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default="160m,410m")
    ap.add_argument("--samples", default="1,10")
    ap.add_argument("--factors", default="1,0.25,0")
    ap.add_argument("--latency", type=float, default=0.02)
    ap.add_argument("--bandwidth", type=float, default=100e6)
    ap.add_argument("--formats", default="safetensors")
    ap.add_argument("--skip-keep", action="store_true")
    ap.add_argument("--out", default="hub.json", help="file name under bench/results/")
    a = ap.parse_args()
    from hub_emulator import HubEmulator

    rows = []
    for shape in a.shapes.split(","):
        folder = make(shape)
        revs = {"safetensors": folder}
        if "bin" in a.formats.split(","):
            revs["bin"] = make_bin_folder(folder)
        repo = f"bench/pythia-{shape}"
        with HubEmulator({repo: revs}, latency=a.latency, bandwidth=a.bandwidth) as hub:
            for fmt in a.formats.split(","):
                for k in (int(x) for x in a.samples.split(",")):
                    used, whole = rows_used(folder, k)
                    base = dict(shape=shape, format=fmt, samples=k, rows_used_bytes=used, used_tensors_bytes=whole)
                    for f in (float(x) for x in a.factors.split(",") if x):
                        hub.reset()
                        r = run_job("bench_hub", "none_job", hub.endpoint, repo, fmt, k, f)
                        rows.append(dict(base, mode="none", merge_factor=f, served=hub.bytes_served,
                                         served_over_rows=hub.bytes_served / used, **r))
                        print(rows[-1], flush=True)
                    if not a.skip_keep and fmt == "safetensors":
                        hub.reset()
                        r = run_job("bench_hub", "keep_job", hub.endpoint, repo, fmt, k)
                        rows.append(dict(base, mode="keep", served=hub.bytes_served,
                                         served_over_rows=hub.bytes_served / used, **r))
                        print(rows[-1], flush=True)
    meta = dict(machine(), latency_s=a.latency, bandwidth_Bps=a.bandwidth, per_layer=PER_LAYER, n_threads=2)
    save(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", a.out), rows, meta)


if __name__ == "__main__":
    main()
