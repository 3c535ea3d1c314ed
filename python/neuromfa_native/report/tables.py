"""Tables, summaries and plots of a series, written into its run directory.

:func:`write_report` writes (every file atomically)::

    samples.csv / samples.parquet          one row per (checkpoint, sample)
    checkpoints.csv / checkpoints.parquet  one row per checkpoint: statistics, E, CI, identical_to
    node_dimensions.csv / .parquet         per (checkpoint, node layer) node fractal dimensions
    spectra.npz                            q, tau, alpha, f as (checkpoint, sample, ...) arrays
    summary.json                           configuration, version, per-checkpoint summary, status
    plots/*.png                            with matplotlib (see :mod:`.plotting`)

Parquet files are written only when pyarrow is importable.  See docs/outputs.md for every
column.  Each writer removes the files of its own it does not write this time (a series
without controls leaves no old ``controls.csv``), and :func:`write_correlation` records the
run state the correlation belongs to, which ``summary.json`` and the report check
(:mod:`~neuromfa_native.run.derived`).
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..science.controls import CONTROL_COLUMNS, STATS_COLUMNS, scale_sentence
from .._version import __version__
from .._text import csv_text
from .._fs import atomic_write_bytes, atomic_write_text, dumps, own_dir
from ..run.derived import TABLES, current_correlation, remove_derived, run_state
from ..run.store import run_info
from ..config import DEFAULT_CONFIG
from ..run.verdict import verdict

__all__ = ["format_table", "write_correlation", "write_report", "write_tables"]



def _csv_bytes(rows: list, columns: Sequence[str]) -> bytes:
    return csv_text(rows, columns).encode()


def _parquet_bytes(rows: list, columns: Sequence[str]) -> Optional[bytes]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    table = pa.Table.from_arrays([_arrow_column(pa, [r.get(c) for r in rows]) for c in columns], names=columns)
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf)
    return buf.getvalue().to_pybytes()


def _arrow_column(pa: Any, values: list) -> Any:
    """The Arrow array ``pa.array(values)`` gives, for columns of None, bool, int, float or str
    values, built from buffers: ``pa.array`` imports pandas on its first call (about 0.4 s of
    every CLI run); anything else goes through ``pa.array``."""
    n = len(values)
    valid = np.array([v is not None for v in values], dtype=bool)
    present = [v for v in values if v is not None]
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    if not present:
        return pa.nulls(n)
    if all(isinstance(v, (bool, np.bool_)) for v in present):
        bits = np.packbits(np.array([bool(v) for v in values], dtype=bool), bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), n, [bitmap, pa.py_buffer(bits)])
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present):
        data = np.array([0 if v is None else int(v) for v in values], dtype=np.int64)
        return pa.Array.from_buffers(pa.int64(), n, [bitmap, pa.py_buffer(data)])
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
           for v in present):
        data = np.array([0.0 if v is None else float(v) for v in values], dtype=np.float64)
        return pa.Array.from_buffers(pa.float64(), n, [bitmap, pa.py_buffer(data)])
    if all(isinstance(v, str) for v in present):
        encoded = [b"" if v is None else v.encode("utf-8") for v in values]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=offsets[1:])
        if offsets[-1] < 2**31:
            return pa.Array.from_buffers(pa.string(), n, [bitmap, pa.py_buffer(offsets.astype(np.int32)),
                                                          pa.py_buffer(b"".join(encoded))])
    return pa.array(values)


def _write_table(out: Path, name: str, rows: list, columns: Optional[Sequence[str]] = None) -> list:
    if columns is None:
        columns = list(rows[0]) if rows else []
    written = [out / f"{name}.csv"]
    atomic_write_bytes(written[0], _csv_bytes(rows, columns))
    pq = _parquet_bytes(rows, columns)
    if pq is not None:
        written.append(out / f"{name}.parquet")
        atomic_write_bytes(written[-1], pq)
    return written


SAMPLE_COLUMNS = ["step", "checkpoint", "sample", "alpha0", "width", "kept", "n_centres", "n_radii", "diameter",
                  "min_tau_r2", "passes_f_positive", "passes_alpha_range", "network_nodes", "network_edges",
                  "seconds", "notes"]
NODE_DIM_COLUMNS = ["step", "checkpoint", "layer", "n_nodes", "n_measured", "mean", "std", "median", "min", "max"]


def write_tables(series, out: os.PathLike, *, verdict_step: Any = None) -> list:
    """Write the tables, ``spectra.npz`` and ``summary.json`` of ``series`` into ``out``;
    ``summary.json["verdict"]`` is the verdict (docs/spec.md section 13) at ``verdict_step``
    (default: the last checkpoint with a result)."""
    answer = dict(verdict(series, verdict_step).to_dict(), requested_step=verdict_step)  # a bad step: before any file
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    rows = series.sample_rows()
    cols = SAMPLE_COLUMNS + [c for c in (rows[0] if rows else {}) if c not in SAMPLE_COLUMNS]
    written += _write_table(out, "samples", rows, cols)
    crow = series.checkpoint_rows()
    written += _write_table(out, "checkpoints", crow, list(crow[0]))
    written += _write_table(out, "node_dimensions", series.node_dimension_rows(), NODE_DIM_COLUMNS)
    written += _write_control_tables(series, out)  # controls / rival statistics / by layer
    arrays = series.spectra_arrays()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(out / "spectra.npz", buf.getvalue())
    written.append(out / "spectra.npz")
    summary = dict(
        version=__version__, config=series.config, baseline=series.checkpoints[series.baseline].label,
        filter=series.filter, samples=list(series.samples), bootstrap=series.bootstrap,
        complete=series.complete, missing=[list(m) for m in series.missing],
        identical=_identical_groups(series), n_computed=series.n_computed, n_reused=series.n_reused,
        checkpoints=[{k: _finite(v) for k, v in r.items()} for r in crow],
        notes=[n for n in series.notes if n])
    if scale_sentence(series):  # controls
        summary["controls"] = scale_sentence(series)
    summary["verdict"] = answer
    try:
        info = run_info(out)
    except (OSError, ValueError):
        info = None
    if info is not None:  # the correlation with scores, if correlate wrote it for the run as it is now
        corr, note = current_correlation(out, info)
        if corr is not None:
            summary["correlation"] = corr
        summary["notes"] += [note] if note else []
        summary["run"] = {k: v for k, v in info.items() if k not in ("config",)}
    atomic_write_text(out / "summary.json", dumps(summary, indent=1))
    written.append(out / "summary.json")
    tables = [f"{t}.{ext}" for t in TABLES for ext in ("csv", "parquet")]
    remove_derived(out, tuple(n for n in tables if out / n not in written), plots=())  # of another state
    return written


def _write_control_tables(series, out: Path) -> list:
    """``controls.csv``, ``stats.csv`` and ``by_layer.csv`` when the run has them."""
    written = []
    if series.config.get("controls"):
        written += _write_table(out, "controls", series.control_rows(), CONTROL_COLUMNS)
    stat_rows = series.stats_rows()
    if stat_rows:
        written += _write_table(out, "stats", stat_rows, STATS_COLUMNS)
    if series.config.get("by_layer"):
        from ..science.by_layer import BY_LAYER_COLUMNS, series_rows
        written += _write_table(out, "by_layer", series_rows(series), BY_LAYER_COLUMNS)
    return written


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v



def _identical_groups(series) -> list:
    groups: dict = {}
    for c, fp in zip(series.checkpoints, series.fingerprints):
        if fp is not None:
            groups.setdefault(fp, []).append(c.label)
    return [g for g in groups.values() if len(g) > 1]


def write_plots(series, out: os.PathLike, *, dpi: int = 120) -> list:
    """Render the PNG plots of ``series`` into ``out/plots`` (needs matplotlib).  The caller's
    matplotlib backend is left alone (the CLI selects Agg itself)."""
    from ..plots import series as plotting

    d = own_dir(Path(out) / "plots")  # never a link out of the run directory
    written = plotting.save_pngs(((name, plot(series)) for name, plot in plotting.PLOTS.items()), d, dpi=dpi)
    from ..plots.controls import CONTROL_PLOTS, write_control_plots  # controls / rival statistics
    written += write_control_plots(series, d, dpi=dpi)
    remove_derived(out, (), plots=tuple(n for n in CONTROL_PLOTS if d / f"{n}.png" not in written))
    return written


def write_correlation(corr, out: os.PathLike, evals: Any, *, plots: bool = True) -> list:
    """``correlations.csv``, ``correlations.json`` (:meth:`~neuromfa_native.scores.correlation.Correlation.summary`,
    the scores' source ``evals`` and the run state it belongs to) and, with ``plots``, the
    figures ``plots/correlation_*.png`` of ``corr`` into the run directory ``out``; earlier
    correlation figures not drawn this time are removed. Returns the figures written."""
    out = Path(out)
    try:
        state = run_state(run_info(out))
    except ValueError:
        state = None  # no run.json: no state to belong to, never used by a report
    atomic_write_text(out / "correlations.csv", corr.to_csv())
    atomic_write_text(out / "correlations.json", dumps(dict(corr.summary(), evals=str(evals), run_state=state),
                                                       indent=1) + "\n")
    from ..plots.correlation import CORRELATION_PLOTS

    written = []
    if plots:
        from ..plots.correlation import write_correlation_plots
        written = write_correlation_plots(corr, out)
    remove_derived(out, (), plots=tuple(n for n in CORRELATION_PLOTS if out / "plots" / f"{n}.png" not in written))
    return written


def write_report(series, out: os.PathLike, *, plots: bool = True, verdict_step: Any = None) -> list:
    """Tables, summary and (with ``plots`` and matplotlib installed) plots; returns the paths.

    ``plots=True`` without matplotlib is a ``ValueError`` telling how to install it.

    Parameters
    ----------
    series:
        a :class:`~neuromfa_native.Series` (from :func:`~neuromfa_native.analyze_series` or
        :func:`~neuromfa_native.load_run`).
    out:
        the output directory (created if needed).
    plots:
        also draw the plots (needs matplotlib).
    verdict_step:
        the step of ``summary.json["verdict"]`` (docs/spec.md section 13): a training step or a
        checkpoint label; default the last checkpoint with a result.

    Returns
    -------
    list of pathlib.Path
        the files written.

    Raises
    ------
    ValueError
        ``plots=True`` without matplotlib, or a ``verdict_step`` that is not a checkpoint of the run.

    Examples
    --------
    >>> import tempfile
    >>> import neuromfa_native as nm
    >>> s = nm.analyze_series(["examples/pythia-tiny/step0", "examples/pythia-tiny/step16"], samples=2,
    ...                       per_layer=8, n_threads=1)
    >>> paths = nm.write_report(s, tempfile.mkdtemp(), plots=False)
    >>> sorted(p.name for p in paths)[:1]
    ['checkpoints.csv']
    """
    written = write_tables(series, out, verdict_step=verdict_step)
    if plots:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ValueError("plots need matplotlib (pip install matplotlib); or skip them with --no-plots") from None
        written += write_plots(series, out)
    return written


def _fmt(x: float, nd: int = 4) -> str:
    return "nan" if not np.isfinite(x) else f"{x:.{nd}f}"


def format_table(series) -> str:
    """A compact fixed-width text table: step, alpha0, width, E with its interval."""
    ci = int(round(100 * series.bootstrap.get("ci", DEFAULT_CONFIG.ci)))
    head = ["step", "checkpoint", "n", "alpha0 (mean±sd)", "width (mean±sd)", f"E [{ci}% CI]", "note"]
    rows = []
    for t, c in enumerate(series.checkpoints):
        n = f"{int(series.n_kept[t])}/{len(series.results[t])}" if series.filter != "none" else \
            str(len(series.results[t]))
        a = f"{_fmt(series.alpha0_mean[t])} ± {_fmt(series.alpha0_std[t])}"
        w = f"{_fmt(series.width_mean[t])} ± {_fmt(series.width_std[t])}"
        lo, hi = series.emergence_ci[t]
        e = f"{series.emergence[t]:+.4f} [{lo:+.4f}, {hi:+.4f}]" if np.isfinite(series.emergence[t]) else "nan"
        if len(series.checkpoints) == 1:
            e = "(one checkpoint: none)"
        note = []
        if t == series.baseline:
            note.append("baseline")
        if series.identical_to[t]:
            note.append(f"identical to {series.identical_to[t]}")
        rows.append([str(c.step) if c.step_parsed else f"#{c.step}", c.label, n, a, w, e, ", ".join(note)])
    width = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    right = {0, 2}
    lines = ["  ".join(h.rjust(width[i]) if i in right else h.ljust(width[i]) for i, h in enumerate(head)).rstrip()]
    for r in rows:
        lines.append("  ".join(v.rjust(width[i]) if i in right else v.ljust(width[i])
                               for i, v in enumerate(r)).rstrip())
    return "\n".join(lines)
