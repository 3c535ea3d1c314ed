"""Plots of the controls (SPEC 9) and rival statistics (SPEC 10) of a series (matplotlib;
imported only when plotting).  Functions take a :class:`~neuromfa_native.run.series.Series` and
``ax=None`` / return the axes (or the figure, for the small multiples)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..science.by_layer import group_emergence
from ..science.controls import stats_summary
from .series import axes_or_new, plain, save_pngs, step_axis


__all__ = ["control_curves", "plot_by_layer", "plot_contrast", "plot_control_emergence", "plot_statistics",
           "write_control_plots"]


def _number(x) -> float:
    """A table cell as a float (NaN for an empty or non-numeric cell)."""
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def control_curves(data) -> dict:
    """``{control: (steps, E, E_lo, E_hi)}`` (float arrays by step) of a series with controls or
    of the rows of its ``controls.csv`` (cells may be strings); the real network is ``"none"``."""
    rows = data.control_rows() if hasattr(data, "control_rows") else list(data)
    out = {}
    for c in dict.fromkeys(str(r["control"]) for r in rows):
        rr = sorted((r for r in rows if str(r["control"]) == c), key=lambda r: _number(r["step"]))
        out[c] = tuple(np.array([_number(r[k]) for r in rr]) for k in ("step", "E", "E_lo", "E_hi"))
    return out


def plot_control_emergence(data, ax=None):
    """E over training for the real network (red, control ``none``) and each null network, with
    the bootstrap intervals; ``data`` is a series with controls or the rows of its
    ``controls.csv`` (what ``report.html`` reads)."""
    ax = axes_or_new(ax)
    curves = control_curves(data)
    step_axis(ax, [x for st, *_ in curves.values() for x in st])  # before plotting: axhline would freeze linear limits
    for i, (c, (st, e, lo, hi)) in enumerate(curves.items()):
        real = c == "none"
        colour = "C3" if real else f"C{i % 10 if i % 10 != 3 else 9}"
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(st[ok], lo[ok], hi[ok], color=colour, alpha=0.18, lw=0)
        ax.plot(st, e, "o-" if real else "s--", color=colour, ms=3.5, lw=2.2 if real else 1.3,
                label="real network" if real else f"control: {plain(c)}")
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_ylabel("degree of emergence E")
    ax.legend(fontsize="small", frameon=False)
    ax.set_title("E of the real network and of each control")
    return ax


def plot_contrast(rows: list, axes=None):
    """One checkpoint: alpha0 and width of the real network and of each control with their
    intervals (rows of :func:`~neuromfa_native.checkpoint_contrast`); returns the two axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    names = [r["network"] for r in rows]
    x = np.arange(len(rows))
    for ax, key in zip(axes, ("alpha0", "width")):
        v = np.array([r[key] for r in rows], float)
        err = np.abs(np.array([[r[key] - r[f"{key}_lo"], r[f"{key}_hi"] - r[key]] for r in rows], float).T)
        ax.errorbar(x, v, yerr=np.where(np.isfinite(err), err, 0), fmt="o", capsize=4, color="k")
        ax.scatter(x[:1], v[:1], color="C3", zorder=3, s=40)
        ax.set_xticks(x, [plain(n) for n in names])
        ax.set_ylabel(key)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].set_title("alpha0: real network (red) and controls", fontsize="medium")
    axes[1].set_title("width", fontsize="medium")
    return axes


def plot_statistics(series, fig=None):
    """Small multiples: each pooled rival statistic over training."""
    import matplotlib.pyplot as plt

    tensors, statistics, vals = stats_summary(series)
    n = len(statistics)
    cols = 4
    rows = max(1, -(-n // cols))
    if fig is None:
        fig = plt.figure(figsize=(3.2 * cols, 2.6 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    steps = series.steps.astype(float)
    for j, s in enumerate(statistics):
        ax = axes[j]
        ax.plot(steps, vals[:, -1, j], marker="o", ms=3)
        step_axis(ax, steps)
        ax.set_xlabel("")
        ax.set_title(plain(s), fontsize=10)
        ax.tick_params(axis="x", labelrotation=45, labelsize="small")  # 1,000 and 2,000 sit close
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle("rival statistics of the read weights (pooled over tensors)")
    return fig


#: the figures :func:`write_control_plots` may write (``<name>.png``)
CONTROL_PLOTS = ("controls", "statistics", "by_layer")


def write_control_plots(series, d: Path, *, dpi: int = 120) -> list:
    """``controls.png`` and ``statistics.png`` into ``d`` when the series has them."""
    import matplotlib.pyplot as plt

    figs = []
    if series.config.get("controls") and len(series.checkpoints) < 2:  # one checkpoint: no E to draw
        rows = series.verdict().contrast  # the series' own method: plots import no result type
        if rows:
            figs.append(("controls", plot_contrast(list(rows))[0].figure))
    elif series.config.get("controls"):
        fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
        plot_control_emergence(series, ax=ax)
        figs.append(("controls", fig))
    if series.stats_rows():
        figs.append(("statistics", plot_statistics(series)))
    if series.config.get("by_layer"):
        fig = plot_by_layer(series)
        if fig is not None:
            figs.append(("by_layer", fig))
    return save_pngs(figs, d, dpi=dpi)


def plot_by_layer(series, fig=None):
    """E by block (rows) and node-layer kind (columns), one panel per checkpoint (SPEC 11);
    None when the series has no per-block groups."""
    import matplotlib.pyplot as plt

    groups, e = group_emergence(series)
    cells = [(g.split(".")[0], g.split(".", 1)[1], j) for j, g in enumerate(groups)
             if g.startswith("block") and "." in g]
    if not cells:
        return None
    blocks = sorted({c[0] for c in cells}, key=lambda s: int(s[5:]))
    kinds = list(dict.fromkeys(c[1] for c in cells))
    n = len(series.checkpoints)
    cols = min(n, 4)
    rows = -(-n // cols)
    if fig is None:
        fig = plt.figure(figsize=(3.4 * cols, 0.5 * len(blocks) * rows + 1.8 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    grid = np.full((n, len(blocks), len(kinds)), np.nan)
    for blk, kind, j in cells:
        grid[:, blocks.index(blk), kinds.index(kind)] = e[:, j]
    finite = grid[np.isfinite(grid)]
    vmax = float(np.abs(finite).max()) if finite.size else 1.0
    im = None
    for t, ax in enumerate(axes):
        if t >= n:
            ax.set_visible(False)
            continue
        im = ax.imshow(grid[t], cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(kinds)), [plain(k) for k in kinds], rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(blocks)), [plain(b) for b in blocks], fontsize=7)
        ax.set_title(plain(series.checkpoints[t].label), fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=list(axes[:n]), label="E of the node layer (blank: no centres)")
    return fig
