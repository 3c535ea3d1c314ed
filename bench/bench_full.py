"""Benchmarks of full networks and path boxes.

1. Full one-hop analysis (per_layer=None) of 160m-, 410m- and 1b-shaped fp16 GPT-NeoX
   checkpoints, end to end (node dimensions off), against a plain numpy pass that reads every
   used tensor once (np.abs(w).max()), each in a fresh process (peak RSS is its own).
2. Path boxes on the sampled network (S=32) of a 1.4b-shaped checkpoint, 1 and 2 threads.

3. With --bf16: the same full analysis of bfloat16 copies of those shapes (same draws,
   rounded to bfloat16), against the float16 run of the same shape in the same run.

    python bench/bench_full.py [--shapes 160m,410m,1b] [--threads 2] [--skip-paths] [--bf16]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _measure import machine, run_job, save  # noqa: E402
from checkpoints import make  # noqa: E402


def full_job(folder, threads):
    import neuromfa_native as nm
    t0, c0 = time.perf_counter(), time.process_time()
    r = nm.analyze_sample(folder, per_layer=None, node_dimension=False, n_threads=threads)
    return dict(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0, weights=r.n_network_edges,
                alpha0=r.alpha0, width=r.width)


def read_job(folder, threads):
    """Reads every tensor the network uses once with numpy (memory-mapped safetensors)."""
    import numpy as np
    from safetensors import safe_open
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    with safe_open(os.path.join(folder, "model.safetensors"), framework="numpy") as f:
        for name in f.keys():
            if name.startswith("gpt_neox.layers."):
                w = f.get_tensor(name)
                float(np.abs(w).max())
                n += w.size
    return dict(seconds=time.perf_counter() - t0, cpu_seconds=time.process_time() - c0, weights=n)


def path_job(folder, threads):
    import neuromfa_native as nm
    nin = nm.build_nin(folder, sample=0, per_layer=32)
    t0 = time.perf_counter()
    s = nm.analyze_graph(nin.src, nin.dst, nin.weight, box="path", n_threads=threads)
    return dict(seconds=time.perf_counter() - t0, edges=nin.n_edges, nodes=nin.n_nodes, centres=s.n_nodes,
                distances=s.n_distances)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="160m,410m,1b")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-paths", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="also time bfloat16 copies of each shape")
    ap.add_argument("--out", default="bench/results/full.json")
    args = ap.parse_args()
    rows = []
    for shape in args.shapes.split(","):
        folder = make(shape)
        run_job("bench_full", "read_job", folder, args.threads)  # warm the page cache
        read = run_job("bench_full", "read_job", folder, args.threads)
        full = run_job("bench_full", "full_job", folder, args.threads)
        row = dict(kind="full", shape=shape, weights=full["weights"], engine_s=full["seconds"],
                   engine_ns_per_weight=1e9 * full["seconds"] / full["weights"],
                   engine_peak_rss_mib=full["peak_rss_mib"], numpy_read_s=read["seconds"],
                   numpy_read_peak_rss_mib=read["peak_rss_mib"], ratio_to_read=full["seconds"] / read["seconds"],
                   engine_cpu_s=full["cpu_seconds"], numpy_read_cpu_s=read["cpu_seconds"],
                   cpu_ratio_to_read=full["cpu_seconds"] / read["cpu_seconds"], loadavg=os.getloadavg(),
                   alpha0=full["alpha0"], width=full["width"])
        rows.append(row)
        print(f"full {shape:>5}: {full['weights'] / 1e6:7.1f} M weights | engine {full['seconds']:6.2f} s "
              f"({row['engine_ns_per_weight']:.2f} ns/weight, peak {full['peak_rss_mib']:5.0f} MiB) | numpy read "
              f"pass {read['seconds']:6.2f} s (peak {read['peak_rss_mib']:5.0f} MiB) | engine/read "
              f"{row['ratio_to_read']:.2f} (CPU time: {row['cpu_ratio_to_read']:.2f}, load {os.getloadavg()[0]:.1f})",
              flush=True)
        if args.bf16:
            bf = run_job("bench_full", "full_job", make(shape, "bfloat16"), args.threads)
            rows.append(dict(kind="full-bf16", shape=shape, weights=bf["weights"], engine_s=bf["seconds"],
                             engine_ns_per_weight=1e9 * bf["seconds"] / bf["weights"],
                             engine_peak_rss_mib=bf["peak_rss_mib"], fp16_engine_s=full["seconds"],
                             ratio_to_fp16=bf["seconds"] / full["seconds"], alpha0=bf["alpha0"],
                             width=bf["width"]))
            print(f"full {shape:>5} bf16: engine {bf['seconds']:6.2f} s ({rows[-1]['engine_ns_per_weight']:.2f} "
                  f"ns/weight, peak {bf['peak_rss_mib']:5.0f} MiB) | bf16/fp16 {rows[-1]['ratio_to_fp16']:.2f}",
                  flush=True)
    if not args.skip_paths:
        folder = make("1.4b")
        t1 = run_job("bench_full", "path_job", folder, 1)
        t2 = run_job("bench_full", "path_job", folder, 2)
        row = dict(kind="path", shape="1.4b", edges=t1["edges"], nodes=t1["nodes"], centres=t1["centres"],
                   distances=t1["distances"], one_thread_s=t1["seconds"], two_threads_s=t2["seconds"],
                   speedup=t1["seconds"] / t2["seconds"])
        rows.append(row)
        print(f"path boxes 1.4b S=32: {t1['nodes']} nodes, {t1['edges']} edges, {t1['distances']} box entries | "
              f"1 thread {t1['seconds']:.2f} s, 2 threads {t2['seconds']:.2f} s, speed-up {row['speedup']:.2f}")
    save(args.out, rows, dict(machine(), threads=args.threads))


if __name__ == "__main__":
    main()
