"""Peak RSS of a 1b-shaped ``pytorch_model.bin`` analysed with the torch-free lazy reader.

    python bench/bench_bin_rss.py [--shape 1b] [--samples 10]

The issue's check (SPEC 12): a .bin of a 1b-shaped checkpoint analyses, 10 sampled networks
(per_layer=32) and the full network, with peak RSS under 500 MB and torch not imported. The
.bin is ``torch.save`` of the random float16 tensors of bench/checkpoints.py (made once, in this
process, which imports torch); each analysis runs in a fresh interpreter (bench/_measure.py:
peak RSS is that interpreter's VmHWM). Writes bench/results/bin_rss.json.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _measure import machine, run_job, save  # noqa: E402
from bench_remote import make_bin  # noqa: E402
from checkpoints import make  # noqa: E402


def lazy_job(folder, samples):
    """``samples`` sampled networks (per_layer=32), or the full network when ``samples`` is 0."""
    from neuromfa_native.analysis import analyze_sample
    from neuromfa_native.sources import resolve_source

    t0 = time.perf_counter()
    src = resolve_source(os.path.join(folder, "pytorch_model.bin"))
    if samples:
        for s in range(samples):
            analyze_sample(src, s, per_layer=32, n_threads=2)
    else:
        analyze_sample(src, None, per_layer=None, n_threads=2)
    return dict(seconds=time.perf_counter() - t0, torch_imported="torch" in sys.modules,
                bin_bytes=os.path.getsize(os.path.join(folder, "pytorch_model.bin")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="1b")
    ap.add_argument("--samples", type=int, default=10)
    a = ap.parse_args()
    bdir = make_bin(make(a.shape))
    rows = []
    for k in (a.samples, 0):
        r = run_job("bench_bin_rss", "lazy_job", bdir, k)
        rows.append(dict(case="full network" if k == 0 else f"{k} samples", shape=a.shape, **r))
        print(rows[-1], flush=True)
    save(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "bin_rss.json"), rows,
         dict(machine(), per_layer=32, n_threads=2, limit_mib=500))


if __name__ == "__main__":
    main()
