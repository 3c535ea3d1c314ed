"""Range reads over a simulated link vs "download the whole file, then analyse"; lazy .bin vs
torch.load(mmap=True).

    python bench/bench_remote.py [--shape 410m] [--latency 0.02] [--bandwidth 100e6] [--samples 1,10]

The link is tests/range_server.py on 127.0.0.1 with a per-request latency and one bandwidth
cap shared by all connections. Checkpoints: bench/checkpoints.py (random fp16, Pythia shapes).
For each shape and K samples (per_layer=32): bytes fetched and wall time of (a) range reads
(resolve the URL, analyse K samples) and (b) downloading the file through the same link, then
analysing the local copy. Then, locally, a .bin copy analysed with the lazy torch-free reader
and through torch.load(mmap=True, weights_only=True): wall time and peak RSS, each in a fresh
interpreter. Writes bench/results/remote.json.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _measure import machine, run_job, save  # noqa: E402
from checkpoints import make  # noqa: E402


def range_job(url, samples):
    """What analyze_series does in process for one checkpoint: resolve, fetch the rows of all
    samples in one batch (nin.prefetch_samples), analyse each sample."""
    from neuromfa_native.science.analysis import analyze_sample
    from neuromfa_native.network.nin import prefetch_samples
    from neuromfa_native.io.sources import resolve_source

    t0 = time.perf_counter()
    src = resolve_source(url)
    prefetch_samples(src, list(range(samples)), 32)
    for s in range(samples):
        analyze_sample(src, s, per_layer=32, n_threads=2)
    link = src.stores[0].reader.link
    return dict(seconds=time.perf_counter() - t0, bytes=src.bytes_read, size=src.size,
                requests=sum(s.reader.requests for s in src.stores), per_request_s=link.per_request,
                bandwidth_Bps=link.bandwidth)


def download_job(url, samples, tmp):
    import shutil
    import urllib.request

    from neuromfa_native.science.analysis import analyze_sample

    t0 = time.perf_counter()
    os.makedirs(tmp, exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        with urllib.request.urlopen(f"{url}/{name}") as r, open(os.path.join(tmp, name), "wb") as fh:
            shutil.copyfileobj(r, fh, 1 << 20)
    size = os.path.getsize(os.path.join(tmp, "model.safetensors"))
    for s in range(samples):
        analyze_sample(tmp, s, per_layer=32, n_threads=2)
    return dict(seconds=time.perf_counter() - t0, bytes=size, size=size)


def bin_job(folder, how, samples):
    import numpy as np  # noqa: F401

    from neuromfa_native.science.analysis import analyze_sample
    from neuromfa_native.io.sources import StateDictSource, resolve_source

    t0 = time.perf_counter()
    if how == "lazy":
        src = resolve_source(os.path.join(folder, "pytorch_model.bin"))
    else:
        import json

        import torch
        sd = torch.load(os.path.join(folder, "pytorch_model.bin"), mmap=True, weights_only=True, map_location="cpu")
        src = StateDictSource(sd, json.load(open(os.path.join(folder, "config.json"))), "torch.load(mmap)")
    for s in range(samples):
        analyze_sample(src, s, per_layer=32, n_threads=2)
    return dict(seconds=time.perf_counter() - t0, torch_imported="torch" in sys.modules)


def make_bin(folder):
    p = os.path.join(folder, "bin", "pytorch_model.bin")
    if not os.path.exists(p):
        import shutil

        import torch
        from safetensors.torch import load_file
        os.makedirs(os.path.dirname(p), exist_ok=True)
        shutil.copy(os.path.join(folder, "config.json"), os.path.dirname(p))
        torch.save(load_file(os.path.join(folder, "model.safetensors")), p + ".tmp")
        os.replace(p + ".tmp", p)
    return os.path.dirname(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="410m")
    ap.add_argument("--latency", type=float, default=0.02)
    ap.add_argument("--bandwidth", type=float, default=100e6)
    ap.add_argument("--samples", default="1,10")
    ap.add_argument("--skip-download", action="store_true")
    ap.add_argument("--skip-bin", action="store_true")
    ap.add_argument("--out", default="remote.json", help="file name under bench/results/")
    a = ap.parse_args()
    from range_server import RangeServer

    folder = make(a.shape)
    rows = []
    ks = [int(k) for k in a.samples.split(",")]
    with RangeServer(os.path.dirname(folder), latency=a.latency, bandwidth=a.bandwidth) as srv:
        url = srv.url(os.path.basename(folder))
        for k in ks:
            r = range_job(url, k)
            rows.append(dict(case="range reads", shape=a.shape, samples=k, **r))
            print(rows[-1], flush=True)
            if not a.skip_download:
                with tempfile.TemporaryDirectory() as tmp:
                    r = download_job(url, k, os.path.join(tmp, "ckpt"))
                rows.append(dict(case="download, then analyse", shape=a.shape, samples=k, **r))
                print(rows[-1], flush=True)
    bdir = None if a.skip_bin else make_bin(folder)
    for how in ("lazy", "torch.load(mmap=True)") if bdir else ():
        for k in ks:
            r = run_job("bench_remote", "bin_job", bdir, how, k)
            rows.append(dict(case=f".bin {how}", shape=a.shape, samples=k, **r))
            print(rows[-1], flush=True)
    meta = dict(machine(), latency_s=a.latency, bandwidth_Bps=a.bandwidth, per_layer=32, n_threads=2)
    save(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", a.out), rows, meta)


if __name__ == "__main__":
    main()
