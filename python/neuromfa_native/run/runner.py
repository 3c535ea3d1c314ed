"""Running a checkpoint series: plan the (checkpoint, sample) tasks, execute them, collect.

:func:`analyze_series` runs every (checkpoint, sample) task, in process or on any
``concurrent.futures.Executor`` (process pools with spawn/forkserver, Dask's
``client.get_executor()``), writes each result atomically to a run directory as soon as it
exists (:mod:`.store`), skips what a previous run finished, and returns a
:class:`~neuromfa_native.run.series.Series`.

The steps, each a function of this module:

1. plan: the checkpoints (:func:`~.checkpoints.make_series`), the configuration, the weight
   fingerprints (which also count non-finite weights, :func:`_fingerprint_pass`) and the tasks
   not finished yet (:func:`_plan`);
2. execute: in process (:func:`_run_in_process`, each checkpoint opened once for all its
   samples) or on an executor (:func:`_run_on_executor`); a failed task does not stop the
   others, failures are collected and reported together (:func:`_raise_failures`);
3. collect: the results of every checkpoint, aggregated by :func:`~.series.summarize`.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import itertools
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from .. import _validation as check
from ..science.analysis import SampleResult, analyze_sample, progress_bar
from ..io.checkpoint_reader import (CACHE_MODES, CheckpointReader, hub_identity, hub_signature, list_hub_commits,
                                    reading_checkpoints, reading_record)
from .checkpoints import Checkpoint, baseline_index, make_series
from ..config import DEFAULT, AnalysisConfig
from ..science.controls import scale_to_of
from ..science.nulls import needing_baseline
from ..io.hub import pin_url
from ..io.ratelimit import status_reporter
from ..network.fingerprint import hub_revision_fingerprint, network_digest, result_key, scan_names
from ..network.nin import load_layout, prefetch_samples
from .series import Series, summarize
from ..io.safetensors import parse_index
from ..io.sources import resolve_source
from .store import RunStore

__all__ = ["analyze_series"]


def analyze_series(checkpoints: Union[str, os.PathLike, Sequence[Any]], *,
                   revisions: Optional[Sequence[str]] = None, samples: Union[int, Sequence[int]] = DEFAULT,
                   per_layer: Optional[int] = DEFAULT, layout: Any = DEFAULT, box: str = DEFAULT,
                   direction: str = DEFAULT, threshold: float = DEFAULT, min_edges: int = DEFAULT,
                   decimals: int = DEFAULT, q=DEFAULT, filter: str = DEFAULT, node_dimension: bool = DEFAULT,
                   nfd_threshold: float = DEFAULT, n_threads: Optional[int] = None, baseline: Any = None,
                   steps: Optional[Sequence[int]] = None, sort: bool = True,
                   out: Union[str, os.PathLike, None] = None, overwrite: bool = False, executor: Any = None,
                   progress: bool = False, check_identical: bool = True, n_bootstrap: int = DEFAULT,
                   ci: float = DEFAULT, seed: int = DEFAULT,
                   on_result: Optional[Callable[[Checkpoint, SampleResult], None]] = None,
                   controls: Any = DEFAULT, stats: bool = DEFAULT, by_layer: bool = DEFAULT,
                   config: Optional[AnalysisConfig] = None, cache: str = "keep",
                   values: Optional[Union[str, Sequence[int]]] = None) -> Series:
    """Analyse a checkpoint series: K sampled networks per checkpoint, the same neurons in each.

    Parameters
    ----------
    checkpoints : paths/hub ids (or :class:`Checkpoint` objects), see :func:`make_series`;
        ``revisions`` (names, ``"all"``, globs), ``values`` (of ``{N}`` in a repository
        pattern), ``steps`` and ``sort`` are passed to it.
    samples, per_layer, layout, box, direction, threshold, min_edges, decimals, q, filter : options
    node_dimension, nfd_threshold, n_bootstrap, ci, seed :
        the options of :class:`~neuromfa_native.AnalysisConfig` (its defaults, or those of
        ``config``, where not given); ``samples`` is ignored with ``per_layer=None``.
    n_threads : OpenMP threads per task (``None``: all cores).
    baseline : the emergence baseline: a label, source, step number or index (default: the
        first checkpoint).
    out : a run directory (see :mod:`.store`): each result is written atomically as it
        completes; a rerun skips finished results; a different configuration is refused unless
        ``overwrite=True`` (which discards the old results).
    executor : any ``concurrent.futures.Executor``; tasks carry paths/hub ids and return plain
        picklable data.  Process pools must use spawn or forkserver.  Dask:
        ``client.get_executor()`` (pass ``n_threads``).
    progress : show a progress bar on stderr.
    check_identical : fingerprint every checkpoint's weights to detect byte-identical
        checkpoints (docs/spec.md section 7) and count non-finite weights; always done with
        ``out`` (results are stored by fingerprint).
    on_result : called as ``on_result(checkpoint, result)`` for every new result, in
        completion order.
    controls, stats, by_layer : null-network controls (``"gaussian"``, ``"shuffle"``,
        ``"scaled"``), rival statistics and the breakdown by layer of every (checkpoint,
        sample), stored with its result (docs/controls.md, :meth:`Series.quantities`).  With
        ``scaled`` the baseline's tasks run first (an executor gets them as a first wave).
    config : an :class:`~neuromfa_native.AnalysisConfig`; keyword options override it.
    cache : how hub checkpoints are read (an execution option: it changes no number, so it is
        not part of the configuration): ``"keep"`` (download into the Hugging Face cache and
        keep), ``"evict"`` (download, analyse, delete what this run downloaded; in process
        only) or ``"none"`` (range reads through ``hf://``, nothing written); see
        :mod:`.checkpoint_reader` and docs/remote.md.

    Returns
    -------
    Series

    Raises
    ------
    ValueError, TypeError
        a bad option; or tasks that failed (every other result is stored first; a rerun
        retries the failed ones).

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> s = nm.analyze_series(["examples/pythia-tiny/step0", "examples/pythia-tiny/step16"], samples=2,
    ...                       per_layer=8, n_threads=1)
    >>> [c.step for c in s.checkpoints], s.alpha0_mean.shape
    ([0, 16], (2,))
    """
    cps = make_series(checkpoints, revisions=revisions, steps=steps, sort=sort, values=values)
    cfg = AnalysisConfig.from_options(
        config, samples=samples, per_layer=per_layer, layout=layout, box=box, direction=direction,
        threshold=threshold, min_edges=min_edges, decimals=decimals, q=q, filter=filter,
        node_dimension=node_dimension, nfd_threshold=nfd_threshold, n_bootstrap=n_bootstrap, ci=ci, seed=seed,
        controls=controls, stats=stats, by_layer=by_layer)
    n_threads = None if n_threads is None else check.threads(n_threads)
    b = baseline_index(cps, baseline)
    _check_executor(executor, n_threads)
    _check_cache(cache, executor)
    cps, fp_cps = reading_checkpoints(cps, cache)
    _check_layout(cps[0], cfg.layout)
    stored = _stored_config(cfg, cps[b])
    with (RunStore(out, stored, overwrite=overwrite) if out is not None else contextlib.nullcontext()) as store:
        plan = _plan(cps, cfg, b, executor, store, check_identical or store is not None, fp_cps)
        sink = _Sink(plan, store, progress_bar(plan.n_total, "checkpoints x samples", "task", progress,
                                               initial=plan.n_reused), on_result)
        try:  # a rate-limit wait shows on the progress line ("hub rate limit: waiting 41 s")
            with status_reporter(sink.status) if sink.bar is not None else contextlib.nullcontext():
                if executor is None:
                    _run_in_process(plan, n_threads, sink, cache)
                else:
                    _run_on_executor(plan, n_threads, executor, sink)
        finally:
            sink.close()
        _raise_failures(plan, sink.errors, store)
        series = _collect(plan)
        if store is not None:
            store.finish(dict(n_computed=len(plan.tasks), n_reused=plan.n_reused, finished=time.time(),
                              reading=reading_record(sink.reading)))
        return series


# ---------------------------------------------------------------------------------------------
# planning


@dataclass(frozen=True)
class _Plan:
    """What a run does: its checkpoints, configuration, fingerprints and open tasks."""

    cps: tuple
    cfg: AnalysisConfig
    baseline: int
    fps: list
    keys: list  # result key of each checkpoint: its weights and network (result_key), else "#<index>"
    notes: list  # per checkpoint: non-finite weights found while fingerprinting, else ""
    done: dict  # (key, sample) -> SampleResult
    tasks: list = field(default_factory=list)  # (key, checkpoint index, sample) to compute
    n_total: int = 0

    @property
    def n_reused(self) -> int:
        return self.n_total - len(self.tasks)


def _plan(cps: tuple, cfg: AnalysisConfig, b: int, executor: Any, store: Optional[RunStore],
          fingerprints: bool, fp_cps: Optional[Sequence[Checkpoint]] = None) -> _Plan:
    """Fingerprints (and non-finite counts) of ``fp_cps`` (default ``cps``: hub checkpoints
    read without a download are fingerprinted through ``hf://``), the identical-checkpoint
    warning, and the tasks not finished yet; records the series in the store."""
    fps: list = [None] * len(cps)
    nets: list = [None] * len(cps)
    bad: list = [{}] * len(cps)
    if fingerprints:
        fps, nets, bad = _fingerprint_pass(fp_cps or cps, cfg, executor, store.fingerprint_cache if store else None)
    notes = [_nonfinite_note(c, counts) for c, counts in zip(cps, bad)]
    for note in filter(None, notes):
        warnings.warn(note, RuntimeWarning, stacklevel=3)
    notes = [_join_notes(n, m) for n, m in zip(notes, _identical_notes(cps, fps, fp_cps or cps))]
    keys = [result_key(fp, net) if fp is not None else f"#{k}" for k, (fp, net) in enumerate(zip(fps, nets))]
    if store is not None:
        store.begin(cps, fps, dict(samples=list(cfg.samples), filter=cfg.filter, baseline=cps[b].label,
                                   n_bootstrap=cfg.n_bootstrap, ci=cfg.ci, seed=cfg.seed), notes=notes, keys=keys)
    _warn_identical(cps, fps)
    done = store.load() if store is not None else {}
    seen = set()
    tasks = []
    for k, key in enumerate(keys):
        for s in cfg.sample_ids:
            if (key, s) in seen:
                continue
            seen.add((key, s))
            if (key, s) not in done:
                tasks.append((key, k, s))
    if needing_baseline(cfg.controls):  # the baseline's results give the other tasks their scale_to
        tasks.sort(key=lambda t: t[0] != keys[b])
    return _Plan(cps=cps, cfg=cfg, baseline=b, fps=fps, keys=keys, notes=notes, done=done, tasks=tasks,
                 n_total=len(seen))


def _stored_config(cfg: AnalysisConfig, baseline: Checkpoint) -> dict:
    """The run store's configuration: ``cfg.result_json()``, and with a control that needs the
    baseline (``scaled``) the baseline's label (its results depend on the baseline)."""
    d = cfg.result_json()
    if needing_baseline(cfg.controls):
        d["scaled_baseline"] = baseline.label
    return d


def _scale_to(plan: _Plan, key: str, s: Optional[int]) -> Any:
    """``scale_to`` of a task (``None`` without a control that needs the baseline)."""
    if not needing_baseline(plan.cfg.controls):
        return None
    base = plan.keys[plan.baseline]
    return scale_to_of(plan.done.get((base, s)), s, key == base)


def _task_config(plan: _Plan) -> AnalysisConfig:
    """The tasks' configuration: with a control that needs the baseline every task keeps its
    statistics (the baseline's RMS of the read rows is what the later checkpoints are scaled to)."""
    return plan.cfg.replace(stats=True) if needing_baseline(plan.cfg.controls) else plan.cfg


def _warn_identical(cps: Sequence[Checkpoint], fps: Sequence[Optional[str]]) -> None:
    groups: dict = {}
    for c, fp in zip(cps, fps):
        if fp is not None:
            groups.setdefault(fp, []).append(c.label)
    same = [g for g in groups.values() if len(g) > 1]
    if same:
        warnings.warn("byte-identical checkpoints (same weight fingerprint, analysed once): "
                      + "; ".join(" = ".join(g) for g in same), UserWarning, stacklevel=4)


def _identical_notes(cps: Sequence[Checkpoint], fps: Sequence[Optional[str]], fp_cps: Sequence[Checkpoint]) -> list:
    """For each checkpoint whose fingerprint an earlier one has: a note saying so (and that it is
    analysed once: its results are the earlier one's, its weights are not read)."""
    first: dict = {}
    out = []
    for c, fp, f in zip(cps, fps, fp_cps):
        if fp is None or fp not in first:
            first.setdefault(fp, c.label)
            out.append("")
            continue
        how = ("the same weight files and config on the hub (by its sha256 hashes, before any byte was read)"
               if str(f.source).startswith("hf://") or hub_identity(f.source, f.revision) is not None
               else "the same weight bytes")
        out.append(f"identical to {first[fp]}: {how}; analysed once, its weights not read again")
    return out


def _join_notes(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _nonfinite_note(c: Checkpoint, counts: dict) -> str:
    if not counts:
        return ""
    what = ", ".join(f"{name} ({n})" for name, n in sorted(counts.items()))
    return (f"{c.label}: non-finite weights (NaN or inf) in {what}; a sampled network that hits one "
            "fails, the others leave them out")


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


def _check_cache(cache: str, executor: Any) -> None:
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
    if cache == "evict" and executor is not None:
        raise ValueError("cache='evict' runs in process (it deletes each checkpoint after its analysis); "
                         "drop the executor or use cache='none'")


def _check_layout(c: Checkpoint, layout: Any) -> None:
    """Fail fast on a layout that does not fit the (local) first checkpoint: reads the header
    and config only, before any weight is hashed or analysed.  Hub checkpoints are checked by
    their first task (resolving them here would download them on the driver)."""
    if c.revision is not None or not Path(c.source).exists():
        return
    load_layout(resolve_source(c.source), layout)


def _fingerprint_pass(cps: Sequence[Checkpoint], cfg: AnalysisConfig, executor: Any,
                      cache: Optional[dict]) -> tuple:
    """Weight fingerprints, network digests and non-finite counts, reusing ``cache`` (stat
    signature and layout -> digest; ``network|`` + signature -> network digest; ``nonfinite|``
    + signature -> counts) for unchanged local files (config.json included) and hub commits.
    Hub revisions with the same files (by the hub's hashes) are fingerprinted once."""
    fps: list = [None] * len(cps)
    nets: list = [None] * len(cps)
    bad: list = [{} for _ in cps]
    tag = json.dumps(cfg.result_json()["layout"], sort_keys=True)  # the hashed tensors depend on the layout
    list_hub_commits(cps)  # one call per repository: the commits key the cache
    sigs = [None if sig is None else f"{sig}|layout={tag}" for sig in map(_stat_signature, cps)]
    todo, same = [], {}
    for k, sig in enumerate(sigs):
        if cache is not None and sig is not None and sig in cache and f"network|{sig}" in cache:
            fps[k], nets[k], bad[k] = cache[sig], cache[f"network|{sig}"], dict(cache.get(f"nonfinite|{sig}", {}))
        else:
            todo.append(k)
    firsts: dict = {}
    for k in list(todo):  # identical hub revisions: download and hash the first only
        ident = hub_identity(cps[k].source, cps[k].revision)
        if ident is not None and ident in firsts:
            same[k] = firsts[ident]
            todo.remove(k)
        elif ident is not None:
            firsts[ident] = k
    if executor is None:  # checkpoints hash in parallel (hashlib and the scan release the GIL)
        with cf.ThreadPoolExecutor(max(1, min(len(todo), os.cpu_count() or 1, 4))) as pool:
            futs = {k: pool.submit(_fingerprint_task, cps[k].source, cps[k].revision, cfg.layout) for k in todo}
            found = {k: f.result() for k, f in futs.items()}
    else:
        futs = {k: executor.submit(_fingerprint_task, cps[k].source, cps[k].revision, cfg.layout) for k in todo}
        found = {k: f.result() for k, f in futs.items()}
    found.update({k: found[j] for k, j in same.items() if j in found})
    sigs = [None if sig is None else f"{sig}|layout={tag}" for sig in map(_stat_signature, cps)]  # commits now known
    for k, (fp, net, counts) in found.items():
        fps[k], nets[k], bad[k] = fp, net, counts
        if cache is not None and sigs[k] is not None:
            cache[sigs[k]] = fp
            cache[f"network|{sigs[k]}"] = net
            if counts:
                cache[f"nonfinite|{sigs[k]}"] = counts
    return fps, nets, bad


def _stat_signature(c: Checkpoint) -> Optional[str]:
    """Size and modification time of the files a local checkpoint is read from: a folder's
    files; a single file, the ``config.json`` beside it and, for a sharded index, the shards it
    names (a changed file changes the signature, so a cached fingerprint is only reused for
    unchanged files; an index whose shards were replaced is not); a hub revision's commit, when
    known (immutable); else None."""
    p = Path(c.source)
    if c.revision is not None or not p.exists():
        return hub_signature(c.source, c.revision)
    files = sorted(x for x in p.iterdir() if x.is_file()) if p.is_dir() else [p, *_companions(p)]
    parts = [str(p.resolve())]
    for x in files:
        st = x.stat()
        parts.append(f"{x.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def _companions(p: Path) -> list:
    """The other files a single-file source reads: ``config.json`` beside it, an index's shards."""
    out = [x for x in (p.parent / "config.json",) if x.is_file()]
    if p.name.endswith(".index.json"):
        try:
            wmap, _ = parse_index(p.read_bytes(), p)
        except (OSError, ValueError):
            return out  # the fingerprint task says what is wrong with the index
        out += [p.parent / s for s in sorted(set(wmap.values())) if (p.parent / s).is_file()]
    return out


# ---------------------------------------------------------------------------------------------
# tasks: module-level functions of plain arguments, so any executor can pickle them


def _sample_task(source: Any, revision: Optional[str], sample: Optional[int], config: AnalysisConfig,
                 n_threads: Optional[int], label: Optional[str] = None, scale_to: Any = None) -> SampleResult:
    """One (checkpoint, sample) unit of work; runs in a worker process or machine (``source``
    is then a path or hub id), or in process on an already opened ``TensorSource``."""
    return analyze_sample(source, sample, revision=revision, n_threads=n_threads, label=label, scale_to=scale_to,
                          config=config)


#: The network part of a hub revision's result key: its fingerprint already covers config.json.
HUB_NETWORK = "hub"


def _fingerprint_task(source: str, revision: Optional[str], layout: Any) -> tuple:
    """``(weight fingerprint, network digest, non-finite counts)`` of one checkpoint. A hub
    revision read by range is fingerprinted from the hub's hashes of its files, config.json
    included, which fix its network as well: nothing of it is read here."""
    hub = hub_revision_fingerprint(source, revision)
    if hub is not None:
        return hub, HUB_NETWORK, {}
    src, lay = load_layout(source, layout, revision=revision)
    fp, counts = scan_names(src, sorted(set(lay.tensor_names)))
    return fp, network_digest(lay), counts


# ---------------------------------------------------------------------------------------------
# execution


class _Sink:
    """Where finished results go: the run's results, the store, the bar and ``on_result``;
    failures are collected in ``errors``."""

    def __init__(self, plan: _Plan, store: Optional[RunStore], bar: Any, on_result: Optional[Callable]):
        self.plan, self.store, self.bar, self.on_result = plan, store, bar, on_result
        self.errors: list = []
        self.reading: dict = {}  # label -> (bytes read, checkpoint size), in-process runs only

    def put(self, key: str, k: int, s: Optional[int], res: SampleResult) -> None:
        self.plan.done[(key, s)] = res
        if self.store is not None:
            self.store.put(key, s, res)
        if self.bar is not None:
            self.bar.update(1)
        if self.on_result is not None:
            self.on_result(self.plan.cps[k], res)

    def status(self, msg: Optional[str]) -> None:
        """A passing state (a rate-limit wait) on the progress line; None clears it."""
        if self.bar is not None:
            self.bar.set_postfix_str(msg or "", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run_in_process(plan: _Plan, n_threads: Optional[int], sink: _Sink, cache: str = "keep") -> None:
    """Each checkpoint is opened once for all its samples (a .bin state dict is loaded once,
    not once per sample) and let go before the next one; checkpoint t + 1 is fetched while t
    is analysed (:class:`.checkpoint_reader.CheckpointReader`, which also applies ``cache``)."""
    groups = [(k, list(g)) for k, g in itertools.groupby(plan.tasks, key=lambda t: t[1])]
    reader = CheckpointReader([(plan.cps[k].source, plan.cps[k].revision) for k, _ in groups], cache)
    try:
        for i, (k, tasks) in enumerate(groups):
            c = plan.cps[k]
            try:
                tsrc = reader.open(i)
            except (ValueError, TypeError) as exc:
                sink.errors.extend(_with_context(exc, c, s) for _, _, s in tasks)
                continue
            try:
                _prefetch(tsrc, plan.cfg, [s for _, _, s in tasks])
                for key, _, s in tasks:
                    try:
                        res = _sample_task(tsrc, None, s, _task_config(plan), n_threads, label=c.label,
                                           scale_to=_scale_to(plan, key, s))
                    except (ValueError, TypeError) as exc:
                        sink.errors.append(_with_context(exc, c, s))
                        continue
                    sink.put(key, k, s, res)
            finally:
                sink.reading[c.label] = reader.read_stats(i, tsrc)
                del tsrc
                reader.release(i)
    finally:
        reader.close()


def _prefetch(tsrc: Any, cfg: AnalysisConfig, samples: list) -> None:
    """A checkpoint read by range from a server: the rows of all its samples in one batch
    (errors are left to the tasks, which name the sample)."""
    try:
        prefetch_samples(tsrc, [s for s in samples if s is not None], cfg.per_layer, cfg.layout)
    except (ValueError, TypeError):
        pass


def _run_on_executor(plan: _Plan, n_threads: Optional[int], executor: Any, sink: _Sink) -> None:
    """Every task submitted at once (with a control that needs the baseline: its tasks first, as
    a wave of their own, since the others need their results); results taken in completion
    order; on an interrupt or another unexpected error the tasks not started are cancelled."""
    waves = [plan.tasks]
    if needing_baseline(plan.cfg.controls):
        base = plan.keys[plan.baseline]
        waves = [[t for t in plan.tasks if t[0] == base], [t for t in plan.tasks if t[0] != base]]
    for wave in waves:
        _run_wave(plan, wave, n_threads, executor, sink)


def _run_wave(plan: _Plan, tasks: list, n_threads: Optional[int], executor: Any, sink: _Sink) -> None:
    futs = {}
    for key, k, s in tasks:
        c = plan.cps[k]
        try:
            scale_to = _scale_to(plan, key, s)
        except ValueError as exc:
            sink.errors.append(_with_context(exc, c, s))
            continue
        futs[executor.submit(_sample_task, pin_url(c.source), c.revision, s, _task_config(plan), n_threads,
                             c.label, scale_to)] = (key, k, s)
    try:
        for f in cf.as_completed(futs):
            key, k, s = futs[f]
            try:
                res = f.result()
            except (ValueError, TypeError) as exc:
                sink.errors.append(_with_context(exc, plan.cps[k], s))
                continue
            sink.put(key, k, s, res)
    except BaseException:
        for f in futs:
            f.cancel()
        raise


def _with_context(exc: Exception, c: Checkpoint, s: Optional[int]) -> Exception:
    """The error with the checkpoint and sample named (as ValueError/TypeError: subclasses such
    as JSONDecodeError have other constructors)."""
    msg = str(exc)
    if c.label in msg or c.source in msg:
        return exc
    new = (TypeError if isinstance(exc, TypeError) else ValueError)(f"{c.label}, sample {s}: {msg}")
    new.__cause__ = exc
    return new


def _raise_failures(plan: _Plan, errors: list, store: Optional[RunStore]) -> None:
    """Record the failed run in the store and raise one error naming how many tasks failed."""
    if not errors:
        return
    n = len(plan.tasks)
    if store is not None:
        store.finish(dict(n_computed=n - len(errors), n_reused=plan.n_reused, n_failed=len(errors),
                          errors=[str(e) for e in errors[:20]], finished=time.time()), status="failed")
    first = errors[0]
    cls = TypeError if isinstance(first, TypeError) else ValueError
    if len(errors) == n:
        raise cls(str(first) if n == 1 else f"all {n} tasks failed; the first: {first}") from first
    raise cls(f"{len(errors)} of {n} tasks failed (the {n - len(errors)} others are "
              f"stored; rerun to retry the failed ones); the first: {first}") from first


# ---------------------------------------------------------------------------------------------
# collection


def _collect(plan: _Plan) -> Series:
    results = []
    for c, key in zip(plan.cps, plan.keys):
        rs = [plan.done[(key, s)] for s in plan.cfg.sample_ids if (key, s) in plan.done]
        results.append([dataclasses.replace(r, checkpoint=c.label) for r in rs])
    cfg = plan.cfg
    return summarize(plan.cps, results, config=cfg, samples=cfg.samples, baseline=plan.baseline,
                     filter=cfg.filter, fingerprints=plan.fps, n_bootstrap=cfg.n_bootstrap, ci=cfg.ci,
                     seed=cfg.seed, n_computed=len(plan.tasks), n_reused=plan.n_reused, notes=plan.notes)
