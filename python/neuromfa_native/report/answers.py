"""Several runs' answers side by side (docs/spec.md section 13), for ``compare.html`` and
``sensitivity.html``: each run's verdict with its shares, whether the runs can be compared at
all (the same run twice, no common step axis), and whether their E values can: E compares only
within one configuration of the method, so two E values from different settings of
:data:`E_SETTINGS` are marked as not comparable wherever they are shown together."""
from __future__ import annotations

import math
import os
from typing import Any, Optional, Sequence

import numpy as np

from .._html import esc, table
from .page import fl
from .run_data import RunData

__all__ = ["E_SETTINGS", "check_runs", "correlation_summary", "e_not_comparable", "grid_sentence", "top_tasks",
           "verdict_rows", "verdict_table"]

#: Settings that change what E measures (the network, the boxes, the fit, the samples kept, the
#: baseline): E values of runs that differ in one of them are not comparable.
E_SETTINGS = ("per_layer", "layout", "box", "direction", "threshold", "min_edges", "decimals", "q", "filter",
              "baseline")


def check_runs(runs: Sequence[RunData], names: Sequence[str], series: Sequence) -> None:
    """``ValueError`` for the same run directory given twice, or runs without a common step
    axis (a run whose checkpoints carry no training step, unless every run has the same
    checkpoints, as the cells of a sensitivity grid do)."""
    seen: dict = {}
    for n, r in zip(names, runs):
        key = os.path.realpath(r.path)
        if key in seen:
            raise ValueError(f"the same run directory is given twice ({seen[key]} and {n}: {str(r.path)!r}); "
                             "compare needs different runs")
        seen[key] = n
    stepless = [n for n, s in zip(names, series) if not all(c.step_parsed for c in s.checkpoints)]
    if stepless and len({tuple(s.labels) for s in series}) > 1:
        what = "; ".join(f"{n}: {', '.join(s.labels[:4])}" + (" ..." if len(s.labels) > 4 else "")
                         for n, s in zip(names, series) if n in stepless)
        raise ValueError(f"no common step axis: the checkpoints of {', '.join(stepless)} carry no training step "
                         f"({what}); runs are compared step by step, so name their checkpoints stepN or checkpoint-N "
                         "(or compare runs of the same checkpoints)")


def e_not_comparable(crows: list, names: Sequence[str]) -> str:
    """'' when the runs share every setting of :data:`E_SETTINGS`, else the sentence that says
    their E values are not comparable and why (from :func:`~.compare.config_differences`)."""
    diff = [r for r in crows if r["setting"] in E_SETTINGS]
    if not diff:
        return ""
    parts = [f"{r['setting']} ({', '.join(str(r.get(n, '')) or '(not set)' for n in names)})" for r in diff]
    return ("E values of these runs are not comparable: they differ in " + "; ".join(parts)
            + ". E compares checkpoints within one configuration of the method; compare the verdicts and the "
            "correlations, not the E values.")


def verdict_rows(names: Sequence[str], runs: Sequence[RunData]) -> list:
    """One row per run: its verdict (label, step, E, the two shares with their intervals, reason)."""
    rows = []
    for n, r in zip(names, runs):
        v = r.verdict
        rows.append(dict(run=n, verdict=v.label, step=v.checkpoint, E=v.E, E_lo=v.E_lo, E_hi=v.E_hi,
                         gaussian_share=v.gaussian_share, gaussian_share_lo=v.gaussian_share_lo,
                         gaussian_share_hi=v.gaussian_share_hi, remainder_share=v.remainder_share,
                         remainder_share_lo=v.remainder_share_lo, remainder_share_hi=v.remainder_share_hi,
                         reason=v.reason))
    return rows


def _pct(x: Any, lo: Any, hi: Any) -> str:
    x, lo, hi = fl(x), fl(lo), fl(hi)
    if not math.isfinite(x):
        return ""
    return f"{100 * x:.0f}% [{100 * lo:.0f}%, {100 * hi:.0f}%]" if math.isfinite(lo) and math.isfinite(hi) else \
        f"{100 * x:.0f}%"


def verdict_table(rows: list, note: str = "") -> str:
    """The verdicts side by side (HTML), with the reason of each and, when the runs' E values are
    not comparable, that note above the E column."""
    shown = [dict(run=r["run"], verdict=r["verdict"], step=r["step"],
                  E=f"{fl(r['E']):.3f} [{fl(r['E_lo']):.3f}, {fl(r['E_hi']):.3f}]" if math.isfinite(fl(r["E"])) else "",
                  gaussian_share=_pct(r["gaussian_share"], r["gaussian_share_lo"], r["gaussian_share_hi"]),
                  remainder_share=_pct(r["remainder_share"], r["remainder_share_lo"], r["remainder_share_hi"]),
                  reason=r["reason"]) for r in rows]
    head = ("<h3>Is E more than weight scale? The verdict of each run</h3><p class=\"note\">gaussian_share: how much "
            "of E a Gaussian network with the same row RMS reproduces; remainder_share: how much of E is left when "
            "the growth of the weight scale is divided out (docs/answer.md).</p>")
    if note:
        head += f'<p class="banner partial" id="not-comparable">{esc(note)}</p>'
    return head + table(shown, ["run", "verdict", "step", "E", "gaussian_share", "remainder_share", "reason"],
                        sortable=False, table_id="verdict-table", scroll=False)


def correlation_summary(run: RunData, tasks: Optional[Sequence[tuple]] = None) -> dict:
    """From a run's correlations.csv: the number of E rows with q < 0.05 (``q_spearman``, and
    ``q_exact``: the valid count, from exact p-values where a row has few checkpoints), and for
    each (task, metric) of ``tasks`` (default: every E row) rho of E and its difference to the
    training step."""
    rows = [r for r in run.table("correlations") if str(r.get("quantity")) == "E"]
    out: dict = {}
    if not rows:
        return out
    for column, count in (("q_spearman", "E_rows_q_below_0_05"), ("q_exact", "E_rows_q_exact_below_0_05")):
        q = [fl(r.get(column)) for r in rows]
        if any(math.isfinite(x) for x in q):
            out[count] = sum(1 for x in q if math.isfinite(x) and x < 0.05)
    by = {(str(r["task"]), str(r.get("metric") or "acc")): r for r in rows}
    for key in (tasks if tasks is not None else list(by)):
        r = by.get(key)
        name = key[0] + ("" if key[1] == "acc" else f"_{key[1]}")
        out[f"rho_E_{name}"] = fl(r["spearman"]) if r is not None else math.nan
        if r is not None and math.isfinite(fl(r.get("diff_step"))):
            out[f"E_vs_step_{name}"] = fl(r["diff_step"])
    return out


def top_tasks(run: RunData, k: int = 4) -> list:
    """The ``k`` (task, metric) with the strongest |rho| of E in a run's correlations.csv."""
    rows = [r for r in run.table("correlations") if str(r.get("quantity")) == "E" and math.isfinite(fl(r["spearman"]))]
    rows.sort(key=lambda r: -abs(fl(r["spearman"])))
    return [(str(r["task"]), str(r.get("metric") or "acc")) for r in rows[:k]]


def grid_sentence(vrows: list, crows_by_cell: list, tasks: list) -> str:
    """Whether the verdict and the correlations hold across a sensitivity grid, in words."""
    labels = [r["verdict"] for r in vrows]
    common = max(set(labels), key=labels.count)
    others = [f"{r['run']}: {r['verdict']}" for r in vrows if r["verdict"] != common]
    parts = [f"The verdict is <b>{esc(common)}</b> in {labels.count(common)} of {len(labels)} cells"
             + (f" ({esc('; '.join(others))})" if others else " (it holds across the grid)")]
    for task, metric in tasks[:2]:
        name = task + ("" if metric == "acc" else f"_{metric}")
        rho = np.array([c.get(f"rho_E_{name}", math.nan) for c in crows_by_cell], float)
        if np.isfinite(rho).any():
            txt = (f"rho of E with {esc(task)} {esc(metric)} ranges from {np.nanmin(rho):+.2f} to {np.nanmax(rho):+.2f}"
                   f" across the cells")
            d = np.array([c.get(f"E_vs_step_{name}", math.nan) for c in crows_by_cell], float)
            if np.isfinite(d).any():
                txt += f"; |rho| of E minus that of the training step: {np.nanmin(d):+.3f} to {np.nanmax(d):+.3f}"
            parts.append(txt)
    return ". ".join(parts) + "."
