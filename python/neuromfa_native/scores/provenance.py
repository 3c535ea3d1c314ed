"""Whose scores (docs/spec.md section 13): the model a run's checkpoints belong to, the model
the scores name, and a warning naming both when they differ.

The run's model is its hub id when every checkpoint is a revision of one hub model, else the
directory that holds its local checkpoints (a trailing ``stepN``/``checkpoint-N`` directory
dropped).  The scores' model is :attr:`~neuromfa_native.EvalTable.model`.  Two names are the same
model when their last path components agree (case aside): ``EleutherAI/pythia-160m`` and
``/data/pythia-160m`` agree, ``examples/pythia-tiny`` and ``EleutherAI/pythia-160m`` do not.  The
test is deliberately loose in one direction only: a local directory named after another model
is reported, never silently accepted.
"""
from __future__ import annotations

import os
import re
from typing import Any

__all__ = ["ScoresModelWarning", "model_mismatch", "run_model"]

_STEP_DIR = re.compile(r"^(?:step|checkpoint-|global_step)\d+$")
_WEIGHTS = re.compile(r"\.(?:safetensors|bin|pt|pth)$")


class ScoresModelWarning(UserWarning):
    """The scores name another model than the run's checkpoints."""


def _model_dir(source: str) -> str:
    text = str(source).replace("\\", "/")
    parts = [p for p in text.rstrip("/").split("/") if p not in ("", ".")]
    if parts and _WEIGHTS.search(parts[-1]):
        parts = parts[:-1]
    if parts and _STEP_DIR.match(parts[-1]):
        parts = parts[:-1]
    return ("/" if text.startswith("/") else "") + "/".join(parts)  # an absolute directory stays absolute


def run_model(series: Any) -> str:
    """The model of a run's checkpoints: one hub id (revisions of it), or the common directory
    of its local checkpoints; "" when the run names none (a live model, mixed sources)."""
    cps = [(str(getattr(c, "source", "") or ""), getattr(c, "revision", None))
           for c in getattr(series, "checkpoints", ())]
    if not cps or not all(src for src, _ in cps):
        return ""
    hub = {src for src, rev in cps if rev}
    if len(hub) == 1 and all(rev for _, rev in cps):
        return hub.pop()
    if any(rev or src.startswith("monitor:") for src, rev in cps):
        return ""
    dirs = {_model_dir(src) for src, _ in cps}
    if len(dirs) == 1:
        return dirs.pop()
    try:
        return os.path.commonpath(sorted(dirs))
    except ValueError:  # absolute and relative paths mixed
        return ""


def _key(name: str) -> str:
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()


def model_mismatch(scores_model: str, run_model_name: str) -> str:
    """The warning when the scores name another model than the run ("" when they agree, or when
    either side names none)."""
    if not scores_model or not run_model_name:
        return ""
    named = [m.strip() for m in scores_model.split(",") if m.strip()]
    if any(_key(m) == _key(run_model_name) for m in named):
        return ""
    return (f"the scores are of {scores_model!r} and the run's checkpoints of {run_model_name!r}: a correlation "
            "of one model's weights with another model's scores says nothing about either")
