"""Wall time and peak RSS of a 1b-shaped checkpoint: the torch-free lazy ``.bin`` reader, the same
weights as safetensors, and the ``.bin`` through ``torch.load(mmap=True)``.

    python bench/bench_bin_rss.py [--shape 1b] [--samples 10] [--readers bin,safetensors,torch]

The issue's check (SPEC 12): a .bin of a 1b-shaped checkpoint analyses, 10 sampled networks
(per_layer=32) and the full network, with peak RSS under 500 MB and torch not imported. The
.bin is ``torch.save`` of the random float16 tensors of bench/checkpoints.py (made once, in this
process, which imports torch). Each case runs in a fresh interpreter (bench/_measure.py: peak
RSS is that interpreter's VmHWM), in the same run for every reader, so the ratios between
readers hold on a loaded machine. The full network is timed with node dimensions on (the
default: a second (node x radius) table, every weight binned twice) and off (what
bench/bench_full.py times). Writes bench/results/bin_rss.json.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _measure import machine, run_job, save  # noqa: E402
from bench_remote import make_bin  # noqa: E402
from checkpoints import make  # noqa: E402

READERS = {"bin": "lazy .bin reader (torch_zip.py)", "safetensors": "safetensors (same weights)",
           "torch": ".bin through torch.load(mmap=True, weights_only=True)"}


def _source(folder, reader):
    from neuromfa_native.io.sources import StateDictSource, resolve_source

    if reader == "bin":
        return resolve_source(os.path.join(folder, "bin", "pytorch_model.bin"))
    if reader == "safetensors":
        return resolve_source(os.path.join(folder, "model.safetensors"))
    import torch

    sd = torch.load(os.path.join(folder, "bin", "pytorch_model.bin"), mmap=True, weights_only=True,
                    map_location="cpu")
    with open(os.path.join(folder, "config.json")) as fh:
        return StateDictSource(sd, json.load(fh), "torch.load(mmap)")


def job(folder, reader, samples, node_dimension):
    """``samples`` sampled networks (per_layer=32), or the full network when ``samples`` is 0."""
    from neuromfa_native.science.analysis import analyze_sample

    t0 = time.perf_counter()
    src = _source(folder, reader)
    if samples:
        for s in range(samples):
            analyze_sample(src, s, per_layer=32, n_threads=2, node_dimension=node_dimension)
    else:
        analyze_sample(src, None, per_layer=None, n_threads=2, node_dimension=node_dimension)
    return dict(seconds=time.perf_counter() - t0, torch_imported="torch" in sys.modules)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="1b")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--readers", default="bin,safetensors,torch")
    a = ap.parse_args()
    folder = make(a.shape)
    make_bin(folder)
    with open("/proc/loadavg") as fh:
        load_before = fh.read().split()[:3]
    rows = []
    for k, nd in ((a.samples, True), (0, True), (0, False)):
        for reader in a.readers.split(","):
            r = run_job("bench_bin_rss", "job", folder, reader, k, nd)
            case = "full network" if k == 0 else f"{k} samples"
            rows.append(dict(case=case, node_dimension=nd, reader=READERS[reader], shape=a.shape, **r))
            print(rows[-1], flush=True)
    with open("/proc/loadavg") as fh:
        load_after = fh.read().split()[:3]
    save(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "bin_rss.json"), rows,
         dict(machine(), per_layer=32, n_threads=2, limit_mb=500, loadavg_before=load_before,
              loadavg_after=load_after, bin_bytes=os.path.getsize(os.path.join(folder, "bin", "pytorch_model.bin"))))


if __name__ == "__main__":
    main()
