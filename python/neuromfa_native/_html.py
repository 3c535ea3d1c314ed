"""HTML for people: the one escaping path and the small pieces every page and notebook view
uses (a table of plain rows, number formatting, a small inline plot).

Everything the library writes into HTML goes through :func:`esc` (text and attribute values);
:func:`table` escapes every cell and header.  The bottom of the package: nothing here imports
from it, so the notebook views of results (``_display`` modules beside each result type) and the
report pages above them share one implementation.
"""
from __future__ import annotations

import base64
import html
import io
import math
from typing import Any, Optional

import numpy as np

__all__ = ["esc", "fmt", "nb_table", "small_png", "table"]


def esc(x: Any) -> str:
    """``x`` as text safe inside HTML elements and quoted attribute values."""
    return html.escape(str(x), quote=True)


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


def small_png(draw, size=(3.4, 2.3)) -> str:
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


NB_STYLE = "border-collapse:collapse;font-size:12px"


def nb_table(rows: list, columns: list) -> str:
    return table(rows, columns, sortable=False, scroll=False).replace("<table>", f'<table style="{NB_STYLE}">')
