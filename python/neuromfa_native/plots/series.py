"""Plots of a checkpoint series (matplotlib is imported only inside the functions that draw).

Every function takes a :class:`~neuromfa_native.run.series.Series` and ``ax=None`` (a new figure
when ``None``) and returns the axes.  The step axis is symmetric-logarithmic (linear below the
first positive step, so step 0 shows) when the positive steps span at least a decade; with a
few checkpoints the ticks sit at their steps.
"""
from __future__ import annotations

import numpy as np

from ..config import DEFAULT_CONFIG

__all__ = ["PLOTS", "plot_alpha0", "plot_emergence", "plot_node_dimensions", "plot_overview", "plot_spectra", "draw_overview",
           "plain", "plot_width", "step_axis"]

#: At most this many checkpoints get a legend in :func:`plot_spectra`; more get a colour bar.
LEGEND_MAX = 8


def plain(text) -> str:
    """``text`` from elsewhere (a checkpoint label, a task, control, statistic or layer name) as
    a figure shows it: matplotlib reads the text between two ``$`` as mathematics (``$\\x$``
    fails to draw, ``$5 and $10`` turns italic), so every ``$`` is escaped.  Every outside string
    a figure holds goes through here; the library's own labels keep their mathematics."""
    return str(text).replace("$", r"\$")


def axes_or_new(ax):
    """``ax``, or the axes of a new figure when it is None."""
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(6.4, 4.4), layout="constrained")
    return ax


def save_pngs(figures, d, *, dpi: int) -> list:
    """Write each ``(name, figure)`` (a figure, or the axes of one) as ``d/name.png``, atomically,
    and close it; ``figures`` may be a generator, so each figure is drawn only when its turn
    comes.  Returns the paths written."""
    import io
    from pathlib import Path

    import matplotlib.pyplot as plt

    from .._fs import atomic_write_bytes

    written = []
    for name, drawn in figures:
        fig = drawn if hasattr(drawn, "savefig") else drawn.figure
        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", dpi=dpi)
        finally:
            plt.close(fig)
        path = Path(d) / f"{name}.png"
        atomic_write_bytes(path, buf.getvalue())
        written.append(path)
    return written


def _log_steps(steps: np.ndarray):
    pos = steps[steps > 0]
    if pos.size >= 2 and pos.max() / pos.min() >= 10:
        return float(pos.min())
    return None


def step_axis(ax, steps) -> None:
    """Label the x axis "training step"; symlog when the steps span decades (step 0 stays)."""
    steps = np.asarray(steps, dtype=float)
    lin = _log_steps(steps)
    if lin is not None:
        ax.set_xscale("symlog", linthresh=lin, linscale=0.5)
    ax.set_xlabel("training step" + (" (symmetric log scale)" if lin is not None else ""))
    uniq = np.unique(steps)
    if lin is not None and uniq.size <= LEGEND_MAX:
        from matplotlib.ticker import FixedLocator, NullLocator
        ax.xaxis.set_major_locator(FixedLocator(uniq.tolist()))
        ax.xaxis.set_major_formatter(lambda x, _: f"{x:,.0f}")
        ax.xaxis.set_minor_locator(NullLocator())
    ax.grid(True, which="major", alpha=0.3)


def step_norm_cmap(steps: np.ndarray):
    """Colour norm (symlog when the steps span decades) and colour map of checkpoints by step."""
    import matplotlib.colors as mcolors
    import matplotlib.pyplot as plt

    lin = _log_steps(steps)
    lo, hi = float(steps.min()), float(steps.max())
    if hi == lo:
        hi = lo + 1
    norm = mcolors.SymLogNorm(linthresh=lin, linscale=0.5, vmin=lo, vmax=hi, base=10) if lin is not None \
        else mcolors.Normalize(lo, hi)
    return norm, plt.get_cmap("viridis")


def plot_spectra(series, ax=None, *, show_samples: bool = False):
    """Mean spectrum f(alpha) of every checkpoint (mean of alpha and f over the kept samples at
    each moment q), one colour per checkpoint by training step; a legend for a few checkpoints,
    a colour bar for many.  ``show_samples`` adds every sample's spectrum, thin."""
    ax = axes_or_new(ax)
    arr = series.spectra_arrays()
    steps = np.asarray(arr["step"], dtype=float)
    norm, cmap = step_norm_cmap(steps)
    many = len(steps) > LEGEND_MAX
    drawn = 0
    for t in range(len(steps)):
        keep = arr["kept"][t]
        if not keep.any():
            continue
        colour = cmap(norm(steps[t])) if many else cmap(0.9 * t / max(len(steps) - 1, 1))
        if show_samples:
            for j in np.flatnonzero(keep):
                ax.plot(arr["alpha"][t, j], arr["f"][t, j], color=colour, lw=0.5, alpha=0.35)
        a = arr["alpha"][t, keep].mean(axis=0)
        f = arr["f"][t, keep].mean(axis=0)
        c = series.checkpoints[t]
        ax.plot(a, f, color=colour, lw=1.8, label=f"step {c.step}" if c.step_parsed else plain(c.label))
        drawn += 1
    ax.set_xlabel(r"$\alpha$ (singularity exponent)")
    ax.set_ylabel(r"$f(\alpha)$")
    ax.set_title("Multifractal spectra over training")
    ax.grid(True, alpha=0.3)
    if drawn and not many:
        ax.legend(title="checkpoint", fontsize="small", title_fontsize="small", frameon=False)
    elif drawn:
        import matplotlib.cm as cm
        sm = cm.ScalarMappable(norm=norm, cmap=cmap)
        ax.figure.colorbar(sm, ax=ax, label="training step")
    if not drawn:
        ax.text(0.5, 0.5, "no results yet", transform=ax.transAxes, ha="center", va="center")
    return ax


def _measure(series, name: str, ax, ylabel: str, title: str):
    ax = axes_or_new(ax)
    arr = series.spectra_arrays()
    steps = np.asarray(arr["step"], dtype=float)
    mean = np.asarray(getattr(series, f"{name}_mean"))
    sd = np.asarray(getattr(series, f"{name}_std"))
    ok = np.isfinite(mean)
    for t in range(len(steps)):
        v = arr[name][t, arr["kept"][t]]
        ax.plot(np.full(v.size, steps[t]), v, ".", color="0.55", ms=3, alpha=0.6,
                label="samples" if t == 0 else None, zorder=1)
    ax.fill_between(steps[ok], (mean - sd)[ok], (mean + sd)[ok], color="C0", alpha=0.2, lw=0,
                    label="mean ± 1 sd", zorder=2)
    ax.plot(steps[ok], mean[ok], "o-", color="C0", ms=4, lw=1.6, label="mean over samples", zorder=3)
    step_axis(ax, steps)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", frameon=False)
    return ax


def plot_alpha0(series, ax=None):
    """alpha0 against the training step: samples (grey dots), mean and ±1 sd band."""
    return _measure(series, "alpha0", ax, r"$\alpha_0$ (lower = more regular)", r"$\alpha_0$ over training")


def plot_width(series, ax=None):
    """Spectrum width against the training step: samples (grey dots), mean and ±1 sd band."""
    return _measure(series, "width", ax, "width w (higher = more heterogeneous)", "Spectrum width over training")


def plot_emergence(series, ax=None):
    """Degree of emergence E against the training step with its bootstrap interval (band)."""
    ax = axes_or_new(ax)
    steps = series.steps.astype(float)
    e = np.asarray(series.emergence)
    lo, hi = np.asarray(series.emergence_ci).T
    ok = np.isfinite(e)
    ci = int(round(100 * series.bootstrap.get("ci", DEFAULT_CONFIG.ci)))
    ax.axhline(0, color="0.4", lw=0.8)
    band = ok & np.isfinite(lo) & np.isfinite(hi)
    ax.fill_between(steps[band], lo[band], hi[band], color="C3", alpha=0.25, lw=0,
                    label=f"{ci}% bootstrap CI")
    ax.plot(steps[ok], e[ok], "o-", color="C3", ms=4, lw=1.6, label="E (from sample means)")
    step_axis(ax, steps)
    base = series.checkpoints[series.baseline]
    ax.set_ylabel(f"degree of emergence E (baseline: {plain(base.label)})")
    ax.set_title("Emergence over training")
    ax.legend(fontsize="small", frameon=False, loc="best")
    return ax


def _layer_kind(name: str) -> str:
    """'block3.mlp_hidden' -> 'mlp_hidden': layers of the same kind pooled over blocks."""
    head, _, tail = name.partition(".")
    return tail if head.startswith("block") and tail else name


def plot_node_dimensions(series, ax=None, *, checkpoints=None):
    """Distribution of node fractal dimensions (docs/spec.md section 5) per kind of node layer, pooled over
    blocks and samples (nodes with too few distances left out), as box plots for the first and
    the last checkpoint (or the checkpoint indices given); returns the axes."""
    from matplotlib.patches import Patch

    ax = axes_or_new(ax)
    n = len(series.checkpoints)
    idx = list(checkpoints) if checkpoints is not None else sorted({0, n - 1})
    kinds: list = []
    values: dict = {}
    for i in idx:
        for r in series.results[i]:
            d = r.node_dimensions
            if d is None:
                continue
            for code, name in enumerate(d.layer_names):
                kind = _layer_kind(name)
                v = d.dimension[(d.layer == code) & (d.dimension != 0)]
                if v.size:
                    if kind not in kinds:
                        kinds.append(kind)
                    values.setdefault((i, kind), []).append(v)
    if not kinds:
        ax.text(0.5, 0.5, "no node fractal dimensions in this run", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    steps = np.array([c.step for c in series.checkpoints], dtype=float)
    norm, cmap = step_norm_cmap(steps)
    width = 0.8 / len(idx)
    handles = []
    for j, i in enumerate(idx):
        colour = cmap(norm(steps[i]))
        pos, data = [], []
        for k, kind in enumerate(kinds):
            if (i, kind) in values:
                pos.append(k - 0.4 + width * (j + 0.5))
                data.append(np.concatenate(values[(i, kind)]))
        bp = ax.boxplot(data, positions=pos, widths=width * 0.85, patch_artist=True, showfliers=False,
                        manage_ticks=False, medianprops=dict(color="black"))
        for box in bp["boxes"]:
            box.set_facecolor(colour)
            box.set_alpha(0.8)
        handles.append(Patch(facecolor=colour, alpha=0.8, label=f"step {series.checkpoints[i].step:,}"))
    ax.set_xticks(range(len(kinds)), [plain(k) for k in kinds], rotation=25, ha="right")
    ax.set_xlim(-0.6, len(kinds) - 0.4)
    ax.set_ylabel("node fractal dimension")
    ax.set_title("Node fractal dimensions per layer kind")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(handles=handles, fontsize="small", title="checkpoint", title_fontsize="small")
    return ax


def plot_overview(series):
    """A 2x2 figure: spectra, E, alpha0 and width (:func:`draw_overview`) under a title naming
    the series' size and options; returns the figure."""
    fig = draw_overview(series)
    k = len(series.samples) if series.config.get("per_layer") is not None else 1
    fig.suptitle(f"NeuroMFA over training: {len(series.checkpoints)} checkpoints x {k} samples "
                 f"({series.config.get('box')} boxes, S={series.config.get('per_layer')}, "
                 f"T={series.config.get('threshold'):g})", fontsize="medium")
    return fig


#: The plots of a report, ``name -> function(series)``: ``write_report`` writes
#: ``plots/<name>.png`` of each, in this order.  A function returns its axes (a new figure of
#: its own) or a figure.  A new plot is one function and one row here.
PLOTS = {
    "spectra": plot_spectra,
    "alpha0": plot_alpha0,
    "width": plot_width,
    "emergence": plot_emergence,
    "node_dimensions": plot_node_dimensions,
    "overview": plot_overview,
}


def draw_overview(series, fig=None):
    """The overview (spectra, E, alpha0, width) drawn on ``fig`` (a new figure when None);
    returns the figure.  ``Series.plot`` draws this."""
    if fig is None:
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=(11, 8), layout="constrained")
    for ax, plot in zip(fig.subplots(2, 2).flat, (plot_spectra, plot_emergence, plot_alpha0, plot_width)):
        plot(series, ax=ax)
    return fig
