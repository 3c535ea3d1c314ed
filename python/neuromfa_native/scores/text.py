"""The terminal view of a correlation table (docs/spec.md sections 8 and 13): the rows that
answer the question first (E's), the comparison with the training clock and with weight RMS
beside rho, q-values (and the exact ones where a row has few units), the count of rows with
q < 0.05 that is valid, the intervals that exclude their own point (marked ``*``, with why), the
reasons of undefined partials, the join report, and how to see the rows that were left out."""
from __future__ import annotations

import math
from typing import Optional

from .._text import one_line
from .rankcorr import EXACT_MAX_N, exact_min_p

__all__ = ["format_correlation", "display_order"]

ALPHA = 0.05


def _f(x: Optional[float], d: int, sign: bool = False) -> str:
    if x is None or not math.isfinite(x):
        return "nan"
    return f"{x:+.{d}f}" if sign else f"{x:.{d}f}"


def _p(x: Optional[float]) -> str:
    if x is None or not math.isfinite(x):
        return "nan"
    return f"{x:.2g}" if x < 0.001 else f"{x:.3f}"


def _iv(lo: float, hi: float, excludes: bool = False) -> str:
    """An interval with the point's 3 decimals (with 2, a point on its bound looked outside)."""
    return f"[{_f(lo, 3, True)}, {_f(hi, 3, True)}]" + ("*" if excludes else "")


#: Why a percentile interval can exclude its own point (docs/correlation.md).
EXCLUDES_NOTE = ("noise attenuates a correlation -- resampling adds the samples' noise once more to means that "
                 "already carry it, so the replicates of |rho| sit below the point -- and the step has none, so "
                 "the interval of a difference leans towards the side with less noise; compare the points")


def _abs_rho(r: dict) -> float:
    return -abs(r["spearman"]) if math.isfinite(r["spearman"]) else math.inf


def display_order(rows, quantity: str = "E") -> list:
    """``quantity``'s rows first, then the others; each by decreasing ``|rho|`` (NaN last)."""
    return sorted(rows, key=lambda r: (r["quantity"] != quantity, _abs_rho(r), r["quantity"], r["task"], r["metric"]))


def _finite(rows, key: str) -> bool:
    return any(math.isfinite(r.get(key, math.nan)) for r in rows)


def _lines(corr, quantity: str, clock: list) -> list:
    """The lines above the table: sources, whose scores, the quantity against the clock."""
    span = f" (steps {corr.steps[0]}..{corr.steps[-1]})" if corr.unit == "checkpoint" and corr.steps else ""
    out = [f"Correlation over {len(corr.labels)} {corr.unit}s{span} with {corr.evals_name or 'scores'}; "
           f"{corr.ci:.0%} bootstrap interval of rho, B={corr.n_boot}, seed {corr.seed}",
           "  " + corr.interval_note]
    if corr.scores_model or corr.run_model:
        out.append(f"  scores of {one_line(corr.scores_model) or '(no model named)'}; the run's checkpoints: "
                   f"{one_line(corr.run_model) or '(no model named)'}")
    rho = corr.with_step.get(quantity, math.nan)
    if math.isfinite(rho):
        out.append(f"  rho({quantity}, step) = {rho:+.2f}: whatever changes monotonically over training correlates "
                   "with every score that does")
    if clock:
        what = {"step": "the training step", "rms": "weight RMS"}
        out.append(f"  {', '.join(clock)}: rho of {' and of '.join(what[k] for k in clock)} with the score; "
                   f"{', '.join('vs ' + k for k in clock)}: |rho| minus theirs (above 0: the quantity orders the "
                   "checkpoints more like the score), with a paired interval that leans towards the side with less "
                   "noise (the step has none)")
    return out


def _small_n(rows) -> list:
    """The numbers of units (at most EXACT_MAX_N) of the rows with an exact p-value."""
    return sorted({int(r["n"]) for r in rows if int(r["n"]) <= EXACT_MAX_N and math.isfinite(r.get("p_exact", math.nan))})


def _count_lines(rows, quantity: str) -> list:
    """The count of rows with q < ALPHA: the t approximation's, and where a row has few units the
    exact one beside it (the valid count) with the smallest exact p of each such n."""
    def count(key, only=None):
        return sum(1 for r in rows if (only is None or r["quantity"] == only)
                   and math.isfinite(r.get(key, math.nan)) and r[key] < ALPHA)

    q = [r for r in rows if math.isfinite(r.get("q_spearman", math.nan))]
    mine = [r for r in q if r["quantity"] == quantity]
    small = _small_n(rows)
    if not small:
        return [f"{count('q_spearman')} of {len(rows)} rows have q < {ALPHA:g} (Benjamini-Hochberg over the {len(q)} "
                f"rows with a p-value)" + (f"; {count('q_spearman', quantity)} of {len(mine)} {quantity} rows"
                                           if mine else "")]
    mins = "; ".join(f"n = {n}: the smallest exact p is {exact_min_p(n):.2g}" for n in small)
    return [f"{count('q_exact')} of {len(rows)} rows have q_exact < {ALPHA:g} (Benjamini-Hochberg over exact "
            f"permutation p-values where n <= {EXACT_MAX_N})"
            + (f"; {count('q_exact', quantity)} of {len(mine)} {quantity} rows" if mine else "")
            + f"; {count('q_spearman')} of {len(rows)} rows have q < {ALPHA:g} by the t approximation (p, q), which "
            "gives a perfect order p = 0: the exact count is the valid one",
            f"the exact p of rho cannot go below 2/n! (ties raise it): {mins}"]


def format_correlation(corr, max_rows: Optional[int] = 20, *, quantity: str = "E",
                       more: str = "to_pandas() has them all") -> str:
    """The table of :class:`~neuromfa_native.scores.correlation.Correlation` for a terminal:
    ``quantity``'s rows first (:func:`display_order`), at most ``max_rows`` (None: all); ``more``
    says how to see the others."""
    rows = display_order(corr.rows, quantity)
    shown = rows if max_rows is None else rows[:max_rows]
    clock = [k for k in ("step", "rms") if _finite(rows, f"rho_{k}")]
    exact = bool(_small_n(rows))
    cols = ["quantity", "task", "metric", "n", "rho", "interval", "p", "q"] + ["p exact", "q exact"] * exact
    for k in clock:
        cols += [k, f"vs {k} [interval]"]
    if corr.covariate:
        cols.append(f"partial|{corr.covariate}")
    reasons: dict = {}
    table = [cols]
    for r in shown:
        arrow = "" if r["higher_is_better"] else " (lower better)"
        out = (r.get("interval_excludes_point") or "").split(", ")
        line = [one_line(r["quantity"]), one_line(r["task"]), one_line(r["metric"]) + arrow, str(r["n"]),
                _f(r["spearman"], 3),
                _iv(r["spearman_lo"], r["spearman_hi"], "spearman" in out), _p(r["p_spearman"]),
                _p(r.get("q_spearman"))] + [_p(r.get("p_exact")), _p(r.get("q_exact"))] * exact
        for k in clock:
            d = r.get(f"diff_{k}", math.nan)
            line += [_f(r.get(f"rho_{k}"), 3), "" if not math.isfinite(d) else
                     f"{d:+.3f} {_iv(r.get(f'diff_{k}_lo', math.nan), r.get(f'diff_{k}_hi', math.nan), f'diff_{k}' in out)}"]
        if corr.covariate:
            note = r.get("partial_note") or ""
            if note:
                mark = reasons.setdefault(note, f"({len(reasons) + 1})")
                line.append(f"undefined {mark}")
            else:
                line.append(_f(r["partial_spearman"], 3))
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(cols))]
    text = _lines(corr, quantity, clock)
    for row in table:
        text.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    text.extend(f"{mark} partial undefined: {one_line(why)}" for why, mark in reasons.items())
    flagged = sum(1 for r in rows if r.get("interval_excludes_point"))
    if flagged:
        text.append(f"* the interval excludes its own point ({flagged} of {len(rows)} rows, column "
                    f"interval_excludes_point): {EXCLUDES_NOTE}")
    if any(r["p_spearman"] == 0 for r in shown):
        text.append("p = 0 where |rho| = 1: the t approximation gives a perfect rank order p = 0; its exact p over n "
                    "units is 2/n!")
    text.extend(_count_lines(rows, quantity))
    if len(rows) > len(shown):
        text.append(f"... {len(rows) - len(shown)} more row(s); {more}")
    text.extend("join: " + one_line(line) for line in corr.join.lines())
    text.extend("note: " + one_line(n) for n in corr.notes)
    return "\n".join(text)
