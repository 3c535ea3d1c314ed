"""Benchmark of the README quick start: ``neuromfa analyze examples/pythia-tiny/step* --out DIR``.

The README promises that the bundled example runs in well under a minute on 2 cores.  This
used to be a wall-clock assertion in the test suite (``tests/cli/test_cli.py``), which failed on a
loaded shared machine; the house rule is that speed is measured by benchmarks, recorded in
docs/benchmarks.md, never asserted by timed tests.

Each repeat runs the CLI in a fresh process (with ``OMP_NUM_THREADS=2`` as in the README) and
records wall time and the child's CPU time (user + system, from ``wait4``), which is far less
sensitive to other jobs on the machine than the wall time.  The baseline in the same run is a
bare ``python -c "import neuromfa_native"`` (interpreter and import cost), so that the
analysis' own share can be read off a loaded machine.  Results go to
``bench/results/example.json``.

    python bench/bench_example.py --repeats 3        # from the repository root
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _measure import machine, save

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd: list[str], env: dict) -> dict:
    """Run ``cmd``; return its wall seconds and its own CPU seconds (user + system)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{err.read().decode()[-3000:]}")
    return dict(wall_s=round(wall, 3), cpu_s=round(usage.ru_utime + usage.ru_stime, 3))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results", "example.json"))
    args = ap.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="2")
    steps = sorted(glob.glob(os.path.join(REPO, "examples", "pythia-tiny", "step*")))
    rows = []
    for r in range(args.repeats):
        base = timed([sys.executable, "-c", "import neuromfa_native"], env)
        with tempfile.TemporaryDirectory() as tmp:
            cli = [sys.executable, "-m", "neuromfa_native", "analyze", *steps, "--out", os.path.join(tmp, "run")]
            run = timed(cli, env)
        rows.append(dict(repeat=r, checkpoints=len(steps), import_only=base, analyze=run,
                         loadavg_1min=round(os.getloadavg()[0], 2)))
        print(f"repeat {r}: analyze {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s CPU "
              f"(import alone {base['wall_s']:.2f} s wall), load {rows[-1]['loadavg_1min']}", flush=True)
    best = min(rows, key=lambda row: row["analyze"]["wall_s"])
    meta = dict(machine(), command="neuromfa analyze examples/pythia-tiny/step* --out DIR",
                omp_num_threads=2, best_wall_s=best["analyze"]["wall_s"], best_cpu_s=best["analyze"]["cpu_s"])
    save(args.out, rows, meta)
    print(f"best of {args.repeats}: {meta['best_wall_s']:.1f} s wall, {meta['best_cpu_s']:.1f} s CPU; "
          f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
