"""Cost of the null-network controls (SPEC 9) and rival statistics (SPEC 10) on a 160m-shaped
checkpoint: 10 sampled networks (S = 32), plain vs +stats vs +3 controls (gaussian, shuffle,
scaled; ``scaled`` at the baseline, factor 1, costs what any factor costs).

    python bench/bench_controls.py [--shape 160m] [--repeats 3] [--threads 1] [--rounds 12]

Each configuration runs in a fresh interpreter (bench/_measure.py) after a warm-up run of the
same configuration in it; the figure is the minimum over the repeats.  On a shared machine the
load can change between those runs, so the script also measures each configuration
**interleaved** with plain in one interpreter: sample by sample, plain and the configuration in
turn, ``--rounds`` times, CPU time (``time.process_time``): the sums over the samples of each
(sample, configuration)'s minimum over the rounds, and the median over the rounds of each
round's ratio, the figure that the load disturbs least (see ``interleaved``).  Writes bench/results/controls.json.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CONFIGS = {
    "plain": dict(),
    "stats": dict(stats=True),
    "controls3": dict(controls=("gaussian", "shuffle", "scaled"), scale_to="baseline"),
    "controls3+stats": dict(controls=("gaussian", "shuffle", "scaled"), scale_to="baseline", stats=True),
}


def job(path, config, samples, repeats, threads):
    """Times ``samples`` analyze_sample calls of one configuration (min over ``repeats``)."""
    from neuromfa_native import analyze_sample
    from neuromfa_native.io.sources import resolve_source

    opts = dict(CONFIGS[config])
    best = float("inf")
    tsrc = resolve_source(path)
    for r in range(repeats + 1):  # the first run warms caches and imports
        t0 = time.perf_counter()
        for k in range(samples):
            analyze_sample(tsrc, k, per_layer=32, n_threads=threads, **opts)
        dt = time.perf_counter() - t0
        if r:
            best = min(best, dt)
    return dict(config=config, seconds=best)


def interleaved(path, samples, rounds, threads):
    """CPU seconds of each configuration beside its own plain baseline: for each configuration,
    ``rounds`` passes over the samples running plain and that configuration in turn.  Two
    figures: the sums over the samples of each (sample, run)'s minimum over the rounds, and the
    median over the rounds of the round's ratio (configuration seconds / plain seconds, both
    summed over the samples of that round, run seconds apart), which a slow spell of the machine
    lasting longer than a round cannot bias.  Pairing each configuration with plain only keeps
    one configuration's cache footprint out of another's figure."""
    import statistics

    from neuromfa_native import analyze_sample
    from neuromfa_native.io.sources import resolve_source

    tsrc = resolve_source(path)
    out = {}
    for c, opts in CONFIGS.items():
        if c == "plain":
            continue
        pair = {"plain": {}, c: opts}
        for o in pair.values():  # warm-up: imports, caches
            analyze_sample(tsrc, samples, per_layer=32, n_threads=threads, **o)
        best = {p: [float("inf")] * samples for p in pair}
        ratios = []
        for _ in range(rounds):
            spent = dict.fromkeys(pair, 0.0)
            for k in range(samples):
                for p, o in pair.items():
                    t0 = time.process_time()
                    analyze_sample(tsrc, k, per_layer=32, n_threads=threads, **o)
                    dt = time.process_time() - t0
                    best[p][k] = min(best[p][k], dt)
                    spent[p] += dt
            ratios.append(spent[c] / spent["plain"])
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        out[c] = dict(plain_cpu_seconds=sum(best["plain"]), cpu_seconds=sum(best[c]),
                      ratio_to_plain=sum(best[c]) / sum(best["plain"]), round_ratios=ratios,
                      median_round_ratio=statistics.median(ratios), round_ratio_quartiles=[q[0], q[2]])
    return dict(pairs=out)


def main():
    from _measure import machine, run_job, save
    from checkpoints import make

    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="160m")
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=12, help="rounds of the interleaved measurement (0: skip it)")
    a = ap.parse_args()
    path = make(a.shape)
    load_before = os.getloadavg()  # the machine may be shared: ratios within one run are what counts
    rows = []
    for config in CONFIGS:
        out = run_job("bench_controls", "job", path, config, a.samples, a.repeats, a.threads, threads=a.threads)
        rows.append(out)
        print(f"{config:16s} {out['seconds']:8.2f} s  peak {out['peak_rss_mib']:.0f} MiB", flush=True)
    base = rows[0]["seconds"]
    for r in rows:
        r["ratio_to_plain"] = r["seconds"] / base
    print("ratios:", {r["config"]: round(r["ratio_to_plain"], 3) for r in rows})
    inter = {}
    if a.rounds > 0:
        inter = run_job("bench_controls", "interleaved", path, a.samples, a.rounds, a.threads, threads=a.threads)
        for c, r in inter["pairs"].items():
            print(f"interleaved with plain: {c:16s} {r['cpu_seconds']:.4f} s vs {r['plain_cpu_seconds']:.4f} s CPU, "
                  f"x{r['ratio_to_plain']:.3f}; median round x{r['median_round_ratio']:.3f} "
                  f"(quartiles {r['round_ratio_quartiles'][0]:.3f}, {r['round_ratio_quartiles'][1]:.3f})")
    save(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "controls.json"), rows,
         dict(machine(), shape=a.shape, samples=a.samples, per_layer=32, threads=a.threads, repeats=a.repeats,
              rounds=a.rounds, interleaved=inter,
              load_average_before=[round(x, 2) for x in load_before],
              load_average_after=[round(x, 2) for x in os.getloadavg()]))


if __name__ == "__main__":
    main()
