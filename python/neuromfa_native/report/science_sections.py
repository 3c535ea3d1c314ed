"""The sections of ``report.html`` for what this project adds to the method: controls (SPEC 9),
rival statistics (SPEC 10), correlation with benchmark scores (SPEC 8) and the breakdown by
layer (SPEC 11); each shown when the run wrote its table."""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from .._html import esc, fmt, table
from .page import Figures, figure, fl, png_file, require_columns
from .run_data import RunData
from .sections import step_axis
from ..run.verdict import KEEPS
from ..science.by_layer import BY_LAYER_COLUMNS
from ..science.controls import CONTROL_COLUMNS, STATS_COLUMNS
from ..scores.correlation import COLUMNS as CORRELATION_COLUMNS
from ..scores.rankcorr import EXACT_MAX_N
from ..scores.text import EXCLUDES_NOTE


def render_controls(run: RunData) -> str:
    rows = run.table("controls")
    require_columns(rows, CONTROL_COLUMNS, "controls.csv")
    controls = list(dict.fromkeys(r["control"] for r in rows))
    if len({fl(r["step"]) for r in rows}) < 2 and run.series is not None:
        out = _contrast_figure(run)
    else:
        out = _controls_figure(rows, controls)
    shares = control_shares(rows)
    if shares:
        out += f"<p>{shares}.</p>"
    out += table(rows, list(CONTROL_COLUMNS) + [c for c in rows[0] if c not in CONTROL_COLUMNS],
                 caption="controls.csv: one row per (checkpoint, control); control <i>none</i> is the real network; "
                         "n_kept (controls.csv: n) is the number of samples kept.",
                 table_id="controls-table", headers={"n": "n_kept"})
    return out


def controls_caption(controls: list) -> str:
    """What each control of the run keeps and removes, and how to read its curve against the
    real network's (docs/spec.md section 9)."""
    parts = []
    for c in controls:
        if c in KEEPS:
            keeps, removes = KEEPS[c]
            parts.append(f"<i>{esc(c)}</i> keeps {esc(keeps)} and removes {esc(removes)}")
    read = []
    if "gaussian" in controls:
        read.append("where <i>gaussian</i> follows the real curve, the weight scale alone reproduces E")
    if "scaled" in controls:
        read.append("where <i>scaled</i> stays near 0, E is the growth of the weight scale; where it follows the "
                    "real curve, E is more than weight scale")
    if "shuffle" in controls:
        read.append("where <i>shuffle</i> follows the real curve, the distribution of the weights reproduces E and "
                    "their arrangement adds nothing")
    return ("; ".join(parts) + (". Reading: " + "; ".join(read) + "." if read else ".")) if parts else ""


def _controls_figure(rows: list, controls: list) -> str:
    from ..plots.controls import plot_control_emergence

    fig, ax = Figures.subplots(figsize=(12, 4.6), layout="constrained")
    plot_control_emergence(rows, ax=ax)
    cap = ("E over training for the real network (red, control <i>none</i>) and each control, with intervals. "
           + controls_caption([str(c) for c in controls if c != "none"]))
    return figure(fig, cap, alt="E of the real network and of the controls over training")


def _contrast_figure(run: RunData) -> str:
    """One checkpoint: alpha0 and width of the real network and of each control, with intervals."""
    from ..plots.controls import plot_contrast

    v = run.verdict
    if not v.contrast:
        return ""
    fig, axs = Figures.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    plot_contrast(list(v.contrast), axes=axs)
    names = [r["network"] for r in v.contrast[1:]]
    cap = ("One checkpoint: the real network's &alpha;<sub>0</sub> and width against each control's, with "
           f"{100 * v.ci:.0f}% bootstrap intervals (E is not defined for one checkpoint). " + controls_caption(names)
           .split(". Reading:")[0] + ". A difference says what the control removes shapes the spectrum now; it "
           "cannot say whether training built it.")
    return figure(fig, cap, alt="alpha0 and width of the real network and of the controls")


def control_shares(rows: list) -> str:
    """"At the last step (S) the real network has E = x; the gaussian control (weight scale only)
    reproduces p% of it; with the scale growth divided out (scaled) q% remains; ..." from
    controls.csv rows (empty when E of the real network is not finite and non-zero there)."""
    last = max(fl(r["step"]) for r in rows)
    final = {r["control"]: fl(r["E"]) for r in rows if fl(r["step"]) == last}
    if "none" not in final or not np.isfinite(final["none"]) or final["none"] == 0:
        return ""
    words = {"gaussian": "a Gaussian network with the same row RMS (<i>gaussian</i>) reproduces {p} of it",
             "shuffle": "the shuffled weights (<i>shuffle</i>, the same distribution) reproduce {p}",
             "scaled": "with the growth of the weight scale divided out (<i>scaled</i>) {p} remains"}
    parts = []
    for c, v in final.items():
        if c != "none" and np.isfinite(v):
            p = f"{100 * v / final['none']:.0f}%"
            # a name of controls.csv is escaped, never read as a format string ("{x}" would raise)
            parts.append(words[str(c)].format(p=p) if str(c) in words else f"<i>{esc(c)}</i> gives {p}")
    if not parts:
        return ""
    return f"At the last step ({fmt(int(last))}) the real network has E = {final['none']:.3f}; " + "; ".join(parts)


def _excludes(row: dict) -> list:
    """The columns whose interval excludes the row's point (``interval_excludes_point``)."""
    return [c for c in str(row.get("interval_excludes_point") or "").split(", ") if c]


def significance_count(rows: list, quantity: str = "E") -> str:
    """How many rows have q < 0.05, in words: by the exact q where a row has at most
    EXACT_MAX_N units (with the t approximation's count beside it, said not to be valid), else
    by ``q_spearman``; and how many of ``quantity``'s."""
    def count(key, only=None):
        return sum(1 for r in rows if (only is None or str(r.get("quantity")) == only) and fl(r.get(key)) < 0.05)

    n_mine = sum(1 for r in rows if str(r.get("quantity")) == quantity)
    small = sorted({int(fl(r.get("n"))) for r in rows if np.isfinite(fl(r.get("p_exact")))
                    and fl(r.get("n")) <= EXACT_MAX_N})
    if not small:
        return (f"{count('q_spearman')} of {len(rows)} rows have q &lt; 0.05 (Benjamini-Hochberg), "
                f"{count('q_spearman', quantity)} of {n_mine} of {esc(quantity)}'s")
    return (f"{count('q_exact')} of {len(rows)} rows have an exact q &lt; 0.05 (Benjamini-Hochberg over exact "
            f"permutation p-values, {count('q_exact', quantity)} of {n_mine} of {esc(quantity)}'s; with "
            f"{', '.join(map(str, small))} checkpoints the t approximation's count, {count('q_spearman')}, is not "
            "valid: it gives a perfect order p = 0)")


def correlation_headline(rows: list, quantity: str = "E") -> str:
    """E's strongest correlation with a score; rho of the training step and of weight RMS with
    that score and E's paired difference to them (docs/spec.md section 13), the points compared;
    how many other quantities correlate at least as strongly; the rows with q < 0.05
    (:func:`significance_count`)."""
    mine = [r for r in rows if str(r.get("quantity")) == quantity and np.isfinite(fl(r.get("spearman")))]
    if not mine:
        return ""
    best = max(mine, key=lambda r: abs(fl(r["spearman"])))
    rho = fl(best["spearman"])
    same = [r for r in rows if (r.get("task"), r.get("metric")) == (best["task"], best["metric"])
            and str(r.get("quantity")) != quantity and abs(fl(r.get("spearman"))) >= abs(rho) - 1e-12]
    lo, hi = fl(best.get("spearman_lo")), fl(best.get("spearman_hi"))
    iv = f" [{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
    if "spearman" in _excludes(best):
        iv += " (an interval that excludes the point: noise attenuates a correlation)"
    txt = (f"Spearman rho of {esc(quantity)} with {esc(best['task'])} {esc(best['metric'])}: <b>{rho:+.2f}</b>{iv} "
           f"over {esc(best['n'])} checkpoints")
    for key, what in (("step", "the training step"), ("rms", "weight RMS")):
        words = _versus(best, key, what, quantity)
        if words:
            txt += "; " + words
    if same:
        names = ", ".join(esc(r["quantity"]) for r in same[:6]) + (" ..." if len(same) > 6 else "")
        one = len(same) == 1
        txt += (f"; {len(same)} other quantit{'y' if one else 'ies'} correlate{'s' if one else ''} at least as strongly "
                f"({names})")
    if any("q_spearman" in r for r in rows):
        txt += "; " + significance_count(rows, quantity)
    return txt


def _versus(row: dict, key: str, what: str, quantity: str) -> str:
    """'the training step gives +1.00 (|rho| of E minus it: -0.005 [-0.090, -0.010]: E's |rho|
    is below the training step's)': the points compare the two; the paired interval leans
    towards the side with less noise (the step has none), so it is not read as better or worse."""
    rho_x, d = fl(row.get(f"rho_{key}")), fl(row.get(f"diff_{key}"))
    if not (np.isfinite(rho_x) and np.isfinite(d)):
        return ""
    lo, hi = fl(row.get(f"diff_{key}_lo")), fl(row.get(f"diff_{key}_hi"))
    txt = f"{what} gives {rho_x:+.2f} (|rho| of {esc(quantity)} minus it: {d:+.3f}"
    if np.isfinite(lo) and np.isfinite(hi):
        txt += f" [{lo:+.3f}, {hi:+.3f}]"
    side = "above" if d > 0 else "below" if d < 0 else "equal to"
    txt += f": {esc(quantity)}'s |rho| is {side} {what}'s"
    if f"diff_{key}" in _excludes(row):
        txt += ("; the interval excludes the point: it leans towards the side with less noise, "
                + ("the step has none" if key == "step" else "here weight RMS"))
    return txt + ")"


def render_stats(run: RunData) -> str:
    from ..plots.series import plain

    rows = run.table("stats")
    require_columns(rows, STATS_COLUMNS, "stats.csv")
    pooled = [r for r in rows if str(r["tensor"]) == "all"] or rows
    names = list(dict.fromkeys(r["statistic"] for r in pooled))
    steps = sorted({fl(r["step"]) for r in pooled})
    ncol = min(4, len(names))
    nrow = -(-len(names) // ncol)
    fig, axs = Figures.subplots(nrow, ncol, figsize=(2.9 * ncol, 2.4 * nrow + 0.4), squeeze=False)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.86, wspace=0.35, hspace=0.7)  # fast, not constrained
    for ax, n in zip(axs.flat, names):
        rr = sorted((fl(r["step"]), fl(r["value"])) for r in pooled if r["statistic"] == n)
        ax.plot([a for a, _ in rr], [b for _, b in rr], "o-", ms=3, color="C0")
        step_axis(ax, steps)
        ax.set_xlabel("")
        ax.set_title(plain(n), fontsize="medium")
        ax.tick_params(labelsize="x-small")
        ax.tick_params(axis="x", labelrotation=45)
    for ax in list(axs.flat)[len(names):]:
        ax.set_axis_off()
    fig.suptitle("Pooled rival statistics over training (x: training step)", fontsize="medium")
    out = figure(fig, "Each pooled statistic of the weights (tensor <i>all</i>) over training. A statistic that "
                      "moves like E does is a simpler rival explanation; compare their correlations with the scores "
                      "below, when the run has them.", alt="rival statistics over training")
    wide: dict = {}
    for r in pooled:
        wide.setdefault((r["step"], r["checkpoint"]), {"step": r["step"], "checkpoint": r["checkpoint"]})[
            str(r["statistic"])] = r["value"]
    out += table(sorted(wide.values(), key=lambda r: fl(r["step"])), ["step", "checkpoint"] + [str(n) for n in names],
                 caption="Pooled statistics per checkpoint (stats.csv, tensor = all); per-tensor values are in "
                         "stats.csv.", table_id="stats-table")
    return out


def _plots_matching(run: RunData, words: tuple) -> list:
    d = run.path / "plots"
    if not d.is_dir() or d.is_symlink():
        return []
    return sorted(p for p in d.glob("*.png") if any(w in p.stem.lower() for w in words)
                  and not p.is_symlink())  # a link could embed a file from elsewhere in the page


#: The figures ``neuromfa correlate`` writes (plotting_correlation.write_correlation_plots),
#: in page order, with what a reader should see in each.
CORRELATE_PLOTS = {
    "correlation_heatmap": ("heat map of Spearman rho, quantities x scores",
                            "Spearman rho of each quantity (E, alpha0, width and any control or rival statistic the "
                            "run holds) with each benchmark score over the checkpoints. Deep red: the quantity rises "
                            "with the score. Whether E's row is redder than its rivals' is the question."),
    "correlation_scatter": ("E against each score",
                            "E against each score (the strongest correlations first), one point per checkpoint "
                            "coloured by training step; error bars are E's bootstrap interval and +-1.96 standard "
                            "errors of the score. A monotone cloud is what a high rho means; one outlying "
                            "checkpoint carrying the trend is what it can hide."),
    "correlation_training": ("E and the scores over training",
                             "E and the scores over training on one normalised axis (lower-is-better scores "
                             "flipped so that up is better): do they rise at the same steps?"),
}


def render_correlation(run: RunData) -> str:
    rows = run.table("correlations")
    require_columns(rows, CORRELATION_COLUMNS, "correlations.csv")
    rows = sorted(rows, key=lambda r: (str(r["quantity"]) != "E",
                                       -abs(fl(r["spearman"])) if np.isfinite(fl(r["spearman"])) else 0))
    stored = {p.stem: p for p in _plots_matching(run, ("correl", "score", "eval"))}
    figs = []
    for name, (alt, caption) in CORRELATE_PLOTS.items():
        if name in stored:
            figs.append(png_file(stored.pop(name), caption, alt=alt))
        elif name == "correlation_heatmap":
            figs.append(_rho_heatmap(rows, alt, caption))
    figs += [png_file(p, f"Written by <code>neuromfa correlate</code> (plots/{esc(p.name)}).") for p in stored.values()]
    # the heat map and the scatter side by side (each is narrow with a few scores), the rest below
    out = f'<div class="figrow">{"".join(figs[:2])}</div>' + "".join(figs[2:])
    cols = [c for c in list(CORRELATION_COLUMNS) + [c for c in rows[0] if c not in CORRELATION_COLUMNS]
            if any(_shown(r.get(c)) for r in rows)]
    flagged = sum(1 for r in rows if _excludes(r))
    caption = ("correlations.csv, E's rows first, then by |rho|: n matched checkpoints, Spearman rho with its "
               "bootstrap interval, p-value (scipy's t approximation) and Benjamini-Hochberg q-value over the table; "
               f"p_exact and q_exact: the exact permutation p-value where n &lt;= {EXACT_MAX_N} (a perfect order of n "
               "checkpoints has p = 2/n!, not 0; above, the t approximation) and its q-value, whose count is the "
               "valid one; Kendall tau-b, Pearson r; rho_step and rho_rms: rho of the training step and of weight "
               "RMS with the score, diff_step and diff_rms: |rho| minus theirs (the points compare the two) with a "
               "paired bootstrap interval that leans towards the side with less noise (the step has none); "
               "interval_excludes_point: the intervals that do not contain their own point; partial_note: why a "
               "partial rho is undefined.")
    if flagged:
        caption += f" {flagged} of {len(rows)} rows have an interval that excludes its own point: {esc(EXCLUDES_NOTE)}."
    out += table(rows, cols, nd=3, caption=caption, table_id="correlation-table")
    return out


def _shown(v: Any) -> bool:
    """Whether a cell has something to show (not empty, not NaN)."""
    return v not in (None, "") and not (isinstance(v, float) and math.isnan(v))


def _rho_heatmap(rows: list, alt: str, caption: str) -> str:
    """The heat map of rho drawn from correlations.csv (when correlate wrote no plot)."""
    from ..plots.correlation import draw_rho_heatmap, heatmap_size, rho_matrix

    quantities, scores, _ = rho_matrix(rows)
    if not (quantities and scores):
        return ""
    longest = max(map(len, quantities if len(scores) <= 12 else scores))
    fig, ax = Figures.subplots(figsize=heatmap_size(len(scores), len(quantities), longest), layout="constrained")
    draw_rho_heatmap(rows, ax, title="Spearman rho of each quantity with each score over training")
    return figure(fig, caption, alt=alt)


def by_layer_emergence(rows: list, baseline_step: Optional[float] = None) -> tuple:
    """``(groups, steps, E)``: E per group (SPEC 4 on the group's sample means) relative to the
    baseline step (default: the first), NaN where a group has no centre."""
    steps = sorted({fl(r["step"]) for r in rows})
    groups = list(dict.fromkeys(str(r["group"]) for r in rows))
    acc: dict = {}
    for r in rows:
        a, w = fl(r["alpha0"]), fl(r["width"])
        if np.isfinite(a) and np.isfinite(w) and (r.get("n_centres") in (None, "") or fl(r["n_centres"]) > 0):
            acc.setdefault((str(r["group"]), fl(r["step"])), []).append((a, w))
    b = steps[0] if baseline_step is None else baseline_step
    e = np.full((len(groups), len(steps)), np.nan)
    for i, g in enumerate(groups):
        if (g, b) not in acc:
            continue
        ab, wb = np.mean(acc[(g, b)], axis=0)
        for j, st in enumerate(steps):
            if (g, st) in acc:
                a, w = np.mean(acc[(g, st)], axis=0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    e[i, j] = (w / wb) * np.log(ab / a)
    return groups, steps, e


def _whole(x: float) -> Any:
    """``x`` as an int when it is a whole number (a count shown without decimals)."""
    return int(x) if math.isfinite(x) and x.is_integer() else x


def render_by_layer(run: RunData) -> str:
    from ..plots.series import plain

    rows = run.table("by_layer")
    require_columns(rows, BY_LAYER_COLUMNS, "by_layer.csv")
    base = None
    s = run.series
    if s is not None:
        base = float(s.checkpoints[s.baseline].step)
        if base not in {fl(r["step"]) for r in rows}:
            base = None
    groups, steps, e = by_layer_emergence(rows, base)
    fig, ax = Figures.subplots(figsize=(min(3 + 0.45 * len(steps), 12), 1.2 + 0.28 * len(groups)), layout="constrained")
    lim = np.nanmax(np.abs(e)) if np.isfinite(e).any() else 1.0
    im = ax.imshow(np.ma.masked_invalid(e), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(steps)), [f"{x:,.0f}" for x in steps], rotation=45, ha="right", fontsize="x-small")
    ax.set_yticks(range(len(groups)), [plain(g) for g in groups], fontsize="x-small")
    ax.set_xlabel("training step")
    fig.colorbar(im, ax=ax, label="E of the group")
    ax.set_title("E per group over training", fontsize="medium")
    never = [g for g in groups if all(fl(r["n_centres"]) == 0 for r in rows if str(r["group"]) == g)]
    cap = ("E of each node-layer group (kinds pooled over blocks, blocks, single layers) relative to the "
           f"{'baseline' if base is not None else 'first'} step, from the same networks with centres restricted to "
           "the group (SPEC 11). Red rows are where the spectrum changes most; blank cells have no centre.")
    out = figure(fig, cap, alt="heat map of E by group and step")
    if never:
        out += (f"<p class=\"note\">Never box centres (no node with enough out-distances; e.g. GPT-NeoX's QKV nodes in "
                f"the reference layout): {esc(', '.join(never))}.</p>")
    agg: dict = {}
    for r in rows:
        agg.setdefault((r["step"], r["checkpoint"], str(r["group"])), []).append(r)
    trows = []
    for (st, ck, g), rr in agg.items():
        a = [fl(x["alpha0"]) for x in rr]
        w = [fl(x["width"]) for x in rr]
        trows.append(dict(step=st, checkpoint=ck, group=g, n_samples=len(rr), alpha0_mean=float(np.nanmean(a))
                          if np.isfinite(a).any() else math.nan,
                          width_mean=float(np.nanmean(w)) if np.isfinite(w).any() else math.nan,
                          E=float(e[groups.index(g), steps.index(fl(st))]),
                          n_centres=_whole(float(np.mean([fl(x["n_centres"]) for x in rr])))))
    out += table(trows, caption="by_layer.csv aggregated over samples: one row per (checkpoint, group).",
                 table_id="by-layer-table")
    return out
