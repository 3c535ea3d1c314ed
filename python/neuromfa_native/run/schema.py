"""What a run directory's ``run.json`` may hold, checked before anything reads it.

A run directory may come from elsewhere (a colleague's, a shared cluster folder): its
``run.json`` is read only through :func:`check_run_info`, which checks every field the library
uses against its type and range (the analysis options through
:class:`~neuromfa_native.AnalysisConfig` itself) and raises one ``ValueError`` naming the file
and the field otherwise. Fields it does not know are left alone (a newer version may add some).
"""
from __future__ import annotations

import reprlib
from typing import Any

from .. import _validation as check
from ..config import AnalysisConfig

__all__ = ["FORMAT", "check_run_info"]

FORMAT = "neuromfa-run/1"

#: series entry field -> (accepted types, required)
_ENTRY = {"source": ((str,), True), "revision": ((str, type(None)), True), "label": ((str,), True),
          "step": ((int,), True), "step_parsed": ((bool,), False), "fingerprint": ((str, type(None)), False),
          "key": ((str, type(None)), False), "notes": ((str,), False), "tokens": ((int, type(None)), False)}
#: top-level optional fields -> accepted types
_TOP = {"version": (str,), "config_hash": (str,), "status": (str,), "created": (int, float),
        "updated": (int, float), "finished": (int, float), "n_computed": (int,), "n_reused": (int,),
        "n_failed": (int,), "errors": (list,), "reading": (dict,), "machine": (str,)}


def _is(value: Any, types: tuple) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def _config(cfg: Any) -> None:
    if not isinstance(cfg, dict):
        raise ValueError(f"'config' must be an object, got {reprlib.repr(cfg)}")
    options = {k: v for k, v in cfg.items() if k != "scaled_baseline"}
    if "scaled_baseline" in cfg and not isinstance(cfg["scaled_baseline"], str):
        raise ValueError(f"'config.scaled_baseline' must be a string, got {reprlib.repr(cfg['scaled_baseline'])}")
    try:
        AnalysisConfig.from_json(options)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"'config': {exc}") from None


def _series(series: Any) -> None:
    if not isinstance(series, list):
        raise ValueError(f"'series' must be a list, got {reprlib.repr(series)}")
    for k, e in enumerate(series):
        if not isinstance(e, dict):
            raise ValueError(f"series[{k}] must be an object, got {reprlib.repr(e)}")
        for name, (types, required) in _ENTRY.items():
            if name not in e:
                if required:
                    raise ValueError(f"series[{k}] has no {name!r}")
                continue
            if not _is(e[name], types):
                raise ValueError(f"series[{k}].{name} has the wrong type: {reprlib.repr(e[name])}")
        if not 0 <= e["step"] <= check.MAX_STEP:
            raise ValueError(f"series[{k}].step is out of range: {e['step']}")
        if e.get("tokens") is not None and not 0 <= e["tokens"] <= check.MAX_STEP:
            raise ValueError(f"series[{k}].tokens is out of range: {e['tokens']}")
    _distinct(series)


def _distinct(series: list) -> None:
    """What :func:`~.checkpoints.make_series` refuses twice: a checkpoint, a label (labels name
    rows and the baseline), a training step read from a local name or given (hub revisions of
    one step may differ in their training stage)."""
    seen: dict = {}
    for k, e in enumerate(series):
        spec = (e["source"], e["revision"] or None)
        step = e["step"] if e.get("step_parsed", True) and not e["revision"] else None
        for what, key in (("names the checkpoint", ("spec", spec)), ("has the label", ("label", e["label"])),
                          ("has the training step", ("step", step))):
            j = seen.setdefault(key, k)
            if j != k and key[1] is not None:
                shown = "" if key[0] == "spec" else f" {reprlib.repr(key[1])}"
                rule = {"spec": "a checkpoint is listed once", "label": "labels must be distinct",
                        "step": "steps must be distinct"}[key[0]]
                raise ValueError(f"series[{k}] {what}{shown} of series[{j}]: {rule}")


def _aggregation(agg: Any, started: bool) -> None:
    if not isinstance(agg, dict):
        raise ValueError(f"'aggregation' must be an object, got {reprlib.repr(agg)}")
    if not started and not agg:
        return
    missing = [k for k in ("samples", "filter", "baseline", "n_bootstrap", "ci", "seed") if k not in agg]
    if missing:
        raise ValueError(f"'aggregation' lacks {missing}")
    if not _is(agg["baseline"], (str, int, type(None))):
        raise ValueError(f"'aggregation.baseline' must be a label, got {reprlib.repr(agg['baseline'])}")
    if not isinstance(agg["samples"], list):
        raise ValueError(f"'aggregation.samples' must be a list, got {reprlib.repr(agg['samples'])}")
    try:
        AnalysisConfig(samples=agg["samples"], filter=agg["filter"], n_bootstrap=agg["n_bootstrap"], ci=agg["ci"],
                       seed=agg["seed"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"'aggregation': {exc}") from None


def check_run_info(info: Any, where: object) -> dict:
    """``info`` (a parsed ``run.json``) when every field the library reads has its type and
    range; ``ValueError`` naming ``where`` and the field otherwise."""
    try:
        if not isinstance(info, dict):
            raise ValueError(f"expected a JSON object, got {type(info).__name__}")
        if info.get("format") != FORMAT:
            raise ValueError(f"format {reprlib.repr(info.get('format'))}, not {FORMAT!r}")
        for k in ("config", "series", "aggregation"):
            if k not in info:
                raise ValueError(f"no {k!r}")
        _config(info["config"])
        _series(info["series"])
        _aggregation(info["aggregation"], bool(info["series"]))
        for k, types in _TOP.items():
            if k in info and not _is(info[k], types):
                raise ValueError(f"{k!r} has the wrong type: {reprlib.repr(info[k])}")
        if "errors" in info and not all(isinstance(e, str) for e in info["errors"]):
            raise ValueError("'errors' must hold strings")
    except ValueError as exc:
        raise ValueError(f"{where} is not a valid run.json: {exc}") from None
    return info
