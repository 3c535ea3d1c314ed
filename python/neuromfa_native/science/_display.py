"""Notebook view of an :class:`~.analysis.Analysis` (``_repr_html_``)."""
from __future__ import annotations

from .._html import esc, nb_table, small_png


def analysis_html(analysis) -> str:
    """Compact HTML of an :class:`~neuromfa_native.science.analysis.Analysis`: one row per sample."""
    rows = [{k: r.row()[k] for k in ("sample", "alpha0", "width", "n_centres", "network_nodes", "network_edges",
                                     "seconds")} | dict(kept=r.spectrum.passes(analysis.filter))
            for r in analysis.results]
    kept = analysis.kept
    stats = ""
    if kept:
        stats = (f": alpha0 {analysis.alpha0_mean:.4f} &plusmn; {analysis.alpha0_std:.4f}, width "
                 f"{analysis.width_mean:.4f} &plusmn; {analysis.width_std:.4f}")
    head = (f"<b>Analysis</b> of {esc(analysis.checkpoint)}: {len(analysis.results)} samples, {len(kept)} kept"
            f"{stats}")

    def draw(ax):
        for r in kept:
            ax.plot(r.spectrum.alpha, r.spectrum.f, lw=1)
        ax.set_xlabel("alpha", fontsize="small")
        ax.set_ylabel("f(alpha)", fontsize="small")
    return (f"<div>{head}<div style=\"display:flex;align-items:flex-start\">"
            f"<div>{nb_table(rows, list(rows[0]) if rows else [])}</div>"
            f"{small_png(draw) if kept else ''}</div></div>")
