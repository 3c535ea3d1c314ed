"""Null networks (SPEC 9) and the one-read network builder that also yields rival statistics.

A control replaces each weight matrix ``W`` by a null version before the distance transform.
``U`` is the part of ``W`` that becomes edges (the sampled submatrix of a sampled network) and
``RMS`` is taken over the full rows of ``W`` the network reads (the sampled output rows; for a
GPT-2 ``Conv1D`` tensor, stored ``(in, out)``, the stored rows of the sampled input neurons,
which are the bytes actually read):

- ``gaussian``: ``U`` becomes i.i.d. ``Normal(0, RMS^2)`` draws (float64);
- ``shuffle``: the entries of ``U`` are permuted uniformly at random (zeros included, so the
  multiset of used weights is kept);
- ``scaled`` (series only): ``U * RMS_baseline / RMS`` (float64), the baseline's RMS taken over
  the same rows of the baseline checkpoint.

Common random numbers: every draw comes from ``numpy.random.Generator(PCG64)`` seeded with a
SHA-256 of ``(sample, tensor name, control)``, never of the checkpoint, so a series that only
grows in scale has ``E_scaled = 0`` and one at constant RMS has ``E_gaussian = 0`` (up to
rounding). Synthetic 0/1 blocks (GPT-NeoX reference QKV -> context) are kept as they are in
every control: their distance 1 never passes the filter.

:func:`build_variants` reads each used matrix once (full rows), and from that one block builds
the real network, every requested control and the rival statistics (:mod:`.weight_stats`).
"""
from __future__ import annotations

import hashlib
from typing import Any, Optional, Sequence

import numpy as np

from .nin import _check_finite, _edges, _make_nin, _weight_dtype

__all__ = ["CONTROLS", "check_controls", "control_rng", "gaussian_control", "shuffle_control", "build_variants"]

CONTROLS = ("gaussian", "shuffle", "scaled")

#: ``scale_to`` value of the baseline checkpoint itself (factor 1).
BASELINE = "baseline"


def check_controls(controls: Any, *, series: bool) -> tuple:
    """Validated control names in canonical order; ``scaled`` only in a series."""
    if controls is None:
        return ()
    if isinstance(controls, str):
        controls = [c for c in controls.split(",") if c.strip()]
    try:
        names = [str(c).strip() for c in controls]
    except TypeError:
        raise TypeError(f"controls must be a sequence of names from {CONTROLS}, got {controls!r}") from None
    bad = [c for c in names if c not in CONTROLS]
    if bad:
        raise ValueError(f"unknown control(s) {bad}; choose from {CONTROLS}")
    if "scaled" in names and not series:
        raise ValueError("the 'scaled' control needs a series (its baseline RMS comes from the baseline checkpoint); "
                         "use analyze_series, or controls=('gaussian', 'shuffle')")
    return tuple(c for c in CONTROLS if c in names)


def control_rng(sample: Optional[int], tensor: str, control: str) -> np.random.Generator:
    """The generator of one (sample, tensor, control): a stable hash, never the checkpoint."""
    key = f"neuromfa-control|{'full' if sample is None else int(sample)}|{tensor}|{control}".encode()
    seed = int.from_bytes(hashlib.sha256(key).digest()[:16], "little")
    return np.random.Generator(np.random.PCG64(seed))


def gaussian_control(u: np.ndarray, rms: float, rng: np.random.Generator) -> np.ndarray:
    """``U`` replaced by i.i.d. Normal(0, rms^2) draws (float64)."""
    return rng.standard_normal(u.shape) * float(rms)


def shuffle_control(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The entries of ``U`` permuted uniformly at random (same dtype, same multiset)."""
    flat = np.asarray(u).reshape(-1)
    return flat[rng.permutation(flat.size)].reshape(u.shape)


def _read_rows(tsrc, m, out_idx: np.ndarray, in_idx: np.ndarray) -> tuple:
    """(rows read, U in (out, in) orientation) from one read of the full rows."""
    if m.orientation == "conv1d":  # stored (in, out): the stored rows of the sampled inputs
        rows = tsrc.get_slice(m.name, in_idx)
        return rows, rows[:, out_idx].T
    rows = tsrc.get_slice(m.name, out_idx)
    return rows, rows[:, in_idx]


def build_variants(tsrc, lay, *, sample: int, per_layer: int, controls: Sequence[str] = (), stats: bool = False,
                   scale_to: Any = None, threshold: float = 150.0, n_threads: int = -1) -> tuple:
    """The sampled network of ``sample`` (as :func:`~.nin.build_nin`), each control's network and
    the rival statistics, from one read of each used matrix's rows.

    ``scale_to``: ``{tensor: baseline RMS}`` for the ``scaled`` control, or ``"baseline"`` on the
    baseline checkpoint itself.  Returns ``(nin, {control: NIN}, WeightStats or None, {tensor: RMS})``.
    """
    from .weight_stats import StatsAccumulator

    if "scaled" in controls and scale_to is None:
        raise ValueError("the 'scaled' control needs the baseline RMS (scale_to); it runs only in a series")
    wdt = _weight_dtype(tsrc, lay)
    offs = lay.offsets
    samples = lay.sample(int(per_layer), sample)
    acc = StatsAccumulator(threshold, n_threads)
    parts: dict = {c: [] for c in ("none",) + tuple(controls)}
    rms: dict = {}
    for m in lay.matrices:
        in_idx, out_idx = samples[m.in_layer], samples[m.out_layer]
        ids = (offs[m.in_layer] + in_idx, offs[m.out_layer] + out_idx)
        if m.is_synthetic:
            e = _edges(m.synthetic(out_idx, in_idx).astype(wdt), *ids)
            for c in parts:
                parts[c].append(e)
            continue
        rows, u = _read_rows(tsrc, m, out_idx, in_idx)
        _check_finite(rows, m.name, "the read rows")
        acc.add(m.name, rows)
        r = rms[m.name] = acc.rms(m.name)
        u = u.astype(wdt, copy=False)
        parts["none"].append(_edges(u, *ids))
        for c in controls:
            rng = control_rng(sample, m.name, c)
            if c == "gaussian":
                v = gaussian_control(u, r, rng)
            elif c == "shuffle":
                v = shuffle_control(u, rng)
            else:
                if isinstance(scale_to, str):
                    if scale_to != BASELINE:
                        raise ValueError(f"scale_to must be a mapping or {BASELINE!r}, got {scale_to!r}")
                    factor = 1.0
                else:
                    if m.name not in scale_to:
                        raise ValueError(f"scale_to has no baseline RMS of tensor {m.name!r}")
                    factor = float(scale_to[m.name]) / r if r > 0 else float("nan")
                    if not np.isfinite(factor):
                        raise ValueError(f"tensor {m.name!r}: the read rows have RMS {r}; cannot rescale to the baseline")
                v = u.astype(np.float64) * factor
            parts[c].append(_edges(v, *ids))
    node_ids = np.sort(np.concatenate([offs[k] + s for k, s in enumerate(samples)]))

    def make(c):
        ps = parts[c]
        dt = wdt if c in ("none", "shuffle") else np.dtype(np.float64)
        return _make_nin(ps, node_ids, lay, dt, int(sample), int(per_layer))

    nets = {c: make(c) for c in controls}
    return make("none"), nets, (acc.result() if stats else None), rms


def spectra_of(nets: dict, label: str, sample: Any, **graph_opts) -> dict:
    """``{control: Spectrum}`` of the control networks (:func:`~.engine.analyze_graph`)."""
    from .engine import analyze_graph

    out = {}
    for c, nin in nets.items():
        try:
            out[c] = analyze_graph(nin.src, nin.dst, nin.weight, **graph_opts)
        except ValueError as exc:
            raise ValueError(f"{label}, sample {sample}, control {c!r}: {exc}") from None
    return out
