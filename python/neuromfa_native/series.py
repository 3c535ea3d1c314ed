"""Following training: a series of checkpoints, the same sampled neurons in each, and emergence.

- :func:`make_series` turns paths, hub ids or one hub id with revisions into ordered
  :class:`Checkpoint` objects, each with a training step parsed from its name.
- :func:`analyze_series` runs every (checkpoint, sample) task, in process or on any
  ``concurrent.futures.Executor`` (process pools with spawn/forkserver, Dask's
  ``client.get_executor()``), writes each result atomically to a run directory as soon as it
  exists (:mod:`.store`), skips what a previous run finished, and returns a :class:`Series`.
- :func:`summarize` aggregates per-sample results into the per-checkpoint statistics: mean and
  standard deviation of alpha0 and width, the degree of emergence E (SPEC section 4) and its
  bootstrap confidence interval over the samples.

Sample ``k`` selects the same neurons in every checkpoint (SPEC 1.2), so a series follows the
same sampled networks through training.  Checkpoints with byte-identical weights (SPEC 7) are
detected from their weight fingerprints, warned about, reported in ``identical_to``, and
analysed once.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import itertools
import json
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from .analysis import NodeDimensions, SampleResult, analyze_sample, check_samples, progress_bar
from .engine import SPECTRUM_FILTERS, _check_box, _check_params, _check_q, _check_threads
from .nin import fingerprint, load_layout
from .sources import resolve_source

__all__ = ["Checkpoint", "Series", "analyze_series", "bootstrap_emergence", "make_series", "parse_step",
           "summarize"]

_STEP_RE = re.compile(r"(?:^|[^a-z0-9])(?:global[_-]?step|step|checkpoint|ckpt|iter|iteration)[_-]?(\d+)(?![0-9])",
                      re.IGNORECASE)
_WEIGHT_FILE_RE = re.compile(r"^(model|pytorch_model).*\.(safetensors|bin|index\.json)$")


def parse_step(name: str) -> Optional[int]:
    """Training step from a checkpoint name such as ``step1000``, ``checkpoint-500`` or
    ``global_step20``, else ``None``.  The last match in the name wins."""
    found = _STEP_RE.findall(str(name))
    return int(found[-1]) if found else None


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint of a series: where it is (``source`` + ``revision``), how it is named in
    tables (``label``) and its training ``step`` (parsed from the name, else its position)."""

    source: str
    revision: Optional[str]
    label: str
    step: int
    step_parsed: bool = True

    @property
    def spec(self) -> str:
        """The source as one string (``org/name@rev`` for hub revisions)."""
        return f"{self.source}@{self.revision}" if self.revision else self.source

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _label_of(source: str) -> str:
    if "@" in source and not os.path.exists(source):
        return source.rsplit("@", 1)[1] or source
    p = Path(source)
    if p.is_file() and _WEIGHT_FILE_RE.match(p.name):
        p = p.parent
    name = p.name if p.name not in ("", ".", "..") else str(p.resolve().name)
    return name[: -len(".safetensors")] if name.endswith(".safetensors") else name


def make_series(sources: Union[str, os.PathLike, Sequence[Any]], *, revisions: Optional[Sequence[str]] = None,
                steps: Optional[Sequence[int]] = None, labels: Optional[Sequence[str]] = None,
                sort: bool = True) -> tuple:
    """Ordered checkpoints of one model.

    Parameters
    ----------
    sources:
        local directories/files or hub ids (``org/name@rev``), or exactly one hub id when
        ``revisions`` is given.  :class:`Checkpoint` objects are passed through.
    revisions:
        hub revisions (e.g. ``["step0", "step1000"]``) of the one hub id in ``sources``.
    steps, labels:
        explicit training steps / table names, one per checkpoint.  By default the label is the
        directory name (or the revision) and the step is parsed from it (:func:`parse_step`);
        if some name has no step, every checkpoint gets its position as its step.
    sort:
        order the checkpoints by step when every step was given or parsed (a shell glob such as
        ``step*`` lists ``step250`` before ``step64``).  Otherwise the given order is kept.
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = list(sources)
    if not sources:
        raise ValueError("sources must name at least one checkpoint, got none")
    if all(isinstance(s, Checkpoint) for s in sources) and revisions is None and steps is None and labels is None:
        cps = tuple(sources)
        _check_unique(cps)
        return tuple(sorted(cps, key=lambda c: c.step)) if sort and all(c.step_parsed for c in cps) else cps
    for s in sources:
        if not isinstance(s, (str, os.PathLike)):
            raise TypeError(f"sources must be paths or hub ids (tasks carry names, not tensors), "
                            f"got {type(s).__name__}")
    sources = [os.fspath(s) for s in sources]
    if revisions is not None:
        if isinstance(revisions, str):
            revisions = [r for r in revisions.split(",")]
        revisions = [str(r).strip() for r in revisions]
        if not revisions or any(not r for r in revisions):
            raise ValueError(f"revisions must be non-empty names, got {revisions!r}")
        if len(sources) != 1:
            raise ValueError(f"revisions need exactly one hub id in sources, got {len(sources)} sources")
        repo = sources[0]
        if "@" in repo:
            raise ValueError(f"sources[0] {repo!r} already names a revision; drop '@...' or drop revisions")
        if os.path.exists(repo):
            raise ValueError(f"revisions only apply to hub ids, but {repo!r} is a local path")
        pairs = [(repo, r, r) for r in revisions]
    else:
        pairs = [(s, None, _label_of(s)) for s in sources]
    n = len(pairs)
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) != n:
            raise ValueError(f"labels must have one name per checkpoint ({n}), got {len(labels)}")
        pairs = [(s, r, lab) for (s, r, _), lab in zip(pairs, labels)]
    if steps is not None:
        steps = list(steps)
        if len(steps) != n:
            raise ValueError(f"steps must have one value per checkpoint ({n}), got {len(steps)}")
        parsed = [int(x) for x in steps]
        ok = True
    else:
        parsed = [parse_step(lab) for _, _, lab in pairs]
        ok = all(p is not None for p in parsed)
    if not ok:
        parsed = list(range(n))
    cps = [Checkpoint(s, r, lab, int(st), ok) for (s, r, lab), st in zip(pairs, parsed)]
    # labels must be unique (they name rows); fall back to the full source for clashes
    seen: dict = {}
    for c in cps:
        seen.setdefault(c.label, []).append(c)
    if any(len(v) > 1 for v in seen.values()):
        cps = [dataclasses.replace(c, label=c.spec) if len(seen[c.label]) > 1 else c for c in cps]
    cps = tuple(cps)
    _check_unique(cps)
    if ok:
        dup = sorted({c.step for c in cps if sum(d.step == c.step for d in cps) > 1})
        if dup:
            raise ValueError(f"two checkpoints have the same training step {dup[0]} "
                             f"({[c.spec for c in cps if c.step == dup[0]]}); pass steps= explicitly")
        if sort:
            cps = tuple(sorted(cps, key=lambda c: c.step))
    return cps


def _check_unique(cps: Sequence[Checkpoint]) -> None:
    specs = [c.spec for c in cps]
    dup = sorted({s for s in specs if specs.count(s) > 1})
    if dup:
        raise ValueError(f"checkpoint {dup[0]!r} is listed twice")
    labels = [c.label for c in cps]
    dup = sorted({s for s in labels if labels.count(s) > 1})
    if dup:
        raise ValueError(f"two checkpoints have the label {dup[0]!r}")


def _baseline_index(cps: Sequence[Checkpoint], baseline: Any) -> int:
    if baseline is None:
        return 0
    if isinstance(baseline, (int, np.integer)) and not isinstance(baseline, bool):
        if not -len(cps) <= baseline < len(cps):
            raise ValueError(f"baseline must index a checkpoint (0..{len(cps) - 1}), got {baseline}")
        return int(baseline) % len(cps)
    b = str(baseline)
    for how in (lambda c: c.label, lambda c: c.spec, lambda c: c.source):
        hits = [k for k, c in enumerate(cps) if how(c) == b]
        if len(hits) == 1:
            return hits[0]
    if re.fullmatch(r"\d+", b):
        hits = [k for k, c in enumerate(cps) if c.step == int(b)]
        if len(hits) == 1:
            return hits[0]
    raise ValueError(f"baseline {b!r} names no checkpoint of the series (labels: {[c.label for c in cps]})")


def analysis_config(*, per_layer: Optional[int] = 32, layout: Any = "reference", box: str = "edge",
                    direction: str = "forward", threshold: float = 150.0, min_edges: int = 11, decimals: int = 0,
                    q=None, node_dimension: bool = True, nfd_threshold: float = 200.0) -> dict:
    """The validated parameters that change the numbers of a (checkpoint, sample) result, as
    plain JSON-able values (the run store refuses to mix results of different configs)."""
    _check_box(box, direction)
    threshold, min_edges, decimals = _check_params(threshold, min_edges, decimals)
    q = _check_q(q)
    if per_layer is not None and (isinstance(per_layer, bool) or not isinstance(per_layer, (int, np.integer))
                                  or per_layer < 1):
        raise ValueError(f"per_layer must be a positive integer or None (the full network), got {per_layer!r}")
    if per_layer is None and box != "edge":
        raise ValueError("path boxes need a sampled network (per_layer=S); the full network supports box='edge'")
    if not isinstance(layout, str):
        try:
            layout = [list(map(str, entry)) for entry in layout]
        except TypeError:
            raise TypeError(f"layout must be a name or a custom layer map, got {type(layout).__name__}") from None
    nfd_threshold = float(nfd_threshold)
    if not np.isfinite(nfd_threshold) or nfd_threshold <= 0:
        raise ValueError(f"nfd_threshold must be a positive finite number, got {nfd_threshold!r}")
    return dict(per_layer=None if per_layer is None else int(per_layer), layout=layout, box=box,
                direction=direction, threshold=float(threshold), min_edges=int(min_edges), decimals=int(decimals),
                q=[float(x) for x in q], node_dimension=bool(node_dimension), nfd_threshold=nfd_threshold)


# ---------------------------------------------------------------------------------------------
# tasks: module-level functions of plain arguments, so any executor can pickle them


def _sample_task(source: Any, revision: Optional[str], sample: Optional[int], config: dict,
                 n_threads: Optional[int], label: Optional[str] = None) -> SampleResult:
    """One (checkpoint, sample) unit of work; runs in a worker process or machine (``source``
    is then a path or hub id), or in process on an already opened ``TensorSource``."""
    cfg = dict(config)
    if not isinstance(cfg["layout"], str):
        cfg["layout"] = [tuple(e) for e in cfg["layout"]]
    return analyze_sample(source, sample, revision=revision, n_threads=n_threads, label=label, **cfg)


def _fingerprint_task(source: str, revision: Optional[str], layout: Any) -> str:
    if not isinstance(layout, str):
        layout = [tuple(e) for e in layout]
    return fingerprint(source, revision=revision, layout=layout)


# ---------------------------------------------------------------------------------------------
# aggregation


def bootstrap_emergence(alpha0: Sequence[np.ndarray], width: Sequence[np.ndarray], *, baseline: int = 0,
                        n_bootstrap: int = 1000, ci: float = 0.95, seed: int = 0) -> np.ndarray:
    """Percentile bootstrap interval of E (SPEC 4) for every checkpoint, shape ``(n, 2)``.

    ``alpha0[t]`` and ``width[t]`` are the per-sample values of checkpoint ``t``.  Each
    replicate resamples the samples of every checkpoint (the baseline included) with
    replacement, independently per checkpoint, recomputes the means and E; the interval is the
    ``(1 - ci) / 2`` and ``(1 + ci) / 2`` percentiles of the replicates.  NaN where a
    checkpoint or the baseline has no sample.  The baseline's interval is ``[0, 0]``.
    """
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be a positive integer, got {n_bootstrap!r}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    n = len(alpha0)
    if len(width) != n:
        raise ValueError(f"alpha0 and width must have one entry per checkpoint, got {n} and {len(width)}")
    rng = np.random.default_rng(seed)
    means_a = np.full((n, n_bootstrap), np.nan)
    means_w = np.full((n, n_bootstrap), np.nan)
    for t in range(n):
        a = np.asarray(alpha0[t], dtype=float)
        w = np.asarray(width[t], dtype=float)
        if a.size != w.size:
            raise ValueError(f"checkpoint {t}: alpha0 and width have different numbers of samples")
        if a.size == 0:
            continue
        idx = rng.integers(0, a.size, size=(n_bootstrap, a.size))
        means_a[t] = a[idx].mean(axis=1)
        means_w[t] = w[idx].mean(axis=1)
    b = baseline
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (means_w / means_w[b]) * np.log(means_a[b] / means_a)
    e[b] = 0.0 if np.isfinite(means_a[b]).all() else np.nan
    out = np.full((n, 2), np.nan)
    lo, hi = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
    for t in range(n):
        if np.all(np.isfinite(e[t])):
            out[t] = np.percentile(e[t], [lo, hi])
    return out


def _ro(a) -> np.ndarray:
    a = np.asarray(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class Series:
    """Spectra of a checkpoint series and their per-checkpoint aggregate.

    ``results[t]`` are the available per-sample results of checkpoint ``t`` (ordered by
    sample; fewer than ``samples`` for a partial run).  Statistics use the results that pass
    ``filter`` (SPEC 3); the standard deviations use ``ddof=1`` (0 for one sample).  E is
    computed from the means (SPEC 4) relative to checkpoint ``baseline``; ``emergence_ci`` is
    the bootstrap interval of :func:`bootstrap_emergence`.  NaN marks what cannot be computed
    yet (no sample, or no baseline sample).
    """

    checkpoints: tuple
    samples: tuple
    results: tuple
    config: dict
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
    bootstrap: dict = field(default_factory=dict)
    n_computed: int = 0
    n_reused: int = 0

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
        out = []
        ids = (None,) if self.config.get("per_layer") is None else self.samples
        for c, rs in zip(self.checkpoints, self.results):
            have = {r.sample for r in rs}
            out.extend((c.label, k) for k in ids if k not in have)
        return out

    def checkpoint_rows(self) -> list:
        """One plain dict per checkpoint: step, statistics, E and its interval, identical_to."""
        rows = []
        for t, c in enumerate(self.checkpoints):
            rows.append(dict(
                step=c.step, checkpoint=c.label, source=c.spec, n_samples=len(self.results[t]),
                n_kept=int(self.n_kept[t]), alpha0_mean=float(self.alpha0_mean[t]),
                alpha0_std=float(self.alpha0_std[t]), width_mean=float(self.width_mean[t]),
                width_std=float(self.width_std[t]), emergence=float(self.emergence[t]),
                emergence_low=float(self.emergence_ci[t, 0]), emergence_high=float(self.emergence_ci[t, 1]),
                is_baseline=t == self.baseline, identical_to=self.identical_to[t] or "",
                fingerprint=self.fingerprints[t] or ""))
        return rows

    def sample_rows(self) -> list:
        """The tidy table: one plain dict per (checkpoint, sample)."""
        rows = []
        for c, rs in zip(self.checkpoints, self.results):
            for r in rs:
                row = r.row()
                row.pop("checkpoint", None)
                rows.append(dict(step=c.step, checkpoint=c.label, **row,
                                 kept=r.spectrum.passes(self.filter)))
        return rows

    def node_dimension_rows(self) -> list:
        """Per (checkpoint, node layer): node fractal dimension statistics pooled over samples."""
        rows = []
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

    # -- notebook (html_report.py) --
    def _repr_html_(self) -> str:
        from .html_report import series_html
        return series_html(self)

    def plot(self, fig=None):
        """Draw the overview (spectra, E, alpha0, width) on ``fig`` (new when None); returns it."""
        from .html_report import draw_overview
        return draw_overview(self, fig)

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
              config: dict, samples: Sequence[int], baseline: Any = None, filter: str = "none",
              fingerprints: Optional[Sequence[Optional[str]]] = None, n_bootstrap: int = 1000,
              ci: float = 0.95, seed: int = 0, n_computed: int = 0, n_reused: int = 0) -> Series:
    """Aggregate per-sample results (one sequence per checkpoint) into a :class:`Series`."""
    if filter not in SPECTRUM_FILTERS:
        raise ValueError(f"filter must be one of {SPECTRUM_FILTERS}, got {filter!r}")
    cps = tuple(checkpoints)
    if len(results) != len(cps):
        raise ValueError(f"results must have one entry per checkpoint ({len(cps)}), got {len(results)}")
    b = _baseline_index(cps, baseline)
    fps = tuple(fingerprints) if fingerprints is not None else (None,) * len(cps)
    first: dict = {}
    identical = []
    for c, fp in zip(cps, fps):
        if fp is None:
            identical.append(None)
            continue
        identical.append(first[fp] if fp in first else None)
        first.setdefault(fp, c.label)
    res = tuple(tuple(sorted(rs, key=lambda r: -1 if r.sample is None else r.sample)) for rs in results)
    kept = [[r for r in rs if r.spectrum.passes(filter)] for rs in res]
    a0 = [np.array([r.alpha0 for r in k], dtype=float) for k in kept]
    wd = [np.array([r.width for r in k], dtype=float) for k in kept]

    def stat(arrs, fn):
        return np.array([fn(x) if x.size else np.nan for x in arrs])

    am, wm = stat(a0, np.mean), stat(wd, np.mean)
    sd = lambda x: x.std(ddof=1) if x.size > 1 else 0.0  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (wm / wm[b]) * np.log(am[b] / am)
    e[b] = 0.0 if np.isfinite(am[b]) else np.nan
    e_ci = bootstrap_emergence(a0, wd, baseline=b, n_bootstrap=n_bootstrap, ci=ci, seed=seed)
    return Series(cps, tuple(samples), res, dict(config), b, filter, fps, tuple(identical),
                  _ro(np.array([len(k) for k in kept])), _ro(am), _ro(stat(a0, sd)), _ro(wm), _ro(stat(wd, sd)),
                  _ro(e), _ro(e_ci), dict(n_bootstrap=int(n_bootstrap), ci=float(ci), seed=int(seed)),
                  int(n_computed), int(n_reused))


# ---------------------------------------------------------------------------------------------
# running


def _check_executor(executor: Any, n_threads: Optional[int]) -> None:
    if executor is None:
        return
    if not isinstance(executor, cf.Executor) and not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must be a concurrent.futures.Executor, got {type(executor).__name__}")
    if isinstance(executor, cf.ProcessPoolExecutor):
        ctx = getattr(executor, "_mp_context", None)
        method = ctx.get_start_method() if ctx is not None else None
        if method == "fork":
            raise ValueError(
                "executor: a ProcessPoolExecutor with the 'fork' start method is unsafe with the OpenMP "
                "core (GNU OpenMP is not fork-safe; forked workers can hang). Create it with "
                "mp_context=multiprocessing.get_context('spawn') (or 'forkserver')")
    if type(executor).__module__.split(".")[0] == "distributed" and n_threads is None:
        warnings.warn("Dask workers run tasks with OMP_NUM_THREADS=1, so n_threads=None uses one thread; "
                      "pass n_threads explicitly (e.g. the cores per task you want)", RuntimeWarning, stacklevel=3)


def _check_layout(c: Checkpoint, layout: Any) -> None:
    """Fail fast on a layout that does not fit the (local) first checkpoint: reads the header
    and config only, before any weight is hashed or analysed.  Hub checkpoints are checked by
    their first task (resolving them here would download them on the driver)."""
    if c.revision is not None or not Path(c.source).exists():
        return
    lay = layout if isinstance(layout, str) else [tuple(e) for e in layout]
    load_layout(resolve_source(c.source), lay)


def _fingerprints(cps: Sequence[Checkpoint], layout: Any, executor: Any, cache: Optional[dict]) -> list:
    """Weight fingerprints, reusing ``cache`` (stat signature and layout -> digest) for local files."""
    out: list = [None] * len(cps)
    tag = json.dumps(layout, sort_keys=True)  # the hashed tensors depend on the layout
    sigs = [None if sig is None else f"{sig}|layout={tag}" for sig in map(_stat_signature, cps)]
    todo = []
    for k, (c, sig) in enumerate(zip(cps, sigs)):
        if cache is not None and sig is not None and sig in cache:
            out[k] = cache[sig]
        else:
            todo.append(k)
    if executor is None:
        for k in todo:
            out[k] = _fingerprint_task(cps[k].source, cps[k].revision, layout)
    else:
        futs = {k: executor.submit(_fingerprint_task, cps[k].source, cps[k].revision, layout) for k in todo}
        for k, f in futs.items():
            out[k] = f.result()
    if cache is not None:
        for k in todo:
            if sigs[k] is not None:
                cache[sigs[k]] = out[k]
    return out


def _stat_signature(c: Checkpoint) -> Optional[str]:
    """Size and modification time of a local checkpoint's files (None for hub ids): a changed
    file changes the signature, so a cached fingerprint is only reused for unchanged files."""
    p = Path(c.source)
    if c.revision is not None or not p.exists():
        return None
    files = sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p]
    parts = [str(p.resolve())]
    for x in files:
        st = x.stat()
        parts.append(f"{x.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def analyze_series(checkpoints: Union[str, os.PathLike, Sequence[Any]], *,
                   revisions: Optional[Sequence[str]] = None, samples: Union[int, Sequence[int]] = 10,
                   per_layer: Optional[int] = 32, layout: Any = "reference", box: str = "edge",
                   direction: str = "forward", threshold: float = 150.0, min_edges: int = 11, decimals: int = 0,
                   q=None, filter: str = "none", node_dimension: bool = True, nfd_threshold: float = 200.0,
                   n_threads: Optional[int] = None, baseline: Any = None, steps: Optional[Sequence[int]] = None,
                   sort: bool = True, out: Union[str, os.PathLike, None] = None, overwrite: bool = False,
                   executor: Any = None, progress: bool = False, check_identical: bool = True,
                   n_bootstrap: int = 1000, ci: float = 0.95, seed: int = 0,
                   on_result: Optional[Callable[[Checkpoint, SampleResult], None]] = None) -> Series:
    """Analyse a checkpoint series: K sampled networks per checkpoint, the same neurons in each.

    Parameters
    ----------
    checkpoints:
        paths/hub ids (or :class:`Checkpoint` objects), see :func:`make_series`; ``revisions``,
        ``steps`` and ``sort`` are passed to it.
    samples:
        K (samples 0..K-1) or explicit sample indices; ignored with ``per_layer=None``.
    per_layer, layout, box, direction, threshold, min_edges, decimals, q, node_dimension,
    nfd_threshold, n_threads:
        as in :func:`~neuromfa_native.analyze_sample`.
    filter:
        published spectrum filter applied to the statistics (SPEC 3).
    baseline:
        the emergence baseline: a label, source, step number or index (default: the first
        checkpoint).
    out:
        a run directory (see :mod:`.store`): each result is written atomically as it completes;
        a rerun skips finished results; a different configuration is refused unless
        ``overwrite=True`` (which discards the old results).
    executor:
        any ``concurrent.futures.Executor``; tasks carry paths/hub ids and return plain
        picklable data.  Process pools must use spawn or forkserver.  Dask:
        ``client.get_executor()`` (pass ``n_threads``).
    check_identical:
        fingerprint every checkpoint's weights to detect byte-identical checkpoints (SPEC 7);
        always done with ``out`` (results are stored by fingerprint).
    n_bootstrap, ci, seed:
        the bootstrap interval of E (:func:`bootstrap_emergence`).
    on_result:
        called as ``on_result(checkpoint, result)`` for every new result, in completion order.
    """
    from .store import RunStore

    cps = make_series(checkpoints, revisions=revisions, steps=steps, sort=sort)
    sample_ids = check_samples(samples)
    config = analysis_config(per_layer=per_layer, layout=layout, box=box, direction=direction,
                             threshold=threshold, min_edges=min_edges, decimals=decimals, q=q,
                             node_dimension=node_dimension, nfd_threshold=nfd_threshold)
    if filter not in SPECTRUM_FILTERS:
        raise ValueError(f"filter must be one of {SPECTRUM_FILTERS}, got {filter!r}")
    n_threads = None if n_threads is None else _check_threads(n_threads)
    b = _baseline_index(cps, baseline)
    bootstrap_emergence([[]], [[]], n_bootstrap=n_bootstrap, ci=ci, seed=seed)  # validates the options
    _check_executor(executor, n_threads)
    _check_layout(cps[0], config["layout"])
    if config["per_layer"] is None:
        sample_ids_run: tuple = (None,)
    else:
        sample_ids_run = sample_ids
    aggregation = dict(samples=list(sample_ids), filter=filter, baseline=cps[b].label, n_bootstrap=int(n_bootstrap),
                       ci=float(ci), seed=int(seed))

    store = RunStore(out, config, overwrite=overwrite) if out is not None else None
    try:
        fps: list = [None] * len(cps)
        if check_identical or store is not None:
            fps = _fingerprints(cps, config["layout"], executor, store.fingerprint_cache if store else None)
        keys = [fp if fp is not None else f"#{k}" for k, fp in enumerate(fps)]
        if store is not None:
            store.begin(cps, fps, aggregation)
        groups: dict = {}
        for c, fp in zip(cps, fps):
            if fp is not None:
                groups.setdefault(fp, []).append(c.label)
        same = [g for g in groups.values() if len(g) > 1]
        if same:
            warnings.warn("byte-identical checkpoints (same weight fingerprint, analysed once): "
                          + "; ".join(" = ".join(g) for g in same), UserWarning, stacklevel=2)

        done: dict = store.load() if store is not None else {}
        tasks = []  # (key, checkpoint index of the first checkpoint with that key, sample)
        seen = set()
        for k, (c, key) in enumerate(zip(cps, keys)):
            for s in sample_ids_run:
                if (key, s) in seen:
                    continue
                seen.add((key, s))
                if (key, s) not in done:
                    tasks.append((key, k, s))
        n_reused = len(seen) - len(tasks)
        bar = progress_bar(len(seen), "checkpoints x samples", "task", progress, initial=n_reused)

        def finish(key, k, s, res):
            done[(key, s)] = res
            if store is not None:
                store.put(key, s, res)
            if bar is not None:
                bar.update(1)
            if on_result is not None:
                on_result(cps[k], res)

        # A failed task (a corrupt checkpoint, say) does not stop the others: every success is
        # stored, and the failures are reported together at the end (a rerun retries them).
        errors = []
        try:
            if executor is None:
                # In process, each checkpoint is opened once for all its samples (a .bin state
                # dict is loaded once, not once per sample) and let go before the next one.
                for k, group in itertools.groupby(tasks, key=lambda t: t[1]):
                    group = list(group)
                    try:
                        tsrc = resolve_source(cps[k].source, revision=cps[k].revision)
                    except (ValueError, TypeError) as exc:
                        errors.extend(_with_context(exc, cps[k], s) for _, _, s in group)
                        continue
                    try:
                        for key, _, s in group:
                            try:
                                res = _task_or_context(cps[k], s, config, n_threads, tsrc)
                            except (ValueError, TypeError) as exc:
                                errors.append(exc)
                                continue
                            finish(key, k, s, res)
                    finally:
                        del tsrc
            else:
                futs = {executor.submit(_sample_task, cps[k].source, cps[k].revision, s, config, n_threads,
                                        cps[k].label): (key, k, s)
                        for key, k, s in tasks}
                try:
                    for f in cf.as_completed(futs):
                        key, k, s = futs[f]
                        try:
                            res = f.result()
                        except (ValueError, TypeError) as exc:
                            errors.append(_with_context(exc, cps[k], s))
                            continue
                        finish(key, k, s, res)
                except BaseException:
                    for f in futs:
                        f.cancel()
                    raise
        finally:
            if bar is not None:
                bar.close()
        if errors:
            if store is not None:
                store.finish(dict(n_computed=len(tasks) - len(errors), n_reused=n_reused, n_failed=len(errors),
                                  errors=[str(e) for e in errors[:20]], finished=time.time()), status="failed")
            first = errors[0]
            cls = TypeError if isinstance(first, TypeError) else ValueError
            if len(errors) == len(tasks):
                raise cls(str(first) if len(tasks) == 1 else f"all {len(tasks)} tasks failed; the first: {first}") \
                    from first
            raise cls(f"{len(errors)} of {len(tasks)} tasks failed (the {len(tasks) - len(errors)} others are "
                      f"stored; rerun to retry the failed ones); the first: {first}") from first
        results = []
        for c, key in zip(cps, keys):
            rs = [done[(key, s)] for s in sample_ids_run if (key, s) in done]
            results.append([dataclasses.replace(r, checkpoint=c.label) for r in rs])
        series = summarize(cps, results, config=config, samples=sample_ids, baseline=b, filter=filter,
                           fingerprints=fps, n_bootstrap=n_bootstrap, ci=ci, seed=seed, n_computed=len(tasks),
                           n_reused=n_reused)
        if store is not None:
            store.finish(dict(n_computed=len(tasks), n_reused=n_reused, finished=time.time()))
        return series
    finally:
        if store is not None:
            store.close()


def _with_context(exc: Exception, c: Checkpoint, s: Optional[int]) -> Exception:
    """The error with the checkpoint and sample named (as ValueError/TypeError: subclasses such
    as JSONDecodeError have other constructors)."""
    msg = str(exc)
    if c.label in msg or c.source in msg:
        return exc
    new = (TypeError if isinstance(exc, TypeError) else ValueError)(f"{c.label}, sample {s}: {msg}")
    new.__cause__ = exc
    return new


def _task_or_context(c: Checkpoint, s: Optional[int], config: dict, n_threads: Optional[int],
                     tsrc: Any) -> SampleResult:
    try:
        return _sample_task(tsrc, None, s, config, n_threads, label=c.label)
    except (ValueError, TypeError) as exc:
        raise _with_context(exc, c, s) from exc
