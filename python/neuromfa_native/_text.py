"""Strings from elsewhere on their way to a terminal or a CSV file: one path for each.

Checkpoint labels, task names, model names and error messages come from files and servers the
user did not write.  :func:`terminal` is what every line the command prints goes through: a
terminal acts on control characters (ANSI escapes can rewrite the screen or the title), so
every non-printable character but the newline and the tab is shown as its Python escape.
:func:`one_line` does the same for a name set inside a line (newlines too).  :func:`csv_text`
writes every CSV table of the package: a text cell that a spreadsheet would run as a formula
(starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a leading
``'``, as OWASP recommends; numbers are written as numbers (finite floats by ``repr``).
:func:`short` is how a value read from a file goes into a message: a bounded ``repr`` that
says an integer of more than 40 digits by its digit count (Python refuses to format one of
more than 4300 digits, and formatting one costs quadratic time).
"""
from __future__ import annotations

import csv
import io
import math
import reprlib
from typing import Any, Iterable, Sequence

__all__ = ["csv_cell", "csv_text", "digits", "one_line", "short", "terminal"]

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _escaped(text: str, keep: str) -> str:
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def terminal(text: Any) -> str:
    """``text`` safe to print: non-printable characters but newline and tab as escapes."""
    return _escaped(str(text), "\n\t")


def one_line(text: Any) -> str:
    """``text`` safe inside one printed line: every non-printable character as its escape."""
    return _escaped(str(text), "")


def csv_cell(v: Any) -> Any:
    """A value as a CSV cell: None empty, finite floats by ``repr``, formula-like text quoted."""
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(v, str) and v.startswith(_FORMULA):
        return "'" + v
    return v


def csv_text(rows: Iterable[Any], columns: Sequence[str]) -> str:
    """CSV text of ``rows`` (mappings, or sequences in ``columns`` order) under a header row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(c) for c in columns])
    for r in rows:
        values = [r.get(c) for c in columns] if hasattr(r, "get") else list(r)
        w.writerow([csv_cell(v) for v in values])
    return buf.getvalue()


def digits(n: int) -> int:
    """The number of decimal digits of the integer ``n`` (its sign left out), found without
    formatting it."""
    n = abs(int(n))
    d = max(1, int((n.bit_length() - 1) * 0.30102999566398114) + 1)  # a lower bound
    while n >= 10**d:
        d += 1
    return d


class _Short(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() <= 128:
            return repr(x)
        return f"{'a negative' if x < 0 else 'an'} integer of {digits(x)} digits"


_SHORT = _Short()


def short(x: Any) -> str:
    """A bounded ``repr`` of ``x`` (a value read from a file, for a message): a few levels and
    items of each container, a long string cut, an integer of more than 40 digits said by its
    digit count."""
    return _SHORT.repr(x)
