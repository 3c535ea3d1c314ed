"""Null networks (SPEC 9) and the one-read network builder that also yields rival statistics.

A control replaces each weight matrix ``W`` by a null version before the distance transform.
``U`` is the part of ``W`` that becomes edges (the sampled submatrix of a sampled network) and
``RMS`` is taken over the full rows of ``W`` the network reads (the sampled output rows; for a
GPT-2 ``Conv1D`` tensor, stored ``(in, out)``, the stored rows of the sampled input neurons,
which are the bytes actually read).  The controls themselves (what replaces ``U``, what each
keeps and removes, which need the baseline) are the rows of :data:`.nulls.CONTROLS`.

Common random numbers: every draw comes from ``numpy.random.Generator(PCG64)`` seeded with a
SHA-256 of ``(sample, tensor name, control)``, never of the checkpoint, so a series that only
grows in scale has ``E_scaled = 0`` and one at constant RMS has ``E_gaussian = 0`` (up to
rounding). Synthetic 0/1 blocks (GPT-NeoX reference QKV -> context) are kept as they are in
every control: their distance 1 never passes the filter.

:func:`build_variants` reads each used matrix once (full rows), and from that one block builds
the real network, every requested control and the rival statistics (:mod:`.weight_stats`).
For a full network (``U`` = all of ``W``, RMS over all of ``W``) :class:`FullNetworkHook` gets
the row blocks the streamed analysis reads, holds one tensor at a time, and fills one dense
(node x key) table per control.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from ..config import DEFAULT_CONFIG
from ..network.nin import block_edges, load_layout, make_nin, weight_dtype
from .nulls import BASELINE, CONTROLS, baseline_factor, check_controls, control_rng, needing_baseline

__all__ = ["CONTROL_COLUMNS", "STATS_COLUMNS", "build_variants"]


def _read_rows(tsrc, m, out_idx: np.ndarray, in_idx: np.ndarray) -> tuple:
    """(rows read, U in (out, in) orientation) from one read of the full rows."""
    if m.orientation == "conv1d":  # stored (in, out): the stored rows of the sampled inputs
        rows = tsrc.get_slice(m.name, in_idx)
        return rows, rows[:, out_idx].T
    rows = tsrc.get_slice(m.name, out_idx)
    return rows, rows[:, in_idx]


def build_variants(tsrc, lay, *, sample: int, per_layer: int, controls: Sequence[str] = (), stats: bool = False,
                   scale_to: Any = None, threshold: float = DEFAULT_CONFIG.threshold, n_threads: int = -1) -> tuple:
    """The sampled network of ``sample`` (as :func:`~.nin.build_nin`), each control's network and
    the rival statistics, from one read of each used matrix's rows.

    ``scale_to``: ``{tensor: baseline RMS}`` for the ``scaled`` control, or ``"baseline"`` on the
    baseline checkpoint itself.  Returns ``(nin, {control: NIN}, WeightStats or None, {tensor: RMS})``.
    """
    from .weight_stats import StatsAccumulator

    check_controls(controls, series=scale_to is not None)
    wdt = weight_dtype(tsrc, lay)
    offs = lay.offsets
    samples = lay.sample(int(per_layer), sample)
    acc = StatsAccumulator(threshold, n_threads, distribution=stats)
    parts: dict = {c: [] for c in ("none",) + tuple(controls)}
    rms: dict = {}
    for m in lay.matrices:
        in_idx, out_idx = samples[m.in_layer], samples[m.out_layer]
        ids = (offs[m.in_layer] + in_idx, offs[m.out_layer] + out_idx)
        if m.is_synthetic:
            e = block_edges(m.synthetic(out_idx, in_idx).astype(wdt), *ids)
            for c in parts:
                parts[c].append(e)
            continue
        rows, u = _read_rows(tsrc, m, out_idx, in_idx)
        acc.add(m.name, rows)  # with rms(): "tensor ... has N non-finite weights (NaN or inf) in the read rows"
        r = rms[m.name] = acc.rms(m.name)
        u = u.astype(wdt, copy=False)
        parts["none"].append(block_edges(u, *ids))
        for c in controls:
            ctl = CONTROLS[c]
            factor = baseline_factor(scale_to, m.name, r) if ctl.needs_baseline else 1.0
            v = ctl.build(u, rms=r, rng=control_rng(sample, m.name, c), factor=factor)
            parts[c].append(block_edges(v, *ids))
    node_ids = np.sort(np.concatenate([offs[k] + s for k, s in enumerate(samples)]))

    def make(c):
        ps = parts[c]
        dt = wdt if c == "none" or CONTROLS[c].keeps_dtype else np.dtype(np.float64)
        return make_nin(ps, node_ids, lay, dt, int(sample), int(per_layer))

    nets = {c: make(c) for c in controls}
    return make("none"), nets, (acc.result() if stats else None), rms


@dataclass(frozen=True)
class SampledVariants:
    """The real sampled network, the controls' networks and the statistics of one read."""

    lay: Any
    nin: Any
    nets: dict
    weight_stats: Any

    def __repr__(self) -> str:
        return (f"<SampledVariants of {self.nin!r}: controls {', '.join(self.nets) or 'none'}"
                f"{', weight stats' if self.weight_stats is not None else ''}>")

    @classmethod
    def build(cls, tsrc, sample: int, cfg, scale_to: Any, n_threads: int) -> SampledVariants:
        tsrc_, lay = load_layout(tsrc, cfg.layout)
        nin, nets, ws, _ = build_variants(tsrc_, lay, sample=sample, per_layer=cfg.per_layer, controls=cfg.controls,
                                          stats=cfg.stats, scale_to=scale_to, threshold=cfg.threshold,
                                          n_threads=n_threads)
        return cls(lay=lay, nin=nin, nets=nets, weight_stats=ws)

    def extras(self, label: str, cfg, n_threads: int) -> dict:
        """``controls``, ``weight_stats`` and ``by_layer`` of the sample's result."""
        from .by_layer import by_layer_rows

        out: dict = dict(weight_stats=self.weight_stats)
        if self.nets:
            out["controls"] = spectra_of(self.nets, label, self.nin.sample, config=cfg, n_threads=n_threads)
        if cfg.by_layer:
            out["by_layer"] = tuple(by_layer_rows(self.nin, self.lay, config=cfg, n_threads=n_threads))
        return out


def full_network_extras(hook: Optional[FullNetworkHook], table: np.ndarray, lay, cfg, label: str,
                        n_threads: int) -> dict:
    """``controls``, ``weight_stats`` and ``by_layer`` of a streamed full network's result:
    each control's table through the same partition as the real one; the by-layer groups from
    the real table's rows."""
    from .by_layer import by_layer_table_rows
    from ..mfa.engine import analyze_table, box_params

    out: dict = {}
    opts = dict(threshold=cfg.threshold, decimals=cfg.decimals, min_edges=cfg.min_edges, q=cfg.q,
                n_threads=n_threads, params=box_params(cfg))
    if hook is not None:
        hook.finish()
        out["weight_stats"] = hook.acc.result() if cfg.stats else None
        ctl = {}
        for c, t in hook.tables.items():
            try:
                ctl[c] = analyze_table(t, **opts)
            except ValueError as exc:
                raise ValueError(f"{label}, control {c!r}, full network: {exc}") from None
        out["controls"] = ctl or None
    if cfg.by_layer:
        out["by_layer"] = tuple(by_layer_table_rows(table, lay, **opts))
    return out


def spectra_of(nets: dict, label: str, sample: Any, **graph_opts) -> dict:
    """``{control: Spectrum}`` of the control networks (:func:`~.engine.analyze_graph`)."""
    from ..mfa.engine import analyze_graph

    out = {}
    for c, nin in nets.items():
        try:
            out[c] = analyze_graph(nin.src, nin.dst, nin.weight, **graph_opts)
        except ValueError as exc:
            raise ValueError(f"{label}, sample {sample}, control {c!r}: {exc}") from None
    return out


# ---------------------------------------------------------------------------------------------
# storage of a result's controls and statistics (called by store.result_to_npz / result_from_npz)


def extras_to_npz(result, arrays: dict, meta: dict) -> None:
    """Adds ``result.controls`` (each control's spectrum) and ``result.weight_stats`` to the
    arrays and header of a result file."""
    import dataclasses

    from ..mfa.engine import Spectrum

    if result.controls:
        meta["controls"] = {}
        for c, spec in result.controls.items():
            m = {}
            for f in dataclasses.fields(Spectrum):
                v = getattr(spec, f.name)
                if isinstance(v, np.ndarray):
                    arrays[f"control.{c}.{f.name}"] = v
                else:
                    m[f.name] = list(v) if isinstance(v, tuple) else v
            meta["controls"][c] = m
    if result.by_layer is not None:
        meta["by_layer"] = [dict(r) for r in result.by_layer]
    ws = result.weight_stats
    if ws is not None:
        arrays["ws.values"] = ws.values
        meta["weight_stats"] = dict(tensors=list(ws.tensors), statistics=list(ws.statistics), notes=list(ws.notes))


def extras_from_npz(data: dict, meta: dict) -> dict:
    """``dict(controls=..., weight_stats=...)`` read back by :func:`extras_to_npz`'s layout."""
    import dataclasses

    from ..mfa.engine import Spectrum
    from .weight_stats import WeightStats

    out: dict = {}
    if meta.get("controls"):
        names = {f.name: f for f in dataclasses.fields(Spectrum)}
        ctl = {}
        for c, m in meta["controls"].items():
            kw: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in m.items() if k in names}
            pre = f"control.{c}."
            for k, v in data.items():
                if k.startswith(pre) and k[len(pre):] in names:
                    a = np.array(v)
                    a.setflags(write=False)
                    kw[k[len(pre):]] = a
            try:
                ctl[c] = Spectrum(**kw)
            except TypeError as exc:
                raise ValueError(f"control {c!r} spectrum fields do not match this library version: {exc}") from None
        out["controls"] = ctl
    if meta.get("by_layer") is not None:
        out["by_layer"] = tuple(meta["by_layer"])
    if meta.get("weight_stats"):
        m = meta["weight_stats"]
        out["weight_stats"] = WeightStats(tensors=tuple(m["tensors"]), statistics=tuple(m["statistics"]),
                                          values=data["ws.values"], notes=tuple(m.get("notes") or ()))
    return out


# ---------------------------------------------------------------------------------------------
# series: configuration, per-task options, aggregation (called from series.py / report.py)

#: The columns of ``controls.csv`` (docs/outputs.md), in order.
CONTROL_COLUMNS = ("step", "checkpoint", "control", "n", "alpha0_mean", "alpha0_sd", "width_mean", "width_sd", "E",
                   "E_lo", "E_hi")
#: The columns of ``stats.csv`` (docs/outputs.md), in order.
STATS_COLUMNS = ("step", "checkpoint", "tensor", "statistic", "value")


def scale_to_of(baseline_result: Any, sample: Any, is_baseline: bool) -> Any:
    """The ``scale_to`` of one (checkpoint, sample) task of a series with a control that needs the
    baseline (:func:`.nulls.needing_baseline`):
    ``"baseline"`` on the baseline itself, else ``{tensor: RMS}`` of the baseline's result of
    the same sample (its read rows are the same rows)."""
    if is_baseline:
        return BASELINE
    ws = getattr(baseline_result, "weight_stats", None)
    if ws is None:
        raise ValueError(f"sample {sample}: the baseline's result is missing or has no statistics; the "
                         f"{', '.join(needing_baseline(CONTROLS))} control needs the baseline's RMS (rerun to retry "
                         "the baseline)")
    return {t: ws.get("rms", t) for t in ws.tensors if t != "all"}


def _filtered(spectra: list, filter: str) -> tuple:
    kept = [s for s in spectra if s.passes(filter)]
    return np.array([s.alpha0 for s in kept], float), np.array([s.width for s in kept], float)


def control_summary(series) -> dict:
    """``{control: dict(n, alpha0_mean, alpha0_sd, width_mean, width_sd, E, E_lo, E_hi)}`` of
    arrays over the checkpoints; the real network is control ``"none"``.  E follows SPEC 4
    relative to the series' baseline, its interval the series' bootstrap settings."""
    from ..mfa.stats import bootstrap_emergence

    names = ["none"] + list(series.config.get("controls", ()))
    b = series.baseline
    boot = series.bootstrap or {}
    out = {}
    for c in names:
        a0, wd = [], []
        for rs in series.results:
            specs = [r.spectrum if c == "none" else (r.controls or {}).get(c) for r in rs]
            a, w = _filtered([s for s in specs if s is not None], series.filter)
            a0.append(a)
            wd.append(w)
        sd = lambda x: float(x.std(ddof=1)) if x.size > 1 else (0.0 if x.size else np.nan)  # noqa: E731
        am = np.array([x.mean() if x.size else np.nan for x in a0])
        wm = np.array([x.mean() if x.size else np.nan for x in wd])
        with np.errstate(divide="ignore", invalid="ignore"):
            e = (wm / wm[b]) * np.log(am[b] / am)
        e[b] = 0.0 if np.isfinite(am[b]) else np.nan
        ci = bootstrap_emergence(a0, wd, baseline=b, n_bootstrap=int(boot.get("n_bootstrap", DEFAULT_CONFIG.n_bootstrap)),
                                 ci=float(boot.get("ci", DEFAULT_CONFIG.ci)), seed=int(boot.get("seed", DEFAULT_CONFIG.seed)))
        out[c] = dict(n=np.array([x.size for x in a0]), alpha0_mean=am, alpha0_sd=np.array([sd(x) for x in a0]),
                      width_mean=wm, width_sd=np.array([sd(x) for x in wd]), E=e, E_lo=ci[:, 0], E_hi=ci[:, 1])
    return out


def control_rows(series) -> list:
    """Rows of ``controls.csv``: one per (checkpoint, control), the real network as ``none``."""
    if not series.config.get("controls"):
        return []
    summ = control_summary(series)
    rows = []
    for t, cp in enumerate(series.checkpoints):
        for c, d in summ.items():
            rows.append(dict(step=cp.step, checkpoint=cp.label, control=c, n=int(d["n"][t]),
                             **{k: float(d[k][t]) for k in CONTROL_COLUMNS[4:]}))
    return rows


def stats_summary(series) -> tuple:
    """``(tensors, statistics, values)``: ``values[t, i, j]`` the mean over checkpoint ``t``'s
    samples of statistic ``j`` of tensor ``i`` (NaN where missing); tensor ``"all"`` last."""
    wss = [[r.weight_stats for r in rs if r.weight_stats is not None] for rs in series.results]
    first = next((w[0] for w in wss if w), None)
    if first is None:
        return (), (), np.zeros((len(series.checkpoints), 0, 0))
    vals = np.full((len(wss), len(first.tensors), len(first.statistics)), np.nan)
    for t, ws in enumerate(wss):
        if ws:
            vals[t] = np.mean([w.values for w in ws], axis=0)
    return first.tensors, first.statistics, vals


def stats_rows(series) -> list:
    """Rows of ``stats.csv`` (a sampled series: the mean over the checkpoint's samples)."""
    tensors, statistics, vals = stats_summary(series)
    return [dict(step=cp.step, checkpoint=cp.label, tensor=tn, statistic=s, value=float(vals[t, i, j]))
            for t, cp in enumerate(series.checkpoints) for i, tn in enumerate(tensors)
            for j, s in enumerate(statistics)]


def quantities(series) -> dict:
    """``{quantity: per-checkpoint float array}`` for correlation: ``E``, ``alpha0``, ``width``;
    ``E_<control>``, ``alpha0_<control>``, ``width_<control>`` per control; and the pooled rival
    statistics by name (``rms``, ``kurtosis``, ...)."""
    out = dict(E=np.asarray(series.emergence, float), alpha0=np.asarray(series.alpha0_mean, float),
               width=np.asarray(series.width_mean, float))
    if series.config.get("controls"):
        for c, d in control_summary(series).items():
            if c != "none":
                out[f"E_{c}"], out[f"alpha0_{c}"], out[f"width_{c}"] = d["E"], d["alpha0_mean"], d["width_mean"]
    tensors, statistics, vals = stats_summary(series)
    if tensors:
        for j, s in enumerate(statistics):
            out[s] = vals[:, -1, j]
    for v in out.values():
        v.setflags(write=False)
    return out


def scale_sentence(series) -> str:
    """How much of the final E the scale-only control reproduces, in words ('' without it)."""
    ctl = series.config.get("controls", ())
    if ("gaussian" not in ctl and "scaled" not in ctl) or len(series.checkpoints) < 2:
        return ""  # one checkpoint has no E: the verdict's contrast with the controls says what it can
    summ = control_summary(series)
    t = len(series.checkpoints) - 1
    e = summ["none"]["E"][t]
    parts = []
    if "gaussian" in summ:
        g = summ["gaussian"]["E"][t]
        parts.append(f"the scale-only (gaussian) control reproduces E = {g:.3f} of the real network's final "
                     f"E = {e:.3f} ({100 * g / e:.0f}%)" if np.isfinite(g) and np.isfinite(e) and e != 0 else
                     f"the scale-only (gaussian) control has final E = {g:.3f} (real E = {e:.3f})")
    if "scaled" in summ:
        s = summ["scaled"]["E"][t]
        parts.append(f"with the scale growth removed (scaled) E = {s:.3f}")
    return "At the last checkpoint, " + "; ".join(parts) + "."


# ---------------------------------------------------------------------------------------------
# full networks: the controls from the row blocks the real analysis streams (no second read)


class FullNetworkHook:
    """Receives every row block :func:`~.analysis._stream_full` reads (``add``), keeps the rival
    statistics, and per tensor (once its last block has come) accumulates each control's
    matrix into the control's own dense (node x key) table and, with statistics, takes the
    tensor's ``stable_rank`` (``||W||_F^2 / sigma_max^2``, :func:`~.weight_stats.sigma_max` on
    the tensor in memory).  Holds one tensor at a time."""

    def __init__(self, lay, controls: Sequence[str], scale_to: Any, threshold: float, decimals: int,
                 n_threads: int, stats: bool = True):
        from .. import _core
        from .weight_stats import StatsAccumulator

        check_controls(controls, series=scale_to is not None)
        self.lay, self.controls, self.scale_to = lay, tuple(controls), scale_to
        self.threshold, self.decimals, self.n_threads = float(threshold), int(decimals), int(n_threads)
        self.acc = StatsAccumulator(threshold, n_threads, distribution=stats)
        self._spec = {m.name: m for m in lay.matrices if not m.is_synthetic}
        _, nb = _core.key_range(self.threshold, self.decimals, 1.0)
        self.tables = {c: np.zeros((lay.n_nodes, nb), np.uint32) for c in self.controls}
        self._name: Optional[str] = None
        self._blocks: list = []

    def add(self, name: str, block: np.ndarray, kind: str) -> None:
        if name != self._name:
            self._flush()
            self._name = name
        self.acc.add(name, block, kind)
        if self.controls or self.acc.distribution:
            self._blocks.append((block, kind))

    def _values(self, block, kind) -> np.ndarray:
        if kind == "f16":
            return block.view(np.float16)
        if kind == "bf16":
            return (block.astype(np.uint32) << 16).view(np.float32)
        return block

    def _flush(self) -> None:
        from .. import _core
        from .weight_stats import sigma_max

        name, blocks = self._name, self._blocks
        self._blocks = []
        if name is None or not blocks:
            return
        m = self._spec[name]
        kind = blocks[0][1]
        raw = np.concatenate([b for b, _ in blocks]) if len(blocks) > 1 else blocks[0][0]
        w = self._values(raw, kind)
        r = self.acc.rms(name)
        if self.acc.distribution:  # statistics: the stable rank of the tensor in memory
            sig = sigma_max(w)
            self.acc.set_extra(name, "stable_rank", self.acc.frobenius2(name) / sig ** 2 if sig > 0 else np.nan)
        for c in self.controls:
            ctl = CONTROLS[c]
            factor = baseline_factor(self.scale_to, name, r) if ctl.needs_baseline else 1.0
            v = ctl.build(raw if ctl.keeps_dtype else w, rms=r, rng=control_rng(None, name, c), factor=factor)
            k = kind if ctl.keeps_dtype else "f64"
            _core.accumulate_matrix(self.tables[c], np.ascontiguousarray(v), k, int(self.lay.offsets[m.in_layer]),
                                    self.threshold, self.decimals, self.n_threads, 1.0)

    def finish(self) -> None:
        self._flush()
        self._name = None
