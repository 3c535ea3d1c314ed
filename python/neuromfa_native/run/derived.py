"""The files derived from a run directory's results, and the run state each belongs to.

The package writes, next to ``run.json`` and ``results/``: the tables of
:func:`~neuromfa_native.report.tables.write_tables` (:data:`TABLES`, each ``.csv`` and
``.parquet``), ``spectra.npz``, ``summary.json``, the correlation of ``neuromfa correlate``
(:data:`CORRELATION_FILES`), ``report.html`` and the figures in ``plots/``. They belong to the
run state that wrote them:

- discarding a run's results (``--overwrite``, ``overwrite=True``, a new configuration) removes
  every one of them (:func:`remove_derived`), so none is presented as the new run's;
- each writer removes the files of its own that it does not write this time (a run without
  controls keeps no old ``controls.csv``);
- the correlation, written by another command and read back by the report, records the state
  of the run it was computed from (:func:`run_state`: the configuration's hash, each
  checkpoint's result key in series order, the baseline, filter and samples), and is used only
  while the run directory is in that state (:func:`current_correlation`).

A link is never followed: a derived file that is a link is removed as a link.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

from .._fs import no_link, read_json

__all__ = ["CORRELATION_FILES", "DERIVED_FILES", "OWN_DERIVED", "TABLES", "current_correlation", "plot_names",
           "remove_derived", "run_state"]

#: the tables of ``write_tables`` (each ``<name>.csv``, and ``<name>.parquet`` with pyarrow)
TABLES = ("samples", "checkpoints", "node_dimensions", "controls", "stats", "by_layer")
#: what ``neuromfa correlate`` writes into a run directory (its figures: ``plots/correlation_*.png``)
CORRELATION_FILES = ("correlations.csv", "correlations.json")
#: every file derived from the results at the top of a run directory
DERIVED_FILES = tuple(f"{t}.{ext}" for t in TABLES for ext in ("csv", "parquet")) + (
    "spectra.npz", "summary.json") + CORRELATION_FILES + ("report.html",)
#: the derived files the package reads back (the report, summary.json): never links
OWN_DERIVED = tuple(f"{t}.csv" for t in TABLES) + CORRELATION_FILES + ("summary.json",)

_REDO = "run `neuromfa correlate RUN_DIR --evals SOURCE` again to correlate the run as it is now"


def remove_derived(path: os.PathLike, names: Optional[tuple] = None, plots: Optional[tuple] = None) -> list:
    """Remove the derived files ``names`` (default :data:`DERIVED_FILES`) of the run directory
    ``path`` and the figures ``plots`` (default :func:`plot_names`) from ``path/plots``; a link
    is removed, never followed. Returns the names removed."""
    path = Path(path)
    gone = []
    figs = path / "plots"
    targets = [path / n for n in (DERIVED_FILES if names is None else names)]
    if not figs.is_symlink() and figs.is_dir():
        targets += [figs / f"{n}.png" for n in (plot_names() if plots is None else plots)]
    for p in targets:
        if p.is_symlink() or p.is_file():  # a folder of that name is not the package's: left alone
            p.unlink()
            gone.append(str(p.relative_to(path)))
    if plots is None and figs.is_dir() and not figs.is_symlink() and not any(figs.iterdir()):
        figs.rmdir()
    return gone


def plot_names() -> tuple:
    """The figures the package draws into ``plots/`` (``<name>.png``): the series', the
    controls', the correlation's."""
    from ..plots.controls import CONTROL_PLOTS
    from ..plots.correlation import CORRELATION_PLOTS
    from ..plots.series import PLOTS

    return (*PLOTS, *CONTROL_PLOTS, *CORRELATION_PLOTS)


def run_state(info: Mapping[str, Any]) -> dict:
    """What a derived file records of the run it was computed from, taken from the checked
    ``run.json`` ``info``: the configuration's hash, each checkpoint's result key (its weights
    and network) in series order, and the aggregation that changes the per-checkpoint values
    (baseline, filter, samples)."""
    agg = info.get("aggregation") or {}
    return dict(config_hash=info.get("config_hash"),
                result_keys=[c.get("key") or c.get("fingerprint") for c in info.get("series") or []],
                baseline=agg.get("baseline"), filter=agg.get("filter"), samples=agg.get("samples"))


def current_correlation(path: os.PathLike, info: Mapping[str, Any]) -> tuple:
    """``(correlations.json's content, "")`` when the run directory ``path`` holds a correlation
    of its current state (``info``: its checked ``run.json``); ``(None, "")`` when it holds
    none; ``(None, why)`` when it holds one that may not be used: of another state, recording
    none (an older version wrote it), unreadable, or a link (``why`` also says how to redo it)."""
    path = Path(path)
    if not any((path / n).is_symlink() or (path / n).exists() for n in CORRELATION_FILES):
        return None, ""
    try:
        data = read_json(no_link(path / "correlations.json"), "the correlation with scores")
        no_link(path / "correlations.csv")
    except ValueError as exc:
        return None, f"correlations.csv/.json are not used: {' '.join(str(exc).split())[:300]}; {_REDO}"
    recorded = data.get("run_state") if isinstance(data, dict) else None
    if recorded is None:
        return None, (f"correlations.csv/.json record no run state (an older version wrote them): not used; "
                      f"{_REDO}")
    if recorded != run_state(info):
        return None, ("correlations.csv/.json are of another state of this run directory (its configuration, "
                      f"checkpoints, baseline, filter or samples have changed since): not used; {_REDO}")
    return data, ""
