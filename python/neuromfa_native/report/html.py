"""``report.html``: one self-contained page per run directory, built from its stored results.

The page is assembled from a registry of sections (:data:`SECTIONS`): each has a name, a
title, a predicate saying whether the run directory holds its data, and a render function
returning HTML.  A section whose data are absent is left out, so the page of a plain run shows
the overview, and the page of a run that also wrote ``controls.csv``, ``stats.csv``,
``by_layer.csv`` or ``correlations.csv`` shows those too.  Everything is read from the
directory (``run.json``, the stored results through :func:`~neuromfa_native.run.store.load_run`,
the CSV tables): no checkpoint file is needed, and a partial run gives a page of what it has,
marked partial.

The page makes no request to any server: plots are embedded as base64 PNG, the CSS and the
few lines of script that sort tables are inline, and a Content-Security-Policy forbids any
other source.  The page itself (CSS, script, policy, figures) is :mod:`.page`, shared with
:mod:`neuromfa_native.report.compare`; the notebook views (``_repr_html_``) use
:mod:`neuromfa_native._html` directly.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .._fs import atomic_write_text
from .._html import esc
from . import science_sections, sections
from .header import banner, header, key_numbers
from .page import page
from .run_data import RunData

__all__ = ["RunData", "SECTIONS", "Section", "register_section", "render_report", "write_html_report"]

REPORT_NAME = "report.html"


@dataclass(frozen=True)
class Section:
    """One part of the page: shown when ``present(run)`` is true, as ``render(run)``."""

    name: str
    title: str
    present: Callable[[RunData], bool]
    render: Callable[[RunData], str]


#: The sections of ``report.html``, in page order.
SECTIONS: list = [
    Section("overview", "Overview", lambda r: r.has_results, sections.render_overview),
    Section("checkpoints", "Per checkpoint", lambda r: r.series is not None, sections.render_checkpoints),
    Section("controls", "Controls: what each keeps and removes", lambda r: r.has_table("controls"),
            science_sections.render_controls),
    Section("stats", "Rival statistics", lambda r: r.has_table("stats"), science_sections.render_stats),
    Section("correlation", "Correlation with benchmark scores", lambda r: r.has_table("correlations"),
            science_sections.render_correlation),
    Section("by_layer", "Where the change happens: by layer", lambda r: r.has_table("by_layer"),
            science_sections.render_by_layer),
    Section("node_dimensions", "Node fractal dimensions", sections.has_node_dimensions,
            sections.render_node_dimensions),
    Section("noticed", "What the run noticed", lambda r: bool(sections.noticed(r)), sections.render_noticed),
    Section("cost", "Time and bytes read per checkpoint", lambda r: r.has_results, sections.render_cost),
]


def register_section(name: str, title: str, present: Callable[[RunData], bool], *,
                     before: Optional[str] = None):
    """Decorator adding a render function to :data:`SECTIONS` (replacing one of the same name)."""
    def deco(render):
        sec = Section(name, title, present, render)
        old = [i for i, s in enumerate(SECTIONS) if s.name == name]
        if old:
            SECTIONS[old[0]] = sec
        elif before is not None and any(s.name == before for s in SECTIONS):
            SECTIONS.insert([s.name for s in SECTIONS].index(before), sec)
        else:
            SECTIONS.append(sec)
        return render
    return deco


def render_report(run_dir: os.PathLike, *, sections: Optional[list] = None, reuse_plots: bool = False) -> str:
    """The HTML of the report of a run directory: every present section, or only the named
    ``sections`` (the header, status banner and key numbers are always there).  ``reuse_plots``
    embeds ``plots/overview.png`` and ``plots/node_dimensions.png`` when they are newer than
    every result (the CLI, which has just written them) instead of drawing them again."""
    run = RunData(run_dir)
    run.reuse_plots = reuse_plots
    if sections is not None:
        unknown = sorted(set(sections) - {s.name for s in SECTIONS})
        if unknown:
            raise ValueError(f"unknown report section(s) {', '.join(unknown)}; known: "
                             f"{', '.join(s.name for s in SECTIONS)}")
    chosen = [s for s in SECTIONS if sections is None or s.name in sections]
    sections = []
    for sec in chosen:
        try:
            if not sec.present(run):
                continue
            body = sec.render(run)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            body = f'<p class="banner failed">This section could not be drawn: {esc(exc)}</p>'
        sections.append((sec, body))
    nav = "".join(f'<a href="#{esc(sec.name)}">{esc(sec.title)}</a>' for sec, _ in sections)
    title = f"NeuroMFA report: {run.name}"
    body = (f'<header id="header"><h1>{esc(title)}' + (" (partial)" if run.partial else "") + "</h1>"
            + banner(run) + key_numbers(run) + header(run) + f"<nav>{nav}</nav></header>")
    parts = [body]
    for sec, html_ in sections:
        parts.append(f'<section id="{esc(sec.name)}"><h2>{esc(sec.title)}</h2>{html_}</section>')
    parts.append(f'<p class="note">Written {esc(_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))} '
                 f"from the stored results in {esc(run.path.name)}/ by neuromfa report.</p>")
    return page(title + (" (partial)" if run.partial else ""), "\n".join(parts))


def write_html_report(run_dir: os.PathLike, out: Optional[os.PathLike] = None, *, reuse_plots: bool = False) -> Path:
    """Write ``report.html`` (default ``RUN_DIR/report.html``) atomically; returns its path.
    ``reuse_plots``: see :func:`render_report`."""
    out = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    atomic_write_text(out, render_report(run_dir, reuse_plots=reuse_plots))
    return out
