"""The result of a checkpoint series: per-sample spectra and their per-checkpoint aggregate.

- :class:`Series` holds the per-sample results of every checkpoint and their statistics (mean
  and standard deviation of alpha0 and width, the degree of emergence E (docs/spec.md section
  4) and its bootstrap confidence interval); missing values are NaN.
- :func:`summarize` builds it from per-sample results (a run in progress, or a run directory).

Sample ``k`` selects the same neurons in every checkpoint (docs/spec.md section 1.2), so a
series follows the same sampled networks through training.  Checkpoints with byte-identical
weights (docs/spec.md section 7) are reported in ``identical_to``.  Running a series is
:func:`~neuromfa_native.run.runner.analyze_series`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from .._results import fields_equal, frozen_mapping, readonly
from ..science.analysis import NodeDimensions, SampleResult
from .checkpoints import Checkpoint, baseline_index
from ..config import DEFAULT_CONFIG, AnalysisConfig
from ..mfa.stats import bootstrap_emergence, checkpoint_statistics
from ..plots.series import draw_overview
from ._display import series_html

__all__ = ["Series", "summarize"]


@dataclass(frozen=True, eq=False)
class Series:
    """Spectra of a checkpoint series and their per-checkpoint aggregate.

    ``results[t]`` are the available per-sample results of checkpoint ``t`` (ordered by
    sample; fewer than ``samples`` for a partial run).  Statistics use the results that pass
    ``filter`` (docs/spec.md section 3); the standard deviations use ``ddof=1`` (0 for one sample).  E is
    computed from the means (docs/spec.md section 4) relative to checkpoint ``baseline``; ``emergence_ci`` is
    the bootstrap interval of :func:`bootstrap_emergence`.  NaN marks what cannot be computed
    yet (no sample, or no baseline sample), as in :class:`~neuromfa_native.Analysis`.

    ``config`` is the run's result configuration (:meth:`AnalysisConfig.result_json`, a
    read-only mapping); ``notes`` are run-level warnings (e.g. non-finite weights found while
    fingerprinting), also written to the run's tables.
    """

    checkpoints: tuple
    samples: tuple
    results: tuple
    config: Mapping[str, Any]
    baseline: int
    filter: str
    fingerprints: tuple
    identical_to: tuple
    n_kept: np.ndarray
    alpha0_mean: np.ndarray
    alpha0_std: np.ndarray
    width_mean: np.ndarray
    width_std: np.ndarray
    emergence: np.ndarray
    emergence_ci: np.ndarray
    bootstrap: Mapping[str, Any] = field(default_factory=dict)
    n_computed: int = 0
    n_reused: int = 0
    notes: tuple = ()

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", frozen_mapping(self.config))
        object.__setattr__(self, "bootstrap", frozen_mapping(self.bootstrap))
        object.__setattr__(self, "notes", tuple(self.notes))

    def __repr__(self) -> str:
        n = len(self.checkpoints)
        span = f" ({self.checkpoints[0].label} ... {self.checkpoints[-1].label})" if n > 1 else (
            f" ({self.checkpoints[0].label})" if n else "")
        e = np.asarray(self.emergence, dtype=float)
        ok = np.flatnonzero(np.isfinite(e))
        last = ""
        if ok.size:
            t = int(ok[-1])
            lo, hi = self.emergence_ci[t]
            last = f": E at {self.checkpoints[t].label} {e[t]:+.4f} [{lo:+.4f}, {hi:+.4f}]"
        base = f", baseline {self.checkpoints[self.baseline].label}" if n else ""
        miss = "" if self.complete else f"; partial, {len(self.missing)} result(s) missing"
        sampling = "full network" if self.config.get("per_layer") is None else f"{len(self.samples)} samples"
        return f"<Series of {n} checkpoints{span}, {sampling}{last}{base}{miss}>"

    @property
    def steps(self) -> np.ndarray:
        return np.array([c.step for c in self.checkpoints])

    @property
    def labels(self) -> tuple:
        return tuple(c.label for c in self.checkpoints)

    @property
    def complete(self) -> bool:
        """Whether every (checkpoint, sample) result is present."""
        want = 1 if self.config.get("per_layer") is None else len(self.samples)
        return all(len(r) == want for r in self.results)

    @property
    def missing(self) -> list:
        """``(label, sample)`` of every result not present yet."""
        out: list = []
        ids = (None,) if self.config.get("per_layer") is None else self.samples
        for c, rs in zip(self.checkpoints, self.results):
            have = {r.sample for r in rs}
            out.extend((c.label, k) for k in ids if k not in have)
        return out

    def checkpoint_rows(self) -> list:
        """One plain dict per checkpoint: step, statistics, E and its interval, identical_to."""
        rows: list = []
        for t, c in enumerate(self.checkpoints):
            rows.append(dict(
                step=c.step, checkpoint=c.label, source=c.spec, n_samples=len(self.results[t]),
                n_kept=int(self.n_kept[t]), alpha0_mean=float(self.alpha0_mean[t]),
                alpha0_std=float(self.alpha0_std[t]), width_mean=float(self.width_mean[t]),
                width_std=float(self.width_std[t]), emergence=float(self.emergence[t]),
                emergence_low=float(self.emergence_ci[t, 0]), emergence_high=float(self.emergence_ci[t, 1]),
                is_baseline=t == self.baseline, identical_to=self.identical_to[t] or "",
                fingerprint=self.fingerprints[t] or "", notes=self.notes[t]))
        return rows

    def sample_rows(self) -> list:
        """The tidy table: one plain dict per (checkpoint, sample)."""
        rows: list = []
        for c, rs in zip(self.checkpoints, self.results):
            for r in rs:
                row = r.row()
                row.pop("checkpoint", None)
                rows.append(dict(step=c.step, checkpoint=c.label, **row,
                                 kept=r.spectrum.passes(self.filter)))
        return rows

    def node_dimension_rows(self) -> list:
        """Per (checkpoint, node layer): node fractal dimension statistics pooled over samples."""
        rows: list = []
        for c, rs in zip(self.checkpoints, self.results):
            dims = [r.node_dimensions for r in rs if r.node_dimensions is not None]
            if not dims:
                continue
            rows.extend(dict(step=c.step, checkpoint=c.label, **row) for row in NodeDimensions.pool(dims).summary())
        return rows

    def table(self):
        """Per-checkpoint pandas DataFrame (needs pandas)."""
        import pandas as pd
        return pd.DataFrame(self.checkpoint_rows())

    def sample_table(self):
        """Per-(checkpoint, sample) pandas DataFrame (needs pandas)."""
        import pandas as pd
        return pd.DataFrame(self.sample_rows())

    # -- notebook view (_display.py) and the overview figure (plots/series.py) --
    def _repr_html_(self) -> str:
        return series_html(self)

    def plot(self, fig=None):
        """Draw the overview (spectra, E, alpha0, width) on ``fig`` (new when None); returns it."""
        return draw_overview(self, fig)

    # --- controls and rival statistics (docs/controls.md; computed in controls.py) ---
    def quantities(self) -> dict:
        """``{quantity name: per-checkpoint float array}`` for correlation with benchmark scores:
        ``E``, ``alpha0``, ``width``; per control ``E_<c>``, ``alpha0_<c>``, ``width_<c>``; and
        the pooled rival statistics (``rms``, ``mean_abs``, ``kurtosis``, ``weibull_k``,
        ``weibull_lambda``, ``kept_fraction``, ``mean_strength``) when the run has them."""
        from ..science.controls import quantities
        return quantities(self)

    def control_rows(self) -> list:
        """Rows of ``controls.csv`` (empty without controls)."""
        from ..science.controls import control_rows
        return control_rows(self)

    def stats_rows(self) -> list:
        """Rows of ``stats.csv`` (empty without statistics)."""
        from ..science.controls import stats_rows
        return stats_rows(self)

    def verdict(self, step: Any = None):
        """The answer of the run (docs/spec.md section 13): is E more than weight scale?  See
        :func:`~neuromfa_native.verdict`; ``step`` is the verdict step (default: the last
        checkpoint with a result)."""
        from .verdict import verdict
        return verdict(self, step)

    def spectra_arrays(self) -> dict:
        """Spectra as dense arrays ``(checkpoint, sample, ...)``, NaN where a result is missing."""
        ids = (None,) if self.config.get("per_layer") is None else self.samples
        q = np.asarray(self.config.get("q"), dtype=float)
        n, k, m = len(self.checkpoints), len(ids), q.size
        out = dict(q=q, step=self.steps, label=np.array(self.labels, dtype=str),
                   sample=np.array([-1 if s is None else s for s in ids]),
                   tau=np.full((n, k, m), np.nan), alpha=np.full((n, k, m - 1), np.nan),
                   f=np.full((n, k, m - 1), np.nan), alpha0=np.full((n, k), np.nan),
                   width=np.full((n, k), np.nan), kept=np.zeros((n, k), bool), present=np.zeros((n, k), bool))
        pos = {s: j for j, s in enumerate(ids)}
        for t, rs in enumerate(self.results):
            for r in rs:
                j = pos.get(r.sample)
                if j is None:
                    continue
                s = r.spectrum
                out["tau"][t, j], out["alpha"][t, j], out["f"][t, j] = s.tau, s.alpha, s.f
                out["alpha0"][t, j], out["width"][t, j] = s.alpha0, s.width
                out["kept"][t, j] = s.passes(self.filter)
                out["present"][t, j] = True
        return out


def summarize(checkpoints: Sequence[Checkpoint], results: Sequence[Sequence[SampleResult]], *,
              config: Union[AnalysisConfig, Mapping[str, Any]], samples: Sequence[int], baseline: Any = None,
              filter: str = DEFAULT_CONFIG.filter, fingerprints: Optional[Sequence[Optional[str]]] = None,
              n_bootstrap: int = DEFAULT_CONFIG.n_bootstrap, ci: float = DEFAULT_CONFIG.ci,
              seed: int = DEFAULT_CONFIG.seed, n_computed: int = 0, n_reused: int = 0,
              notes: Sequence[str] = ()) -> Series:
    """Aggregate per-sample results (one sequence per checkpoint) into a :class:`Series`.

    ``config`` is an :class:`AnalysisConfig` or its :meth:`~AnalysisConfig.result_json`;
    ``filter`` and the bootstrap options are checked as in :class:`AnalysisConfig`.  ``notes``:
    one run-level note per checkpoint (``""`` for none), or none at all.
    """
    agg = AnalysisConfig(filter=filter, n_bootstrap=n_bootstrap, ci=ci, seed=seed)  # validates them
    if isinstance(config, AnalysisConfig):
        config = config.result_json()
    cps = tuple(checkpoints)
    if len(results) != len(cps):
        raise ValueError(f"results must have one entry per checkpoint ({len(cps)}), got {len(results)}")
    b = baseline_index(cps, baseline)
    fps = tuple(fingerprints) if fingerprints is not None else (None,) * len(cps)
    res = tuple(tuple(sorted(rs, key=lambda r: -1 if r.sample is None else r.sample)) for rs in results)
    kept = [[r for r in rs if r.spectrum.passes(filter)] for rs in res]
    a0 = [np.array([r.alpha0 for r in k], dtype=float) for k in kept]
    wd = [np.array([r.width for r in k], dtype=float) for k in kept]
    st = checkpoint_statistics(a0, wd, b)
    e_ci = bootstrap_emergence(a0, wd, baseline=b, n_bootstrap=agg.n_bootstrap, ci=agg.ci, seed=agg.seed)
    return Series(
        checkpoints=cps, samples=tuple(samples), results=res, config=config, baseline=b, filter=filter,
        fingerprints=fps, identical_to=_identical_to(cps, fps), n_kept=readonly(np.array([len(k) for k in kept])),
        alpha0_mean=readonly(st["alpha0_mean"]), alpha0_std=readonly(st["alpha0_std"]),
        width_mean=readonly(st["width_mean"]), width_std=readonly(st["width_std"]),
        emergence=readonly(st["emergence"]), emergence_ci=readonly(e_ci),
        bootstrap=dict(n_bootstrap=agg.n_bootstrap, ci=agg.ci, seed=agg.seed), n_computed=int(n_computed),
        n_reused=int(n_reused), notes=tuple(notes) if len(notes) else ("",) * len(cps))


def _identical_to(cps: Sequence[Checkpoint], fps: Sequence[Optional[str]]) -> tuple:
    """For each checkpoint, the label of the first earlier one with the same fingerprint."""
    first: dict = {}
    identical: list = []
    for c, fp in zip(cps, fps):
        if fp is None:
            identical.append(None)
            continue
        identical.append(first[fp] if fp in first else None)
        first.setdefault(fp, c.label)
    return tuple(identical)
