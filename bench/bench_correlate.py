"""Benchmark of ``neuromfa_native.correlate``: a 27-checkpoint x 10-sample run against
all 87 zero-shot Pythia tasks (every metric: 172 (task, metric) pairs x 3 quantities).

The run is synthetic but has the shape of the paper's: the 27 zero-shot Pythia steps, 10
per-sample alpha0/width values per checkpoint (seeded), E relative to step 0.  Scores are the
shipped ``pythia:160m-deduped`` table.  Measured: reading the table (first read, uncached), the
point estimates (``n_boot=0``) and the default bootstrap (``n_boot=2000``), each the best of
``--repeat`` runs after a warm-up, in this process (numpy's own threads as the environment sets
them).  Results go to ``bench/results/correlate.json``.

    python bench/bench_correlate.py            # from the repository root
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import neuromfa_native as nm
from _measure import machine, save
from fake_series import fake


def synthetic_run(steps, k=10, seed=0):
    rng = np.random.default_rng(seed)
    u = np.log1p(np.asarray(steps, dtype=float)) / np.log1p(max(steps))
    a = (1.69 - 0.24 * u)[:, None] + 0.01 * rng.standard_normal((len(steps), k))
    w = (0.37 + 0.41 * u)[:, None] + 0.02 * rng.standard_normal((len(steps), k))
    return fake(list(steps), a, w)


def best(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "correlate.json"))
    args = p.parse_args()

    t0 = time.perf_counter()
    ev = nm.read_evals("pythia:160m-deduped")
    t_read = time.perf_counter() - t0
    run = synthetic_run(ev.steps.tolist())
    pairs = sum(len(ev.metrics(t)) for t in ev.tasks)
    rows = [dict(what="read_evals('pythia:160m-deduped'), first read", seconds=round(t_read, 3))]
    for n_boot in (0, 2000):
        secs, corr = best(lambda nb=n_boot: nm.correlate(run, ev, metric=None, n_boot=nb), args.repeat)
        rows.append(dict(what=f"correlate, n_boot={n_boot}", seconds=round(secs, 3), rows=len(corr.rows),
                         checkpoints=len(corr.labels), samples=10, tasks=len(ev.tasks), pairs=pairs))
    meta = machine()
    meta.update(loadavg_1min=round(os.getloadavg()[0], 2), numpy=np.__version__,
                omp_num_threads=os.environ.get("OMP_NUM_THREADS", ""))
    for r in rows:
        print(r)
    print(meta)
    save(args.out, rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
