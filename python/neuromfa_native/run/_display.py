"""Notebook view of a :class:`~.series.Series` (``_repr_html_``)."""
from __future__ import annotations

import numpy as np

from .._html import esc, nb_table, small_png


def _g(v) -> object:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else v


def series_html(series) -> str:
    """Compact HTML of a :class:`~neuromfa_native.run.series.Series`: one row per checkpoint and a
    small E plot."""
    rows = [{k: r[k] for k in ("step", "checkpoint", "n_kept", "alpha0_mean", "width_mean", "emergence",
                               "emergence_low", "emergence_high")} for r in series.checkpoint_rows()]
    k = len(series.samples) if series.config.get("per_layer") is not None else 1
    cfg = series.config
    head = (f"<b>Series</b>: {len(series.checkpoints)} checkpoints x {k} samples, {esc(cfg.get('box'))} boxes, "
            f"S={esc(cfg.get('per_layer'))}, T={esc(_g(cfg.get('threshold')))}, baseline "
            f"{esc(series.checkpoints[series.baseline].label)}"
            + ("" if series.complete else f" &mdash; <b>partial</b>: {len(series.missing)} result(s) missing"))

    def draw(ax):
        st = series.steps.astype(float)
        e = np.asarray(series.emergence)
        lo, hi = np.asarray(series.emergence_ci).T
        ok = np.isfinite(e) & np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(st[ok], lo[ok], hi[ok], color="C3", alpha=0.25, lw=0)
        ax.plot(st[np.isfinite(e)], e[np.isfinite(e)], "o-", color="C3", ms=3)
        if (st > 0).sum() >= 2 and st[st > 0].max() / st[st > 0].min() >= 10:
            ax.set_xscale("symlog", linthresh=float(st[st > 0].min()))
        ax.set_xlabel("step", fontsize="small")
        ax.set_ylabel("E", fontsize="small")
    return (f"<div>{head}<div style=\"display:flex;align-items:flex-start\">"
            f"<div>{nb_table(rows, list(rows[0]) if rows else [])}</div>{small_png(draw)}</div></div>")
