"""Benchmark of the one-hop engine: analyze_graph against a plain numpy
implementation of SPEC 2-3, on a sampled-size graph and on a 20M-edge graph, and 1 vs 2
threads.  Seeded inputs, one warm-up, best of N repeats, baseline measured in the same run.

    python bench/bench_engine.py [--edges 20000000] [--repeats 3] [--out bench/results/engine.json]
"""
import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import neuromfa_native as nm  # noqa: E402
from numpy_baseline import numpy_tau  # noqa: E402


def layered_graph(n_src, fan, seed, dtype=np.float32):
    """n_src source neurons each with `fan` out-edges to a next layer, N(0, 0.02) weights."""
    rng = np.random.default_rng(seed)
    src = np.repeat(np.arange(n_src, dtype=np.int64), fan)
    dst = n_src + rng.integers(0, 4 * fan, size=src.size, dtype=np.int64)
    w = rng.normal(0.0, 0.02, size=src.size).astype(dtype)
    return src, dst, w


def best_of(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edges", type=int, default=20_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="bench/results/engine.json")
    args = ap.parse_args()

    cases = {
        # 160m-shaped sampled NIN size: 12 blocks x ~11k edges, fan-out 32..96
        "sampled (135k edges)": layered_graph(1400, 96, seed=1),
        f"large ({args.edges / 1e6:.0f}M edges)": layered_graph(args.edges // 4000, 4000, seed=2),
    }
    rows = []
    for name, (src, dst, w) in cases.items():
        t_np, tau_np = best_of(lambda: numpy_tau(src, w), args.repeats)
        t1, s1 = best_of(lambda: nm.analyze_graph(src, dst, w, n_threads=1), args.repeats)
        t2, s2 = best_of(lambda: nm.analyze_graph(src, dst, w, n_threads=2), args.repeats)
        assert np.array_equal(s1.log_z, s2.log_z)
        err = float(np.abs(s1.tau - tau_np).max())
        row = dict(case=name, edges=int(src.size), numpy_s=t_np, engine_1t_s=t1, engine_2t_s=t2,
                   speedup_vs_numpy_2t=t_np / t2, speedup_vs_numpy_1t=t_np / t1, thread_speedup=t1 / t2,
                   max_tau_diff=err)
        rows.append(row)
        print(f"{name:>22}: numpy {t_np:8.3f} s | engine 1t {t1:7.3f} s, 2t {t2:7.3f} s | "
              f"x{t_np / t2:6.1f} vs numpy (2t), 2t/1t speed-up {t1 / t2:4.2f} | max|dtau| {err:.1e}")
    meta = dict(date=datetime.now(timezone.utc).isoformat(timespec="seconds"), machine=platform.machine(),
                processor=platform.processor(), cpus=os.cpu_count(), python=platform.python_version(),
                numpy=np.__version__, neuromfa_native=nm.__version__, openmp=nm.openmp_enabled())
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(dict(meta=meta, rows=rows), fh, indent=2)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
