"""The sections of ``report.html`` every run has: the overview, the per-checkpoint table, node
fractal dimensions, what the run noticed, and time and bytes per checkpoint."""
from __future__ import annotations

import json
import math

import numpy as np

from .._html import esc, table
from ..config import DEFAULT_CONFIG
from .page import bars_svg, figure, fl, png_file
from .run_data import RunData


def step_axis(ax, steps):
    from ..plots.series import step_axis
    step_axis(ax, steps)


def render_overview(run: RunData) -> str:
    s = run.series
    ci = int(round(100 * s.bootstrap.get("ci", DEFAULT_CONFIG.ci)))
    caption = (f"Top left: the mean multifractal spectrum f(&alpha;) of each checkpoint, coloured by "
               f"training step. Top right: the degree of emergence E relative to "
               f"{esc(s.checkpoints[s.baseline].label)} with its {ci}% bootstrap interval over samples "
               f"&mdash; a rising curve whose band clears zero is the emergence the method reports. "
               f"Bottom: &alpha;<sub>0</sub> and the spectrum width per sample (grey dots), their mean "
               f"and &plusmn;1 sd; a wide spread means the conclusion depends on which neurons were sampled.")
    return stored_or_drawn(run, "overview", caption, alt="overview: spectra, E, alpha0 and width over training",
                           dpi=100)  # 11 inches: the page's width


def stored_or_drawn(run: RunData, name: str, caption: str, *, alt: str, dpi: int = 80) -> str:
    """The figure of plot ``name`` of :data:`plotting.PLOTS`: ``plots/<name>.png`` when
    write_report has just drawn it (see :meth:`RunData.fresh_plot`), else drawn now."""
    png = run.fresh_plot(name)
    if png is not None:
        return png_file(png, caption, alt=alt)
    import matplotlib.pyplot as plt

    from ..plots.series import PLOTS
    drawn = PLOTS[name](run.series)
    fig = drawn if hasattr(drawn, "savefig") else drawn.figure  # a figure, or the axes of one
    try:
        return figure(fig, caption, alt=alt, dpi=dpi)
    finally:
        plt.close(fig)


#: The names the page shows for checkpoints.csv's columns: those of controls.csv and
#: by_layer.csv, so that one quantity has one name in every table of the page (the CSV files
#: keep their names).
CHECKPOINT_HEADERS = {"alpha0_std": "alpha0_sd", "width_std": "width_sd", "emergence": "E",
                      "emergence_low": "E_lo", "emergence_high": "E_hi"}


def render_checkpoints(run: RunData) -> str:
    s = run.series
    rows = []
    for r in s.checkpoint_rows():
        rows.append({k: r[k] for k in ("step", "checkpoint", "n_samples", "n_kept", "alpha0_mean", "alpha0_std",
                                       "width_mean", "width_std", "emergence", "emergence_low", "emergence_high")}
                    | dict(note=", ".join(x for x in ("baseline" if r["is_baseline"] else "",
                                                      f"identical to {r['identical_to']}" if r["identical_to"]
                                                      else "") if x)))
    ci = int(round(100 * s.bootstrap.get("ci", DEFAULT_CONFIG.ci)))
    return table(rows, caption=f"One row per checkpoint: means and sample standard deviations (sd) over the kept "
                               f"samples, E with its {ci}% bootstrap interval E_lo .. E_hi "
                               f"({s.bootstrap.get('n_bootstrap')} replicates). Click a column to sort. "
                               "checkpoints.csv names these columns " + ", ".join(CHECKPOINT_HEADERS) + ".",
                 table_id="checkpoints-table", headers=CHECKPOINT_HEADERS)


def has_node_dimensions(run: RunData) -> bool:
    """Whether any stored result holds node fractal dimensions."""
    return run.has_results and any(x.node_dimensions is not None for rs in run.series.results for x in rs)


def render_node_dimensions(run: RunData) -> str:
    s = run.series
    caption = ("Distribution of node fractal dimensions (SPEC 5) per kind of node layer, pooled over blocks and "
               "samples, at the first and the last checkpoint: a shift between the boxes is a change in how neurons' "
               "neighbourhoods scale.")
    out = stored_or_drawn(run, "node_dimensions", caption, alt="node fractal dimensions per layer kind", dpi=90)
    rows = s.node_dimension_rows()
    first, last = s.checkpoints[0].label, s.checkpoints[-1].label
    rows = [r for r in rows if r["checkpoint"] in (first, last)]
    if rows:
        out += table(rows, caption=f"Per node layer at {esc(first)} and {esc(last)}; every checkpoint is in "
                                   "node_dimensions.csv (which names sd std).", table_id="node-dimensions-table",
                     headers={"std": "sd"})
    return out


def noticed(run: RunData) -> list:
    """``(kind, text)`` for everything the run noticed: failures, missing and identical
    checkpoints, non-finite weights, filtered spectra, fit notes, quarantined result files."""
    out = []
    info = run.info
    s = run.series
    for err in info.get("errors") or []:
        kind = "non-finite weights" if "non-finite" in str(err) else "failed task"
        out.append((kind, str(err)))
    if info.get("n_failed") and len(info.get("errors") or []) < int(info["n_failed"]):
        out.append(("failed task", f"{info['n_failed']} tasks failed in all; the first {len(info.get('errors') or [])} "
                                   "are listed"))
    for key in ("skipped", "unmatched"):
        for x in info.get(key) or []:
            out.append((f"{key} checkpoint", x if isinstance(x, str) else json.dumps(x)))
    if s is not None:
        for t, c in enumerate(s.checkpoints):
            if s.identical_to[t]:
                out.append(("identical checkpoint", f"{c.label} has the same weights as {s.identical_to[t]} "
                                                    "(one result serves both)"))
        miss = s.missing
        if miss:
            by: dict = {}
            for lab, k in miss:
                by.setdefault(lab, []).append("full" if k is None else str(k))
            for lab, ks in by.items():
                out.append(("missing result", f"{lab}: sample(s) {', '.join(ks)} not computed"
                                              + (" (the run is still running or was stopped)"
                                                 if info.get("status") != "failed" else "")))
        for c, rs in zip(s.checkpoints, s.results):
            for r in rs:
                if not r.spectrum.passes(s.filter):
                    out.append(("filtered spectrum", f"{c.label} sample {r.sample}: dropped by the filter "
                                                     f"{s.filter!r}"))
                for n in r.spectrum.notes:
                    out.append(("fit note", f"{c.label} sample {r.sample}: {n}"))
        for w in getattr(run, "load_warnings", []):
            out.append(("result file", w))
    res = run.path / "results"
    if res.is_dir():
        for p in sorted(res.glob("*/*.corrupt")):
            out.append(("result file", f"{p.relative_to(run.path)} could not be trusted and was set aside"))
    out.extend(("report", p) for p in run.problems)
    return out


def render_noticed(run: RunData) -> str:
    items = noticed(run)
    counts: dict = {}
    for k, _ in items:
        counts[k] = counts.get(k, 0) + 1
    head = ", ".join(f"{n} {k}{'s' if n > 1 and not k.endswith('s') else ''}" for k, n in counts.items())
    shown = items[:300]
    li = "".join(f"<li><b>{esc(k)}</b>: {esc(t)}</li>" for k, t in shown)
    more = f"<p class=\"note\">... and {len(items) - len(shown)} more.</p>" if len(items) > len(shown) else ""
    return f"<p>{esc(head)}.</p><ul class=\"issues\">{li}</ul>{more}"


def _count(x: object) -> object:
    """A byte count of run.json as it is shown: a number below 2**63, else None (a string or an
    integer too large for a float would break the table and the chart)."""
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) < 2**63 else None


def cost_rows(run: RunData) -> list:
    """Time per checkpoint from the results; bytes read and checkpoint size from run.json's
    ``reading`` (recorded by runs that read their checkpoints by range or download them)."""
    s = run.series
    reading = (run.info.get("reading") or {}).get("checkpoints")  # the schema checks only that reading is a dict
    reading = reading if isinstance(reading, dict) else {}
    rows = []
    for t, c in enumerate(s.checkpoints):
        sec = [r.seconds for r in s.results[t]]
        got = reading.get(c.label)
        got = got if isinstance(got, dict) else {}
        rows.append(dict(step=c.step, checkpoint=c.label, results=len(sec),
                         seconds_total=float(np.sum(sec)) if sec else math.nan,
                         seconds_per_sample=float(np.mean(sec)) if sec else math.nan,
                         network_edges=round(float(np.mean([r.n_network_edges for r in s.results[t]])))
                         if sec else None,
                         bytes_read=_count(got.get("bytes_read")), checkpoint_bytes=_count(got.get("size")),
                         identical_to=s.identical_to[t] or ""))
    return rows


def render_cost(run: RunData) -> str:
    rows = cost_rows(run)
    has_bytes = any(r["bytes_read"] is not None for r in rows)
    labels = [str(r["checkpoint"]) for r in rows]
    charts = bars_svg(labels, [r["seconds_total"] for r in rows], unit="s", title="compute time per checkpoint")
    if has_bytes:
        charts += bars_svg(labels, [(fl(r["bytes_read"]) if r["bytes_read"] is not None else math.nan) / 1e6
                                    for r in rows], unit="MB", title="megabytes read per checkpoint")
    cap = ("Seconds spent on each checkpoint (summed over its samples; reused results keep the time they first took)"
           + ("; right: the megabytes read from its source (checkpoint_bytes: its size; a range read fetches only the "
              "rows the samples use)." if has_bytes else ". The run recorded no byte counts (a run reading its "
              "checkpoints by URL or from the hub records them in run.json)."))
    cols = [c for c in rows[0] if c not in ("bytes_read", "checkpoint_bytes") or has_bytes]
    return (f'<figure class="svg">{charts}<figcaption>{cap}</figcaption></figure>'
            + table(rows, cols, table_id="cost-table"))
