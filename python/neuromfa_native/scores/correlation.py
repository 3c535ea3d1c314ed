"""Does emergence track capability?  Correlations of run quantities with benchmark scores (docs/spec.md section 8).

:func:`correlate` joins the checkpoints of a run (a :class:`~neuromfa_native.run.series.Series` or a
run directory) with eval records (:func:`~neuromfa_native.scores.evals.read_evals`) on the training
step and, for every quantity (E, alpha0, width, and whatever else is registered and present in
the run) against every (task, metric), gives n, Spearman's rho with a percentile bootstrap
interval and its p-value (scipy's t approximation, and the exact permutation p-value where n <=
9, each with its Benjamini-Hochberg q-value), Kendall's tau-b, Pearson's r and, given a
covariate, the partial rho.
:func:`correlate_models` does the same across models at one step.

Quantities are a registry: a *component* is a per-sample value of every checkpoint
(``alpha0``, ``width``; :func:`register_component` adds more, e.g. a control's alpha0) and a
*quantity* is a function of the per-checkpoint component means (:func:`register_quantity`;
:func:`emergence_of` builds an E from any alpha0/width pair).  A quantity is available for a run
when all its components are.  The bootstrap resamples the samples of every checkpoint with
replacement and recomputes each quantity from the resampled means, as the series' own E
interval does (with the same seed and number of replicates, the per-checkpoint E interval of
:attr:`Correlation.intervals` is the series' ``emergence_ci``); each score is drawn from
Normal(value, stderr) where a stderr is known.  The interval covers measurement noise of both
sides, not the dependence between neighbouring checkpoints.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from . import rankcorr as rc
from .._results import fields_equal, frozen_mapping, readonly
from .._text import csv_text
from ..config import DEFAULT, CorrelationConfig
from ._display import correlation_html
from .evals import COLUMNS as EVAL_COLUMNS
from .evals import EvalTable, read_evals
from .quantities import (
    QUANTITIES,
    Quantity,
    RunArrays,
    as_run,
    available_quantities,
    boot_values,
    emergence_of,
    point_values,
    register_component,
    register_quantity,
)
from .provenance import ScoresModelWarning, model_mismatch, run_model
from .rows import MIN_MATCHED, RIVAL, correlation_rows, intervals

__all__ = ["Correlation", "JoinReport", "Quantity", "available_quantities", "correlate", "correlate_models",
           "emergence_of", "register_component", "register_quantity", "COLUMNS", "INTERVAL_NOTE"]

#: Columns of :meth:`Correlation.to_pandas` and of ``correlations.csv``: see docs/outputs.md.
COLUMNS = ("quantity", "task", "metric", "higher_is_better", "n", "spearman", "spearman_lo", "spearman_hi",
           "p_spearman", "q_spearman", "p_exact", "q_exact", "kendall", "pearson", "rho_step", "diff_step",
           "diff_step_lo", "diff_step_hi", "rho_rms", "diff_rms", "diff_rms_lo", "diff_rms_hi",
           "interval_excludes_point", "partial_spearman", "covariate", "partial_note")

INTERVAL_NOTE = ("the interval covers measurement noise of both sides (the samples of each checkpoint and the "
                 "scores' stderr), not the dependence between neighbouring checkpoints")



# ---------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True, eq=False)
class JoinReport:
    """How checkpoints (or models) and eval records were joined on the step."""

    matched: tuple                       # labels of the units that enter the statistics
    matched_steps: tuple
    without_scores: tuple = ()           # labels of checkpoints with results but no score
    without_results: tuple = ()          # labels of checkpoints with no result yet (partial run)
    without_step: tuple = ()             # labels of checkpoints whose step is unknown
    scores_without_checkpoint: tuple = ()  # steps with scores but no checkpoint
    duplicated_scores: Mapping[int, int] = field(default_factory=dict)  # step -> earlier step, identical scores

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        for f in fields(self)[:-1]:
            object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        object.__setattr__(self, "duplicated_scores", frozen_mapping(self.duplicated_scores))

    def __repr__(self) -> str:
        return "<JoinReport: " + "; ".join([f"{len(self.matched)} matched"] + self.lines()) + ">"

    def lines(self) -> list:
        out = []
        if self.without_scores:
            out.append(f"no score for {len(self.without_scores)} checkpoint(s): {_short(self.without_scores)}")
        if self.without_results:
            out.append(f"no result yet for {len(self.without_results)} checkpoint(s): {_short(self.without_results)}")
        if self.without_step:
            out.append(f"no step known for {len(self.without_step)} checkpoint(s): {_short(self.without_step)}")
        if self.scores_without_checkpoint:
            out.append(f"scores without checkpoint at {len(self.scores_without_checkpoint)} step(s): "
                       f"{_short(self.scores_without_checkpoint)}")
        if self.duplicated_scores:
            out.append("identical scores at different steps: " + ", ".join(
                f"step {s} = step {o}" for s, o in sorted(self.duplicated_scores.items())))
        return out


def _short(items, k: int = 8) -> str:
    items = list(items)
    return ", ".join(map(str, items[:k])) + (f", ... ({len(items) - k} more)" if len(items) > k else "")


@dataclass(frozen=True, eq=False)
class Correlation:
    """Correlations of run quantities with scores; one row per (quantity, task, metric).

    ``rows`` are plain dicts with the keys of :data:`COLUMNS`.  ``unit`` is ``"checkpoint"``
    (:func:`correlate`) or ``"model"`` (:func:`correlate_models`); ``labels``/``steps`` name the
    matched units; ``values[q]`` are the quantity's values there and ``intervals[q]`` its
    per-unit percentile bootstrap interval ``(n, 2)``; ``scores[(task, metric)]`` is
    ``(value, stderr)`` per unit (NaN where missing).  ``with_step[q]`` is rho of the quantity
    with the training step over the matched checkpoints (shown once: docs/spec.md section 13);
    ``scores_model`` and ``run_model`` name whose scores and whose checkpoints they are.
    """

    rows: tuple
    join: JoinReport
    unit: str
    labels: tuple
    steps: tuple
    values: Mapping[str, np.ndarray]
    intervals: Mapping[str, np.ndarray]
    scores: Mapping[tuple, tuple]
    n_boot: int
    seed: Any
    ci: float
    covariate: Optional[str] = None
    evals_name: str = ""
    notes: tuple = ()
    with_step: Mapping[str, float] = field(default_factory=dict)
    scores_model: str = ""
    run_model: str = ""

    def n_significant(self, alpha: float = 0.05, quantity: Optional[str] = None, *, exact: bool = False) -> int:
        """Rows (of ``quantity`` only, if given) whose Benjamini-Hochberg q-value is below ``alpha``:
        ``q_spearman`` (of scipy's t-approximation p-values), or with ``exact=True`` ``q_exact`` (of
        the exact permutation p-values where n <= 9), the valid count when a row has few units."""
        key = "q_exact" if exact else "q_spearman"
        return sum(1 for r in self.rows if (quantity is None or r["quantity"] == quantity)
                   and math.isfinite(r[key]) and r[key] < alpha)

    def summary(self) -> dict:
        """What ``correlations.json`` records: the scores' source and model, the run's model, the
        table's size, the rows with q < 0.05 (all, and E's) by ``q_spearman`` and by ``q_exact``
        (the valid count), rho of each quantity with the step."""
        return dict(evals=self.evals_name, scores_model=self.scores_model, run_model=self.run_model, unit=self.unit,
                    n_units=len(self.labels), n_rows=len(self.rows), n_q_below_0_05=self.n_significant(),
                    n_E_rows=sum(r["quantity"] == "E" for r in self.rows),
                    n_E_q_below_0_05=self.n_significant(quantity="E"),
                    n_q_exact_below_0_05=self.n_significant(exact=True),
                    n_E_q_exact_below_0_05=self.n_significant(quantity="E", exact=True),
                    rho_with_step={q: (v if math.isfinite(v) else None) for q, v in self.with_step.items()},
                    notes=list(self.notes))

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "rows", tuple(frozen_mapping(r) for r in self.rows))
        for name in ("labels", "steps", "notes"):
            set_(self, name, tuple(getattr(self, name)))
        set_(self, "values", frozen_mapping({q: readonly(v) for q, v in self.values.items()}))
        set_(self, "intervals", frozen_mapping({q: readonly(v) for q, v in self.intervals.items()}))
        set_(self, "scores", frozen_mapping({p: (readonly(v), readonly(e)) for p, (v, e) in self.scores.items()}))
        set_(self, "with_step", frozen_mapping(self.with_step))
        if isinstance(self.seed, list):
            set_(self, "seed", tuple(self.seed))

    @property
    def interval_note(self) -> str:
        """What the bootstrap interval of rho covers and what it does not (:data:`INTERVAL_NOTE`)."""
        return INTERVAL_NOTE

    def to_pandas(self):
        """The rows as a pandas DataFrame (columns :data:`COLUMNS`), sorted by ``|rho|`` (needs pandas)."""
        import pandas as pd
        return pd.DataFrame(self.sorted_rows(), columns=list(COLUMNS))

    def sorted_rows(self) -> list:
        """Rows by decreasing ``|spearman|`` (NaN last)."""
        return sorted(self.rows, key=lambda r: (-abs(r["spearman"]) if math.isfinite(r["spearman"]) else math.inf,
                                                r["quantity"], r["task"], r["metric"]))

    def to_csv(self) -> str:
        """The sorted rows as CSV text (the ``correlations.csv`` of a run directory)."""
        return csv_text(self.sorted_rows(), COLUMNS)

    def format(self, max_rows: Optional[int] = 20, *, more: str = "to_pandas() has them all") -> str:
        """A text table, E's rows first (then by ``|rho|``), and the join report; ``more`` says how
        to see the rows beyond ``max_rows`` (None: all)."""
        from .text import format_correlation
        return format_correlation(self, max_rows, more=more)

    def __repr__(self) -> str:
        best = self.sorted_rows()[:1]
        top = "" if not best or not math.isfinite(best[0]["spearman"]) else (
            f"; strongest: {best[0]['quantity']} ~ {best[0]['task']} {best[0]['metric']} rho "
            f"{best[0]['spearman']:+.3f}")
        return (f"<Correlation over {len(self.labels)} {self.unit}s with {self.evals_name or 'scores'}: "
                f"{len(self.rows)} rows{top}; .format() for the table>")

    def _repr_html_(self) -> str:  # the notebook view (_display.py)
        return correlation_html(self)


# ---------------------------------------------------------------------------------------------
# the statistics


def _pairs(ev: EvalTable, tasks: Optional[Sequence[str]], metric: Any) -> list:
    """The (task, metric) pairs to correlate, validated against the table (``tasks`` and
    ``metric`` as :class:`CorrelationConfig` holds them: tuples of names or None)."""
    metrics = metric
    by_task: dict = {}
    for t, m in _groups(ev):
        by_task.setdefault(t, []).append(m)
    known = tuple(sorted(by_task))
    if tasks is not None:
        unknown = [t for t in tasks if t not in known]
        if unknown:
            raise ValueError(f"task(s) {', '.join(unknown)} not in the eval records {ev.name!r}; known: {_short(known, 12)}")
    pairs: list = []
    for t in (known if tasks is None else tasks):
        have = sorted(by_task[t])
        want = have if metrics is None else [m for m in metrics if m in have]
        if tasks is not None and metrics is not None and not want:
            raise ValueError(f"task {t!r} has no metric {', '.join(metrics)}; it has {', '.join(have)}")
        pairs.extend((t, m) for m in want)
    if not pairs:
        raise ValueError(f"no task of {ev.name!r} has the metric {', '.join(metric or ())}; metrics: "
                         f"{', '.join(ev.metrics())}")
    return pairs


def _quantity_names(run: RunArrays, quantities: Optional[Sequence[str]]) -> list:
    avail = available_quantities(run)
    if quantities is None:
        return list(avail)
    bad = [q for q in quantities if q not in avail]
    if bad:
        raise ValueError(f"quantity(ies) {', '.join(bad)} not available for this run; available: {', '.join(avail)}")
    return list(quantities)


def correlate(run: Any, evals: Any, *, tasks: Optional[Sequence[str]] = DEFAULT, metric: Any = DEFAULT,
              quantities: Optional[Sequence[str]] = DEFAULT, n_boot: int = DEFAULT, seed: int = DEFAULT,
              covariate: Optional[str] = DEFAULT, ci: float = DEFAULT,
              config: Optional[CorrelationConfig] = None) -> Correlation:
    """Correlate the quantities of a run with benchmark scores over its checkpoints (docs/spec.md section 8).

    ``run`` is a :class:`~neuromfa_native.run.series.Series` or a run directory; ``evals`` anything
    :func:`~neuromfa_native.scores.evals.read_evals` reads.  ``tasks`` (default: every task having
    ``metric``) and ``metric`` (a name, a comma-separated list or a sequence; None = all) choose
    the scores; ``quantities`` defaults to every registered quantity the run holds.
    ``covariate`` (a quantity name, or ``"step"``) adds the partial Spearman rho given it.
    ``n_boot`` = 0 skips the bootstrap.  Fewer than 3 matched checkpoints is a ``ValueError``.
    The defaults are :class:`~neuromfa_native.config.CorrelationConfig`'s; ``config=`` gives
    them all at once (keywords given override it).

    Quantities a run reports only as per-checkpoint values (its ``quantities()`` method:
    controls, rival statistics) are correlated on those values, without a bootstrap interval.

    Parameters
    ----------
    run : Series or path
    evals : a source of read_evals
    tasks, metric, quantities, n_boot, seed, covariate, ci :
        as :class:`~neuromfa_native.config.CorrelationConfig`.
    config : CorrelationConfig, optional

    Returns
    -------
    Correlation

    Raises
    ------
    ValueError
        fewer than 3 matched checkpoints, an unknown task, metric, quantity or covariate.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> nm.correlate("no-such-run", {0: {"piqa": 0.5}})  # doctest: +SKIP
    """
    cfg = CorrelationConfig.from_options(config, tasks=tasks, metric=metric, quantities=quantities, n_boot=n_boot,
                                         seed=seed, covariate=covariate, ci=ci)
    tasks, metric, quantities, covariate = cfg.tasks, cfg.metric, cfg.quantities, cfg.covariate
    n_boot, seed, ci = cfg.n_boot, cfg.seed, cfg.ci
    if isinstance(run, (str, os.PathLike)):
        from pathlib import Path

        from ..run.store import load_run
        run = load_run(Path(run))
    r = as_run(run)
    ev = read_evals(evals)
    names = _quantity_names(r, quantities)
    if covariate is not None and covariate != "step":
        avail = available_quantities(r)
        if covariate not in avail:
            raise ValueError(f"covariate {covariate!r} is neither 'step' nor a quantity of this run "
                             f"({', '.join(avail)})")
    pairs = _pairs(ev, tasks, metric)
    groups = _groups(ev)
    sel = {p: groups[p] for p in pairs}
    score_set = {int(s) for st, *_ in sel.values() for s in st}
    score_steps = sorted(score_set)
    cov_names = set() if covariate is None or covariate == "step" else {covariate}
    if RIVAL in available_quantities(r):  # compared with every quantity (docs/spec.md section 13)
        cov_names.add(RIVAL)
    point = point_values(r, sorted(set(names) | cov_names))
    has_result = np.array([all(np.isfinite(point[q][i]) for q in names) for i in range(len(r.labels))])
    ck_steps = set(s for s in r.steps if s is not None)
    idx = [i for i, s in enumerate(r.steps) if s is not None and s in score_set and has_result[i]]
    dups = ev.duplicated_steps() if tasks is None and metric is None else _dup_subset(ev, pairs)
    join = JoinReport(
        matched=tuple(r.labels[i] for i in idx), matched_steps=tuple(r.steps[i] for i in idx),
        without_scores=tuple(r.labels[i] for i, s in enumerate(r.steps)
                             if s is not None and s not in score_set and has_result[i]),
        without_results=tuple(r.labels[i] for i in range(len(r.labels)) if not has_result[i]),
        without_step=tuple(r.labels[i] for i, s in enumerate(r.steps) if s is None),
        scores_without_checkpoint=tuple(s for s in score_steps if s not in ck_steps),
        duplicated_scores={s: o for s, o in dups.items() if s in score_steps})
    if len(idx) < MIN_MATCHED:
        raise ValueError(f"only {len(idx)} checkpoint(s) of the run have both a result and a score "
                         f"(steps {list(join.matched_steps)}); a correlation needs at least {MIN_MATCHED}. "
                         + "; ".join(join.lines()))
    scores, hib = {}, {}
    for p, (st, val, err, _) in sel.items():
        pos = {int(s): k for k, s in enumerate(st)}
        v = np.full(len(idx), np.nan)
        e = np.full(len(idx), np.nan)
        for j, i in enumerate(idx):
            k = pos.get(r.steps[i])
            if k is not None:
                v[j], e[j] = val[k], err[k]
        scores[p] = (v, e)
        hib[p] = bool(groups[p][3])
    boot_all = boot_values(r, sorted(set(names) | cov_names), n_boot, seed) if n_boot else None
    values = {q: point[q][idx] for q in names}
    boot = None if boot_all is None else {q: None if boot_all[q] is None else boot_all[q][idx] for q in names}
    steps = np.array([float(r.steps[i]) for i in idx])
    cov = None
    if covariate == "step":
        cov = steps
    elif covariate is not None:
        cov = point[covariate][idx]
    rival = None
    if RIVAL in point:
        rival = (point[RIVAL][idx], None if boot_all is None or boot_all[RIVAL] is None else boot_all[RIVAL][idx])
    rows = correlation_rows(join.matched, values, boot, scores, hib, cov, covariate, n_boot, seed, ci, steps=steps,
                            rival=rival)
    ivs = intervals(boot_all, names, len(r.labels), ci)
    notes = list(ev.notes)
    model = run_model(run)
    mismatch = model_mismatch(ev.model, model)
    if mismatch:
        notes.append(mismatch)
        warnings.warn(mismatch, ScoresModelWarning, stacklevel=2)
    with_step = {q: _rho(values[q], steps) for q in names}
    return Correlation(rows=tuple(rows), join=join, unit="checkpoint", labels=join.matched, steps=join.matched_steps,
                       values=values, intervals={q: iv[idx] for q, iv in ivs.items()}, scores=scores,
                       n_boot=int(n_boot), seed=seed, ci=float(ci), covariate=covariate, evals_name=ev.name,
                       notes=tuple(notes), with_step=with_step, scores_model=ev.model, run_model=model)


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    return rc.spearman(x[ok], y[ok]) if ok.sum() >= MIN_MATCHED else math.nan


def _groups(ev: EvalTable) -> dict:
    """``{(task, metric): (step, value, stderr, higher_is_better)}`` in one pass over the table."""
    idx: dict = {}
    for i, key in enumerate(zip(ev.task.tolist(), ev.metric.tolist())):
        idx.setdefault(key, []).append(i)
    out = {}
    for key, ii in idx.items():
        ii = np.array(ii)
        out[key] = (ev.step[ii], ev.value[ii], ev.stderr[ii], bool(ev.higher_is_better[ii[0]]))
    return out


def _dup_subset(ev: EvalTable, pairs) -> dict:
    keep = np.zeros(len(ev), dtype=bool)
    for t, m in pairs:
        keep |= (ev.task == t) & (ev.metric == m)
    sub = EvalTable(**{c: getattr(ev, c)[keep] for c in EVAL_COLUMNS}, name=ev.name)
    return sub.duplicated_steps()


def correlate_models(runs: Mapping[str, Any], evals_by_name: Mapping[str, Any], *, step: int,
                     tasks: Optional[Sequence[str]] = DEFAULT, metric: Any = DEFAULT,
                     quantities: Optional[Sequence[str]] = DEFAULT, n_boot: int = DEFAULT, seed: int = DEFAULT,
                     covariate: Optional[str] = DEFAULT, ci: float = DEFAULT,
                     config: Optional[CorrelationConfig] = None) -> Correlation:
    """Correlate across models at one training step (docs/spec.md section 8): ``runs`` maps a model name to a
    Series or run directory, ``evals_by_name`` the same names to eval sources; n = models.

    Each model's quantities come from its own run (E relative to its own baseline) at the
    checkpoint with that ``step``; the bootstrap resamples each model's samples independently.
    Models without that step, without results there or without scores are listed in the join.
    Options and defaults as :func:`correlate`.

    Parameters
    ----------
    runs : mapping of name to Series or path
    evals_by_name : mapping of name to eval source
    step : int
    tasks, metric, quantities, n_boot, seed, covariate, ci, config :
        as :func:`correlate`.

    Returns
    -------
    Correlation

    Raises
    ------
    ValueError
        fewer than 3 models with a result and a score at ``step``.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> nm.correlate_models({"a": "run-a"}, {"a": "pythia:70m"}, step=1000)  # doctest: +SKIP
    """
    cfg = CorrelationConfig.from_options(config, tasks=tasks, metric=metric, quantities=quantities, n_boot=n_boot,
                                         seed=seed, covariate=covariate, ci=ci)
    tasks, metric, quantities, covariate = cfg.tasks, cfg.metric, cfg.quantities, cfg.covariate
    n_boot, seed, ci = cfg.n_boot, cfg.seed, cfg.ci
    if not isinstance(runs, Mapping) or not isinstance(evals_by_name, Mapping):
        raise TypeError("runs and evals_by_name must be mappings from model name")
    missing = [k for k in runs if k not in evals_by_name]
    if missing:
        raise ValueError(f"no eval source for model(s) {', '.join(map(str, missing))}")
    step = int(step)
    loaded = {k: as_run(v) for k, v in runs.items()}
    evs = {k: read_evals(evals_by_name[k]) for k in runs}
    common: Optional[set] = None
    for r in loaded.values():
        avail = set(_quantity_names(r, quantities))
        common = avail if common is None else common & avail
    names = [q for q in QUANTITIES if q in (common or set())]
    if covariate is not None and covariate not in names:
        raise ValueError(f"covariate {covariate!r} is not a quantity of every run ({', '.join(names)})")
    pair_sets = [set(_pairs(e, tasks, metric)) for e in evs.values()]
    pairs = sorted(set.intersection(*pair_sets)) if pair_sets else []
    if not pairs:
        raise ValueError("the models' eval records share no (task, metric)")
    labels: list = []
    values: dict[str, list] = {q: [] for q in names}
    boots: dict[str, list] = {q: [] for q in names}
    scores: dict[tuple, tuple[list, list]] = {p: ([], []) for p in pairs}
    hib: dict = {}
    no_step, no_result, no_score = [], [], []
    for mi, (k, r) in enumerate(loaded.items()):
        if step not in r.steps:
            no_step.append(k)
            continue
        i = r.steps.index(step)
        point = point_values(r, names)
        if not all(np.isfinite(point[q][i]) for q in names):
            no_result.append(k)
            continue
        ev = evs[k]
        got = {p: ev.select(*p) for p in pairs}
        if not any(step in set(st.tolist()) for st, _, _ in got.values()):
            no_score.append(k)
            continue
        labels.append(k)
        b = boot_values(r, names, n_boot, [*[int(s) for s in np.atleast_1d(seed)], mi]) if n_boot else None
        for q in names:
            values[q].append(point[q][i])
            boots[q].append(None if b is None or b[q] is None else b[q][i])
        for p, (st, val, err) in got.items():
            hit = np.nonzero(st == step)[0]
            scores[p][0].append(val[hit[0]] if hit.size else np.nan)
            scores[p][1].append(err[hit[0]] if hit.size else np.nan)
            if hit.size:
                hib[p] = bool(ev.higher_is_better[(ev.task == p[0]) & (ev.metric == p[1])][0])
    join = JoinReport(matched=tuple(labels), matched_steps=tuple(step for _ in labels), without_scores=tuple(no_score),
                      without_results=tuple(no_result), without_step=tuple(no_step))
    if len(labels) < MIN_MATCHED:
        raise ValueError(f"only {len(labels)} model(s) have a result and a score at step {step}; a correlation "
                         f"needs at least {MIN_MATCHED}. " + "; ".join(
                             [f"no checkpoint at step {step}: {', '.join(no_step)}"] * bool(no_step)
                             + [f"no result: {', '.join(no_result)}"] * bool(no_result)
                             + [f"no score: {', '.join(no_score)}"] * bool(no_score)))
    vals = {q: np.array(v, dtype=float) for q, v in values.items()}
    boot = None if not n_boot else {q: None if any(x is None for x in b) else np.vstack(b) for q, b in boots.items()}
    sc = {p: (np.array(v, dtype=float), np.array(e, dtype=float)) for p, (v, e) in scores.items()}
    for p in pairs:
        hib.setdefault(p, True)
    cov = None if covariate is None else vals[covariate]
    rows = correlation_rows(tuple(labels), vals, boot, sc, hib, cov, covariate, n_boot, seed, ci, units="models")
    return Correlation(rows=tuple(rows), join=join, unit="model", labels=tuple(labels),
                       steps=tuple(step for _ in labels), values=vals, intervals=intervals(boot, names, len(labels), ci),
                       scores=sc, n_boot=int(n_boot), seed=seed, ci=float(ci), covariate=covariate,
                       evals_name=f"scores at step {step}")
