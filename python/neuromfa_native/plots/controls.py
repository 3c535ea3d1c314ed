"""Plots of the controls (SPEC 9) and rival statistics (SPEC 10) of a series (matplotlib;
imported only when plotting).  Functions take a :class:`~neuromfa_native.run.series.Series` and
``ax=None`` / return the axes (or the figure, for the small multiples)."""
from __future__ import annotations

from pathlib import Path

from .series import save_pngs, step_axis


def _axes(ax):
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    return ax

__all__ = ["plot_control_emergence", "plot_statistics", "write_control_plots"]


def plot_control_emergence(series, ax=None):
    """E over training for the real network and each control, with the bootstrap intervals."""
    from ..science.controls import control_summary

    ax = _axes(ax)
    steps = series.steps.astype(float)
    step_axis(ax, steps)  # before plotting: axhline would freeze the linear limits (step 0 far from the edge)
    for c, d in control_summary(series).items():
        label = "real network" if c == "none" else c
        ax.plot(steps, d["E"], marker="o", ms=3, label=label, lw=2 if c == "none" else 1.2)
        ax.fill_between(steps, d["E_lo"], d["E_hi"], alpha=0.2)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_ylabel("degree of emergence E")
    ax.set_title("E of the real network and of the null networks")
    ax.legend(fontsize=8)
    return ax


def plot_statistics(series, fig=None):
    """Small multiples: each pooled rival statistic over training."""
    import matplotlib.pyplot as plt

    from ..science.controls import stats_summary

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
        ax.set_title(s, fontsize=10)
        ax.tick_params(axis="x", labelrotation=45, labelsize="small")  # 1,000 and 2,000 sit close
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle("rival statistics of the read weights (pooled over tensors)")
    return fig


def write_control_plots(series, d: Path, *, dpi: int = 120) -> list:
    """``controls.png`` and ``statistics.png`` into ``d`` when the series has them."""
    import matplotlib.pyplot as plt

    figs = []
    if series.config.get("controls"):
        fig, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
        plot_control_emergence(series, ax=ax)
        figs.append(("controls", fig))
    if series.stats_rows():
        figs.append(("statistics", plot_statistics(series)))
    if series.config.get("by_layer"):
        from ..science.by_layer import plot_heatmap
        fig = plot_heatmap(series)
        if fig is not None:
            figs.append(("by_layer", fig))
    return save_pngs(figs, d, dpi=dpi)
