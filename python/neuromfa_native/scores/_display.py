"""Notebook view of a correlation result (``_repr_html_``)."""
from __future__ import annotations

from .._html import esc, nb_table


def correlation_html(result) -> str:
    """Compact HTML of any result with ``to_pandas()`` (e.g. the correlation result)."""
    df = result.to_pandas()
    rows = df.head(50).to_dict("records")
    more = f"<p>... {len(df) - 50} more rows</p>" if len(df) > 50 else ""
    return f"<div><b>{esc(type(result).__name__)}</b>{nb_table(rows, list(df.columns))}{more}</div>"
