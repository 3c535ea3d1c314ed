"""The CLI's own overhead: ``neuromfa analyze`` of one local checkpoint against ``nm.analyze``
of the same, whole processes, and the two parts of the difference (the fingerprint pass over
every used weight byte, and importing what writes Parquet).

    python bench/bench_overhead.py [--shape 160m] [--samples 10] [--repeats 7]
                                   [--base DIR]   # also an unpacked wheel of another commit

Each repeat runs, in fresh processes and interleaved (so the machine's load hits all alike):
the CLI (``--no-plots -q``, a new run directory), ``nm.analyze``, and, with ``--base``, the
same two with the package from DIR (e.g. the commit before this change, ``pip wheel`` unpacked)
put first on the path. Then, in one process each: the fingerprint pass (``fingerprint_and_scan``)
and ``import pyarrow.parquet, pandas``. Reports the minimum and median of each. Writes
bench/results/overhead.json.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _measure import machine, save  # noqa: E402
from checkpoints import make  # noqa: E402

# the package from another directory, ahead of this checkout's editable install
_USE = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower() "
        "and 'skbc' not in repr(f).lower()]; sys.path.insert(0, {base!r}); ")


def _wall(code: str, base: str = "") -> float:
    pre = _USE.format(base=base) if base else ""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", pre + code], check=True, capture_output=True,
                   env=dict(os.environ, OMP_NUM_THREADS="2"))
    return time.perf_counter() - t0


def _cli(folder: str, samples: int) -> str:
    out = tempfile.mkdtemp()
    return ("import neuromfa_native, sys; from neuromfa_native.cli import main; "
            f"sys.exit(main(['analyze', {folder!r}, '--samples', '{samples}', '--out', {out!r}, '--no-plots', '-q']))")


def _api(folder: str, samples: int) -> str:
    return f"import neuromfa_native as nm; nm.analyze({folder!r}, samples={samples})"


def _parts(folder: str) -> dict:
    code = ("import time, json; t = time.perf_counter(); "
            "from neuromfa_native.network.fingerprint import fingerprint_and_scan; t1 = time.perf_counter(); "
            f"fingerprint_and_scan({folder!r}); t2 = time.perf_counter(); "
            "import pyarrow.parquet, pandas; t3 = time.perf_counter(); "
            "print(json.dumps(dict(fingerprint_s=t2 - t1, parquet_import_s=t3 - t2)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS="2"))
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="160m")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--base", default="", help="directory holding another build of neuromfa_native")
    ap.add_argument("--out", default="overhead.json", help="file name under bench/results/")
    a = ap.parse_args()
    folder = make(a.shape)
    cases = {"cli": (_cli, ""), "api": (_api, "")}
    if a.base:
        cases.update({"cli (base)": (_cli, a.base), "api (base)": (_api, a.base)})
    times: dict = {k: [] for k in cases}
    parts: list = []
    _wall(_api(folder, 1))  # warm the page cache and the imports
    for _ in range(a.repeats):
        for name, (code, base) in cases.items():
            times[name].append(_wall(code(folder, a.samples), base))
        parts.append(_parts(folder))
        print({k: round(v[-1], 3) for k, v in times.items()}, parts[-1], flush=True)
    rows = [dict(case=k, min_s=min(v), median_s=statistics.median(v), runs=v) for k, v in times.items()]
    for key in ("fingerprint_s", "parquet_import_s"):
        vals = [p[key] for p in parts]
        rows.append(dict(case=key, min_s=min(vals), median_s=statistics.median(vals), runs=vals))
    for r in rows:
        print(f"{r['case']:>20}: min {r['min_s']:.3f} s, median {r['median_s']:.3f} s")
    meta = dict(machine(), shape=a.shape, samples=a.samples, repeats=a.repeats, base=a.base,
                load=os.getloadavg())
    save(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", a.out), rows, meta)


if __name__ == "__main__":
    main()
