"""The self-contained page: its CSS, sorting script and content security policy, figures
embedded as PNG, tables read back from CSV, an inline SVG bar chart.  Shared by
``report.html``, ``compare.html`` and ``sensitivity.html``."""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import math
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .._html import esc, fmt

__all__ = ["Figures", "bars_svg", "fig_img", "figure", "fl", "page", "png_file", "read_csv", "require_columns"]


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;background:#fff}
main{max-width:1180px;margin:0 auto;padding:12px 20px 40px}
h1{font-size:21px;margin:6px 0 4px}h2{font-size:17px;margin:26px 0 6px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:14px;margin:14px 0 4px}
.banner{padding:8px 12px;border-radius:4px;margin:8px 0;font-weight:600}
.partial{background:#fff3cd;border:1px solid #e0b100}.failed{background:#f8d7da;border:1px solid #c0392b}
.ok{background:#e8f5e9;border:1px solid #7cb342}
.verdict{border-left:5px solid #888;background:#f7f7f7;padding:4px 12px;margin:8px 0}
.verdict.scale{border-color:#c0392b}.verdict.beyond_scale{border-color:#2e7d32}.verdict.mixed{border-color:#e0b100}
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


def _script_hash(script: str) -> str:
    return base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


#: The pages' content security policy: no source but the page itself; the one inline script
#: allowed by its hash (a script a hostile string could slip in would not run), inline styles.
CSP = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{_script_hash(SORT_JS)}'; "
       "base-uri 'none'; form-action 'none'")


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


class Figures:
    """``subplots`` like pyplot's, on a bare :class:`matplotlib.figure.Figure`: the page's plots
    never touch pyplot's figure registry or the caller's backend (a notebook keeps its own)."""

    @staticmethod
    def subplots(nrows=1, ncols=1, *, figsize, layout=None, squeeze=True):
        from matplotlib.figure import Figure
        fig = Figure(figsize=figsize, layout=layout)
        return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def fl(v) -> float:
    """``v`` as a float (NaN when it is not a number: an empty CSV cell)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def png_file(p: Path, caption: str, alt: Optional[str] = None) -> str:
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{esc(alt or p.stem)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{caption}</figcaption></figure>")


def bars_svg(labels: list, values: list, *, unit: str, title: str, width: int = 420, bar: int = 14) -> str:
    """A horizontal bar chart as inline SVG: drawn by the browser, so it costs the report nothing
    to make (a matplotlib figure of the same took 1-2 s)."""
    v = np.array([fl(x) for x in values], dtype=float)
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
