"""A stand-in with the public surface of a :class:`neuromfa_native.run.series.Series` that
correlation reads (checkpoints with step/label, labels, steps, per-sample results with
alpha0/width/spectrum.passes, spectra_arrays(), filter, baseline), built from given per-sample
values so the statistics can be tested against known truths without running the analysis.
``fake(..., quantities={...})`` adds a ``quantities()`` method, as a run with controls or rival
statistics has (``{name: per-checkpoint values}``)."""
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
    def spectra_arrays(self):
        """alpha0/width ``(checkpoint, sample)`` and which entries are present and kept, as Series has."""
        k = max((len(rs) for rs in self.results), default=0)
        out = {name: np.full((len(self.results), k), np.nan) for name in ("alpha0", "width")}
        out["kept"] = np.zeros((len(self.results), k), bool)
        out["present"] = np.zeros((len(self.results), k), bool)
        for t, rs in enumerate(self.results):
            for j, r in enumerate(rs):
                out["alpha0"][t, j], out["width"][t, j] = r.alpha0, r.width
                out["kept"][t, j], out["present"][t, j] = r.spectrum.passes(self.filter), True
        return out

@dataclass(frozen=True)
class FakeSeriesWithQuantities(FakeSeries):
    reported: dict = field(default_factory=dict)
    def quantities(self): return dict(self.reported)

def fake(steps, alpha0, width, quantities=None):
    """alpha0[t], width[t]: the per-sample values of checkpoint t (equal lengths)."""
    cps = tuple(Ck(s, f"step{s}") for s in steps)
    res = tuple(tuple(Res(float(a), float(w), k) for k, (a, w) in enumerate(zip(aa, ww))) for aa, ww in zip(alpha0, width))
    if quantities is not None:
        return FakeSeriesWithQuantities(cps, res, reported=dict(quantities))
    return FakeSeries(cps, res)
