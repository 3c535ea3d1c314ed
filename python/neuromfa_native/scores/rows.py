"""The rows of a correlation table (docs/spec.md sections 8 and 13).

For every quantity against every (task, metric): n, Spearman's rho with its percentile bootstrap
interval and p-value, Kendall's tau-b, Pearson's r; the comparison with the training clock
(``rho_step`` = rho(step, score) and ``diff_step`` = |rho(quantity, score)| - |rho(step, score)|,
which for E and a score that both rise with training is rho(E, score) - rho(step, score)) and
with the weight scale (``rho_rms``, ``diff_rms``), each difference with an interval from the same
bootstrap replicates as rho (the same resampled samples, the same draws of the scores); given a
covariate, the partial rho, or in ``partial_note`` why it is undefined; and over the whole table
the Benjamini-Hochberg q-values of the p-values (``q_spearman``).

``p_spearman`` is scipy's (the t approximation), which gives p = 0 to any perfect order, also
of 3 checkpoints, where one order in three is perfect by chance.  ``p_exact`` is the exact
permutation p-value over at most :data:`~neuromfa_native.scores.rankcorr.EXACT_MAX_N` units and
the t approximation above (where the two agree closely), and ``q_exact`` its Benjamini-Hochberg
q-value over the table: the count of rows with ``q_exact`` < 0.05 is the valid one.

``interval_excludes_point`` names the columns (``spearman``, ``diff_step``, ``diff_rms``)
whose percentile interval does not contain the row's own point value.  It happens because
resampling adds the samples' noise once more to means that already carry it, and noise
attenuates a correlation: the replicates of |rho| sit below the point, most for a quantity
with much noise, not at all for the step, which has none; so a paired difference's interval
leans towards the side with less noise.
"""
from __future__ import annotations

import math
import zlib
from typing import Any, Optional

import numpy as np

from . import rankcorr as rc
from ..mfa import stats

__all__ = ["bh_qvalues", "correlation_rows", "excludes_point", "intervals", "partial_reason"]

#: A correlation needs at least this many matched units.
MIN_MATCHED = 3

#: The rival statistic each quantity is compared with (docs/spec.md section 13).
RIVAL = "rms"


def bh_qvalues(p) -> np.ndarray:
    """Benjamini-Hochberg q-values of the finite p-values (NaN elsewhere), as
    ``scipy.stats.false_discovery_control(p, method="bh")`` over the finite ones."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = np.argsort(p[ok], kind="stable")
    ps = p[ok][order] * (m / np.arange(1, m + 1, dtype=float))
    np.minimum.accumulate(ps[::-1], out=ps[::-1])
    out[ok[order]] = np.clip(ps, 0.0, 1.0)
    return out


def _same_order(ra: np.ndarray, rb: np.ndarray) -> int:
    """+1 when two rank vectors order the units exactly alike, -1 exactly reversed, else 0."""
    if np.array_equal(ra, rb):
        return 1
    if np.array_equal(ra, ra.size + 1 - rb):
        return -1
    return 0


def partial_reason(quantity: str, score: str, covariate: str, n: int, rx: Optional[np.ndarray],
                   ry: Optional[np.ndarray], rz: Optional[np.ndarray], units: str = "checkpoints") -> str:
    """Why the partial rho of ``quantity`` and ``score`` given ``covariate`` is undefined ("" when
    it is defined), from the rank vectors of the three over the ``n`` matched ``units``: fewer
    than 3, the covariate itself, a constant side, or a covariate that orders the units exactly
    as one side does (``|r| = 1``: the formula divides by 0)."""
    if n < MIN_MATCHED:
        return f"fewer than {MIN_MATCHED} matched {units}"
    if quantity == covariate:
        return "the covariate itself"
    if rx is None or ry is None or rz is None:
        return f"{covariate} is not known at the matched {units}"
    for name, r in ((covariate, rz), (quantity, rx), (score, ry)):
        if np.all(r == r[0]):
            return f"{name} is constant over the matched {units}"
    by_score, by_quantity = _same_order(rz, ry), _same_order(rz, rx)
    if by_score or by_quantity:
        who = [f"in the reverse order of {name}" if s < 0 else f"as {name} does"
               for s, name in ((by_score, score), (by_quantity, quantity)) if s]
        return f"{covariate} orders the {units} exactly " + " and ".join(who)
    return ""


def intervals(boot: Optional[dict], names, n: int, ci: float) -> dict:
    """Per-unit percentile interval of each quantity (NaN without replicates)."""
    return {q: np.full((n, 2), np.nan) if boot is None or boot[q] is None else stats.percentile_interval(boot[q], ci)
            for q in names}


def _interval(rep: Optional[np.ndarray], ci: float) -> tuple:
    if rep is None:
        return math.nan, math.nan
    rep = rep[np.isfinite(rep)]
    if not rep.size:
        return math.nan, math.nan
    lo, hi = stats.percentile_interval(rep[None, :], ci)[0]
    return float(lo), float(hi)


#: A point within this distance of its interval's bound counts as inside (floating-point noise).
INSIDE_TOLERANCE = 1e-9


def excludes_point(row: dict) -> str:
    """The columns of a row (``spearman``, ``diff_step``, ``diff_rms``) whose interval does not
    contain their own point value, comma-separated ("" when each contains it or has none)."""
    out = []
    for name in ("spearman", "diff_step", "diff_rms"):
        x, lo, hi = row.get(name, math.nan), row.get(f"{name}_lo", math.nan), row.get(f"{name}_hi", math.nan)
        if all(math.isfinite(v) for v in (x, lo, hi)) and not lo - INSIDE_TOLERANCE <= x <= hi + INSIDE_TOLERANCE:
            out.append(name)
    return ", ".join(out)


def _empty_row(q: str, task: str, metric: str, hib: bool, n: int, covariate: Optional[str], units: str) -> dict:
    nan = math.nan
    return dict(quantity=q, task=task, metric=metric, higher_is_better=hib, n=n, spearman=nan, spearman_lo=nan,
                spearman_hi=nan, p_spearman=nan, q_spearman=nan, p_exact=nan, q_exact=nan, kendall=nan, pearson=nan,
                rho_step=nan, diff_step=nan, diff_step_lo=nan, diff_step_hi=nan, rho_rms=nan, diff_rms=nan,
                diff_rms_lo=nan, diff_rms_hi=nan, interval_excludes_point="", partial_spearman=nan,
                covariate=covariate or "",
                partial_note="" if covariate is None else f"fewer than {MIN_MATCHED} matched {units}")


def correlation_rows(labels, values: dict, boot: Optional[dict], scores: dict, hib: dict, cov: Optional[np.ndarray],
                     covariate: Optional[str], n_boot: int, seed: Any, ci: float,
                     steps: Optional[np.ndarray] = None, rival: Optional[tuple] = None,
                     units: str = "checkpoints") -> list:
    """Rows for every quantity x (task, metric) over the given units (see the module docstring).

    ``values[q]``/``boot[q]`` are a quantity's values and bootstrap replicates ``(units, B)``
    (None: no interval); ``scores[(task, metric)]`` is ``(value, stderr)`` per unit; ``steps``
    the units' training steps (None across models: no comparison with the clock).  Everything
    that depends on one side only (ranks, sign matrices, standardised bootstrap ranks) is
    computed once per quantity and once per score and reused."""
    rows = []
    qcache: dict = {}
    seed_list = [int(s) for s in np.atleast_1d(seed)]
    do_boot = boot is not None and n_boot > 0
    allv, allb = dict(values), dict(boot or {})
    if rival is not None:
        allv[RIVAL], allb[RIVAL] = rival[0], rival[1]
    rival_values = allv.get(RIVAL)

    def qside(q, mask):
        key = (q, mask.tobytes())
        if key not in qcache:
            x = allv[q][mask]
            z = None
            if do_boot and allb.get(q) is not None:
                z = rc.standardized_rows(rc.rank_rows(np.ascontiguousarray(allb[q][mask].T)))
            rx = rc.rankdata(x)
            rz = rc.rankdata(cov[mask]) if cov is not None and q != covariate else None
            r_xz = rc.spearman_from_ranks(rx, rz) if rz is not None else None
            qcache[key] = (x, rx, rc.sign_matrix(x), z, r_xz)
        return qcache[key]

    for (task, metric), (val, err) in scores.items():
        score_ok = np.isfinite(val)
        noise = None
        if do_boot:
            noise_rng = np.random.default_rng([*seed_list, zlib.crc32(f"{task}\0{metric}".encode())])
            noise = noise_rng.standard_normal((n_boot, len(labels)))
        ycache: dict = {}
        for q, qv in values.items():
            mask = score_ok & np.isfinite(qv)
            if cov is not None:
                mask &= np.isfinite(cov)
            n = int(mask.sum())
            row = _empty_row(q, task, metric, bool(hib[(task, metric)]), n, covariate, units)
            rows.append(row)
            if n < MIN_MATCHED:
                continue
            x, rx, sx, zq, r_xz = qside(q, mask)
            mkey = mask.tobytes()
            if mkey not in ycache:
                ycache[mkey] = _score_side(val[mask], err, mask, noise, cov, steps, rival_values, qside)
            y, ry, sy, zy, r_yz, clock = ycache[mkey]
            rho = rc.spearman_from_ranks(rx, ry)
            p_t = rc.spearman_pvalue(rho, n)
            row.update(spearman=rho, p_spearman=p_t, p_exact=rc.spearman_exact_pvalue(rx, ry)
                       if n <= rc.EXACT_MAX_N else p_t, kendall=rc.kendall_from_signs(sx, sy), pearson=rc.pearson(x, y))
            r = None
            if zq is not None and zy is not None:
                r = np.clip(np.einsum("ij,ij->i", zq, zy), -1.0, 1.0)
                row["spearman_lo"], row["spearman_hi"] = _interval(r, ci)
            _compare(row, rho, r, clock, ci, q)
            row["interval_excludes_point"] = excludes_point(row)
            if covariate is not None and cov is not None:
                row["partial_note"] = partial_reason(q, f"{task} {metric}", covariate, n, rx, ry,
                                                     rc.rankdata(cov[mask]), units)
                if not row["partial_note"] and r_xz is not None:
                    row["partial_spearman"] = rc.partial(rho, r_xz, r_yz)
    for p, q in (("p_spearman", "q_spearman"), ("p_exact", "q_exact")):
        for row, qv in zip(rows, bh_qvalues([r[p] for r in rows])):
            row[q] = float(qv)
    return rows


def _score_side(y, err, mask, noise, cov, steps, rival, qside) -> tuple:
    """Everything of one score over one set of units: its ranks, sign matrix, standardised
    bootstrap ranks (the score drawn from Normal(value, stderr)), its rho with the covariate and
    ``clock``: ``{"step"|"rms": (rho with the score, its bootstrap replicates)}``."""
    ry = rc.rankdata(y)
    zy = None
    if noise is not None:  # drawn exactly when the bootstrap is on
        e = np.where(np.isfinite(err), err, 0.0)[mask]
        zy = rc.standardized_rows(rc.rank_rows(y[None, :] + e[None, :] * noise[:, mask]))
    r_yz = rc.spearman_from_ranks(ry, rc.rankdata(cov[mask])) if cov is not None else None
    clock: dict = {}
    if steps is not None:
        rs = rc.rankdata(steps[mask])
        zs = rc.standardized_rows(rs[None, :])
        rep = None if zy is None else np.clip(zy @ zs[0], -1.0, 1.0)
        clock["step"] = (rc.spearman_from_ranks(rs, ry), rep)
    if rival is not None and np.isfinite(rival[mask]).all():
        _, rr, _, zr, _ = qside(RIVAL, mask)
        rep = None if zr is None or zy is None else np.clip(np.einsum("ij,ij->i", zr, zy), -1.0, 1.0)
        clock["rms"] = (rc.spearman_from_ranks(rr, ry), rep)
    return y, ry, rc.sign_matrix(y), zy, r_yz, clock


def _compare(row: dict, rho: float, rep: Optional[np.ndarray], clock: dict, ci: float, q: str) -> None:
    """``rho_<x>`` and ``diff_<x>`` = |rho| - |rho_<x>| (the strengths: for a quantity and a
    clock that both rise with the score, rho - rho_<x>), with its interval from the paired
    replicates (each side's sign that of its point value)."""
    for name, (rho_x, rep_x) in clock.items():
        row[f"rho_{name}"] = rho_x
        if name == q or not (math.isfinite(rho) and math.isfinite(rho_x)):  # the rival against itself: nothing
            continue
        sq, sx = (1.0 if rho >= 0 else -1.0), (1.0 if rho_x >= 0 else -1.0)
        row[f"diff_{name}"] = sq * rho - sx * rho_x
        if rep is not None and rep_x is not None:
            row[f"diff_{name}_lo"], row[f"diff_{name}_hi"] = _interval(sq * rep - sx * rep_x, ci)
