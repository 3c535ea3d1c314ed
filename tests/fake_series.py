"""A stand-in with the public surface of a :class:`neuromfa_native.series.Series` that
correlation reads (checkpoints with step/label, labels, steps, per-sample results with
alpha0/width/spectrum.passes, filter, baseline), built from given per-sample values so the
statistics can be tested against known truths without running the analysis."""
from dataclasses import dataclass, field
import numpy as np

@dataclass(frozen=True)
class Ck:
    step: object
    label: str

class _Spec:
    def __init__(self, ok=True): self.ok = ok
    def passes(self, f): return self.ok or f == "none"

@dataclass(frozen=True)
class Res:
    alpha0: float
    width: float
    sample: int = 0
    spectrum: object = field(default_factory=_Spec)

@dataclass(frozen=True)
class FakeSeries:
    checkpoints: tuple
    results: tuple
    baseline: int = 0
    filter: str = "none"
    bootstrap: dict = field(default_factory=dict)
    emergence_ci: object = None
    @property
    def labels(self): return tuple(c.label for c in self.checkpoints)
    @property
    def steps(self): return np.array([c.step for c in self.checkpoints])

def fake(steps, alpha0, width):
    """alpha0[t], width[t]: the per-sample values of checkpoint t (equal lengths)."""
    cps = tuple(Ck(s, f"step{s}") for s in steps)
    res = tuple(tuple(Res(float(a), float(w), k) for k, (a, w) in enumerate(zip(aa, ww))) for aa, ww in zip(alpha0, width))
    return FakeSeries(cps, res)
