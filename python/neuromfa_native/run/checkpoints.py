"""The checkpoints of a series: where each is, its name in tables and its training step.

:func:`make_series` turns paths, hub ids or one hub id with revisions into ordered
:class:`Checkpoint` objects, each with a training step parsed from its name (:func:`parse_step`).
"""
from __future__ import annotations

import dataclasses
import os
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from .. import _validation as check
from .._results import fields_equal
from ..io.base import HUB_ID
from .revisions import expand_revisions, expand_sources, parse_revision

__all__ = ["Checkpoint", "baseline_index", "make_series", "parse_step", "step_value"]

_STEP_RE = re.compile(r"(?:^|[^a-z0-9])(?:global[_-]?step|step|checkpoint|ckpt|iter|iteration)[_-]?"
                      r"(\d+(?:\.\d+)?)([a-z]*)(?![0-9a-z])", re.IGNORECASE)
#: unit suffixes of a step in a name: ``step1k`` is step 1000, ``step2M`` step 2000000
STEP_UNITS = {"": 1, "k": 10**3, "m": 10**6}
_WEIGHT_FILE_RE = re.compile(r"^(model|pytorch_model).*\.(safetensors|bin|index\.json)$")


def parse_step(name: str) -> Optional[int]:
    """Training step from a checkpoint name such as ``step1000``, ``checkpoint-500``,
    ``global_step20`` or ``step1.5k`` (a unit suffix ``k`` or ``M`` is read as what it says),
    else ``None``: also for a number followed by other letters (``step1x``), a fraction
    without a unit, or a step beyond 2**53.  The last match in the name wins.

    Examples
    --------
    >>> from neuromfa_native.run.checkpoints import parse_step
    >>> parse_step("step1000"), parse_step("step1k"), parse_step("step1.5k"), parse_step("step1x")
    (1000, 1000, 1500, None)
    """
    found = _STEP_RE.findall(str(name))
    return step_value(*found[-1]) if found else None


def step_value(number: str, unit: str) -> Optional[int]:
    """The step ``number`` (digits, maybe a decimal fraction) times its ``unit`` (``""``,
    ``k``, ``M``), or ``None`` when that is no whole step in ``[0, 2**53]`` or no known unit."""
    if unit.lower() not in STEP_UNITS or ("." in number and not unit):
        return None
    value = Fraction(number) * STEP_UNITS[unit.lower()]
    if value.denominator != 1 or value > check.MAX_STEP:
        return None
    return int(value)


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """One checkpoint of a series: where it is (``source`` + ``revision``), how it is named in
    tables (``label``) and its training ``step`` (parsed from the name, else its position)."""

    source: str
    revision: Optional[str]
    label: str
    step: int
    step_parsed: bool = True
    tokens: Optional[int] = None  # training tokens, where the revision's name says (step1000-tokens4B)

    __eq__ = fields_equal

    def __hash__(self) -> int:  # hashable, as a frozen dataclass of str and int fields is
        return hash((self.source, self.revision, self.label, self.step, self.step_parsed))

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
                sort: bool = True, values: Optional[Union[str, Sequence[int]]] = None) -> tuple:
    """Ordered checkpoints of one model.

    Parameters
    ----------
    sources:
        local directories/files or hub ids (``org/name@rev``), or exactly one hub id when
        ``revisions`` is given.  :class:`Checkpoint` objects are passed through.
    revisions:
        hub revisions (e.g. ``["step0", "step1000"]``) of the one hub id in ``sources``;
        ``"all"`` (every branch but ``main``) and globs (``"step*"``) are expanded through the
        hub (:func:`~.revisions.expand_revisions`). Hub names give steps, tokens and stages by
        the families' grammars (:func:`~.revisions.parse_revision`).
    values:
        the values of ``N`` in a source pattern such as ``"google/multiberts-seed_0-step_{N}k"``
        (a suite of one repository per checkpoint): a list, or ``"0:200:20,300"`` ranges.
        A source ``"@ids.txt"`` names a file of sources, one a line.
    steps, labels:
        explicit training steps / table names, one per checkpoint.  By default the label is the
        directory name (or the revision) and the step is parsed from it (:func:`parse_step`);
        if some name has no step, every checkpoint gets its position as its step.
    sort:
        order the checkpoints by step when every step was given or parsed (a shell glob such as
        ``step*`` lists ``step250`` before ``step64``).  Otherwise the given order is kept.

    Returns
    -------
    tuple of Checkpoint

    Raises
    ------
    ValueError, TypeError
        no sources, mismatched ``steps``/``labels``/``revisions``, or duplicate checkpoints.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> cps = nm.make_series(["examples/pythia-tiny/step250", "examples/pythia-tiny/step16"])
    >>> [(c.label, c.step) for c in cps]
    [('step16', 16), ('step250', 250)]
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    sources = list(sources)
    if not sources:
        raise ValueError("sources must name at least one checkpoint, got none")
    if all(isinstance(s, Checkpoint) for s in sources) and revisions is None and steps is None and labels is None:
        cps: Any = tuple(sources)
        _check_unique(cps)
        return tuple(sorted(cps, key=lambda c: c.step)) if sort and all(c.step_parsed for c in cps) else cps
    for s in sources:
        if not isinstance(s, (str, os.PathLike)):
            raise TypeError(f"sources must be paths or hub ids (tasks carry names, not tensors), "
                            f"got {type(s).__name__}")
    sources = [os.fspath(s) for s in sources]
    for k, s in enumerate(sources):
        if not s.strip():
            raise ValueError(f"sources[{k}] is an empty name (it would mean the current directory)")
    sources = expand_sources(sources, values)
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
        revisions = expand_revisions(repo, revisions)
        pairs: list[tuple[str, Optional[str], str]] = [(repo, r, r) for r in revisions]
    else:
        pairs = [(s, None, _label_of(s)) for s in sources]
    hub = [revisions is not None or (not os.path.exists(s) and bool(HUB_ID.match(s))) for s, _, _ in pairs]
    n = len(pairs)
    if labels is not None:
        labels = [str(x) for x in labels]
        if len(labels) != n:
            raise ValueError(f"labels must have one name per checkpoint ({n}), got {len(labels)}")
        pairs = [(s, r, lab) for (s, r, _), lab in zip(pairs, labels)]
    parsed, ok, order, tokens = _steps(pairs, hub, steps)
    cps = [Checkpoint(source=s, revision=r, label=lab, step=int(st), step_parsed=ok, tokens=tk)
           for (s, r, lab), st, tk in zip(pairs, parsed, tokens)]
    rank = {c.spec: o for c, o in zip(cps, order)}
    # labels must be unique (they name rows); fall back to the full source for clashes
    seen: dict = {}
    for c in cps:
        seen.setdefault(c.label, []).append(c)
    if any(len(v) > 1 for v in seen.values()):
        cps = [dataclasses.replace(c, label=c.spec) if len(seen[c.label]) > 1 else c for c in cps]
    cps = tuple(cps)
    _check_unique(cps)
    if ok:
        keys = [rank[c.spec] for c in cps]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"two checkpoints have the same training step {dup[0][2]} "
                             f"({[c.spec for c in cps if rank[c.spec] == dup[0]]}); pass steps= explicitly")
        if sort:
            cps = tuple(sorted(cps, key=lambda c: rank[c.spec]))
    return cps


def _steps(pairs: list, hub: list, steps: Optional[Sequence[int]]) -> tuple:
    """``(steps, all parsed or given, order keys, tokens)`` of the checkpoints: given steps, or
    parsed from the names (hub names by the families' grammars, with tokens and stages; local
    names by :func:`parse_step`); when some name gives none, positions, and a hub series says so."""
    n = len(pairs)
    if steps is not None:
        steps = list(steps)
        if len(steps) != n:
            raise ValueError(f"steps must have one value per checkpoint ({n}), got {len(steps)}")
        given = [check.integer(x, "steps[]") for x in steps]
        bad = [x for x in given if not 0 <= x <= check.MAX_STEP]
        if bad:
            raise ValueError(f"steps must lie in [0, 2**53], got {bad[0]}")
        return given, True, [(0, 0, x) for x in given], [None] * n
    names = [lab for _, _, lab in pairs]
    revs = [parse_revision(lab) if h else None for lab, h in zip(names, hub)]
    parsed = [rn.step if rn is not None else None for rn in revs]
    parsed = [p if h else parse_step(lab) for p, h, lab in zip(parsed, hub, names)]
    if not all(p is not None for p in parsed):
        if any(hub):
            nameless = [lab for lab, p in zip(names, parsed) if p is None]
            warnings.warn(f"{len(nameless)} of {n} checkpoint names give no training step ({', '.join(nameless[:5])}"
                          f"{', ...' if len(nameless) > 5 else ''}): the checkpoints are kept in the given order and "
                          "their steps are their positions", UserWarning, stacklevel=3)
        return list(range(n)), False, [(0, 0, k) for k in range(n)], [None] * n
    steps_ = [int(p) for p in parsed if p is not None]
    order = [rn.order if rn is not None else (0, 0, st) for rn, st in zip(revs, steps_)]
    return steps_, True, order, [rn.tokens if rn is not None else None for rn in revs]


def _check_unique(cps: Sequence[Checkpoint]) -> None:
    specs = [c.spec for c in cps]
    dup = sorted({s for s in specs if specs.count(s) > 1})
    if dup:
        raise ValueError(f"checkpoint {dup[0]!r} is listed twice")
    labels = [c.label for c in cps]
    dup = sorted({s for s in labels if labels.count(s) > 1})
    if dup:
        raise ValueError(f"two checkpoints have the label {dup[0]!r}")


def baseline_index(cps: Sequence[Checkpoint], baseline: Any) -> int:
    """Index of the checkpoint ``baseline`` names: an index, a label, a source or a step number
    (``None``: the first checkpoint)."""
    if baseline is None:
        return 0
    if isinstance(baseline, (int, np.integer)) and not isinstance(baseline, bool):
        if not -len(cps) <= baseline < len(cps):
            raise ValueError(f"baseline must index a checkpoint (0..{len(cps) - 1}), got {baseline}")
        return int(baseline) % len(cps)
    b = str(baseline)
    most = 0
    number = re.fullmatch(r"\d+", b) is not None
    for names in (lambda c: c.label == b, lambda c: c.spec == b, lambda c: c.source == b,
                  lambda c: number and c.step == int(b)):
        hits = [k for k, c in enumerate(cps) if names(c)]
        if len(hits) == 1:
            return hits[0]
        most = max(most, len(hits))
    what = f"names {most} checkpoints" if most else "names no checkpoint"
    raise ValueError(f"baseline {b!r} {what} of the series (labels: {[c.label for c in cps]})")
