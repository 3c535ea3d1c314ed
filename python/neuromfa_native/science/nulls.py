"""The null-network controls (SPEC 9): one row per control in :data:`CONTROLS`, and the builders.

A control replaces the part ``U`` of each weight matrix that becomes edges by a null version
before the distance transform (``RMS`` is taken over the full rows the network reads; see
:mod:`.controls`).  Each :class:`Control` row says how to build it, what it keeps and what it
removes, and whether it needs the baseline checkpoint (then it runs only in a series).
:class:`~neuromfa_native.AnalysisConfig` checks ``controls=`` against this table, the CLI's
``--controls`` help lists it, and :mod:`.controls` builds every control through it: adding a
control is one row here (and its test), nothing else.

This module sits low (next to the box-type registry): it needs only numpy.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from .. import _validation as check

__all__ = ["BASELINE", "CONTROLS", "Control", "baseline_factor", "check_controls", "control_rng",
           "gaussian_control", "needing_baseline", "shuffle_control"]

#: ``scale_to`` value of the baseline checkpoint itself (factor 1).
BASELINE = "baseline"


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


def _gaussian(u: np.ndarray, *, rms: float, rng: np.random.Generator, factor: float) -> np.ndarray:
    return gaussian_control(u, rms, rng)


def _shuffle(u: np.ndarray, *, rms: float, rng: np.random.Generator, factor: float) -> np.ndarray:
    return shuffle_control(u, rng)


def _scaled(u: np.ndarray, *, rms: float, rng: np.random.Generator, factor: float) -> np.ndarray:
    return u.astype(np.float64) * factor


@dataclass(frozen=True)
class Control:
    """One null-network control (SPEC 9).

    Attributes
    ----------
    name : the name users pick it by (``controls=``, ``--controls``, ``controls.csv``).
    build : ``build(U, rms=, rng=, factor=)`` -> the null version of ``U``; ``rms`` is the RMS
        of the rows read, ``rng`` the stream of :func:`control_rng`, ``factor`` the rescaling
        to the baseline (:func:`baseline_factor`; 1 unless ``needs_baseline``).
    keeps, removes : what the null network keeps and what it removes, in a few words (docs,
        report captions, the verdict).
    short : what it keeps, in fewer words, for sentences ("only the weight scale").
    replaces : what replaces ``U``.
    keeps_dtype : the null matrix keeps the weights' dtype (else it is float64): ``build`` then gets
        the weights as stored (a streamed bfloat16 tensor as its 16-bit patterns) and may only
        rearrange them, as ``shuffle`` does.
    needs_baseline : it needs the baseline checkpoint's RMS of the same rows: series only.
    """

    name: str
    build: Callable[..., np.ndarray]
    keeps: str
    removes: str
    short: str
    replaces: str
    keeps_dtype: bool = False
    needs_baseline: bool = False

    def __repr__(self) -> str:
        return f"<Control {self.name}: keeps {self.keeps}; removes {self.removes}>"


#: name -> :class:`Control`, in canonical order (the order of ``controls.csv``).
CONTROLS = {
    "gaussian": Control(name="gaussian", build=_gaussian,
                        keeps="the weight scale (the RMS of the rows the network reads)",
                        removes="the distribution of the weights and which neuron holds which weight",
                        short="only the weight scale", replaces="i.i.d. Normal(0, RMS^2) draws (float64)"),
    "shuffle": Control(name="shuffle", build=_shuffle, keeps="the distribution of the used weights",
                       removes="which neuron holds which weight", short="only the distribution of the used weights",
                       replaces="the entries of U permuted uniformly (zeros too)", keeps_dtype=True),
    "scaled": Control(name="scaled", build=_scaled, keeps="the structure and the shape of the weight distribution",
                      removes="the growth of the weight scale since the baseline",
                      short="the structure without the scale growth",
                      replaces="U * RMS(baseline rows) / RMS(rows) (float64)", needs_baseline=True),
}


def needing_baseline(controls: Any) -> tuple:
    """The names among ``controls`` that need the baseline checkpoint (run only in a series)."""
    return tuple(c for c in controls if CONTROLS[c].needs_baseline)


def check_controls(controls: Any, *, series: bool) -> tuple:
    """Validated control names in canonical order; outside a series (``series=False``: no
    baseline to rescale to) a control that needs the baseline is refused."""
    names = check.names(controls, "controls", tuple(CONTROLS))
    need = needing_baseline(names)
    if need and not series:
        others = tuple(c for c in CONTROLS if c not in need)
        raise ValueError(f"the {', '.join(repr(c) for c in need)} control needs a series (the baseline checkpoint's "
                         f"RMS of the same rows); use analyze_series, or controls={others!r}")
    return names


def baseline_factor(scale_to: Any, tensor: str, rms: float) -> float:
    """The factor that rescales a tensor's rows of RMS ``rms`` to the baseline's:
    ``scale_to[tensor] / rms``, or 1 when ``scale_to`` is :data:`BASELINE` (the baseline itself)."""
    if isinstance(scale_to, str):
        if scale_to != BASELINE:
            raise ValueError(f"scale_to must be a mapping or {BASELINE!r}, got {scale_to!r}")
        return 1.0
    if tensor not in scale_to:
        raise ValueError(f"scale_to has no baseline RMS of tensor {tensor!r}")
    factor = float(scale_to[tensor]) / rms if rms > 0 else float("nan")
    if not np.isfinite(factor):
        raise ValueError(f"tensor {tensor!r}: the read rows have RMS {rms}; cannot rescale to the baseline")
    return factor
