"""Same-run comparison of two builds of the package (e.g. before and after a redesign).

Each job runs in a fresh process of the given interpreter (each interpreter has its own build
of ``neuromfa_native`` installed), alternating between the builds so that both see the same
machine load (which goes first alternates too), and reports wall and CPU time per job: the
minimum over the repeats of each build, and the median over the repeats of the new/old CPU-time
ratio of adjacent runs, which is the figure to read on a shared machine.
Jobs: 10 sampled networks (S = 32) and the full network (node dimensions off) of a checkpoint
folder, each with 1 and 2 threads, and a check that both builds give the same numbers.

    python bench/bench_versions.py --old /path/old/.venv/bin/python --new .venv/bin/python \\
        --checkpoint /tmp/neuromfa-bench/pythia-160m-shaped --repeats 5
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _measure import machine, save

JOB = r"""
import json, os, resource, sys, time
import neuromfa_native as nm
path, kind, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
per_layer = 32 if kind == "sampled" else None
samples = 10 if kind == "sampled" else 1
nm.analyze(path, samples=1, per_layer=32, node_dimension=False, n_threads=threads)  # warm-up
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
if kind == "sampled":
    a = nm.analyze(path, samples=samples, per_layer=per_layer, node_dimension=False, n_threads=threads)
    values = [[float(x) for x in r.spectrum.alpha] for r in a.results]
else:
    r = nm.analyze_sample(path, per_layer=None, node_dimension=False, n_threads=threads)
    values = [[float(x) for x in r.spectrum.alpha]]
wall = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
print("@@" + json.dumps(dict(wall=wall, cpu=cpu, values=values, version=nm.__version__)))
"""


def run(python: str, path: str, kind: str, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    p = subprocess.run([python, "-c", JOB, path, kind, str(threads)], capture_output=True, text=True, env=env,
                       cwd="/")
    if p.returncode != 0:
        raise RuntimeError(f"{python} {kind} {threads}: {p.stderr[-2000:]}")
    return json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("@@")][-1][2:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="interpreter with the old build installed")
    ap.add_argument("--new", required=True, help="interpreter with the new build installed")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                   "versions.json"))
    args = ap.parse_args()
    rows = []
    for kind in ("sampled", "full"):
        for threads in (1, 2):
            best = {}
            same = None
            ratios = []  # new/old CPU time of each adjacent pair: robust to slow drifts in load
            for rep in range(args.repeats):
                pair = {}
                # alternate which build goes first, so neither always follows the other
                order = (("old", args.old), ("new", args.new)) if rep % 2 == 0 else (("new", args.new), ("old", args.old))
                for label, py in order:
                    r = run(py, args.checkpoint, kind, threads)
                    pair[label] = r["cpu"]
                    rows.append(dict(kind=kind, threads=threads, build=label, repeat=rep, wall=r["wall"],
                                     cpu=r["cpu"], loadavg=os.getloadavg()[0]))
                    b = best.setdefault(label, dict(wall=r["wall"], cpu=r["cpu"], values=r["values"]))
                    b["wall"], b["cpu"] = min(b["wall"], r["wall"]), min(b["cpu"], r["cpu"])
                ratios.append(pair["new"] / pair["old"])
            same = best["old"]["values"] == best["new"]["values"]
            ratios.sort()
            median = ratios[len(ratios) // 2] if len(ratios) % 2 else 0.5 * (ratios[len(ratios) // 2 - 1] +
                                                                              ratios[len(ratios) // 2])
            print(f"{kind:7s} {threads} thread(s): old {best['old']['wall']:.3f} s wall / {best['old']['cpu']:.3f} s CPU, "
                  f"new {best['new']['wall']:.3f} s / {best['new']['cpu']:.3f} s; new/old wall "
                  f"{best['new']['wall'] / best['old']['wall']:.2f}, CPU {best['new']['cpu'] / best['old']['cpu']:.2f}; "
                  f"median paired CPU ratio {median:.2f}; identical alpha: {same}", flush=True)
            rows.append(dict(kind=kind, threads=threads, summary=True, identical=same, median_cpu_ratio=median,
                             old_wall=best["old"]["wall"], new_wall=best["new"]["wall"],
                             old_cpu=best["old"]["cpu"], new_cpu=best["new"]["cpu"]))
    save(args.out, rows, dict(machine(), checkpoint=args.checkpoint, repeats=args.repeats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
