"""The quantities a run offers for correlation, and a run as arrays.

A *component* is a per-sample value of every checkpoint (``alpha0``, ``width``;
:func:`register_component` adds more, e.g. a control's alpha0) and a *quantity* is a function
of the per-checkpoint component means (:func:`register_quantity`; :func:`emergence_of` builds
an E from any alpha0/width pair).  A quantity is available for a run when all its components
are.  Point values come from the sample means; bootstrap values from resampled means.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._results import fields_equal, frozen_mapping, readonly
from ..mfa import stats

__all__ = ["QUANTITIES", "Quantity", "RunArrays", "as_run", "available_quantities", "boot_values", "point_values", "emergence_of", "register_component", "register_quantity"]


# ---------------------------------------------------------------------------------------------
# the quantity registry


def _series_samples(series, which: str) -> list:
    """Per-checkpoint arrays of the per-sample ``alpha0`` or ``width`` values that enter the
    series' statistics (the samples passing its spectrum filter), from
    :meth:`~neuromfa_native.run.series.Series.spectra_arrays`."""
    arrays = series.spectra_arrays()
    return [arrays[which][t][arrays["kept"][t]] for t in range(len(series.checkpoints))]


#: name -> function(series) returning per-checkpoint per-sample arrays, or None if the run lacks it.
_COMPONENTS: dict = {
    "alpha0": lambda s: _series_samples(s, "alpha0"),
    "width": lambda s: _series_samples(s, "width"),
}


@dataclass(frozen=True)
class Quantity:
    """A per-checkpoint quantity: ``value(means, baseline)`` maps the component means
    (``{component: array of shape (n_checkpoints,) or (n_checkpoints, B)}``) to its values.
    ``reported``: the point values are the run's own (its ``quantities()``: controls.csv,
    stats.csv) and the components give only the bootstrap replicates."""

    name: str
    components: tuple
    value: Callable
    description: str = ""
    reported: bool = False


QUANTITIES: dict = {}


def register_component(name: str, extract: Callable) -> None:
    """Register a per-sample component: ``extract(series)`` returns one array of per-sample
    values per checkpoint (the samples that enter the statistics), or None when the run does
    not hold it.  Components of the same sample count are resampled together."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"component name must be a non-empty string, got {name!r}")
    _COMPONENTS[name] = extract


def register_quantity(name: str, components: Sequence[str], value: Callable, description: str = "",
                      reported: bool = False) -> Quantity:
    """Register a quantity computed from component means (see :class:`Quantity`)."""
    unknown = [c for c in components if c not in _COMPONENTS]
    if unknown:
        raise ValueError(f"quantity {name!r} uses unknown component(s) {unknown}; register them first "
                         f"(known: {', '.join(_COMPONENTS)})")
    q = Quantity(name=name, components=tuple(components), value=value, description=description, reported=reported)
    QUANTITIES[name] = q
    return q


def emergence_of(alpha0: str, width: str) -> Callable:
    """The value function of E (docs/spec.md section 4) from an alpha0 and a width component."""
    def value(means: dict, baseline: int) -> np.ndarray:
        return stats.emergence_from_means(means[alpha0], means[width], baseline)
    return value


register_quantity("E", ("alpha0", "width"), emergence_of("alpha0", "width"),
                  "degree of emergence (docs/spec.md section 4) relative to the run's baseline")
register_quantity("alpha0", ("alpha0",), lambda m, b: m["alpha0"], "mean alpha0 over the samples")
register_quantity("width", ("width",), lambda m, b: m["width"], "mean spectrum width over the samples")


def _control_samples(control: str, which: str) -> Callable:
    """Per-checkpoint per-sample alpha0 or width of a control's networks (the samples its
    spectrum filter keeps, as controls.csv averages them); None without that control."""
    def extract(series) -> Any:
        if control not in tuple((getattr(series, "config", None) or {}).get("controls", ())):
            return None
        out = []
        for rs in series.results:
            specs = [(getattr(r, "controls", None) or {}).get(control) for r in rs]
            out.append(np.array([getattr(x, which) for x in specs if x is not None and x.passes(series.filter)],
                                dtype=float))
        return out
    return extract


def _statistic_samples(statistic: str) -> Callable:
    """Per-checkpoint per-sample pooled value of a rival statistic (every sample with a result,
    as stats.csv averages them); None when the run has no statistics."""
    def extract(series) -> Any:
        out, found = [], False
        for rs in series.results:
            vals = []
            for r in rs:
                ws = getattr(r, "weight_stats", None)
                if ws is not None and statistic in ws.statistics:
                    vals.append(float(ws.values[-1, ws.statistics.index(statistic)]))
            found |= bool(vals)
            out.append(np.array(vals, dtype=float))
        return out if found else None
    return extract


def _register_controls_and_statistics() -> None:
    """E, alpha0 and width of each control (docs/spec.md section 9) and the pooled rival
    statistics (section 10) as quantities with per-sample components, so that they get a
    bootstrap interval from the same resampling as E (their point values stay the run's own)."""
    from ..config import CONTROLS
    from ..science.weight_stats import STATISTICS

    for c in CONTROLS:
        register_component(f"alpha0_{c}", _control_samples(c, "alpha0"))
        register_component(f"width_{c}", _control_samples(c, "width"))
        register_quantity(f"E_{c}", (f"alpha0_{c}", f"width_{c}"), emergence_of(f"alpha0_{c}", f"width_{c}"),
                          f"E of the {c} control", reported=True)
        register_quantity(f"alpha0_{c}", (f"alpha0_{c}",), lambda m, b, k=f"alpha0_{c}": m[k],
                          f"mean alpha0 of the {c} control", reported=True)
        register_quantity(f"width_{c}", (f"width_{c}",), lambda m, b, k=f"width_{c}": m[k],
                          f"mean width of the {c} control", reported=True)
    for st in STATISTICS:
        register_component(f"stat_{st}", _statistic_samples(st))
        register_quantity(st, (f"stat_{st}",), lambda m, b, k=f"stat_{st}": m[k], f"pooled rival statistic {st}",
                          reported=True)


_register_controls_and_statistics()


# ---------------------------------------------------------------------------------------------
# a run as arrays


@dataclass(frozen=True, eq=False)
class RunArrays:
    """A run as the correlation reads it: per-sample component values of every checkpoint."""

    labels: tuple
    steps: tuple          # int or None per checkpoint
    baseline: int
    components: Mapping[str, Sequence[np.ndarray]]  # name -> per-checkpoint arrays of per-sample values
    point_only: Mapping[str, np.ndarray]  # name -> per-checkpoint values without samples (no interval)

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", frozen_mapping(
            {k: tuple(readonly(a) for a in v) for k, v in self.components.items()}))
        object.__setattr__(self, "point_only", frozen_mapping({k: readonly(v) for k, v in self.point_only.items()}))

    def __repr__(self) -> str:
        def names(d: Mapping) -> str:
            return ", ".join(list(d)[:4]) + (", ..." if len(d) > 4 else "")
        return (f"<RunArrays: {len(self.labels)} checkpoints, {len(self.components)} components ({names(self.components)})"
                + (f", {len(self.point_only)} without samples ({names(self.point_only)})" if self.point_only else "")
                + ">")


def as_run(run: Any) -> RunArrays:
    if isinstance(run, (str, os.PathLike)):
        from pathlib import Path

        from ..run.store import load_run
        run = load_run(Path(run))
    if not hasattr(run, "checkpoints") or not hasattr(run, "results"):
        raise TypeError(f"run must be a Series or a run directory, got {type(run).__name__}")
    comps = {}
    for name, extract in _COMPONENTS.items():
        arrs = extract(run)
        if arrs is not None:
            comps[name] = [np.asarray(a, dtype=float) for a in arrs]
    # a position (no step in the name, none given) is no training step: such a checkpoint joins
    # no score (it is listed as without a step)
    steps = tuple(None if c.step is None or not getattr(c, "step_parsed", True) else int(c.step)
                  for c in run.checkpoints)
    known = [s for s in steps if s is not None]
    if len(set(known)) != len(known):
        dup = sorted({s for s in known if known.count(s) > 1})
        raise ValueError(f"the run has several checkpoints at step(s) {dup}: cannot join scores on the step")
    return RunArrays(labels=tuple(run.labels), steps=steps, baseline=int(run.baseline), components=comps,
                     point_only=_reported_quantities(run, comps))


def _reported_quantities(run: Any, components: dict) -> dict:
    """The per-checkpoint quantities a run reports through a ``quantities()`` method (controls,
    rival statistics: ``E_<control>``, ``rms``, ...) that the registry does not compute from
    per-sample components: correlated on their values, without a bootstrap interval."""
    method = getattr(run, "quantities", None)
    if not callable(method):
        return {}
    computed = {q.name for q in QUANTITIES.values() if all(c in components for c in q.components)
                and not q.reported}
    n = len(run.checkpoints)
    out = {}
    for name, values in dict(method()).items():
        if name in computed:
            continue
        arr = np.asarray(values, dtype=float)
        if arr.shape != (n,):
            raise ValueError(f"the run's quantity {name!r} has shape {arr.shape}; expected one value per "
                             f"checkpoint ({n},)")
        out[str(name)] = arr
    return out


def available_quantities(run: Any) -> tuple:
    """Names of the registered quantities whose components the run holds, then those the run
    reports without per-sample values."""
    r = run if isinstance(run, RunArrays) else as_run(run)
    return tuple(dict.fromkeys(_computed(r) + tuple(r.point_only)))


def _computed(run: RunArrays) -> tuple:
    """Names of the registered quantities whose components the run holds (their point values
    come from the components, or from the run itself for a ``reported`` quantity)."""
    return tuple(q.name for q in QUANTITIES.values() if all(c in run.components for c in q.components)
                 and (not q.reported or q.name in run.point_only))


def point_values(run: RunArrays, names: Sequence[str]) -> dict:
    means = {c: stats.means(a) for c, a in run.components.items()}
    return {q: (run.point_only[q] if q in run.point_only
                else np.asarray(QUANTITIES[q].value(means, run.baseline), dtype=float)) for q in names}


def boot_values(run: RunArrays, names: Sequence[str], n_boot: int, seed: Any) -> dict:
    """Replicates ``(n_checkpoints, n_boot)`` of each quantity (None for a point-only one).

    Components with equal sample counts are resampled together by
    :func:`~neuromfa_native.mfa.stats.bootstrap_means`, the draw of the series' own E interval: the
    first group (alpha0 and width) with ``seed``, so E's per-checkpoint interval reproduces
    the series' ``emergence_ci``; further groups with seeds derived from it."""
    computed = [q for q in names if q in _computed(run)]
    needed = sorted({c for q in computed for c in QUANTITIES[q].components}, key=list(run.components).index)
    groups: dict = {}
    for c in needed:
        groups.setdefault(tuple(a.size for a in run.components[c]), []).append(c)
    means: dict = {}
    for gi, comps in enumerate(groups.values()):
        g_seed = seed if gi == 0 else [*np.atleast_1d(seed).tolist(), 7919, gi]
        means.update(stats.bootstrap_means({c: run.components[c] for c in comps}, n_boot, g_seed))
    return {q: np.asarray(QUANTITIES[q].value(means, run.baseline), dtype=float) if q in computed else None
            for q in names}
