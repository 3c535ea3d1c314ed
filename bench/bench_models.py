"""Benchmark of the models: 10 sampled networks (S=32) of fp16 GPT-NeoX checkpoints, built and
analysed end to end (reading included), against a plain numpy baseline that loads the whole
state dict once and slices it, for 14m-, 70m-, 160m- and 410m-shaped checkpoints.  Each job
runs in a fresh process so that its peak RSS is its own.

    python bench/bench_models.py [--shapes 14m,70m,160m,410m] [--threads 2]
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import machine, run_job, save  # noqa: E402
from checkpoints import SHAPES, make  # noqa: E402

S, K = 32, 10


def engine_job(folder, threads):
    import neuromfa_native as nm
    t0 = time.perf_counter()
    a = nm.analyze(folder, samples=K, per_layer=S, node_dimension=False, n_threads=threads)
    return dict(seconds=time.perf_counter() - t0, alpha0=[r.alpha0 for r in a.results])


def numpy_job(folder, threads):
    """What a careful researcher writes without the library: load everything, slice, numpy MFA."""
    from safetensors.numpy import load_file
    from numpy_baseline import numpy_tau
    t0 = time.perf_counter()
    sd = load_file(os.path.join(folder, "model.safetensors"))
    blocks = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("gpt_neox.layers."))
    h = sd["gpt_neox.layers.0.attention.dense.weight"].shape[0]
    alpha0 = []
    for k in range(K):
        rs = np.random.RandomState(k)
        pick = lambda n, s: rs.choice(np.arange(n), s, replace=False)  # noqa: E731
        sets = []
        for _ in range(blocks):
            sets.append((pick(h, S), pick(h, S), pick(h, S), pick(4 * h, 2 * S)))
        out_last = pick(h, S)
        src, w = [], []
        x = 0
        for b, (n1, n2, n4, n5) in enumerate(sets):
            p = f"gpt_neox.layers.{b}."
            qkv_rows = np.concatenate([n2, n2 + h, n2 + 2 * h])
            nxt = sets[b + 1][0] if b + 1 < blocks else out_last
            for name, rows, cols, base in ((p + "attention.query_key_value.weight", qkv_rows, n1, x),
                                           (p + "attention.dense.weight", n4, n2, x + 4 * h),
                                           (p + "mlp.dense_h_to_4h.weight", n5, n4, x + 5 * h),
                                           (p + "mlp.dense_4h_to_h.weight", nxt, n5, x + 6 * h)):
                blk = sd[name][np.ix_(rows, cols)].astype(np.float64)
                src.append(np.repeat(base + cols, rows.size))
                w.append(blk.T.ravel())
            x += 10 * h
        tau = numpy_tau(np.concatenate(src), np.concatenate(w))
        a = np.diff(tau) / 0.1
        f = (np.arange(-30, 30) / 10.0) * a - tau[:-1]
        alpha0.append(float(a[np.argmax(f)]))
    return dict(seconds=time.perf_counter() - t0, alpha0=alpha0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="14m,70m,160m,410m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="bench/results/models.json")
    args = ap.parse_args()
    rows = []
    for shape in args.shapes.split(","):
        folder = make(shape)
        size = os.path.getsize(os.path.join(folder, "model.safetensors")) / 2**20
        run_job("bench_models", "engine_job", folder, args.threads)  # warm-up: page cache, imports
        eng = run_job("bench_models", "engine_job", folder, args.threads)
        base = run_job("bench_models", "numpy_job", folder, args.threads)
        row = dict(shape=shape, blocks=SHAPES[shape][0], hidden=SHAPES[shape][1], file_mib=round(size, 1),
                   engine_s=eng["seconds"], engine_per_sample_ms=1000 * eng["seconds"] / K,
                   engine_per_sample_block_ms=1000 * eng["seconds"] / K / SHAPES[shape][0],
                   engine_peak_rss_mib=eng["peak_rss_mib"], numpy_s=base["seconds"],
                   numpy_peak_rss_mib=base["peak_rss_mib"], speedup=base["seconds"] / eng["seconds"])
        rows.append(row)
        print(f"{shape:>5} ({size:7.1f} MiB): engine {eng['seconds']:6.3f} s ({row['engine_per_sample_ms']:5.1f} "
              f"ms/sample, {row['engine_per_sample_block_ms']:4.2f} ms/sample/block, peak {eng['peak_rss_mib']:6.0f} MiB) | numpy {base['seconds']:6.2f} s "
              f"(peak {base['peak_rss_mib']:6.0f} MiB) | x{row['speedup']:.1f}", flush=True)
    save(args.out, rows, dict(machine(), threads=args.threads, samples=K, per_layer=S))


if __name__ == "__main__":
    main()
