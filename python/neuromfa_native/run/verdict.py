"""The answer of a run (docs/spec.md section 13): is E more than weight scale?

:func:`verdict` reads a :class:`~neuromfa_native.run.series.Series` that has the ``gaussian``
and ``scaled`` controls (docs/spec.md section 9) and gives, at the verdict step ``T`` (the last
analysed checkpoint unless named):

- ``gaussian_share = E_gaussian / E``: how much of E a network with the same row RMS but no
  structure reproduces;
- ``remainder_share = E_scaled / E``: how much of E is left when the growth of the weight scale
  is divided out;

each with a percentile bootstrap interval, and one label of :data:`LABELS` by the rules of
section 13 (:data:`THRESHOLDS`), a reason and one sentence.

The bootstrap pairs the networks: a control is computed on the same sampled neurons as the
real network, with random draws that depend on the sample index only, so sample ``k`` of the
real network and sample ``k`` of every control belong together.  Each replicate resamples the
samples of every checkpoint with replacement, once, and the *same* resampled indices give the
means of the real network and of every control; the draw is the one of the series' own E
interval (:func:`~neuromfa_native.mfa.stats.bootstrap_emergence`: one generator seeded with the
series' seed, checkpoint by checkpoint), so without a spectrum filter the real network's
replicates are exactly those of ``Series.emergence_ci``.  A sample whose spectrum a filter drops
(or whose control is missing) counts as absent in that network's mean.

One checkpoint has no E.  :func:`checkpoint_contrast` (also ``Verdict.contrast``) compares the
real network's alpha0 and width with each control's at one checkpoint, with paired intervals of
the differences: how far the spectrum is from networks that keep only the weight scale
(``gaussian``) or only the distribution of the used weights (``shuffle``) -- which says nothing
about what training changed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np

from .._results import fields_equal, frozen_mapping
from ..config import DEFAULT_CONFIG
from ..mfa.stats import emergence_from_means
from ..science.controls import control_summary
from ..science.nulls import CONTROLS

__all__ = ["LABELS", "THRESHOLDS", "Verdict", "checkpoint_contrast", "label_of", "verdict"]

#: The labels of section 13, in the order their rules are tried.
LABELS = ("undetermined", "no_emergence", "scale", "beyond_scale", "mixed")

#: The thresholds of section 13 (part of the definition): ``scale`` needs the remainder's upper
#: bound below ``scale_remainder_max`` and the Gaussian share's lower bound above
#: ``scale_gaussian_min``; ``beyond_scale`` the remainder's lower bound above
#: ``beyond_remainder_min`` and the Gaussian share's upper bound below ``beyond_gaussian_max``.
THRESHOLDS = dict(scale_remainder_max=0.25, scale_gaussian_min=0.75, beyond_remainder_min=0.5,
                  beyond_gaussian_max=0.5)

#: What each control keeps and what it removes (docs/spec.md section 9), for captions and sentences:
#: the rows of :data:`~neuromfa_native.science.nulls.CONTROLS`.
KEEPS = {c.name: (c.keeps, c.removes) for c in CONTROLS.values()}

#: The same in a few words, for sentences.
SHORT_KEEPS = {c.name: c.short for c in CONTROLS.values()}

NEEDED = ("gaussian", "scaled")


@dataclass(frozen=True, eq=False)
class Verdict:
    """The answer of a run at one checkpoint (docs/spec.md section 13); see :func:`verdict`.

    ``label`` is one of :data:`LABELS`; ``step``/``checkpoint`` the verdict step (None/"" when
    the run has no result); ``E`` with ``E_lo``/``E_hi`` the real network's E and its interval
    there (the series' own); ``E_gaussian``/``E_scaled`` the controls' E; the two shares with
    their intervals (NaN where undefined); ``reason`` why this label; ``sentence`` the answer
    in one sentence; ``contrast`` the rows of :func:`checkpoint_contrast` at the verdict step;
    ``notes`` caveats (a full network's intervals have zero width, ...).
    """

    label: str
    step: Optional[int]
    checkpoint: str
    baseline: str
    E: float
    E_lo: float
    E_hi: float
    E_gaussian: float
    E_scaled: float
    gaussian_share: float
    gaussian_share_lo: float
    gaussian_share_hi: float
    remainder_share: float
    remainder_share_lo: float
    remainder_share_hi: float
    reason: str
    sentence: str
    ci: float = DEFAULT_CONFIG.ci
    n_bootstrap: int = DEFAULT_CONFIG.n_bootstrap
    contrast: tuple = ()
    notes: tuple = ()
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(THRESHOLDS))

    __eq__ = fields_equal

    def __post_init__(self) -> None:
        object.__setattr__(self, "contrast", tuple(frozen_mapping(r) for r in self.contrast))
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "thresholds", frozen_mapping(self.thresholds))

    def to_dict(self) -> dict:
        """Plain JSON-ready data (``summary.json["verdict"]``): NaN becomes None."""
        out: dict = {}
        for k, v in self.__dict__.items():
            if k == "contrast":
                v = [{a: _none(b) for a, b in r.items()} for r in v]
            elif k == "notes":
                v = list(v)
            elif k == "thresholds":
                v = dict(v)
            out[k] = _none(v)
        return out

    def __str__(self) -> str:
        return self.sentence

    def __repr__(self) -> str:
        where = f" at {self.checkpoint}" if self.checkpoint else ""
        g = _share(self.gaussian_share, self.gaussian_share_lo, self.gaussian_share_hi)
        rem = _share(self.remainder_share, self.remainder_share_lo, self.remainder_share_hi)
        return f"<Verdict{where}: {self.label}; gaussian share {g}, remainder {rem}>"


def _none(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _ratio(a: float, b: float) -> float:
    return a / b if b != 0 and math.isfinite(a) and math.isfinite(b) else math.nan


def _pct(x: float) -> str:
    return "nan" if not math.isfinite(x) else f"{100 * x:.0f}%"


def _share(x: float, lo: float, hi: float) -> str:
    return f"{_pct(x)} [{_pct(lo)}, {_pct(hi)}]"


# ---------------------------------------------------------------------------------------------
# the paired bootstrap


def _per_sample(series, networks: tuple) -> tuple:
    """``(units, values)``: ``units[t]`` the samples with a result at checkpoint ``t``;
    ``values[(network, "alpha0"|"width")][t]`` their values in that order, NaN where the
    network's spectrum is missing or dropped by the series' filter."""
    units: list = []
    values: dict = {(c, k): [] for c in networks for k in ("alpha0", "width")}
    for rs in series.results:
        units.append(len(rs))
        for c in networks:
            specs = [r.spectrum if c == "none" else (r.controls or {}).get(c) for r in rs]
            kept = [s if s is not None and s.passes(series.filter) else None for s in specs]
            values[(c, "alpha0")].append(np.array([np.nan if s is None else s.alpha0 for s in kept], float))
            values[(c, "width")].append(np.array([np.nan if s is None else s.width for s in kept], float))
    return units, values


def paired_means(series, networks: tuple, n_bootstrap: int, seed: Any) -> dict:
    """Bootstrap replicates ``(n_checkpoints, n_bootstrap)`` of the mean alpha0 and width of
    every network (``"none"`` is the real one), ``{(network, "alpha0"|"width"): array}``.

    Per checkpoint (in order, from one generator seeded ``seed``) the samples with a result are
    resampled with replacement once per replicate, and the same indices serve every network;
    a mean skips the samples that network lacks (NaN when it lacks all that were drawn)."""
    units, values = _per_sample(series, networks)
    return _bootstrap(units, values, n_bootstrap, seed)


def _bootstrap(units: list, values: dict, n_bootstrap: int, seed: Any) -> dict:
    """:func:`paired_means` of the per-sample values of :func:`_per_sample`: the draw of each
    checkpoint depends on its number of samples only, so every network gets the same draws
    whichever others are bootstrapped with it."""
    rng = np.random.default_rng(seed)
    out = {key: np.full((len(units), n_bootstrap), np.nan) for key in values}
    for t, size in enumerate(units):
        if size == 0:
            continue
        idx = rng.integers(0, size, size=(n_bootstrap, size))
        for key, arrs in values.items():
            drawn = arrs[t][idx]
            ok = np.isfinite(drawn)
            n = ok.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[key][t] = np.where(ok, drawn, 0.0).sum(axis=1) / n
            out[key][t][n == 0] = np.nan
    return out


def interval(replicates: np.ndarray, level: float) -> tuple:
    """The percentile interval of the finite replicates; NaN when fewer than half are finite
    (a replicate that drew no kept sample of a network has no value)."""
    rep = np.asarray(replicates, dtype=float)
    ok = rep[np.isfinite(rep)]
    if ok.size == 0 or 2 * ok.size < rep.size:
        return math.nan, math.nan
    lo, hi = np.percentile(ok, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(lo), float(hi)


def _index(series, step: Any) -> int:
    """The checkpoint index of the verdict step: the last one with a result, or the named one
    (a step number or a checkpoint label)."""
    if step is None:
        have = [t for t, rs in enumerate(series.results) if len(rs)]
        return have[-1] if have else len(series.checkpoints) - 1
    for t, c in enumerate(series.checkpoints):
        if (isinstance(step, str) and step == c.label) or (
                not isinstance(step, (bool, str)) and isinstance(step, (int, np.integer)) and c.step_parsed
                and int(step) == c.step):
            return t
    known = ", ".join(c.label for c in series.checkpoints[:8]) + (" ..." if len(series.checkpoints) > 8 else "")
    raise ValueError(f"step must be a training step or a checkpoint label of the run, got {step!r} (checkpoints: "
                     f"{known})")


# ---------------------------------------------------------------------------------------------
# one checkpoint: the real network against each control


def checkpoint_contrast(series, step: Any = None, *, n_bootstrap: Optional[int] = None, ci: Optional[float] = None,
                        seed: Optional[int] = None) -> list:
    """The real network's alpha0 and width against each control's at one checkpoint.

    One row per network (``network`` = ``"real"`` first, then each control of the run other
    than ``scaled`` at the baseline, where it is the real network): the mean alpha0 and width
    with their percentile bootstrap intervals and, for a control, the paired differences
    ``d_alpha0 = alpha0(control) - alpha0(real)`` and ``d_width`` with their intervals (the
    same resampled samples for both networks).  ``step`` defaults to the last checkpoint with a
    result; the bootstrap settings to the series'.  Empty without controls.

    Parameters
    ----------
    series : Series
    step : int or str, optional
        a training step or a checkpoint label.
    n_bootstrap, ci, seed : optional
        bootstrap settings (default: the series').

    Returns
    -------
    list of dict

    Raises
    ------
    ValueError
        a step that is not one of the run's checkpoints.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> s = nm.analyze_series(["examples/pythia-tiny/step2000"], samples=3, per_layer=8, n_threads=1,
    ...                       controls="gaussian,shuffle")
    >>> [r["network"] for r in nm.checkpoint_contrast(s)]
    ['real', 'gaussian', 'shuffle']
    """
    t = _index(series, step)
    boot = series.bootstrap or {}
    return _contrast_at(series, t, int(boot.get("n_bootstrap", DEFAULT_CONFIG.n_bootstrap)) if n_bootstrap is None
                        else int(n_bootstrap), float(boot.get("ci", DEFAULT_CONFIG.ci)) if ci is None else float(ci),
                        boot.get("seed", DEFAULT_CONFIG.seed) if seed is None else seed)


def _contrast_networks(series, t: int) -> tuple:
    """The controls compared with the real network at checkpoint ``t`` (not ``scaled`` at the
    baseline, where it is the real network)."""
    return tuple(c for c in series.config.get("controls", ()) if not (c in CONTROLS and CONTROLS[c].needs_baseline
                                                                       and t == series.baseline))


def _contrast_at(series, t: int, n_bootstrap: int, level: float, seed: Any) -> list:
    ctl = _contrast_networks(series, t)
    if not ctl or not len(series.results[t]):
        return []
    units, values = _per_sample(series, ("none",) + ctl)
    return _contrast_rows(ctl, t, values, _bootstrap(units, values, n_bootstrap, seed), level)


def _contrast_rows(ctl: tuple, t: int, values: dict, reps: dict, level: float) -> list:
    """The rows of :func:`checkpoint_contrast` at checkpoint ``t`` from the per-sample values and
    the paired replicates of the real network and of the controls ``ctl``."""
    rows: list = []
    for c in ("none",) + ctl:
        row: dict = dict(network="real" if c == "none" else c)
        for k in ("alpha0", "width"):
            v = values[(c, k)][t]
            row[k] = float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else math.nan
            row[f"{k}_lo"], row[f"{k}_hi"] = interval(reps[(c, k)][t], level)
        for k in ("alpha0", "width"):
            if c == "none":
                row[f"d_{k}"] = row[f"d_{k}_lo"] = row[f"d_{k}_hi"] = math.nan
                continue
            row[f"d_{k}"] = row[k] - rows[0][k]
            d = reps[(c, k)][t] - reps[("none", k)][t]
            row[f"d_{k}_lo"], row[f"d_{k}_hi"] = interval(d, level)
        row["n"] = int(np.isfinite(values[(c, "alpha0")][t]).sum())
        rows.append(row)
    return rows


def contrast_sentence(rows: list, label: str, level: float) -> str:
    """What one checkpoint's comparison with the controls says, and what it cannot."""
    if not rows:
        return ""
    real = rows[0]
    pct = f"{100 * level:.0f}%"
    parts = [f"At {label} the real network has alpha0 = {real['alpha0']:.3f} [{real['alpha0_lo']:.3f}, "
             f"{real['alpha0_hi']:.3f}] and width {real['width']:.3f} [{real['width_lo']:.3f}, "
             f"{real['width_hi']:.3f}] ({pct} intervals)"]
    for r in rows[1:]:
        keeps = SHORT_KEEPS.get(r["network"], "")
        parts.append(f"the {r['network']} control, which keeps {keeps}, differs by {r['d_alpha0']:+.3f} "
                     f"[{r['d_alpha0_lo']:+.3f}, {r['d_alpha0_hi']:+.3f}] in alpha0 and {r['d_width']:+.3f} "
                     f"[{r['d_width_lo']:+.3f}, {r['d_width_hi']:+.3f}] in width")
    return ("; ".join(parts) + ". A difference whose interval excludes 0 says that what the control removes shapes "
            "this network's spectrum now; it cannot say whether training built it, nor whether E is more than "
            "weight scale: that needs checkpoints over training, the first one included.")


# ---------------------------------------------------------------------------------------------
# the verdict


def label_of(e_lo: float, e_hi: float, g: tuple, r: tuple) -> tuple:
    """``(label, reason)`` of section 13 from E's interval and the two shares ``g`` (Gaussian)
    and ``r`` (remainder), each ``(value, lo, hi)``; the inequalities are strict."""
    th = THRESHOLDS
    if e_lo <= 0 <= e_hi:
        return "no_emergence", f"E's interval [{e_lo:+.3f}, {e_hi:+.3f}] contains 0: there is no emergence to explain"
    if not all(math.isfinite(x) for x in (*g[1:], *r[1:])):
        return "undetermined", ("a share's interval is undefined (a bootstrap replicate of E, or of a control's E, is "
                                "not finite)")
    if r[2] < th["scale_remainder_max"] and g[1] > th["scale_gaussian_min"]:
        return "scale", (f"the remainder's upper bound {_pct(r[2])} is below {_pct(th['scale_remainder_max'])} and "
                         f"the Gaussian share's lower bound {_pct(g[1])} above {_pct(th['scale_gaussian_min'])}")
    if r[1] > th["beyond_remainder_min"] and g[2] < th["beyond_gaussian_max"]:
        return "beyond_scale", (f"the remainder's lower bound {_pct(r[1])} is above "
                                f"{_pct(th['beyond_remainder_min'])} and the Gaussian share's upper bound {_pct(g[2])} "
                                f"below {_pct(th['beyond_gaussian_max'])}")
    return "mixed", ("neither rule holds: 'scale' needs the remainder's upper bound below "
                     f"{_pct(th['scale_remainder_max'])} and the Gaussian share's lower bound above "
                     f"{_pct(th['scale_gaussian_min'])}; 'beyond_scale' the remainder's lower bound above "
                     f"{_pct(th['beyond_remainder_min'])} and the Gaussian share's upper bound below "
                     f"{_pct(th['beyond_gaussian_max'])}")


def _sentence(label: str, where: str, e: tuple, g: tuple, r: tuple, reason: str, level: float) -> str:
    pct = f"{100 * level:.0f}%"
    ev = f"E = {e[0]:.3f} [{e[1]:.3f}, {e[2]:.3f}]"
    shares = (f"a Gaussian network with the same row RMS reproduces {_share(*g)} of E, and with the growth of the "
              f"weight scale divided out {_share(*r)} of it remains ({pct} intervals)")
    if label == "scale":
        return f"E is mostly weight scale: at {where} ({ev}) {shares}."
    if label == "beyond_scale":
        return f"E is more than weight scale: at {where} ({ev}) {shares}."
    if label == "mixed":
        return f"E is neither clearly weight scale nor clearly more (mixed): at {where} ({ev}) {shares}."
    if label == "no_emergence":
        return f"No emergence to explain: at {where} {ev} ({pct} interval), an interval that contains 0."
    return f"Undetermined: {reason}."


def verdict(series: Any, step: Any = None) -> Verdict:
    """The answer of a run (docs/spec.md section 13): is E more than weight scale?

    At the verdict step (the last checkpoint with a result, or ``step``): the share of E that
    the ``gaussian`` control reproduces and the share the ``scaled`` control leaves, with
    percentile bootstrap intervals over the samples (paired: the same resampled samples for the
    real network and every control; the series' bootstrap settings), and the label of
    :data:`LABELS`: ``undetermined`` (a control missing, one checkpoint, or the verdict step at
    the baseline; the reason says which and how to add it), ``no_emergence`` (E's interval
    contains 0), ``scale``, ``beyond_scale`` or ``mixed`` by :data:`THRESHOLDS`.  The
    ``notes`` count the replicates left out of the shares' intervals by cause
    (:func:`left_out_notes`): no sample with a (kept) spectrum of a network drawn, or E = 0
    exactly (not mentioned in a ``no_emergence`` verdict).

    Parameters
    ----------
    series : Series
        a series (a run directory: ``load_run(path).verdict()``).
    step : int or str, optional
        the verdict step: a training step or a checkpoint label.

    Returns
    -------
    Verdict

    Raises
    ------
    ValueError
        a step that is not one of the run's checkpoints.
    TypeError
        ``series`` is not a Series.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> s = nm.analyze_series(["examples/pythia-tiny/step0", "examples/pythia-tiny/step2000"], samples=3,
    ...                       per_layer=16, n_threads=1, controls="gaussian,scaled")
    >>> v = nm.verdict(s)
    >>> v.label, round(v.gaussian_share, 2), round(v.remainder_share, 2)
    ('scale', 0.99, 0.12)
    >>> v.sentence[:48]
    'E is mostly weight scale: at step2000 (E = 0.438'
    >>> nm.verdict(nm.analyze_series(["examples/pythia-tiny/step0", "examples/pythia-tiny/step2000"], samples=3,
    ...                              per_layer=16, n_threads=1)).reason[:47]
    'the run lacks the gaussian and scaled controls:'
    """
    if not hasattr(series, "checkpoints") or not hasattr(series, "results"):
        raise TypeError(f"series must be a Series, got {type(series).__name__}; for a run directory: "
                        "neuromfa_native.load_run(path).verdict()")
    t = _index(series, step)
    cp, base = series.checkpoints[t], series.checkpoints[series.baseline]
    boot = series.bootstrap or {}
    level, n_boot, seed = (float(boot.get("ci", DEFAULT_CONFIG.ci)), int(boot.get("n_bootstrap", DEFAULT_CONFIG.n_bootstrap)),
                           boot.get("seed", DEFAULT_CONFIG.seed))
    where = cp.label if not cp.step_parsed or cp.label == f"step{cp.step}" else f"{cp.label} (step {cp.step})"
    e = (float(series.emergence[t]), float(series.emergence_ci[t, 0]), float(series.emergence_ci[t, 1]))
    g = r = (math.nan,) * 3
    eg = es = math.nan
    notes = []
    if series.config.get("per_layer") is None:
        notes.append("one network per checkpoint (the full network): the intervals have zero width, no sampling "
                     "uncertainty is measured")
    # one paired bootstrap of the real network and every control serves the contrast and the shares
    controls = tuple(dict.fromkeys(series.config.get("controls", ())))
    values: dict = {}
    reps: dict = {}
    if controls and len(series.results[t]):
        units, values = _per_sample(series, ("none",) + controls)
        reps = _bootstrap(units, values, n_boot, seed)
    ctl = _contrast_networks(series, t)
    contrast = _contrast_rows(ctl, t, values, reps, level) if ctl and reps else []
    reason = _undetermined(series, t, e)
    if reason:
        label = "undetermined"
    else:  # both controls are in the run and E is finite at t, so t has samples: ``reps`` holds them
        summ = control_summary(series)
        eg, es = float(summ["gaussian"]["E"][t]), float(summ["scaled"]["E"][t])
        reps = {k: v for k, v in reps.items() if k[0] in ("none",) + NEEDED}  # the notes count these networks
        rep = {c: emergence_from_means(reps[(c, "alpha0")], reps[(c, "width")], series.baseline)[t]
               for c in ("none",) + NEEDED}
        with np.errstate(divide="ignore", invalid="ignore"):
            gs, rs = rep["gaussian"] / rep["none"], rep["scaled"] / rep["none"]
        g, r = (_ratio(eg, e[0]), *interval(gs, level)), (_ratio(es, e[0]), *interval(rs, level))
        label, reason = label_of(e[1], e[2], g, r)
        notes += left_out_notes(*_left_out(reps, rep["none"], gs, rs, (series.baseline, t)), n_bootstrap=n_boot,
                                filter=series.filter, label=label)
    sentence = _sentence(label, where, e, g, r, reason, level)
    if len(series.checkpoints) < 2 and contrast:
        sentence = f"Undetermined: one checkpoint has no E. {contrast_sentence(contrast, where, level)}"
    return Verdict(label=label, step=int(cp.step) if cp.step_parsed else None, checkpoint=cp.label,
                   baseline=base.label, E=e[0], E_lo=e[1], E_hi=e[2], E_gaussian=eg, E_scaled=es,
                   gaussian_share=g[0], gaussian_share_lo=g[1], gaussian_share_hi=g[2], remainder_share=r[0],
                   remainder_share_lo=r[1], remainder_share_hi=r[2], reason=reason, sentence=sentence, ci=level,
                   n_bootstrap=n_boot, contrast=tuple(contrast), notes=tuple(notes))


def _left_out(reps: dict, e: np.ndarray, gs: np.ndarray, rs: np.ndarray, at: tuple) -> tuple:
    """``(missing, zero, other)``: how many replicates have no share because a network drew no
    kept sample at a checkpoint of ``at`` (baseline, verdict step), because the real network's
    E is exactly 0 there (the share is 0/0 or x/0), or for another reason (a control's E not
    finite); each replicate is counted once, under the first cause that applies."""
    missing = np.zeros(e.shape, dtype=bool)
    for arr in reps.values():
        missing |= ~np.isfinite(arr[list(at)]).all(axis=0)
    lost = ~(np.isfinite(gs) & np.isfinite(rs))
    zero = lost & ~missing & (e == 0)
    return int(missing.sum()), int(zero.sum()), int((lost & ~missing & ~zero).sum())


def left_out_notes(missing: int, zero: int, other: int, *, n_bootstrap: int, filter: str, label: str) -> list:
    """The verdict's notes on the bootstrap replicates left out of the shares' intervals, one
    per cause (see :func:`verdict`): a filter is named only when the run has one; replicates
    with E = 0 are not mentioned in a ``no_emergence`` verdict, whose shares do not count."""
    out = []
    if missing:
        what = ("for which a network has a spectrum" if filter == "none"
                else f"of a network that the spectrum filter {filter!r} keeps")
        out.append(f"{missing} of {n_bootstrap} bootstrap replicates drew, at the baseline or the verdict step, no "
                   f"sample {what}, and were left out of the shares' intervals")
    if zero and label != "no_emergence":
        out.append(f"{zero} of {n_bootstrap} bootstrap replicates have E = 0 exactly at the verdict step (the "
                   "resampled alpha0 mean equals the baseline's), where a share E_control / E is undefined; they "
                   "were left out of the shares' intervals")
    if other:
        out.append(f"{other} of {n_bootstrap} bootstrap replicates gave a share that is not finite (a control's E is "
                   "not finite) and were left out of the shares' intervals")
    return out


def _undetermined(series, t: int, e: tuple) -> str:
    """Why the run cannot answer at checkpoint ``t`` ("" when it can)."""
    cp = series.checkpoints[t]
    if len(series.checkpoints) < 2:
        has = [c for c in series.config.get("controls", ()) if c != "scaled"]
        return ("the run has one checkpoint, and E compares a checkpoint with a baseline; "
                + ("the contrast with the controls below is what one checkpoint can tell" if has else
                   "add --controls gaussian,shuffle to compare it with null networks"))
    missing = [c for c in NEEDED if c not in set(series.config.get("controls", ()))]
    if missing:
        return (f"the run lacks the {' and '.join(missing)} control{'s' if len(missing) > 1 else ''}: add "
                "--controls gaussian,scaled to the analyze command (Python: controls=('gaussian', 'scaled'))")
    if t == series.baseline:
        return f"the verdict step {cp.label} is the baseline, where E = 0 by definition"
    if not all(math.isfinite(x) for x in e):
        return (f"E at {cp.label} is not available (no kept sample there or at the baseline "
                f"{series.checkpoints[series.baseline].label})")
    return ""
