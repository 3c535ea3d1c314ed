"""Watching a model while it trains: :class:`Monitor` analyses the live model at chosen steps.

``Monitor(model, out=DIR)`` then ``monitor.step(global_step)`` at the steps to analyse (the first
call is the baseline of E), ``monitor.close()`` at the end.  The training loop pays only for
the *snapshot*: the weights the K sampled networks use (the sampled rows and columns of each
matrix of the layout, SPEC 1.2) are gathered on the model's device and copied to CPU.  The
analysis of that snapshot runs on one worker thread (``background=True``), with the same code
and the same numbers as ``neuromfa analyze`` of a checkpoint saved at that step.

Pile-up policy (``background=True``): at most one analysis runs and one request waits.  A new
request while another one waits *replaces* the waiting one, which is dropped (its step is
listed in :attr:`Monitor.dropped` and logged); the first request (the baseline) is never
dropped.  So an analysis slower than training follows the latest weights instead of falling
behind, and :meth:`Monitor.close` finishes the running and the waiting one.

Supported models: torch modules on any device and in any floating dtype (float32, float16,
bfloat16: weights are read as stored, as from a checkpoint of that dtype); ``torch.compile``'d
modules (``_orig_mod``); ``DistributedDataParallel``/``DataParallel`` (``.module``; with
``torch.distributed`` initialised only rank 0 analyses, the other ranks' ``step`` does
nothing); PEFT/LoRA models with the adapters merged (``merge_and_unload()`` or
``merge_adapter()``), or ``peft="base"`` for the base weights of unmerged adapters.  Refused
with a ``ValueError`` saying why: FSDP / sharded (DTensor) parameters (rank 0 does not hold
them), unmerged adapters without ``peft="base"``, meta-device weights, architectures the
library has no layout for (pass a custom ``layout``).

Failures (a NaN weight, an unknown architecture, a full disk) are logged once on the
``neuromfa_native.integrations.monitor`` logger and kept in :attr:`Monitor.errors`; training goes on.
With ``strict=True`` they are raised: from :meth:`step` (setup and synchronous analyses) or,
for a background analysis, from the next :meth:`step`, :meth:`wait` or :meth:`close`.

torch is imported only when a model is handed over (a torch object is then at hand).
"""
from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union, cast


from .._results import fields_equal
from ..science.analysis import analyze_sample
from ..science.controls import scale_to_of
from ..science.nulls import needing_baseline
from ..network.architectures import get_layout
from ..network.fingerprint import network_digest
from ..run.checkpoints import Checkpoint
from ..config import AGGREGATION_FIELDS, DEFAULT, EXTRA_RESULT_FIELDS, RESULT_FIELDS, AnalysisConfig
from ..run.series import Series, summarize
from ..run.verdict import NEEDED as VERDICT_CONTROLS
from .snapshot import Shapes, Snapshot, plan_snapshot, take_snapshot

__all__ = ["Monitor", "MonitorResult", "VERDICT_METRICS", "monitor_config"]

log = logging.getLogger("neuromfa_native.integrations.monitor")

#: metric names, as logged by the callbacks
METRICS = ("neuromfa/alpha0", "neuromfa/width", "neuromfa/E", "neuromfa/E_lo", "neuromfa/E_hi")

#: with the ``gaussian`` and ``scaled`` controls, the live verdict's shares (docs/spec.md section 13)
VERDICT_METRICS = ("neuromfa/gaussian_share", "neuromfa/gaussian_share_lo", "neuromfa/gaussian_share_hi",
                   "neuromfa/remainder_share", "neuromfa/remainder_share_lo", "neuromfa/remainder_share_hi")


@dataclass(frozen=True, eq=False)
class MonitorResult:
    """The analysis of the model at one training step.

    ``results`` holds one :class:`~neuromfa_native.SampleResult` per sample (the same numbers
    as ``neuromfa analyze`` of a checkpoint saved at ``step``); ``alpha0``/``width`` are their
    means over the samples that pass the filter, ``E`` (with ``E_lo``, ``E_hi``, its bootstrap
    interval) is relative to the baseline (the first analysed step), as in the run's report.
    ``copy_seconds`` is the time the training thread spent on the snapshot;
    ``seconds`` the analysis time (off the training thread with ``background=True``).
    ``verdict`` is the run's :class:`~neuromfa_native.Verdict` at this step (docs/spec.md
    section 13) when the monitor has the ``gaussian`` and ``scaled`` controls, else None.
    """

    step: int
    results: tuple
    alpha0: float
    width: float
    E: float
    E_lo: float
    E_hi: float
    copy_seconds: float
    seconds: float
    verdict: Any = None

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", tuple(self.results))

    def __repr__(self) -> str:
        return (f"<MonitorResult step {self.step}: {len(self.results)} samples, alpha0 {self.alpha0:.4f}, width "
                f"{self.width:.4f}, E {self.E:+.4f} [{self.E_lo:+.4f}, {self.E_hi:+.4f}]>")

    def metrics(self) -> dict:
        """``{"neuromfa/alpha0": ..., "neuromfa/width": ..., "neuromfa/E": ..., "neuromfa/E_lo":
        ..., "neuromfa/E_hi": ...}`` (plain floats); with a verdict also the shares of
        :data:`VERDICT_METRICS` (NaN where undefined, e.g. at the baseline)."""
        out = dict(zip(METRICS, map(float, (self.alpha0, self.width, self.E, self.E_lo, self.E_hi))))
        v = self.verdict
        if v is not None:
            out.update(zip(VERDICT_METRICS, map(float, (v.gaussian_share, v.gaussian_share_lo, v.gaussian_share_hi,
                                                        v.remainder_share, v.remainder_share_lo,
                                                        v.remainder_share_hi))))
        return out


def monitor_config(config: Optional[AnalysisConfig] = None, **options: Any) -> AnalysisConfig:
    """The :class:`~neuromfa_native.AnalysisConfig` of a monitor: ``config`` (default: the
    defaults) with the keyword ``options`` changed (its fields; an option left at
    :data:`~neuromfa_native.config.DEFAULT` keeps the config's value), validated by the config.
    ``per_layer=None`` (the full network) is refused: it would copy the whole model at every step."""
    known = set(RESULT_FIELDS) | set(AGGREGATION_FIELDS) | set(EXTRA_RESULT_FIELDS)
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown analysis options {unknown}; known: {sorted(known)}")
    cfg = AnalysisConfig.from_options(config, **options)
    if cfg.per_layer is None:
        raise ValueError("per_layer=None (the full network) is not supported by the monitor: it would copy the "
                         "whole model on every step; save checkpoints and run `neuromfa analyze --per-layer full`")
    return cfg


# ---------------------------------------------------------------------------------------------
# the live model


def _unwrap(model: Any) -> Any:
    """The module that holds the weights: through torch.compile, DDP/DataParallel and PEFT."""
    seen = 0
    while seen < 16:
        seen += 1
        name = type(model).__name__
        if name in ("FullyShardedDataParallel", "FSDPModule") or hasattr(model, "_fsdp_wrapped_module") \
                or type(model).__name__.startswith("FSDP"):
            raise ValueError("the model is wrapped in FSDP: its parameters are sharded across ranks and rank 0 "
                             "alone cannot read them; save checkpoints and analyse them with `neuromfa analyze`, "
                             "or monitor a DDP model")
        if hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        elif name in ("DistributedDataParallel", "DataParallel") and hasattr(model, "module"):
            model = model.module
        elif hasattr(model, "peft_config") and callable(getattr(model, "get_base_model", None)):
            model = model.get_base_model()  # LoRA layers stay inside; see _live_tensors
        else:
            return model
    raise ValueError(f"could not unwrap the model ({type(model).__name__}): too many wrappers")


def _lora_state(model: Any) -> tuple:
    """(merged, unmerged) counts of PEFT LoRA layers in ``model``."""
    merged = unmerged = 0
    for mod in model.modules():
        if hasattr(mod, "lora_A") and hasattr(mod, "base_layer"):
            if getattr(mod, "merged", False):
                merged += 1
            else:
                unmerged += 1
    return merged, unmerged


def _live_tensors(model: Any, peft: str) -> tuple:
    """``(tensors, config, description)`` of a live torch module: its state dict (tensors share
    the parameters' storage: nothing is copied) with PEFT adapter names mapped to the base names."""
    m = _unwrap(model)
    import torch

    if not isinstance(m, torch.nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(m).__name__}")
    cfg = getattr(m, "config", None)
    config = None if cfg is None else (cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg))
    sd = m.state_dict()
    dt = getattr(torch.distributed, "tensor", None)
    dtensor = getattr(dt, "DTensor", None) if dt is not None else None
    if dtensor is not None and any(isinstance(v, dtensor) for v in sd.values()):
        raise ValueError("the model's parameters are sharded DTensors (FSDP2 / tensor parallel): rank 0 alone "
                         "cannot read them; save checkpoints and analyse them with `neuromfa analyze`")
    lora = [k for k in sd if ".lora_" in k or ".base_layer." in k]
    if lora:
        merged, unmerged = _lora_state(m)
        if peft == "merged" and unmerged:
            raise ValueError(f"the model has {unmerged} unmerged LoRA adapter layer(s) (e.g. {lora[0]!r}): merge "
                             "them (model.merge_adapter() or merge_and_unload()) or pass peft='base' to analyse "
                             "the base weights")
        if peft == "base" and merged:
            raise ValueError(f"peft='base', but {merged} LoRA layer(s) are merged into their base weights; "
                             "unmerge them (model.unmerge_adapter()) or use peft='merged'")
        sd = {k.replace(".base_layer.", "."): v for k, v in sd.items() if ".lora_" not in k}
    return sd, config, f"{type(m).__name__} (live)"


def _rank() -> int:
    import sys
    torch = sys.modules.get("torch")
    dist = getattr(torch, "distributed", None) if torch is not None else None
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank())
    return 0


# ---------------------------------------------------------------------------------------------
# the worker


class _Worker:
    """One thread; a waiting slot of depth one (a new request replaces the waiting one, except
    a ``keep`` request, the baseline)."""

    def __init__(self, run: Callable[[Any], None], on_drop: Callable[[Any], None]):
        self._run, self._on_drop = run, on_drop
        self._cv = threading.Condition()
        self._queue: collections.deque = collections.deque()
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="neuromfa-monitor", daemon=True)
        self._thread.start()

    def submit(self, job: Any, keep: bool) -> None:
        with self._cv:
            if self._closed:
                raise RuntimeError("the monitor is closed")
            for old in [j for j in self._queue if not j[1]]:
                self._queue.remove(old)
                self._on_drop(old[0])
            self._queue.append((job, keep))
            self._cv.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return
                job, _ = self._queue.popleft()
                self._busy = True
            try:
                self._run(job)
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def wait(self) -> None:
        with self._cv:
            while self._queue or self._busy:
                self._cv.wait()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join()


# ---------------------------------------------------------------------------------------------


class Monitor:
    """Analyse a model while it trains (see the module docstring).

    Parameters
    ----------
    model:
        the torch module being trained (see the module docstring for wrappers).
    out:
        a run directory to write (:mod:`.store` format: ``neuromfa report DIR`` and
        :func:`~neuromfa_native.load_run` read it); checkpoints are labelled ``step<N>``.
    config:
        an :class:`~neuromfa_native.AnalysisConfig` (default: its defaults); the
        keyword options below override its fields (:func:`monitor_config`).
    samples, per_layer:
        K sampled networks of S neurons per layer (a full network is refused: it would copy
        the whole model).
    background:
        analyse on a worker thread (default); ``False`` analyses inside :meth:`step`.
    strict:
        raise failures instead of logging them.
    peft:
        ``"merged"`` (adapters must be merged) or ``"base"`` (base weights of unmerged adapters).
    n_threads:
        threads of the analysis (default 1, leaving the cores to training; the numbers do not
        depend on it).
    filter, n_bootstrap, ci, seed:
        the aggregation of the run (as ``neuromfa analyze``): spectrum filter and the
        bootstrap interval of E.
    on_result:
        called with each :class:`MonitorResult` (on the worker thread with ``background=True``).
    overwrite:
        discard an ``out`` directory of another configuration.
    **options:
        the other fields of :class:`~neuromfa_native.AnalysisConfig` (layout, box, direction,
        threshold, min_edges, decimals, q, node_dimension, nfd_threshold, and ``controls``,
        ``stats``, ``by_layer``).  With ``controls`` or ``stats`` the snapshot holds the full
        sampled rows (what the controls' RMS and the statistics read); with the ``gaussian`` and
        ``scaled`` controls each result carries the run's verdict (docs/spec.md section 13),
        its shares are logged as :data:`VERDICT_METRICS` and its sentence on this module's
        logger (INFO); ``scaled`` is relative to the first analysed step.
    """

    def __init__(self, model: Any, out: Union[str, os.PathLike, None] = None, *,
                 config: Optional[AnalysisConfig] = None, samples: Union[int, Sequence[int]] = DEFAULT,
                 per_layer: int = DEFAULT, background: bool = True, strict: bool = False, peft: str = "merged",
                 n_threads: Optional[int] = 1, filter: str = DEFAULT, n_bootstrap: int = DEFAULT,
                 ci: float = DEFAULT, seed: int = DEFAULT, on_result: Optional[Callable[[MonitorResult], None]] = None,
                 overwrite: bool = False, **options: Any):
        if peft not in ("merged", "base"):
            raise ValueError(f"peft must be 'merged' or 'base', got {peft!r}")
        self.config = monitor_config(config, samples=samples, per_layer=per_layer, filter=filter,
                                     n_bootstrap=n_bootstrap, ci=ci, seed=seed, **options)
        self.samples = self.config.samples
        self.model, self.strict, self.peft, self.n_threads = model, bool(strict), peft, n_threads
        self.baseline: Optional[str] = None  # label of the first analysed step
        self.on_result = on_result
        self.out = None if out is None else Path(out)
        self.results: list = []  # MonitorResult, in step order of completion
        self.dropped: list = []  # steps whose waiting request was replaced by a newer one
        self.errors: list = []  # every failure (str)
        self.copy_seconds: list = []  # time on the training thread per step() call
        self.requested: list = []  # steps asked for, in order
        self._logged = False
        self._raise: Optional[BaseException] = None
        self._lock = threading.Lock()
        self._cps: list = []
        self._fps: list = []
        self._per_step: list = []
        self._store: Any = None
        self._setup: Optional[tuple] = None
        self._idx_cache: dict = {}
        self._disabled = False
        self._closed = False
        self.rank = _rank()
        if self.out is not None and self.rank == 0:  # fail fast on a directory of another run
            from ..run.store import RunStore
            stored = self.config.result_json()
            if needing_baseline(self.config.controls):  # as the runner records it: scaled results depend on the baseline
                stored["scaled_baseline"] = "the first monitored step"
            self._store = RunStore(self.out, stored, overwrite=overwrite)
        self._worker = _Worker(self._analyse, self._drop) if background and self.rank == 0 else None

    # -- public ------------------------------------------------------------------------------
    def step(self, global_step: int) -> Optional[MonitorResult]:
        """Ask for the analysis of the model as it is now, labelled ``global_step``.

        Returns the :class:`MonitorResult` with ``background=False`` (None on failure), else
        None (results arrive in :attr:`results` and ``on_result``).  A step already asked for,
        a rank other than 0, and a monitor disabled by a setup failure do nothing."""
        self._reraise()
        if self._closed:
            raise RuntimeError("the monitor is closed; create a new Monitor to go on")
        if self.rank != 0 or self._disabled:
            return None
        step = int(global_step)
        if step in self.requested:
            return None
        t0 = time.perf_counter()
        try:
            snap = self._snapshot()
        except Exception as exc:  # noqa: BLE001 - logged, or raised with strict=True
            self._fail(exc, f"step {step}: could not read the model")
            self._reraise()
            return None
        finally:
            self.copy_seconds.append(time.perf_counter() - t0)
        keep = not self.requested
        self.requested.append(step)
        job = (step, snap, self.copy_seconds[-1])
        if self._worker is None:
            self._analyse(job)
            self._reraise()
            return self.results[-1] if self.results and self.results[-1].step == step else None
        self._worker.submit(job, keep)
        return None

    def wait(self) -> None:
        """Block until every analysis asked for so far is finished (and written)."""
        if self._worker is not None:
            self._worker.wait()
        self._reraise()

    def close(self) -> None:
        """Finish the pending analyses, record the run's end in ``out`` and stop the worker."""
        self._closed = True
        try:
            if self._worker is not None:
                self._worker.wait()
                self._worker.close()
                self._worker = None
        finally:
            with self._lock:
                if self._store is not None:
                    try:
                        self._store.finish(dict(n_computed=len(self.results) * len(self.samples), n_reused=0,
                                                finished=time.time(), dropped_steps=list(self.dropped),
                                                errors=self.errors[:20]),
                                           status="failed" if self.errors else "complete")
                    finally:
                        self._store.close()
                        self._store = None
        self._reraise()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def series(self) -> Series:
        """The analysed steps as a :class:`~neuromfa_native.Series` (what ``load_run`` gives for ``out``)."""
        with self._lock:
            return self._summary(fingerprints=self._fps, n_computed=len(self._cps) * len(self.samples))

    # -- internals ---------------------------------------------------------------------------
    def _summary(self, **kw: Any) -> Series:
        c = self.config
        return summarize(self._cps, self._per_step, config=c, samples=c.samples, baseline=0, filter=c.filter,
                         n_bootstrap=c.n_bootstrap, ci=c.ci, seed=c.seed, **kw)

    def _aggregation(self) -> dict:
        """The run's aggregation, as the runner writes it in ``run.json``."""
        c = self.config
        return dict(samples=list(c.samples), filter=c.filter, baseline=self.baseline, n_bootstrap=c.n_bootstrap,
                    ci=c.ci, seed=c.seed)

    def _snapshot(self) -> Snapshot:
        tensors, config, desc = _live_tensors(self.model, self.peft)
        if self._setup is None:
            try:
                shapes = Shapes(tensors, config, desc).shape
                lay = get_layout(config, list(tensors), shapes, self.config.layout)
                full = bool(self.config.controls or self.config.stats)  # they read the full sampled rows
                plan = plan_snapshot(lay, cast(int, self.config.per_layer),  # monitor_config refuses None
                                     self.samples, shapes if full else None)
            except (ValueError, TypeError) as exc:
                self._disabled = not self.strict
                raise ValueError(f"the monitor cannot analyse this model: {exc}") from exc
            self._setup = (plan, config, network_digest(lay))
        plan, config, _ = self._setup
        return take_snapshot(tensors, plan, list(tensors), config, desc, self._idx_cache)

    def _drop(self, job: tuple) -> None:
        self.dropped.append(job[0])
        log.info("neuromfa monitor: analysis of step %d dropped (a newer step was asked for while the previous "
                 "analysis ran)", job[0])

    def _fail(self, exc: BaseException, what: str) -> None:
        msg = f"{what}: {type(exc).__name__}: {exc}"
        self.errors.append(msg)
        if self.strict:
            self._raise = exc
            return
        if not self._logged:
            self._logged = True
            log.warning("neuromfa monitor: %s (training goes on; further failures are kept in monitor.errors)",
                        msg)

    def _reraise(self) -> None:
        exc, self._raise = self._raise, None
        if exc is not None:
            raise exc

    def _analyse(self, job: tuple) -> None:
        step, snap, copy_s = job
        t0 = time.perf_counter()
        label = f"step{step}"
        try:
            cfg, scale_to = self._task_options()
            rs = [analyze_sample(snap, k, label=label, n_threads=self.n_threads, config=cfg, scale_to=scale_to(k))
                  for k in self.samples]
            key = f"{snap.key()}-{cast(tuple, self._setup)[2]}"  # the weights and the network they build, as a run's keys
            self._record(step, label, key, rs, copy_s, time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001 - logged, or raised with strict=True
            self._fail(exc, f"step {step}")

    def _task_options(self) -> tuple:
        """The analysis configuration and ``scale_to(sample)`` of the next step: with a control that
        needs the baseline (:func:`~..science.nulls.needing_baseline`: ``scaled``) every step keeps its statistics, the first (the baseline) is scaled to itself and
        the later ones to the baseline's RMS of the same sample's rows (as ``analyze_series``)."""
        if not needing_baseline(self.config.controls):
            return self.config, lambda k: None
        with self._lock:
            base = {r.sample: r for r in self._per_step[0]} if self._per_step else None
        if base is None:
            return self.config.replace(stats=True), lambda k: scale_to_of(None, k, True)
        return self.config.replace(stats=True), lambda k: scale_to_of(base.get(k), k, False)

    def _record(self, step: int, label: str, key: str, rs: list, copy_s: float, seconds: float) -> None:
        with self._lock:
            cp = Checkpoint(source=f"monitor:{label}", revision=None, label=label, step=step, step_parsed=True)
            if self._store is not None:
                for r in rs:
                    self._store.put(key, r.sample, r)
            self._cps.append(cp)
            self._fps.append(key)
            self._per_step.append(rs)
            if self.baseline is None:
                self.baseline = label
            if self._store is not None:
                self._store.begin(self._cps, self._fps, self._aggregation())
            s = self._summary()
            t = len(self._cps) - 1
            v = s.verdict() if set(VERDICT_CONTROLS) <= set(self.config.controls) else None
            res = MonitorResult(step=step, results=tuple(rs), alpha0=float(s.alpha0_mean[t]),
                                width=float(s.width_mean[t]), E=float(s.emergence[t]),
                                E_lo=float(s.emergence_ci[t, 0]), E_hi=float(s.emergence_ci[t, 1]),
                                copy_seconds=copy_s, seconds=seconds, verdict=v)
            self.results.append(res)
        if v is not None and t > 0:
            log.info("neuromfa monitor: step %d: %s", step, v.sentence)
        if self.on_result is not None:
            self.on_result(res)
