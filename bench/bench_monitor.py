"""What the training monitor costs the training thread, against the bundled example's step time.

The model and batch are those of ``scripts/train_example.py`` (GPT-NeoX hidden 64, 4 blocks,
batch 32 x 128 bytes, AdamW, 2 torch threads); the batches are random bytes (the step time
does not depend on the text).  Two runs of ``--steps`` optimizer steps after ``--warmup``
steps: without the monitor, and with ``Monitor(model, samples=K, per_layer=S)`` asked every
``--every`` steps (background analysis, one thread).  Reported: the median step time, the time
``monitor.step()`` holds the training thread (the snapshot copy) per call, the analysis time
per call (off the training thread), and the training thread's loss: the time in
``monitor.step()`` over the training time between two calls (``every`` steps), and the
measured change of the whole run's wall time (which also counts the worker thread competing
for the cores).

    python bench/bench_monitor.py                  # about 2 minutes on 2 cores
    python bench/bench_monitor.py --steps 40 --every 10
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from _measure import machine


def run(steps: int, warmup: int, every: int, samples: int, per_layer: int, with_monitor: bool) -> dict:
    import torch
    import train_example as ex
    from neuromfa_native.integrations.monitor import Monitor
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.set_num_threads(ex.THREADS)
    torch.manual_seed(ex.SEED)
    model = GPTNeoXForCausalLM(GPTNeoXConfig(**ex.MODEL)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=ex.TRAIN["lr"], betas=ex.TRAIN["betas"])
    g = torch.Generator().manual_seed(ex.SEED)
    B, T = ex.TRAIN["batch_size"], ex.TRAIN["seq_len"]
    mon = Monitor(model, samples=samples, per_layer=per_layer) if with_monitor else None
    step_times, t_start = [], None
    for step in range(warmup + steps):
        if step == warmup:
            t_start = time.perf_counter()
        t0 = time.perf_counter()
        if mon is not None and step >= warmup and (step - warmup) % every == 0:
            mon.step(step)
        x = torch.randint(0, 256, (B, T), generator=g)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), ex.TRAIN["grad_clip"])
        opt.step()
        if step >= warmup:
            step_times.append(time.perf_counter() - t0)
    train_wall = time.perf_counter() - t_start
    out = dict(steps=steps, train_wall_s=train_wall, step_median_s=statistics.median(step_times))
    if mon is not None:
        t0 = time.perf_counter()
        mon.close()
        out.update(close_wait_s=time.perf_counter() - t0, calls=len(mon.copy_seconds),
                   step_call_median_s=statistics.median(mon.copy_seconds), step_call_max_s=max(mon.copy_seconds),
                   analysis_median_s=statistics.median(r.seconds for r in mon.results),
                   analysed=len(mon.results), dropped=len(mon.dropped), errors=mon.errors[:1])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--samples", type=int, default=10)
    p.add_argument("--per-layer", type=int, default=32)
    p.add_argument("--json", default=None, help="also write the results here")
    a = p.parse_args()
    base = run(a.steps, a.warmup, a.every, a.samples, a.per_layer, False)
    mon = run(a.steps, a.warmup, a.every, a.samples, a.per_layer, True)
    per_interval = a.every * base["step_median_s"]
    res = dict(machine=machine(), loadavg=os.getloadavg(), args=vars(a), without=base, with_monitor=mon,
               training_thread_loss=mon["step_call_median_s"] / per_interval,
               wall_change=mon["train_wall_s"] / base["train_wall_s"] - 1)
    print(f"step time (median, no monitor)     {base['step_median_s'] * 1e3:8.1f} ms")
    print(f"monitor.step() on training thread  {mon['step_call_median_s'] * 1e3:8.2f} ms median, "
          f"{mon['step_call_max_s'] * 1e3:.2f} ms max ({mon['calls']} calls)")
    print(f"analysis per call (worker thread)  {mon['analysis_median_s'] * 1e3:8.1f} ms median "
          f"({mon['analysed']} analysed, {mon['dropped']} dropped)")
    print(f"training-thread loss (every={a.every})  {100 * res['training_thread_loss']:8.3f} %")
    print(f"whole-run wall time change         {100 * res['wall_change']:+8.2f} % "
          f"(worker competing for the cores; load average {res['loadavg'][0]:.1f})")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
