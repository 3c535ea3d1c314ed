"""Notebook view of a :class:`~.engine.Spectrum` (``_repr_html_``)."""
from __future__ import annotations

import math

import numpy as np

from .._html import esc, nb_table, small_png


def spectrum_html(spectrum) -> str:
    """Compact HTML of a :class:`~neuromfa_native.mfa.engine.Spectrum`: its numbers and f(alpha)."""
    s = spectrum
    r2 = s.tau_r2[np.isfinite(s.tau_r2)]
    rows = [dict(quantity=k, value=v) for k, v in (
        ("alpha0", s.alpha0), ("width", s.width), ("box centres", s.n_nodes), ("radii", int(s.radius.size)),
        ("diameter D", s.diameter), ("q", f"{s.q.min():g} .. {s.q.max():g} ({s.q.size})"),
        ("min tau r^2", float(r2.min()) if r2.size else math.nan))]
    notes = "".join(f"<li>{esc(n)}</li>" for n in s.notes)

    def draw(ax):
        ax.plot(s.alpha, s.f, "-", color="C0")
        ax.axvline(s.alpha0, color="0.5", lw=0.8, ls="--")
        ax.set_xlabel("alpha", fontsize="small")
        ax.set_ylabel("f(alpha)", fontsize="small")
    return (f"<div><b>Spectrum</b><div style=\"display:flex;align-items:flex-start\">"
            f"<div>{nb_table(rows, ['quantity', 'value'])}</div>{small_png(draw, (3.0, 2.1))}</div>"
            + (f"<ul>{notes}</ul>" if notes else "") + "</div>")
