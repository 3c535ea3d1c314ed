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
other source.  It also serves the notebook helpers (``_repr_html_``) and
:mod:`neuromfa_native.report.compare`.
"""
from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import math
import os
import platform
import shlex
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

__all__ = ["RunData", "SECTIONS", "Section", "register_section", "render_report", "write_html_report"]

REPORT_NAME = "report.html"

# ---------------------------------------------------------------------------------------------
# page building blocks (shared with compare.py and the notebook helpers)

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "base-uri 'none'; form-action 'none'")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;background:#fff}
main{max-width:1180px;margin:0 auto;padding:12px 20px 40px}
h1{font-size:21px;margin:6px 0 4px}h2{font-size:17px;margin:26px 0 6px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:14px;margin:14px 0 4px}
.banner{padding:8px 12px;border-radius:4px;margin:8px 0;font-weight:600}
.partial{background:#fff3cd;border:1px solid #e0b100}.failed{background:#f8d7da;border:1px solid #c0392b}
.ok{background:#e8f5e9;border:1px solid #7cb342}
.key{font-size:15px;margin:6px 0}.key b{font-size:17px}.key2{font-size:14px;margin:4px 0}
dl.meta{display:grid;grid-template-columns:repeat(3,max-content minmax(0,1fr));gap:1px 14px;margin:6px 0;font-size:13px}
@media (max-width:1000px){dl.meta{grid-template-columns:max-content 1fr max-content 1fr}}
dl.meta dt{color:#555}dl.meta dd{margin:0;overflow-wrap:anywhere}
pre.cmd{background:#f4f4f4;padding:6px 8px;border-radius:4px;white-space:pre-wrap;font-size:12px;margin:4px 0}
figure{margin:8px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figure.svg svg{margin-right:24px}
figcaption{font-size:13px;color:#333;max-width:900px}
.figrow{display:flex;flex-wrap:wrap;gap:6px 28px;align-items:flex-start}
.figrow figure{display:table;margin:8px 0}.figrow figcaption{display:table-caption;caption-side:bottom}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0}
th,td{padding:2px 8px;border-bottom:1px solid #e5e5e5;text-align:right;white-space:nowrap}
th{background:#f2f2f2;position:sticky;top:0}td.t,th.t{text-align:left}
table.sortable th{cursor:pointer;user-select:none}
th[aria-sort=ascending]:after{content:" \\25B2"}th[aria-sort=descending]:after{content:" \\25BC"}
.scroll{max-height:min(70vh,640px);overflow:auto;max-width:100%;border-bottom:1px solid #ddd}.scroll table{margin:0}
.note{color:#555;font-size:13px}ul.issues li{margin:2px 0}
nav{font-size:13px;margin:4px 0 0}nav a{margin-right:10px}
"""

SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th){
 th.addEventListener('click',function(){
  var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
  var asc=th.getAttribute('aria-sort')!=='ascending';
  t.querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort');});
  th.setAttribute('aria-sort',asc?'ascending':'descending');
  function key(r){var c=r.cells[i];return c?(c.hasAttribute('data-v')?c.getAttribute('data-v'):c.textContent):'';}
  var rows=Array.prototype.slice.call(b.rows);
  rows.sort(function(x,y){var a=key(x),c=key(y),na=parseFloat(a),nc=parseFloat(c),r;
   if(!isNaN(na)&&!isNaN(nc)&&isFinite(a)&&isFinite(c)){r=na-nc;}else{r=a.localeCompare(c);}
   return asc?r:-r;});
  rows.forEach(function(r){b.appendChild(r);});
 });
});
"""


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def page(title: str, body: str) -> str:
    """A complete self-contained HTML document."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>\n{body}\n</main>"
            f"<script>{SORT_JS}</script></body></html>\n")


def fig_img(fig, *, alt: str, dpi: int = 90) -> str:
    """``<img>`` holding the figure as a base64 PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def figure(fig, caption: str, *, alt: Optional[str] = None, dpi: int = 90) -> str:
    """A ``<figure>`` with the plot and a caption saying what to see in it."""
    img = fig_img(fig, alt=alt or caption.split(".")[0], dpi=dpi)
    return f"<figure>{img}<figcaption>{caption}</figcaption></figure>"


def fmt(v: Any, nd: int = 4) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else ""
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if abs(int(v)) >= 10000 else str(int(v))
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if not math.isfinite(x):
            return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 10.0 ** -nd):
            return f"{x:.{nd - 1}e}"
        return f"{x:.{nd}f}"
    return str(v)


#: Tables with more rows than this scroll in a box of the page's width (their header stays in
#: view); shorter ones are shown whole.
SCROLL_ROWS = 40


def table(rows: list, columns: Optional[list] = None, *, caption: str = "", sortable: bool = True,
          table_id: Optional[str] = None, nd: int = 4, scroll: bool = True,
          headers: Optional[dict] = None) -> str:
    """An HTML table of plain dict rows; numeric cells carry ``data-v`` for sorting.
    ``headers`` maps a column to the name shown in its header (default: the column itself);
    with ``scroll``, a table of more than :data:`SCROLL_ROWS` rows scrolls in its own box."""
    if columns is None:
        columns = list(rows[0]) if rows else []
    headers = headers or {}
    numeric = {c: all(isinstance(r.get(c), (int, float, np.integer, np.floating)) and not isinstance(r.get(c), bool)
                      for r in rows if r.get(c) not in (None, "")) for c in columns}
    head = "".join(f'<th class="{"" if numeric[c] else "t"}">{esc(headers.get(c, c))}</th>' for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if numeric[c] and v not in (None, ""):
                fv = float(v)
                dv = repr(fv) if math.isfinite(fv) else ""
                cells.append(f'<td data-v="{dv}">{esc(fmt(v, nd))}</td>')
            else:
                cells.append(f'<td class="t">{esc(fmt(v, nd))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    tid = f' id="{esc(table_id)}"' if table_id else ""
    cls = ' class="sortable"' if sortable else ""
    boxed = scroll and len(rows) > SCROLL_ROWS
    cap = (f'<caption class="note" style="caption-side:bottom;text-align:left">{caption}</caption>'
           if caption and not boxed else "")
    t = f"<table{tid}{cls}>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    if not boxed:
        return t
    return (f'<div class="scroll">{t}</div><p class="note" style="margin:2px 0 6px">{len(rows)} rows (scroll the '
            f"box). {caption}</p>")


def _num(s: str) -> Any:
    if s == "":
        return None
    low = s.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def read_csv(path: os.PathLike) -> list:
    """Rows of a CSV file as dicts, numbers converted (empty cells -> None)."""
    with open(path, newline="") as fh:
        return [{k: _num(v) for k, v in r.items()} for r in csv.DictReader(fh)]


def require_columns(rows: list, columns: tuple, name: str) -> None:
    have = set(rows[0]) if rows else set()
    missing = [c for c in columns if c not in have]
    if rows and missing:
        raise ValueError(f"{name} lacks the column(s) {', '.join(missing)}")


# ---------------------------------------------------------------------------------------------
# the run directory


class RunData:
    """What a run directory holds, read lazily: ``run.json``, the series, the CSV tables."""

    def __init__(self, path: os.PathLike):
        self.path = Path(path)
        if not (self.path / "run.json").is_file():
            raise ValueError(f"{str(self.path)!r} is not a neuromfa run directory (no run.json)")
        try:
            self.info = json.loads((self.path / "run.json").read_text())
        except ValueError as exc:
            raise ValueError(f"{str(self.path / 'run.json')!r} is unreadable: {exc}") from None
        self.problems: list = []  # tables that could not be shown, with the reason
        self.reuse_plots = False  # embed plots/<name>.png just written by write_report instead of redrawing

    def fresh_plot(self, name: str) -> Optional[Path]:
        """``plots/<name>.png`` when reusing plots is on and it is newer than every result."""
        p = self.path / "plots" / f"{name}.png"
        if not self.reuse_plots or not p.is_file():
            return None
        res = self.path / "results"
        newest = max((q.stat().st_mtime for q in res.glob("*/*.npz")), default=0.0) if res.is_dir() else 0.0
        return p if p.stat().st_mtime >= newest else None

    @cached_property
    def series(self):
        """The :class:`~neuromfa_native.run.series.Series` of the stored results (None before the
        first checkpoint is recorded)."""
        from ..run.store import load_run
        if not self.info.get("series"):
            return None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            s = load_run(self.path)
        self.load_warnings = [str(w.message) for w in caught]
        return s

    @property
    def status(self) -> str:
        return str(self.info.get("status", "unknown"))

    @property
    def partial(self) -> bool:
        s = self.series
        return self.status != "complete" or s is None or not s.complete

    @property
    def has_results(self) -> bool:
        s = self.series
        return s is not None and any(len(r) for r in s.results)

    def has_table(self, name: str) -> bool:
        return (self.path / f"{name}.csv").is_file()

    def table(self, name: str) -> list:
        """Rows of ``RUN_DIR/<name>.csv`` (an empty list when absent or unreadable)."""
        cache = self.__dict__.setdefault("_tables", {})
        if name not in cache:
            p = self.path / f"{name}.csv"
            try:
                cache[name] = read_csv(p) if p.is_file() else []
            except (OSError, ValueError, csv.Error) as exc:
                self.problems.append(f"{name}.csv could not be read: {exc}")
                cache[name] = []
        return cache[name]

    @property
    def name(self) -> str:
        s = self.info.get("series") or []
        if s:
            src = str(s[0].get("source", ""))
            parts = [p for p in src.replace("\\", "/").split("/") if p]
            if "@" in src or len(parts) == 2 and not Path(src).exists():
                return src.split("@")[0]
            if len(parts) >= 2:
                return parts[-2]
        return self.path.name


# ---------------------------------------------------------------------------------------------
# sections


@dataclass(frozen=True)
class Section:
    """One part of the page: shown when ``present(run)`` is true, as ``render(run)``."""

    name: str
    title: str
    present: Callable[[RunData], bool]
    render: Callable[[RunData], str]


#: The sections of ``report.html``, in page order.
SECTIONS: list = []


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


class Figures:
    """``subplots`` like pyplot's, on a bare :class:`matplotlib.figure.Figure`: the page's plots
    never touch pyplot's figure registry or the caller's backend (a notebook keeps its own)."""

    @staticmethod
    def subplots(nrows=1, ncols=1, *, figsize, layout=None, squeeze=True):
        from matplotlib.figure import Figure
        fig = Figure(figsize=figsize, layout=layout)
        return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def _step_axis(ax, steps):
    from ..plots.series import step_axis
    step_axis(ax, steps)


# -- overview ----------------------------------------------------------------------------------

@register_section("overview", "Overview", lambda r: r.has_results)
def _overview(run: RunData) -> str:
    s = run.series
    ci = int(round(100 * s.bootstrap.get("ci", 0.95)))
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
        return _png_file(png, caption, alt=alt)
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


@register_section("checkpoints", "Per checkpoint", lambda r: r.series is not None)
def _checkpoints(run: RunData) -> str:
    s = run.series
    rows = []
    for r in s.checkpoint_rows():
        rows.append({k: r[k] for k in ("step", "checkpoint", "n_samples", "n_kept", "alpha0_mean", "alpha0_std",
                                       "width_mean", "width_std", "emergence", "emergence_low", "emergence_high")}
                    | dict(note=", ".join(x for x in ("baseline" if r["is_baseline"] else "",
                                                      f"identical to {r['identical_to']}" if r["identical_to"]
                                                      else "") if x)))
    ci = int(round(100 * s.bootstrap.get("ci", 0.95)))
    return table(rows, caption=f"One row per checkpoint: means and sample standard deviations (sd) over the kept "
                               f"samples, E with its {ci}% bootstrap interval E_lo .. E_hi "
                               f"({s.bootstrap.get('n_bootstrap')} replicates). Click a column to sort. "
                               "checkpoints.csv names these columns " + ", ".join(CHECKPOINT_HEADERS) + ".",
                 table_id="checkpoints-table", headers=CHECKPOINT_HEADERS)


# -- controls and rival statistics (issue 11) ----------------------------------------------------

CONTROL_COLUMNS = ("step", "checkpoint", "control", "n", "alpha0_mean", "alpha0_sd", "width_mean", "width_sd",
                   "E", "E_lo", "E_hi")
STATS_COLUMNS = ("step", "checkpoint", "tensor", "statistic", "value")
BY_LAYER_COLUMNS = ("step", "checkpoint", "sample", "group", "alpha0", "width", "n_centres")
CORRELATION_COLUMNS = ("quantity", "task", "metric", "n", "spearman", "spearman_lo", "spearman_hi", "p_spearman",
                       "kendall", "pearson")


def _fl(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


@register_section("controls", "Controls: null networks", lambda r: r.has_table("controls"))
def _controls(run: RunData) -> str:
    rows = run.table("controls")
    require_columns(rows, CONTROL_COLUMNS, "controls.csv")
    fig, ax = Figures.subplots(figsize=(12, 4.6), layout="constrained")
    _step_axis(ax, [_fl(r["step"]) for r in rows])  # before plotting: axhline would freeze linear limits
    controls = list(dict.fromkeys(r["control"] for r in rows))
    for i, c in enumerate(controls):
        rr = sorted((r for r in rows if r["control"] == c), key=lambda r: _fl(r["step"]))
        st = np.array([_fl(r["step"]) for r in rr])
        e, lo, hi = (np.array([_fl(r[k]) for r in rr]) for k in ("E", "E_lo", "E_hi"))
        real = str(c) == "none"
        colour = "C3" if real else f"C{i % 10 if i % 10 != 3 else 9}"
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(st[ok], lo[ok], hi[ok], color=colour, alpha=0.18, lw=0)
        ax.plot(st, e, "o-" if real else "s--", color=colour, ms=3.5, lw=2.2 if real else 1.3,
                label="real network" if real else f"control: {c}")
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_ylabel("degree of emergence E")
    ax.legend(fontsize="small", frameon=False)
    ax.set_title("E of the real network and of each null network")
    cap = ("E over training for the real network (red, control <i>none</i>) and each null network, with intervals. "
           "Where a control follows the real curve, E there is explained by what that control keeps (the weight "
           "scale for <i>scaled</i>/<i>gaussian</i>, the weight distribution for <i>shuffle</i>); the gap is what "
           "the arrangement of the weights adds.")
    out = figure(fig, cap, alt="E of real and null networks over training")
    shares = control_shares(rows)
    if shares:
        out += f"<p>{shares}.</p>"
    out += table(rows, list(CONTROL_COLUMNS) + [c for c in rows[0] if c not in CONTROL_COLUMNS],
                 caption="controls.csv: one row per (checkpoint, control); control <i>none</i> is the real network; "
                         "n_kept (controls.csv: n) is the number of samples kept.",
                 table_id="controls-table", headers={"n": "n_kept"})
    return out


def control_shares(rows: list) -> str:
    """"At the last step (S) the real network has E = x; <control> reproduces p%, ..." from
    controls.csv rows (empty when E of the real network is not finite and non-zero there)."""
    last = max(_fl(r["step"]) for r in rows)
    final = {r["control"]: _fl(r["E"]) for r in rows if _fl(r["step"]) == last}
    if "none" not in final or not np.isfinite(final["none"]) or final["none"] == 0:
        return ""
    parts = [f"<i>{esc(c)}</i> reproduces {100 * v / final['none']:.0f}%" for c, v in final.items()
             if c != "none" and np.isfinite(v)]
    if not parts:
        return ""
    return (f"At the last step ({fmt(int(last))}) the real network has E = {final['none']:.3f}; " + ", ".join(parts)
            + " of it")


def correlation_headline(rows: list, quantity: str = "E") -> str:
    """E's strongest correlation with a score, and how many other quantities correlate at least
    as strongly with that score (a rival that does is a simpler explanation)."""
    mine = [r for r in rows if str(r.get("quantity")) == quantity and np.isfinite(_fl(r.get("spearman")))]
    if not mine:
        return ""
    best = max(mine, key=lambda r: abs(_fl(r["spearman"])))
    rho = _fl(best["spearman"])
    same = [r for r in rows if (r.get("task"), r.get("metric")) == (best["task"], best["metric"])
            and str(r.get("quantity")) != quantity and abs(_fl(r.get("spearman"))) >= abs(rho) - 1e-12]
    lo, hi = _fl(best.get("spearman_lo")), _fl(best.get("spearman_hi"))
    iv = f" [{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
    txt = (f"Spearman rho of {esc(quantity)} with {esc(best['task'])} {esc(best['metric'])}: <b>{rho:+.2f}</b>{iv} "
           f"over {esc(best['n'])} checkpoints")
    if same:
        names = ", ".join(esc(r["quantity"]) for r in same[:6]) + (" ..." if len(same) > 6 else "")
        txt += f"; {len(same)} other quantit{'y' if len(same) == 1 else 'ies'} correlate at least as strongly ({names})"
    return txt


@register_section("stats", "Rival statistics", lambda r: r.has_table("stats"))
def _stats(run: RunData) -> str:
    rows = run.table("stats")
    require_columns(rows, STATS_COLUMNS, "stats.csv")
    pooled = [r for r in rows if str(r["tensor"]) == "all"] or rows
    names = list(dict.fromkeys(r["statistic"] for r in pooled))
    steps = sorted({_fl(r["step"]) for r in pooled})
    ncol = min(4, len(names))
    nrow = -(-len(names) // ncol)
    fig, axs = Figures.subplots(nrow, ncol, figsize=(2.9 * ncol, 2.4 * nrow + 0.4), squeeze=False)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.86, wspace=0.35, hspace=0.7)  # fast, not constrained
    for ax, n in zip(axs.flat, names):
        rr = sorted((_fl(r["step"]), _fl(r["value"])) for r in pooled if r["statistic"] == n)
        ax.plot([a for a, _ in rr], [b for _, b in rr], "o-", ms=3, color="C0")
        _step_axis(ax, steps)
        ax.set_xlabel("")
        ax.set_title(str(n), fontsize="medium")
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
    out += table(sorted(wide.values(), key=lambda r: _fl(r["step"])), ["step", "checkpoint"] + [str(n) for n in names],
                 caption="Pooled statistics per checkpoint (stats.csv, tensor = all); per-tensor values are in "
                         "stats.csv.", table_id="stats-table")
    return out


# -- correlation (issue 10) -------------------------------------------------------------------

def _plots_matching(run: RunData, words: tuple) -> list:
    d = run.path / "plots"
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("*.png") if any(w in p.stem.lower() for w in words))


def _png_file(p: Path, caption: str, alt: Optional[str] = None) -> str:
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{esc(alt or p.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>")


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


@register_section("correlation", "Correlation with benchmark scores", lambda r: r.has_table("correlations"))
def _correlation(run: RunData) -> str:
    rows = run.table("correlations")
    require_columns(rows, CORRELATION_COLUMNS, "correlations.csv")
    rows = sorted(rows, key=lambda r: -abs(_fl(r["spearman"])) if np.isfinite(_fl(r["spearman"])) else 0)
    stored = {p.stem: p for p in _plots_matching(run, ("correl", "score", "eval"))}
    figs = []
    for name, (alt, caption) in CORRELATE_PLOTS.items():
        if name in stored:
            figs.append(_png_file(stored.pop(name), caption, alt=alt))
        elif name == "correlation_heatmap":
            figs.append(_rho_heatmap(rows, alt, caption))
    figs += [_png_file(p, f"Written by <code>neuromfa correlate</code> (plots/{esc(p.name)}).") for p in stored.values()]
    # the heat map and the scatter side by side (each is narrow with a few scores), the rest below
    out = f'<div class="figrow">{"".join(figs[:2])}</div>' + "".join(figs[2:])
    cols = list(CORRELATION_COLUMNS) + [c for c in rows[0] if c not in CORRELATION_COLUMNS
                                        and any(_shown(r.get(c)) for r in rows)]
    out += table(rows, cols, nd=3, caption="correlations.csv, sorted by |rho|: n matched checkpoints, Spearman rho "
                                           "with its bootstrap interval and p-value, Kendall tau-b, Pearson r.",
                 table_id="correlation-table")
    return out


def _shown(v: Any) -> bool:
    """Whether a cell has something to show (not empty, not NaN)."""
    return v not in (None, "") and not (isinstance(v, float) and math.isnan(v))


def _rho_heatmap(rows: list, alt: str, caption: str) -> str:
    """The heat map of rho drawn from correlations.csv (when correlate wrote no plot)."""
    def label(r):
        return f"{r['task']}" + (f" ({r['metric']})" if r.get("metric") not in (None, "acc") else "")
    quantities = list(dict.fromkeys(str(r["quantity"]) for r in rows))
    tasks = list(dict.fromkeys(label(r) for r in rows))
    if not (quantities and tasks):
        return ""
    m = np.full((len(quantities), len(tasks)), np.nan)
    for r in rows:
        m[quantities.index(str(r["quantity"])), tasks.index(label(r))] = _fl(r["spearman"])
    fig, ax = Figures.subplots(figsize=(min(max(5.5, 2.5 + 0.55 * len(tasks)), 12), 1.6 + 0.35 * len(quantities)),
                               layout="constrained")
    im = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(tasks)), tasks, rotation=40, ha="right", fontsize="small")
    ax.set_yticks(range(len(quantities)), quantities, fontsize="small")
    if m.size <= 200:
        for (i, j), v in np.ndenumerate(m):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize="x-small",
                        color="white" if abs(v) > 0.6 else "black")
    fig.colorbar(im, ax=ax, label="Spearman rho")
    ax.set_title("Spearman rho of each quantity with each score over training", fontsize="medium")
    return figure(fig, caption, alt=alt)


# -- by layer and node dimensions (issue 11, SPEC 5) ---------------------------------------------

def by_layer_emergence(rows: list, baseline_step: Optional[float] = None) -> tuple:
    """``(groups, steps, E)``: E per group (SPEC 4 on the group's sample means) relative to the
    baseline step (default: the first), NaN where a group has no centre."""
    steps = sorted({_fl(r["step"]) for r in rows})
    groups = list(dict.fromkeys(str(r["group"]) for r in rows))
    acc: dict = {}
    for r in rows:
        a, w = _fl(r["alpha0"]), _fl(r["width"])
        if np.isfinite(a) and np.isfinite(w) and (r.get("n_centres") in (None, "") or _fl(r["n_centres"]) > 0):
            acc.setdefault((str(r["group"]), _fl(r["step"])), []).append((a, w))
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


@register_section("by_layer", "Where the change happens: by layer", lambda r: r.has_table("by_layer"))
def _by_layer(run: RunData) -> str:
    rows = run.table("by_layer")
    require_columns(rows, BY_LAYER_COLUMNS, "by_layer.csv")
    base = None
    s = run.series
    if s is not None:
        base = float(s.checkpoints[s.baseline].step)
        if base not in {_fl(r["step"]) for r in rows}:
            base = None
    groups, steps, e = by_layer_emergence(rows, base)
    fig, ax = Figures.subplots(figsize=(min(3 + 0.45 * len(steps), 12), 1.2 + 0.28 * len(groups)), layout="constrained")
    lim = np.nanmax(np.abs(e)) if np.isfinite(e).any() else 1.0
    im = ax.imshow(np.ma.masked_invalid(e), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(steps)), [f"{x:,.0f}" for x in steps], rotation=45, ha="right", fontsize="x-small")
    ax.set_yticks(range(len(groups)), groups, fontsize="x-small")
    ax.set_xlabel("training step")
    fig.colorbar(im, ax=ax, label="E of the group")
    ax.set_title("E per group over training", fontsize="medium")
    never = [g for g in groups if all(_fl(r["n_centres"]) == 0 for r in rows if str(r["group"]) == g)]
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
        a = [_fl(x["alpha0"]) for x in rr]
        w = [_fl(x["width"]) for x in rr]
        trows.append(dict(step=st, checkpoint=ck, group=g, n_samples=len(rr), alpha0_mean=float(np.nanmean(a))
                          if np.isfinite(a).any() else math.nan,
                          width_mean=float(np.nanmean(w)) if np.isfinite(w).any() else math.nan,
                          E=float(e[groups.index(g), steps.index(_fl(st))]),
                          n_centres=_whole(float(np.mean([_fl(x["n_centres"]) for x in rr])))))
    out += table(trows, caption="by_layer.csv aggregated over samples: one row per (checkpoint, group).",
                 table_id="by-layer-table")
    return out


@register_section("node_dimensions", "Node fractal dimensions",
                  lambda r: r.has_results and any(x.node_dimensions is not None
                                                  for rs in r.series.results for x in rs))
def _node_dimensions(run: RunData) -> str:
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


# -- what the run noticed ---------------------------------------------------------------------

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


@register_section("noticed", "What the run noticed", lambda r: bool(noticed(r)))
def _noticed(run: RunData) -> str:
    items = noticed(run)
    counts: dict = {}
    for k, _ in items:
        counts[k] = counts.get(k, 0) + 1
    head = ", ".join(f"{n} {k}{'s' if n > 1 and not k.endswith('s') else ''}" for k, n in counts.items())
    shown = items[:300]
    li = "".join(f"<li><b>{esc(k)}</b>: {esc(t)}</li>" for k, t in shown)
    more = f"<p class=\"note\">... and {len(items) - len(shown)} more.</p>" if len(items) > len(shown) else ""
    return f"<p>{esc(head)}.</p><ul class=\"issues\">{li}</ul>{more}"


# -- cost ---------------------------------------------------------------------------------------

def cost_rows(run: RunData) -> list:
    """Time per checkpoint from the results; bytes read and checkpoint size from run.json's
    ``reading`` (recorded by runs that read their checkpoints by range or download them)."""
    s = run.series
    reading = (run.info.get("reading") or {}).get("checkpoints") or {}
    rows = []
    for t, c in enumerate(s.checkpoints):
        sec = [r.seconds for r in s.results[t]]
        got = reading.get(c.label) or {}
        rows.append(dict(step=c.step, checkpoint=c.label, results=len(sec),
                         seconds_total=float(np.sum(sec)) if sec else math.nan,
                         seconds_per_sample=float(np.mean(sec)) if sec else math.nan,
                         network_edges=round(float(np.mean([r.n_network_edges for r in s.results[t]])))
                         if sec else None,
                         bytes_read=got.get("bytes_read"), checkpoint_bytes=got.get("size"),
                         identical_to=s.identical_to[t] or ""))
    return rows


@register_section("cost", "Time and bytes read per checkpoint", lambda r: r.has_results)
def _cost(run: RunData) -> str:
    rows = cost_rows(run)
    has_bytes = any(r["bytes_read"] is not None for r in rows)
    labels = [str(r["checkpoint"]) for r in rows]
    charts = bars_svg(labels, [r["seconds_total"] for r in rows], unit="s", title="compute time per checkpoint")
    if has_bytes:
        charts += bars_svg(labels, [(_fl(r["bytes_read"]) if r["bytes_read"] is not None else math.nan) / 1e6
                                    for r in rows], unit="MB", title="megabytes read per checkpoint")
    cap = ("Seconds spent on each checkpoint (summed over its samples; reused results keep the time they first took)"
           + ("; right: the megabytes read from its source (checkpoint_bytes: its size; a range read fetches only the "
              "rows the samples use)." if has_bytes else ". The run recorded no byte counts (a run reading its "
              "checkpoints by URL or from the hub records them in run.json)."))
    cols = [c for c in rows[0] if c not in ("bytes_read", "checkpoint_bytes") or has_bytes]
    return (f'<figure class="svg">{charts}<figcaption>{cap}</figcaption></figure>'
            + table(rows, cols, table_id="cost-table"))


def bars_svg(labels: list, values: list, *, unit: str, title: str, width: int = 420, bar: int = 14) -> str:
    """A horizontal bar chart as inline SVG: drawn by the browser, so it costs the report nothing
    to make (a matplotlib figure of the same took 1-2 s)."""
    v = np.array([_fl(x) for x in values], dtype=float)
    top = float(np.nanmax(v)) if np.isfinite(v).any() else 0.0
    lw, span = 130, width - 130 - 70
    out = [f'<svg role="img" aria-label="{esc(title)}" width="{width}" '
           f'height="{22 + bar * len(labels)}" font-family="sans-serif" font-size="11">'
           f'<text x="0" y="13" font-weight="bold">{esc(title)}</text>']
    for i, (lab, x) in enumerate(zip(labels, v)):
        y = 20 + i * bar
        w = span * x / top if np.isfinite(x) and top > 0 else 0.0
        out.append(f'<text x="{lw - 6}" y="{y + bar - 4}" text-anchor="end">{esc(lab[:22])}</text>'
                   f'<rect x="{lw}" y="{y + 2}" width="{w:.1f}" height="{bar - 4}" fill="#4477aa"/>'
                   f'<text x="{lw + w + 4:.1f}" y="{y + bar - 4}">{fmt(x, 2)} {unit}</text>')
    return "".join(out) + "</svg>"


# ---------------------------------------------------------------------------------------------
# header

def reproduce_command(info: dict, run_dir: os.PathLike) -> str:
    """The ``neuromfa analyze`` command line that recomputes this run (into the same directory)."""
    cfg = info.get("config", {})
    agg = info.get("aggregation", {})
    series = info.get("series") or []
    hub = [e for e in series if e.get("revision")]
    args = ["neuromfa", "analyze"]
    note = ""
    if series and len(hub) == len(series) and len({e["source"] for e in series}) == 1:
        args += [series[0]["source"], "--revisions", ",".join(e["revision"] for e in series)]
    else:
        args += [e["source"] + (f"@{e['revision']}" if e.get("revision") else "") for e in series]
    samples = agg.get("samples")
    if cfg.get("per_layer") is None:
        args += ["--per-layer", "full"]
    else:
        args += ["--per-layer", str(cfg["per_layer"])]
        if samples is not None:
            if list(samples) != list(range(len(samples))):
                note = f"  # samples {','.join(map(str, samples))}: only from Python (analyze_series(samples=[...]))"
            else:
                args += ["--samples", str(len(samples))]
    args += ["--threshold", f"{cfg.get('threshold', 150.0):g}", "--box", str(cfg.get("box", "edge"))]
    if cfg.get("box") == "path":
        args += ["--direction", str(cfg.get("direction"))]
    if isinstance(cfg.get("layout"), str):
        args += ["--layout", cfg["layout"]]
    for k, flag, d in (("min_edges", "--min-edges", 11), ("decimals", "--decimals", 0),
                       ("nfd_threshold", "--nfd-threshold", 200.0)):
        if cfg.get(k, d) != d:
            args += [flag, f"{cfg[k]:g}" if isinstance(cfg[k], float) else str(cfg[k])]
    if cfg.get("node_dimension") is False:
        args.append("--no-node-dimension")
    if agg.get("filter", "none") != "none":
        args += ["--filter", agg["filter"]]
    if agg.get("baseline") and series and agg["baseline"] != series[0].get("label"):
        args += ["--baseline", str(agg["baseline"])]
    for k, flag, d in (("n_bootstrap", "--bootstrap", 1000), ("ci", "--ci", 0.95), ("seed", "--seed", 0)):
        if k in agg and agg[k] != d:
            args += [flag, str(agg[k])]
    for k in ("controls",):
        if cfg.get(k):
            args += [f"--{k}", ",".join(cfg[k])]
    for k in ("stats", "by_layer"):
        if cfg.get(k):
            args.append("--" + k.replace("_", "-"))
    if (Path(run_dir) / "correlations.csv").is_file():
        try:
            args += ["--evals", str(json.loads((Path(run_dir) / "correlations.json").read_text())["evals"])]
        except (OSError, ValueError, KeyError, TypeError):
            note += "  # and --evals SOURCE: correlations.csv holds scores whose source was not recorded"
    steps = [e.get("step", 0) for e in series]
    if steps != sorted(steps):
        args.append("--keep-order")
    args += ["--out", str(run_dir)]
    return " ".join(shlex.quote(a) for a in args) + note


def _when(t: Any) -> str:
    try:
        return _dt.datetime.fromtimestamp(float(t), _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def _header(run: RunData) -> str:
    info, cfg, agg = run.info, run.info.get("config", {}), run.info.get("aggregation", {})
    s = run.series
    series = info.get("series") or []
    arch = sorted({r.architecture for rs in (s.results if s else ()) for r in rs if r.architecture})
    layouts = sorted({r.layout for rs in (s.results if s else ()) for r in rs if r.layout})
    q = cfg.get("q") or []
    revs = [e.get("revision") for e in series if e.get("revision")]
    srcs = list(dict.fromkeys(e.get("source", "") for e in series))
    common = os.path.commonpath(srcs) if len(srcs) > 1 and all(not x.count("@") for x in srcs) else ""
    src_txt = (srcs[0] if len(srcs) == 1 else f"{common}/ ({len(srcs)} directories)" if common else
               f"{len(srcs)} sources: " + ", ".join(srcs[:3]) + (" ..." if len(srcs) > 3 else ""))
    sampling = ("full network" if cfg.get("per_layer") is None else
                f"{len(agg.get('samples') or [])} samples x {cfg.get('per_layer')} neurons per layer")
    from .. import __version__
    machine = info.get("machine") or (f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores), where "
                                      "this page was written (the run does not record where it was computed)")
    labels = [e.get("label", "") for e in series]
    meta = [("status", run.status), ("sources", src_txt), ("checkpoints", f"{len(series)}" + (f": {labels[0]} ... {labels[-1]}" if labels
                                                                      else "") + (" (hub revisions)" if revs else "")),
            ("architecture", ", ".join(arch) or "(no result yet)"),
            ("layout", ", ".join(layouts) or str(cfg.get("layout"))), ("sampling", sampling),
            ("boxes", f"{cfg.get('box')}" + (f" ({cfg.get('direction')})" if cfg.get("box") == "path" else "")),
            ("threshold T", f"{cfg.get('threshold', float('nan')):g}"),
            ("q range", f"{min(q):g} .. {max(q):g} ({len(q)} moments)" if q else ""),
            ("filter", str(agg.get("filter", "none"))), ("baseline", str(agg.get("baseline", ""))),
            ("computed with", f"neuromfa-native {info.get('version', '?')}"), ("report by", f"neuromfa-native "
                                                                                      f"{__version__}"),
            ("run started", _when(info.get("created"))),
            ("last update", _when(info.get("finished") or info.get("updated"))), ("machine", machine)]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in meta)
    return (f"<dl class=\"meta\">{dl}</dl><p class=\"note\" style=\"margin:6px 0 0\">Reproduce:</p>"
            f"<pre class=\"cmd\">{esc(reproduce_command(info, run.path))}</pre>")


def _banner(run: RunData) -> str:
    s = run.series
    if run.status == "failed":
        n = run.info.get("n_failed", "some")
        return (f'<div class="banner failed" id="status">Run with failures: {esc(n)} task(s) failed '
                f'&mdash; see <a href="#noticed">what the run noticed</a>. This report shows the results '
                f'that were stored (partial).</div>')
    if run.partial:
        miss = len(s.missing) if s is not None else None
        what = "no result yet" if s is None or not run.has_results else f"{miss} result(s) missing"
        return (f'<div class="banner partial" id="status">Partial run ({esc(run.status)}): {what}. Rerun the same '
                f'analyze command to finish; this page shows what is stored.</div>')
    return ""


def _key_numbers(run: RunData) -> str:
    s = run.series
    if not run.has_results:
        return ""
    e = np.asarray(s.emergence)
    ok = np.flatnonzero(np.isfinite(e))
    if ok.size == 0:
        return ""
    t = int(ok[-1])
    lo, hi = s.emergence_ci[t]
    ci = int(round(100 * s.bootstrap.get("ci", 0.95)))
    peak = int(ok[np.argmax(e[ok])])
    txt = (f"Degree of emergence E at {esc(s.checkpoints[t].label)}: <b>{e[t]:+.3f}</b> [{lo:+.3f}, {hi:+.3f}] "
           f"({ci}% bootstrap interval over samples), relative to {esc(s.checkpoints[s.baseline].label)}")
    if peak != t:
        txt += f"; highest at {esc(s.checkpoints[peak].label)} ({e[peak]:+.3f})"
    more = ""
    if run.has_table("controls") and run.table("controls") and "E" in run.table("controls")[0]:
        more += control_shares(run.table("controls"))
        more = f'<p class="key2"><a href="#controls">Controls</a>: {more}.</p>' if more else ""
    if run.has_table("correlations") and run.table("correlations"):
        head = correlation_headline(run.table("correlations"))
        more += f'<p class="key2"><a href="#correlation">Scores</a>: {head}.</p>' if head else ""
    if more and run.partial:  # the tables are written at the end of a pass, the results as they come
        more += ('<p class="note">The lines above come from the tables as last written (controls.csv, '
                 "correlations.csv), which may predate the results of this partial run.</p>")
    return (f"<p class=\"key\">{txt}.</p>" + more
            + "<p class=\"note\">E = 0 at the baseline; it grows as the network's "
            "structure becomes more regular (&alpha;<sub>0</sub> falls) and more heterogeneous (the spectrum "
            "widens).</p>")


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
            + _banner(run) + _key_numbers(run) + _header(run) + f"<nav>{nav}</nav></header>")
    parts = [body]
    for sec, html_ in sections:
        parts.append(f'<section id="{esc(sec.name)}"><h2>{esc(sec.title)}</h2>{html_}</section>')
    parts.append(f'<p class="note">Written {esc(_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))} '
                 f"from the stored results in {esc(run.path.name)}/ by neuromfa report.</p>")
    return page(title + (" (partial)" if run.partial else ""), "\n".join(parts))


def write_html_report(run_dir: os.PathLike, out: Optional[os.PathLike] = None, *, reuse_plots: bool = False) -> Path:
    """Write ``report.html`` (default ``RUN_DIR/report.html``) atomically; returns its path.
    ``reuse_plots``: see :func:`render_report`."""
    from ..run.store import atomic_write_text
    out = Path(out) if out is not None else Path(run_dir) / REPORT_NAME
    atomic_write_text(out, render_report(run_dir, reuse_plots=reuse_plots))
    return out


# ---------------------------------------------------------------------------------------------
# notebook helpers: Series/Analysis/Spectrum._repr_html_ and Series.plot delegate here


def draw_overview(series, fig=None):
    """The overview (spectra, E, alpha0, width) drawn on ``fig`` (a new figure when None);
    returns the figure."""
    from ..plots.series import plot_alpha0, plot_emergence, plot_spectra, plot_width
    if fig is None:
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=(11, 8), layout="constrained")
    for ax, plot in zip(fig.subplots(2, 2).flat, (plot_spectra, plot_emergence, plot_alpha0, plot_width)):
        plot(series, ax=ax)
    return fig


def _small_png(draw, size=(3.4, 2.3)) -> str:
    """A small inline plot, drawn without pyplot (the notebook's backend is left alone);
    empty when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return ""
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    draw(ax)
    ax.tick_params(labelsize="x-small")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img style="vertical-align:top;margin-left:12px" alt="plot" src="data:image/png;base64,{data}">'


_NB_STYLE = "border-collapse:collapse;font-size:12px"


def _nb_table(rows: list, columns: list) -> str:
    return table(rows, columns, sortable=False, scroll=False).replace("<table>", f'<table style="{_NB_STYLE}">')


def series_html(series) -> str:
    """Compact HTML of a :class:`~neuromfa_native.run.series.Series`: one row per checkpoint and a
    small E plot."""
    rows = [{k: r[k] for k in ("step", "checkpoint", "n_kept", "alpha0_mean", "width_mean", "emergence",
                               "emergence_low", "emergence_high")} for r in series.checkpoint_rows()]
    k = len(series.samples) if series.config.get("per_layer") is not None else 1
    head = (f"<b>Series</b>: {len(series.checkpoints)} checkpoints x {k} samples, {series.config.get('box')} boxes, "
            f"S={series.config.get('per_layer')}, T={series.config.get('threshold'):g}, baseline "
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
            f"<div>{_nb_table(rows, list(rows[0]) if rows else [])}</div>{_small_png(draw)}</div></div>")


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
            f"<div>{_nb_table(rows, list(rows[0]) if rows else [])}</div>"
            f"{_small_png(draw) if kept else ''}</div></div>")


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
            f"<div>{_nb_table(rows, ['quantity', 'value'])}</div>{_small_png(draw, (3.0, 2.1))}</div>"
            + (f"<ul>{notes}</ul>" if notes else "") + "</div>")


def correlation_html(result) -> str:
    """Compact HTML of any result with ``to_pandas()`` (e.g. the correlation result)."""
    df = result.to_pandas()
    rows = df.head(50).to_dict("records")
    more = f"<p>... {len(df) - 50} more rows</p>" if len(df) > 50 else ""
    return f"<div><b>{esc(type(result).__name__)}</b>{_nb_table(rows, list(df.columns))}{more}</div>"
