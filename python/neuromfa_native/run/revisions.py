"""Whole training suites on the hub: revision names -> training steps (and tokens), ``all``,
globs, and suites published as one repository per checkpoint.

:func:`parse_revision` reads the names families actually publish:

============================  ===============================  ==========================
family                        revision (or repository) name    step, tokens
============================  ===============================  ==========================
Pythia                        ``step1000``                     1000
OLMo, Apertus                 ``step1000-tokens4B``            1000, 4e9
OLMo 2                        ``stage1-step1000-tokens5B``     1000, 5e9 (stage 1)
OLMo 2 (mid-training)         ``stage2-ingredient3-step500-    500, 2e9 (stage 2,
                              tokens2B``                       ingredient 3)
SmolLM                        ``step-1000``, ``stage1-step-    1000
                              1000``
Amber, K2                     ``ckpt_042``                     42
BLOOM                         ``global_step1000``              1000
MultiBERTs (repositories)     ``multiberts-seed_0-step_20k``   20000
TinyLlama (repositories)      ``...-intermediate-step-480k-1T``  480000, 1e12
============================  ===============================  ==========================

``k``/``M`` multiply a step, ``k``/``M``/``B``/``T`` a token count. A name with a ``stageK``
(and ``ingredientK``) part is ordered after the stages before it: a series is ordered by
(stage, ingredient, step), so stage 2's steps, which count from 0 again, follow stage 1.

:func:`expand_revisions` turns ``"all"`` (every branch but ``main``: one ``list_repo_refs``
call) and globs (``"step*"``, ``"stage1-*"``) into the repository's branch names;
:func:`expand_sources` turns a repository pattern (``"google/multiberts-seed_0-step_{N}k"``
with ``values``) or a file of ids (``"@ids.txt"``: one source a line, ``#`` comments) into
sources.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional, Sequence

from .._results import fields_equal
from .._text import short
from .._validation import MAX_STEP, MAX_VALUES

__all__ = ["RevisionName", "expand_revisions", "expand_sources", "parse_revision", "parse_values"]

_SCALE = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "t": 10**12}
_SEP = r"(?:^|(?<=[-_/.@]))"
_END = r"(?=$|[-_/.])"
_STEP = re.compile(_SEP + r"(?:global[_-]?)?step[_-]?(\d+(?:\.\d+)?)([kKmM]?)" + _END, re.IGNORECASE)
_CKPT = re.compile(_SEP + r"(?:ckpt|checkpoint|iter)[_-]?(\d+)" + _END, re.IGNORECASE)
_TOKENS = re.compile(_SEP + r"tokens[_-]?(\d+(?:\.\d+)?)([kKmMbBtT]?)" + _END, re.IGNORECASE)
_BARE_TOKENS = re.compile(r"step[_-]?\d+(?:\.\d+)?[kKmM]?-(\d+(?:\.\d+)?)([bBtT])" + _END, re.IGNORECASE)
_STAGE = re.compile(_SEP + r"stage[_-]?(\d+)" + _END, re.IGNORECASE)
_INGREDIENT = re.compile(_SEP + r"ingredient[_-]?(\d+)" + _END, re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class RevisionName:
    """What a revision's name says: its training step, and where given its token count, stage
    and ingredient (OLMo 2's mid-training mixes)."""

    step: int
    tokens: Optional[int] = None
    stage: Optional[int] = None
    ingredient: Optional[int] = None

    __eq__ = fields_equal

    def __hash__(self) -> int:
        return hash((self.step, self.tokens, self.stage, self.ingredient))

    @property
    def order(self) -> tuple:
        """The series order: stage, ingredient, step."""
        return (self.stage or 0, self.ingredient or 0, self.step)


#: The largest count a name may give: a step or token count beyond it is no count (a float
#: could not hold it exactly, and no training run has it).
MAX_COUNT = 2**53


def _number(digits: str, unit: str, *, whole: bool) -> Optional[int]:
    """``digits`` times ``unit``, exactly (no float); None beyond :data:`MAX_COUNT`, or, with
    ``whole``, when it is no whole number (``step1.2345k``)."""
    value = Fraction(digits) * _SCALE[unit.lower()]
    if value > MAX_COUNT or (whole and value.denominator != 1):
        return None
    return round(value)


def parse_revision(name: str) -> Optional[RevisionName]:
    """The training step (and tokens, stage, ingredient) a hub revision or repository name
    says, or None when it says none (see the module's table of names).

    Parameters
    ----------
    name : a revision (``"stage1-step1000-tokens5B"``) or repository id
        (``"google/multiberts-seed_0-step_20k"``).

    Returns
    -------
    RevisionName or None
        the step (``k``/``M`` multiplied out), tokens (``k``/``M``/``B``/``T``), stage and
        ingredient; None when the name holds no step.

    Raises
    ------
    TypeError
        ``name`` is not a string.

    Examples
    --------
    >>> import neuromfa_native as nm
    >>> nm.parse_revision("stage1-step1000-tokens5B")
    RevisionName(step=1000, tokens=5000000000, stage=1, ingredient=None)
    >>> nm.parse_revision("multiberts-seed_0-step_20k").step, nm.parse_revision("main")
    (20000, None)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    base = name.rsplit("/", 1)[-1] if "/" in name and "@" not in name else name
    found = _STEP.findall(base)
    if found:
        step = _number(*found[-1], whole=True)
    else:
        ck = _CKPT.findall(base)
        if not ck:
            return None
        step = _number(ck[-1], "", whole=True)
    if step is None:  # a number no training step can be: the name is read as giving none
        return None
    tok = _TOKENS.findall(base) or _BARE_TOKENS.findall(base)
    stage, ingredient = _STAGE.findall(base), _INGREDIENT.findall(base)
    return RevisionName(step=step, tokens=_number(*tok[-1], whole=False) if tok else None,
                        stage=int(stage[-1]) if stage else None, ingredient=int(ingredient[-1]) if ingredient else None)


def _is_glob(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def expand_revisions(repo: str, revisions: Sequence[str]) -> list:
    """``revisions`` with ``"all"`` (every branch but ``main``) and globs replaced by the
    repository's matching branches (one ``list_repo_refs`` call, whatever their number),
    the others as given; duplicates dropped, first place kept. A glob matching nothing is an
    error naming a few branches."""
    if not any(r == "all" or _is_glob(r) for r in revisions):
        return list(revisions)
    from ..io.hub import list_branches

    branches = [name for name, _ in list_branches(repo)]
    out: list = []
    for r in revisions:
        hits = branches if r == "all" else [b for b in branches if fnmatch.fnmatchcase(b, r)] if _is_glob(r) else [r]
        if not hits:
            raise ValueError(f"revisions: {r!r} matches no branch of {repo} (it has {len(branches)}, e.g. "
                             f"{branches[:5]})")
        out.extend(h for h in hits if h not in out)
    return out


def parse_values(spec: str | Sequence) -> list:
    """``"0,20,40"`` or ranges ``"0:200:20,300:2000:100"`` (start:stop:step, stop included) ->
    the list of integers (a sequence passes, as integers)."""
    if not isinstance(spec, str):
        return [int(v) for v in spec]
    out: list = []
    for part in (p.strip() for p in spec.split(",")):
        if len(part) > 64:
            raise ValueError(f"values: {short(part)} is not an integer or a start:stop:step range")
        if any(int(d) > MAX_STEP for d in re.findall(r"\d+", part)):  # at most 64 digits here
            raise ValueError(f"values: {part!r} has a number above 2**53")
        m = re.fullmatch(r"(\d+):(\d+)(?::(\d+))?", part)
        if m:
            a, b, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
            if s <= 0 or b < a:
                raise ValueError(f"values: range {part!r} must be start:stop:step with start <= stop and step > 0")
            n = (b - a) // s + 1
            if len(out) + n > MAX_VALUES:  # counted before anything is made
                raise ValueError(f"values: {part!r} names {n} values; at most {MAX_VALUES} in all")
            out.extend(range(a, b + 1, s))
        elif re.fullmatch(r"\d+", part):
            if len(out) >= MAX_VALUES:
                raise ValueError(f"values: more than {MAX_VALUES} values")
            out.append(int(part))
        else:
            raise ValueError(f"values: {part!r} is not an integer or a start:stop:step range")
    return out


def expand_sources(sources: Sequence[str], values: Optional[Sequence] = None) -> list:
    """Sources with ``@file`` (one source a line; blank lines and ``#`` comments skipped) read
    and ``{N}`` patterns filled with each of ``values`` (one repository per checkpoint)."""
    out: list = []
    for s in sources:
        if isinstance(s, str) and s.startswith("@") and os.path.isfile(s[1:]):
            lines = Path(s[1:]).read_text(encoding="utf-8").splitlines()
            out.extend(ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#"))
        else:
            out.append(s)
    has_pattern = [s for s in out if isinstance(s, str) and "{N}" in s]
    if values is None:
        if has_pattern:
            raise ValueError(f"{has_pattern[0]!r} is a pattern: give the values of N (values=..., --values)")
        return out
    if not has_pattern:
        raise ValueError("values apply to a source pattern with {N} (e.g. 'google/multiberts-seed_0-step_{N}k')")
    vals = parse_values(values)
    if not vals:
        raise ValueError("values must name at least one N")
    filled: list = []
    for s in out:
        filled.extend(s.replace("{N}", str(v)) for v in vals) if "{N}" in s else filled.append(s)
    return filled
