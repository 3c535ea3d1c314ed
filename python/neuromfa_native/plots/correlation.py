"""Plots of a :class:`~neuromfa_native.scores.correlation.Correlation` (matplotlib; imported only when used).

- :func:`plot_quantity_vs_score`: a quantity (E) against one score, points coloured by step,
  error bars from both sides (the quantity's bootstrap interval, the score's +-1.96 stderr);
- :func:`plot_over_training`: the quantity and the scores over training on one min-max
  normalised axis (the paper's figure; lower-is-better scores flipped so up is better);
- :func:`plot_rho_heatmap`: Spearman's rho of every quantity x (task, metric).

Each takes ``ax=None`` and returns the axes; :func:`write_correlation_plots` writes the PNGs.
"""
from __future__ import annotations

import math
import os
import textwrap
from pathlib import Path

import numpy as np

from .series import axes_or_new, plain, save_pngs, step_axis, step_norm_cmap

__all__ = ["draw_rho_heatmap", "plot_quantity_vs_score", "plot_over_training", "plot_rho_heatmap", "rho_matrix",
           "write_correlation_plots"]

#: Pairs drawn in the scatter grid and lines in the training plot (the strongest |rho| first).
MAX_PANELS = 12


def _row(corr, quantity, task, metric):
    for r in corr.rows:
        if (r["quantity"], r["task"], r["metric"]) == (quantity, task, metric):
            return r
    raise ValueError(f"no row for {quantity} x {task} {metric}")


def _top_pairs(corr, quantity: str, k: int) -> list:
    rows = [r for r in corr.sorted_rows() if r["quantity"] == quantity]
    return [(r["task"], r["metric"]) for r in rows[:k]]


def plot_quantity_vs_score(corr, task: str, metric: str, quantity: str = "E", ax=None):
    """``quantity`` against the score of (task, metric), one point per matched checkpoint."""
    ax = axes_or_new(ax)
    v, e = corr.scores[(task, metric)]
    y = corr.values[quantity]
    iv = corr.intervals[quantity]
    ok = np.isfinite(v) & np.isfinite(y)
    yerr = np.vstack([y - iv[:, 0], iv[:, 1] - y])
    yerr = np.where(np.isfinite(yerr), np.maximum(yerr, 0), 0)
    xerr = np.where(np.isfinite(e), 1.96 * e, 0)
    ax.errorbar(v[ok], y[ok], xerr=xerr[ok], yerr=yerr[:, ok], fmt="none", ecolor="0.6", elinewidth=0.8,
                capsize=2, zorder=1)
    if corr.unit == "checkpoint":
        steps = np.array(corr.steps, dtype=float)
        norm, cmap = step_norm_cmap(steps)
        sc = ax.scatter(v[ok], y[ok], c=steps[ok], cmap=cmap, norm=norm, zorder=2, edgecolors="k", linewidths=0.4)
        ax.figure.colorbar(sc, ax=ax, label="training step")
    else:
        ax.scatter(v[ok], y[ok], zorder=2, edgecolors="k", linewidths=0.4)
        for xi, yi, lab in zip(v[ok], y[ok], np.array(corr.labels)[ok]):
            ax.annotate(plain(lab), (xi, yi), fontsize="x-small", xytext=(3, 3), textcoords="offset points")
    r = _row(corr, quantity, task, metric)
    ax.set_xlabel(plain(f"{task} {metric}") + ("" if r["higher_is_better"] else " (lower is better)"))
    ax.set_ylabel(plain(quantity))
    ax.set_title(f"rho = {r['spearman']:.2f} [{r['spearman_lo']:.2f}, {r['spearman_hi']:.2f}], n = {r['n']}",
                 fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax


def _normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = np.nanmin(x), np.nanmax(x)
    return np.full_like(x, 0.5) if not hi > lo else (x - lo) / (hi - lo)


def plot_over_training(corr, quantity: str = "E", ax=None, *, pairs=None):
    """``quantity`` and the scores over training, each min-max normalised to [0, 1]."""
    ax = axes_or_new(ax)
    if corr.unit != "checkpoint":
        raise ValueError("plot_over_training needs a correlation over checkpoints (correlate), not models")
    steps = np.array(corr.steps, dtype=float)
    pairs = _top_pairs(corr, quantity, MAX_PANELS) if pairs is None else pairs
    for task, metric in pairs:
        v, _ = corr.scores[(task, metric)]
        r = _row(corr, quantity, task, metric)
        flip = not r["higher_is_better"]
        ok = np.isfinite(v)
        y = _normalise(-v if flip else v)
        ax.plot(steps[ok], y[ok], marker=".", lw=1, alpha=0.8,
                label=plain(f"{task} {metric}") + (" (flipped)" if flip else "") + f"  rho {r['spearman']:.2f}")
    q = corr.values[quantity]
    iv = corr.intervals[quantity]
    lo, hi = np.nanmin(q), np.nanmax(q)
    scale = (hi - lo) if hi > lo else 1.0
    ax.fill_between(steps, (iv[:, 0] - lo) / scale, (iv[:, 1] - lo) / scale, color="k", alpha=0.15, lw=0)
    ax.plot(steps, _normalise(q), color="k", lw=2.2, marker="o", label=plain(quantity))
    step_axis(ax, steps)
    ax.set_ylabel("normalised (min 0, max 1)")
    ax.set_title(f"{plain(quantity)} and scores over training", fontsize="medium")
    ax.legend(fontsize="x-small", loc="best")
    return ax


def rho_matrix(rows, quantity: str = "E") -> tuple:
    """``(quantities, scores, m)`` with ``m[i, j]`` rho of quantity ``j`` with score ``i``; a score
    is named by its task (and metric when the table has several), scores ordered by the rho of
    ``quantity`` (strongest first) when the table has it."""
    rows = list(rows)
    quantities = list(dict.fromkeys(str(r["quantity"]) for r in rows))
    several = len({str(r["metric"]) for r in rows}) > 1

    def label(r):
        return f"{r['task']} ({r['metric']})" if several else str(r["task"])

    scores = list(dict.fromkeys(label(r) for r in rows))
    m = np.full((len(scores), len(quantities)), np.nan)
    for r in rows:
        v = r["spearman"]
        m[scores.index(label(r)), quantities.index(str(r["quantity"]))] = float(v) if v not in (None, "") else np.nan
    if quantity in quantities:
        col = m[:, quantities.index(quantity)]
        order = sorted(range(len(scores)), key=lambda i: (-abs(col[i]) if math.isfinite(col[i]) else math.inf, i))
        scores, m = [scores[i] for i in order], m[order]
    return quantities, scores, m


def heatmap_size(n_scores: int, n_quantities: int, longest: int) -> tuple:
    """Figure size (inches) of :func:`draw_rho_heatmap`: a few scores across, many down."""
    if n_scores <= 12:  # quantities down, scores across
        return (min(max(2.4 + 0.075 * longest + 0.45 * n_scores, 4.5), 14), 1.6 + 0.32 * n_quantities)
    return (min(max(3.0 + 0.07 * longest + 0.42 * n_quantities, 6.0), 14), min(1.6 + 0.2 * n_scores, 80))


def draw_rho_heatmap(rows, ax=None, *, title: str = "Spearman rho", quantity: str = "E"):
    """The heat map of rho from correlation rows (dicts with quantity, task, metric, spearman):
    with up to 12 scores, quantities down and scores across; with more, scores down (one line
    each, named by task) and quantities across, so that it stays readable at 87 tasks."""
    import matplotlib.pyplot as plt

    quantities, scores, m = rho_matrix(rows, quantity)
    wide = len(scores) <= 12
    longest = max(map(len, quantities if wide else scores), default=1)
    if ax is None:
        _, ax = plt.subplots(figsize=heatmap_size(len(scores), len(quantities), longest), layout="constrained")
    data, down, across = (m.T, quantities, scores) if wide else (m, scores, quantities)
    im = ax.imshow(data, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(down)), [plain(x) for x in down], fontsize="small" if len(down) <= 30 else "x-small")
    ax.set_xticks(range(len(across)), [plain(x) for x in across], rotation=40 if wide else 60, ha="right",
                  fontsize="small")
    if data.size <= 200:
        for (i, j), v in np.ndenumerate(data):
            if math.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize="x-small",
                        color="white" if abs(v) > 0.6 else "black")
    if not wide:
        ax.xaxis.tick_top()
        ax.tick_params(axis="x", labelrotation=60)
        for t in ax.get_xticklabels():
            t.set_ha("left")
    ax.figure.colorbar(im, ax=ax, label="Spearman rho", shrink=0.6 if not wide else 1.0)
    ax.set_title(title, fontsize="medium")
    return ax


def plot_rho_heatmap(corr, ax=None):
    """Spearman's rho of every quantity with every (task, metric) (:func:`draw_rho_heatmap`)."""
    metrics = sorted({r["metric"] for r in corr.rows})
    title = f"Spearman rho over {len(corr.labels)} {corr.unit}s" + (f" ({plain(metrics[0])})" if len(metrics) == 1 else "")
    return draw_rho_heatmap(corr.rows, ax, title=title)


#: the figures :func:`write_correlation_plots` may write (``<name>.png``)
CORRELATION_PLOTS = ("correlation_scatter", "correlation_training", "correlation_heatmap")


def write_correlation_plots(corr, out: os.PathLike, *, quantity: str = "E", dpi: int = 120) -> list:
    """Write ``out/plots/correlation_{scatter,training,heatmap}.png``; returns the paths."""
    import matplotlib.pyplot as plt

    if quantity not in corr.values:
        quantity = next(iter(corr.values))
    from .._fs import own_dir

    d = own_dir(Path(out) / "plots")  # never a link out of the run directory
    figs = {}
    pairs = _top_pairs(corr, quantity, MAX_PANELS)
    ncol = min(4, len(pairs))
    nrow = math.ceil(len(pairs) / ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(max(4.2 * ncol, 6.0), 3.4 * nrow + 0.4), layout="constrained",
                            squeeze=False)
    for ax, (t, m) in zip(axs.flat, pairs):
        plot_quantity_vs_score(corr, t, m, quantity, ax=ax)
    for ax in list(axs.flat)[len(pairs):]:
        ax.set_visible(False)
    note = textwrap.fill(f"Error bars: {corr.ci:.0%} bootstrap interval of {plain(quantity)}, +-1.96 stderr of the "
                         f"score; {corr.interval_note}.", width=max(85, 45 * ncol))
    fig.suptitle(note, fontsize="small")
    figs["correlation_scatter"] = fig
    if corr.unit == "checkpoint":
        fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
        plot_over_training(corr, quantity, ax=ax)
        figs["correlation_training"] = fig
    fig = plot_rho_heatmap(corr).figure
    figs["correlation_heatmap"] = fig
    return save_pngs(figs.items(), d, dpi=dpi)
