"""Runs side by side (``compare.html``) and the method-sensitivity grid.

:func:`compare_runs` reads two or more run directories (two models, two data sets, two seeds,
two configurations) and writes into ``out``::

    compare.html             one self-contained page (see :mod:`.html_report`)
    compare_emergence.csv    run, step, checkpoint, E and its interval, alpha0/width means
    compare_difference.csv   E of each run minus E of the first run at every common step, with
                             a bootstrap interval over samples
    compare_config.csv       the settings in which the runs differ
    compare_scaling.csv      E at one step against model size (when sizes are known)

Runs may have different configurations (the differences are listed at the top) and different
step axes; only runs that share no step at all are refused.

:func:`run_sensitivity` runs a grid of method choices (``threshold``, ``per_layer``, ``box``,
``layout``, ...) over the same checkpoints, each cell its own resumable run directory, and
compares the cells the same way: does the E curve (and its correlation with benchmark scores)
hold across the choices?
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from .._fs import atomic_write_bytes, atomic_write_text, dumps
from ..config import DEFAULT_CONFIG, AnalysisConfig, flags
from .._html import esc, table
from .._text import csv_text
from .html import write_html_report
from .page import Figures, figure, page
from .run_data import RunData
from .tables import write_correlation
from .answers import (
    check_runs,
    correlation_summary,
    e_not_comparable,
    grid_sentence,
    top_tasks,
    verdict_rows,
    verdict_table,
)

__all__ = ["compare_runs", "config_differences", "emergence_difference", "model_size", "parse_vary",
           "run_sensitivity"]


def _names(runs: Sequence[RunData], names: Optional[Sequence[str]]) -> list:
    if names is not None:
        if len(names) != len(runs):
            raise ValueError(f"names must have one entry per run ({len(runs)}), got {len(names)}")
        return [str(n) for n in names]
    out = [r.path.name or str(r.path) for r in runs]
    if len(set(out)) < len(out):
        out = [str(r.path) for r in runs]
    if len(set(out)) < len(out):
        out = [f"{n} #{i + 1}" for i, n in enumerate(out)]
    return out


def _series(run: RunData):
    s = run.series
    if s is None or not any(len(r) for r in s.results):
        raise ValueError(f"run {str(run.path)!r} has no result yet")
    return s


def config_differences(runs: Sequence[RunData], names: Sequence[str]) -> list:
    """One row per setting whose value differs between the runs: ``{setting, <name>: value...}``."""
    def desc(r: RunData) -> dict:
        cfg, agg = dict(r.info.get("config", {})), r.info.get("aggregation", {})
        q = cfg.pop("q", None) or []
        d = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in cfg.items()}
        d["q"] = f"{min(q):g}..{max(q):g} ({len(q)})" if q else ""
        d["samples"] = len(agg.get("samples") or [])
        for k in ("filter", "baseline", "n_bootstrap", "ci", "seed"):
            d[k] = agg.get(k)
        d["version"] = r.info.get("version")
        s = r.series
        d["architecture"] = ", ".join(sorted({x.architecture for rs in s.results for x in rs if x.architecture})) \
            if s is not None else ""
        series = r.info.get("series") or []
        d["checkpoints"] = len(series)
        srcs = list(dict.fromkeys(e.get("source", "") for e in series))
        d["source"] = (os.path.commonpath(srcs) if len(srcs) > 1 and not any("@" in x for x in srcs) else
                       ", ".join(srcs[:2]) + (" ..." if len(srcs) > 2 else ""))
        d["status"] = r.status
        return d

    ds = [desc(r) for r in runs]
    keys = list(dict.fromkeys(k for d in ds for k in d))
    rows = []
    for k in keys:
        vals = [d.get(k) for d in ds]
        if any(v != vals[0] for v in vals):
            rows.append(dict(setting=k, **{n: "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
                                           for n, v in zip(names, vals)}))
    return rows


def _kept_values(s) -> tuple:
    a0 = [np.array([r.alpha0 for r in rs if r.spectrum.passes(s.filter)], dtype=float) for rs in s.results]
    wd = [np.array([r.width for r in rs if r.spectrum.passes(s.filter)], dtype=float) for rs in s.results]
    return a0, wd


def _e_replicates(s, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of E, shape ``(checkpoints, n_boot)``: the samples of every
    checkpoint resampled with replacement, independently (as :func:`series.bootstrap_emergence`)."""
    a0, wd = _kept_values(s)
    n = len(a0)
    ma = np.full((n, n_boot), np.nan)
    mw = np.full((n, n_boot), np.nan)
    for t in range(n):
        if a0[t].size:
            idx = rng.integers(0, a0[t].size, size=(n_boot, a0[t].size))
            ma[t], mw[t] = a0[t][idx].mean(axis=1), wd[t][idx].mean(axis=1)
    b = s.baseline
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (mw / mw[b]) * np.log(ma[b] / ma)
    e[b] = 0.0 if np.isfinite(ma[b]).all() else np.nan
    return e


def _step_index(s) -> dict:
    out: dict = {}
    for t, c in enumerate(s.checkpoints):
        out.setdefault(int(c.step), t)  # identical steps: the first
    return out


def common_steps(series: Sequence) -> list:
    sets = [set(_step_index(s)) for s in series]
    return sorted(set.intersection(*sets)) if sets else []


def emergence_difference(series_a, series_b, *, n_boot: int = DEFAULT_CONFIG.n_bootstrap, ci: float = DEFAULT_CONFIG.ci,
                         seed: int = DEFAULT_CONFIG.seed) -> list:
    """E of ``series_b`` minus E of ``series_a`` at every common step, with a percentile
    bootstrap interval (the samples of each run resampled independently, each run's E relative
    to its own baseline)."""
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    rng = np.random.default_rng(seed)
    ea, eb = _e_replicates(series_a, n_boot, rng), _e_replicates(series_b, n_boot, rng)
    ia, ib = _step_index(series_a), _step_index(series_b)
    rows = []
    for st in common_steps([series_a, series_b]):
        ta, tb = ia[st], ib[st]
        d = float(series_b.emergence[tb] - series_a.emergence[ta])
        rep = eb[tb] - ea[ta]
        lo = hi = math.nan
        if np.all(np.isfinite(rep)):
            lo, hi = (float(x) for x in np.percentile(rep, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2]))
        rows.append(dict(step=st, E_a=float(series_a.emergence[ta]), E_b=float(series_b.emergence[tb]),
                         difference=d, difference_lo=lo, difference_hi=hi,
                         n_a=int(series_a.n_kept[ta]), n_b=int(series_b.n_kept[tb])))
    return rows


_SIZE = re.compile(r"(?<![0-9a-z.])(\d+(?:\.\d+)?)([kmb])(?![a-z])", re.I)


def model_size(text: str) -> Optional[float]:
    """Parameters from a model name such as ``pythia-160m`` or ``pythia-1.4b`` (None if none)."""
    found = list(_SIZE.finditer(str(text)))
    if not found:
        return None
    m = found[-1]
    return float(m.group(1)) * {"k": 1e3, "m": 1e6, "b": 1e9}[m.group(2).lower()]


def _mean_spectrum(s, t: int):
    keep = [r for r in s.results[t] if r.spectrum.passes(s.filter)]
    if not keep:
        return None
    return np.mean([r.spectrum.alpha for r in keep], axis=0), np.mean([r.spectrum.f for r in keep], axis=0)


def _write_csv(path: Path, rows: list, columns: Optional[list] = None) -> None:
    """A CSV table written as report/tables.py writes its own (:func:`~.._text.csv_text`)."""
    atomic_write_bytes(path, csv_text(rows, columns or (list(rows[0]) if rows else [])).encode())


def compare_runs(run_dirs: Sequence[os.PathLike], out: os.PathLike, *, names: Optional[Sequence[str]] = None,
                 sizes: Optional[dict] = None, step: Optional[int] = None, n_boot: int = DEFAULT_CONFIG.n_bootstrap,
                 ci: float = DEFAULT_CONFIG.ci, seed: int = DEFAULT_CONFIG.seed, title: str = "NeuroMFA comparison",
                 intro: str = "") -> Path:
    """Compare run directories; write ``compare.html`` and the tables into ``out``; returns the
    page's path.  ``sizes`` maps a run name to its parameter count (else parsed from the model
    name); ``step`` is the step of the scaling figure (default: the last common step).

    A ``ValueError`` when fewer than two runs are given or the runs share no training step.
    """
    if len(run_dirs) < 2:
        raise ValueError(f"compare needs at least two run directories, got {len(run_dirs)}")
    runs = [RunData(p) for p in run_dirs]
    names = _names(runs, names)
    series = [_series(r) for r in runs]
    check_runs(runs, names, series)  # the same run twice, or no common step axis
    common = common_steps(series)
    if not common:
        desc = "; ".join(f"{n}: {', '.join(map(str, sorted(_step_index(s))[:6]))}"
                         + (" ..." if len(s.checkpoints) > 6 else "") for n, s in zip(names, series))
        raise ValueError(f"the runs share no training step, nothing to compare ({desc})")
    at = common[-1] if step is None else int(step)
    if step is not None and at not in common:
        raise ValueError(f"step {at} is not a step of every run (common steps: {', '.join(map(str, common))})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    erows = _emergence_rows(names, series)
    drows = []
    for j in range(1, len(series)):
        for r in emergence_difference(series[0], series[j], n_boot=n_boot, ci=ci, seed=seed + j):
            drows.append(dict(run_a=names[0], run_b=names[j], **r))
    crows = config_differences(runs, names)
    not_comparable = e_not_comparable(crows, names)
    vrows = verdict_rows(names, runs)
    _write_csv(out / "compare_verdict.csv", vrows)
    _write_csv(out / "compare_emergence.csv", erows)
    _write_csv(out / "compare_difference.csv", drows)
    _write_csv(out / "compare_config.csv", crows, ["setting"] + names)

    ci_pct = int(round(100 * ci))
    parts = [_compare_header(title, intro, runs, names, series, common, crows, not_comparable)
             + verdict_table(vrows, not_comparable), _emergence_section(names, series, ci_pct, not_comparable)]
    if drows:
        parts.append(_difference_section(drows, names, ci_pct, n_boot, not_comparable))
    parts.append(_spectra_section(names, series, common))
    srows = _scaling_rows(runs, names, series, sizes, at)
    if srows:
        _write_csv(out / "compare_scaling.csv", srows)
        parts.append(_scaling_section(srows, at, ci_pct, not_comparable))
    parts.append('<section id="table"><h2>E per run and step</h2>' + table(
        erows, caption="compare_emergence.csv: every checkpoint of every run.", table_id="emergence-table")
        + "</section>")
    parts.append("<p class=\"note\">Tables: compare_verdict.csv, compare_emergence.csv, compare_difference.csv, "
                 "compare_config.csv"
                 + (", compare_scaling.csv" if srows else "") + ".</p>")
    p = out / "compare.html"
    atomic_write_text(p, page(title, "\n".join(parts)))
    return p


def _emergence_rows(names: Sequence[str], series: Sequence) -> list:
    erows = []
    for n, s in zip(names, series):
        for r in s.checkpoint_rows():
            erows.append(dict(run=n, step=r["step"], checkpoint=r["checkpoint"], n_kept=r["n_kept"],
                              E=r["emergence"], E_lo=r["emergence_low"], E_hi=r["emergence_high"],
                              alpha0_mean=r["alpha0_mean"], width_mean=r["width_mean"]))
    return erows


def _compare_header(title: str, intro: str, runs: Sequence[RunData], names: Sequence[str], series: Sequence,
                    common: list, crows: list, not_comparable: str = "") -> str:
    """The first screen: E of each run at the last common step and the configuration differences."""
    parts = [f"<header id=\"header\"><h1>{esc(title)}</h1>{intro}"]
    partial = [n for n, r in zip(names, runs) if r.partial]
    if partial:
        parts.append(f'<div class="banner partial" id="status">Partial run(s): {esc(", ".join(partial))} '
                     "&mdash; their missing results are left out.</div>")
    last = common[-1]
    summary = []
    for n, s in zip(names, series):
        t = _step_index(s)[last]
        lo, hi = s.emergence_ci[t]
        summary.append(f"<b>{esc(n)}</b> {s.emergence[t]:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    mark = " <b>(not comparable: see below)</b>" if not_comparable else ""
    parts.append(f"<p class=\"key\">E at step {last:,} (the last common step){mark}: " + "; ".join(summary) + ".</p>")
    if crows:
        shown = [{k: ("(not set)" if v == "" else v) for k, v in r.items()} for r in crows]
        parts.append("<h3>Configuration differences</h3>" + table(shown, ["setting"] + list(names), sortable=False,
                                                                    table_id="config-table", scroll=False))
    else:
        parts.append("<p class=\"note\">The runs have the same configuration.</p>")
    parts.append("<p class=\"note\">Runs: " + "; ".join(f"<b>{esc(n)}</b> = {esc(r.path)}" for n, r in zip(names, runs))
                 + f". Common steps: {len(common)} of "
                 + ", ".join(str(len(s.checkpoints)) for s in series) + ".</p></header>")
    return "".join(parts)


def _emergence_section(names: Sequence[str], series: Sequence, ci_pct: int, not_comparable: str = "") -> str:
    from ..plots.series import plain, step_axis
    fig, ax = Figures.subplots(figsize=(12, 4.6), layout="constrained")
    all_steps = [float(x) for s in series for x in s.steps]
    step_axis(ax, all_steps)  # before plotting: axhline would freeze linear limits (step 0 far from the edge)
    for i, (n, s) in enumerate(zip(names, series)):
        st = s.steps.astype(float)
        e = np.asarray(s.emergence)
        lo, hi = np.asarray(s.emergence_ci).T
        ok = np.isfinite(e)
        band = ok & np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(st[band], lo[band], hi[band], color=f"C{i % 10}", alpha=0.2, lw=0)
        ax.plot(st[ok], e[ok], "o-", color=f"C{i % 10}", ms=3.5, lw=1.6, label=plain(n))
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_ylabel("degree of emergence E")
    ax.set_title("E over training, each run relative to its own baseline"
                 + (" (not comparable across configurations)" if not_comparable else ""))
    ax.legend(fontsize="small", frameon=False)
    cap = (f"E of every run with its {ci_pct}% bootstrap interval (bands) on a shared step axis. Where the bands "
           "overlap, the runs agree within the sampling uncertainty.")
    if not_comparable:
        cap = f"<b>Not comparable:</b> {esc(not_comparable)} " + cap.replace("Where the bands overlap, the runs agree "
                                                                              "within the sampling uncertainty.", "")
    return '<section id="emergence"><h2>E over training</h2>' + figure(
        fig, cap, alt="E curves of the runs") + "</section>"


def _difference_section(drows: list, names: Sequence[str], ci_pct: int, n_boot: int, not_comparable: str = "") -> str:
    from ..plots.series import plain, step_axis
    fig, ax = Figures.subplots(figsize=(12, 3.8), layout="constrained")
    step_axis(ax, [r["step"] for r in drows])  # before plotting, as above
    for j in range(1, len(names)):
        rr = [r for r in drows if r["run_b"] == names[j]]
        st = np.array([r["step"] for r in rr], dtype=float)
        d = np.array([r["difference"] for r in rr])
        lo = np.array([r["difference_lo"] for r in rr])
        hi = np.array([r["difference_hi"] for r in rr])
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(st[ok], lo[ok], hi[ok], color=f"C{j % 10}", alpha=0.2, lw=0)
        ax.plot(st, d, "o-", color=f"C{j % 10}", ms=3.5, label=plain(f"{names[j]} - {names[0]}"))
    ax.axhline(0, color="0.3", lw=1)
    ax.set_ylabel(f"E difference vs {plain(names[0])}")
    ax.legend(fontsize="small", frameon=False)
    ax.set_title("Difference of E per common step")
    warn = f"<b>Not comparable:</b> {esc(not_comparable)} " if not_comparable else ""
    return '<section id="difference"><h2>Difference of E</h2>' + figure(
        fig, warn + f"E of each run minus E of <b>{esc(names[0])}</b> at every common step, with a {ci_pct}% "
             f"bootstrap interval over samples ({n_boot} replicates). A band that excludes zero is a difference "
             "the sampling does not explain.", alt="difference of E per step") \
        + table(drows, caption="compare_difference.csv", table_id="difference-table", nd=4) + "</section>"


def _spectra_section(names: Sequence[str], series: Sequence, common: list) -> str:
    from ..plots.series import plain
    picks = sorted({common[0], common[len(common) // 2], common[-1]})
    fig, axs = Figures.subplots(1, len(picks), figsize=(3.6 * len(picks) + 0.5, 3.4), layout="constrained",
                                squeeze=False)
    for ax, st in zip(axs[0], picks):
        for i, (n, s) in enumerate(zip(names, series)):
            m = _mean_spectrum(s, _step_index(s)[st])
            if m is not None:
                ax.plot(m[0], m[1], color=f"C{i % 10}", lw=1.6, label=plain(n))
        ax.set_title(f"step {st:,}", fontsize="medium")
        ax.set_xlabel(r"$\alpha$")
        ax.grid(True, alpha=0.3)
    axs[0, 0].set_ylabel(r"$f(\alpha)$")
    axs[0, 0].legend(fontsize="x-small", frameon=False)
    return '<section id="spectra"><h2>Spectra at matched steps</h2>' + figure(
        fig, "Mean spectrum f(&alpha;) of each run at the first, middle and last common step. The peak position is "
             "&alpha;<sub>0</sub>, the span is the width; E compares both with the run's baseline.",
        alt="spectra of the runs at matched steps") + "</section>"


def _scaling_rows(runs: Sequence[RunData], names: Sequence[str], series: Sequence, sizes: Optional[dict],
                  at: int) -> list:
    """Rows of E at step ``at`` against model size; empty unless two runs have different known sizes."""
    sz = {}
    for n, r in zip(names, runs):
        v = (sizes or {}).get(n)
        sz[n] = float(v) if v is not None else model_size(r.name) or model_size(n)
    known = [(n, s) for n, s in zip(names, series) if sz.get(n)]
    if len(known) < 2 or len({sz[n] for n, _ in known}) < 2:
        return []
    srows = []
    for n, s in known:
        t = _step_index(s)[at]
        srows.append(dict(run=n, parameters=sz[n], step=at, E=float(s.emergence[t]),
                          E_lo=float(s.emergence_ci[t, 0]), E_hi=float(s.emergence_ci[t, 1])))
    return sorted(srows, key=lambda r: r["parameters"])


def _scaling_section(srows: list, at: int, ci_pct: int, not_comparable: str = "") -> str:
    from ..plots.series import plain
    fig, ax = Figures.subplots(figsize=(6, 3.8), layout="constrained")
    x = np.array([r["parameters"] for r in srows])
    e = np.array([r["E"] for r in srows])
    yerr = np.abs(np.array([[r["E"] - r["E_lo"], r["E_hi"] - r["E"]] for r in srows]).T)
    ax.errorbar(x, e, yerr=np.where(np.isfinite(yerr), yerr, 0), fmt="o-", capsize=3, color="C3")
    for r in srows:
        ax.annotate(plain(r["run"]), (r["parameters"], r["E"]), fontsize="x-small", xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("model parameters")
    ax.set_ylabel(f"E at step {at:,}")
    ax.grid(True, alpha=0.3)
    ax.set_title("E against model size")
    warn = f"<b>Not comparable:</b> {esc(not_comparable)} " if not_comparable else ""
    return '<section id="scaling"><h2>E against model size</h2>' + figure(
        fig, warn + f"E at step {at:,} of each model against its parameter count (from the model name or --size), with "
             f"{ci_pct}% intervals, as in the paper's comparison of model sizes. Intervals that do not overlap "
             "separate the sizes beyond the sampling uncertainty.", alt="E against model size") \
        + table(srows, table_id="scaling-table") + "</section>"


# ---------------------------------------------------------------------------------------------
# sensitivity


#: The method choices a sensitivity grid can vary: ``{option: Flag}`` of the options of
#: :class:`~neuromfa_native.AnalysisConfig` whose flag says ``vary`` (its parser reads a value).
VARY: dict = {name: flag for name, flag in flags(AnalysisConfig).items() if flag.vary}


def parse_vary(items: Sequence[str]) -> dict:
    """``["threshold=100,150", "box=edge,path"]`` -> ``{"threshold": [100.0, 150.0], "box": [...]}``.

    A choice is named by its option (``per_layer``) or its flag (``per-layer``); its values are
    read as the flag reads them (``full`` for ``per_layer``)."""
    out: dict = {}
    for it in items:
        name, sep, vals = str(it).partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not vals.strip():
            raise ValueError(f"--vary takes NAME=V1,V2,..., got {it!r}")
        if name not in VARY:
            raise ValueError(f"--vary: unknown choice {name!r}; one of {', '.join(VARY)}")
        if name in out:
            raise ValueError(f"--vary {name} given twice")
        try:
            out[name] = [VARY[name].read(v.strip()) for v in vals.split(",") if v.strip()]
        except ValueError as exc:
            raise ValueError(f"--vary {name}: bad value in {vals!r} ({exc})") from None
        if len(set(map(str, out[name]))) != len(out[name]):
            raise ValueError(f"--vary {name}: a value is given twice in {vals!r}")
    if not out:
        raise ValueError("sensitivity needs at least one --vary NAME=V1,V2,...")
    return out


def _cell_name(cell: dict) -> str:
    return ",".join(f"{k}={'full' if v is None else f'{v:g}' if isinstance(v, float) else v}"
                    for k, v in cell.items())


def run_sensitivity(sources: Any, vary: dict, out: os.PathLike, *, evals: Any = None, progress: bool = False,
                    n_boot: int = DEFAULT_CONFIG.n_bootstrap, seed: int = DEFAULT_CONFIG.seed, cell_reports: bool = True,
                    **options) -> Path:
    """Analyse ``sources`` once per cell of the grid ``vary`` (``{choice: [values]}``), each
    cell in ``out/cells/<choice=value,...>/`` (resumable: a rerun reuses finished results),
    then write ``out/sensitivity.html`` and ``out/sensitivity.csv``.  ``options`` are further
    :func:`~neuromfa_native.run.series.analyze_series` arguments shared by every cell.  With
    ``evals``, every cell is also correlated with the scores (:func:`~.correlation.correlate`).
    ``cell_reports`` writes each cell's own ``report.html`` too."""
    from .tables import write_report
    from ..run.runner import analyze_series

    bad = [k for k in vary if k not in VARY]
    if bad:
        raise ValueError(f"unknown sensitivity choice(s) {', '.join(bad)}; one of {', '.join(VARY)}")
    shared = sorted(set(vary) & set(options) | {"out", "n_bootstrap", "seed"} & set(options))
    if shared:
        raise ValueError(f"{', '.join(shared)} is both varied and fixed")
    out = Path(out)
    cells = [dict(zip(vary, vals)) for vals in itertools.product(*vary.values())]
    cells = [c for c in cells if not (c.get("box") == "path" and ("per_layer" in c and c["per_layer"] is None))]
    out.mkdir(parents=True, exist_ok=True)
    grid = dict(vary={k: list(v) for k, v in vary.items()}, options={k: v for k, v in options.items()
                                                                     if k not in ("executor", "progress")})
    atomic_write_text(out / "sensitivity.json", dumps(grid, indent=1))
    dirs: list = []
    names: list = []
    for cell in cells:
        name = _cell_name(cell)
        d = out / "cells" / name
        if progress:
            print(f"sensitivity: cell {name}", flush=True)
        series = analyze_series(sources, out=d, progress=progress, n_bootstrap=n_boot, seed=seed, **options, **cell)
        write_report(series, d, plots=False)
        if evals is not None:
            _correlate_cell(series, d, evals, n_boot=n_boot, seed=seed, first=not dirs)
        if cell_reports:
            write_html_report(d)
        dirs.append(d)
        names.append(name)
    return _sensitivity_page(out, dirs, names, vary, n_boot=n_boot, seed=seed)


def _correlate_cell(series, d: Path, evals: Any, *, n_boot: int, seed: int, first: bool = True) -> None:
    """correlations.csv and .json of one cell, as ``neuromfa correlate`` writes them (no plots:
    the page has its heat map); warnings (whose scores) only for the ``first`` cell."""
    import warnings

    from ..scores.correlation import correlate

    with warnings.catch_warnings():  # the scores' model is the same in every cell: said once
        if not first:
            warnings.simplefilter("ignore")
        corr = correlate(series, evals, n_boot=n_boot, seed=seed)
    write_correlation(corr, d, evals, plots=False)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return math.nan
    from ..scores.rankcorr import spearman
    return float(spearman(x[ok], y[ok]))  # scipy.stats.spearmanr's value, without scipy


def _sensitivity_page(out: Path, dirs: list, names: list, vary: dict, *, n_boot: int, seed: int) -> Path:
    runs = [RunData(d) for d in dirs]
    series = [_series(r) for r in runs]
    ref = 0
    common = common_steps(series)
    rows = []
    ir = _step_index(series[ref])
    tasks = top_tasks(runs[ref])
    vrows = verdict_rows(names, runs)
    per_cell = []
    for n, s, r, v in zip(names, series, runs, vrows):
        ix = _step_index(s)
        e_ref = np.array([series[ref].emergence[ir[st]] for st in common])
        e = np.array([s.emergence[ix[st]] for st in common])
        last = ix[common[-1]] if common else len(s.checkpoints) - 1
        row = dict(cell=n, verdict=v["verdict"], gaussian_share=v["gaussian_share"],
                   gaussian_share_lo=v["gaussian_share_lo"], gaussian_share_hi=v["gaussian_share_hi"],
                   remainder_share=v["remainder_share"], remainder_share_lo=v["remainder_share_lo"],
                   remainder_share_hi=v["remainder_share_hi"], E_last=float(s.emergence[last]),
                   E_last_lo=float(s.emergence_ci[last, 0]), E_last_hi=float(s.emergence_ci[last, 1]),
                   rho_with_first_cell=_spearman(e, e_ref),
                   monotone_fraction=float(np.mean(np.diff(e[np.isfinite(e)]) >= 0)) if np.isfinite(e).sum() > 1
                   else math.nan, complete=r.status == "complete")
        corr = correlation_summary(r, tasks if len(tasks) else None)
        per_cell.append(corr)
        row.update(corr)
        rows.append(row)
    _write_csv(out / "sensitivity.csv", rows, list(dict.fromkeys(k for r in rows for k in r)))
    def show(v):
        return "full" if v is None else f"{v:g}" if isinstance(v, float) else str(v)
    choices = ", ".join(f"{k} in {{{', '.join(show(v) for v in vals)}}}" for k, vals in vary.items())
    intro = (f"<p>Grid: {esc(choices)} &mdash; {len(dirs)} cells, each its own run directory under cells/. "
             "Do the answer and the correlations hold across these method choices?</p>"
             f'<p class="key" id="grid-answer">{grid_sentence(vrows, per_cell, tasks)}</p>'
             '<p class="banner partial" id="not-comparable">E values of different cells are not comparable: each '
             "cell is its own configuration of the method, and E compares checkpoints only within one. Compare the "
             "verdicts, the shares and the correlations across cells, not E.</p>"
             "<p class=\"note\"><i>verdict</i>, <i>gaussian_share</i>, <i>remainder_share</i>: each cell's answer to "
             "'is E more than weight scale?' (docs/answer.md; undetermined without --controls gaussian,scaled); "
             "<i>rho_with_first_cell</i>: the rank correlation of each cell's E curve with that of "
             f"<b>{esc(names[0])}</b> over the common steps; <i>rho_E_&lt;task&gt;</i>: E's correlation with a score "
             "and <i>E_vs_step_&lt;task&gt;</i> its |rho| minus the training step's (the strongest scores of the first "
             "cell), <i>E_rows_q_below_0_05</i>: E's rows with a Benjamini-Hochberg q below 0.05 by the t "
             "approximation (scipy's p-values), <i>E_rows_q_exact_below_0_05</i>: the same from exact permutation "
             "p-values where a row has at most 9 checkpoints (the valid count: the t approximation gives a perfect "
             "order p = 0), when --evals was given.</p>"
             + table(rows, list(dict.fromkeys(k for r in rows for k in r)), table_id="sensitivity-table", nd=3))
    if len(dirs) < 2:
        p = out / "sensitivity.html"
        atomic_write_text(p, page("NeuroMFA sensitivity", f"<h1>NeuroMFA sensitivity</h1>{intro}"))
        return p
    p = compare_runs(dirs, out, names=names, n_boot=n_boot, seed=seed, title="NeuroMFA sensitivity", intro=intro)
    final = out / "sensitivity.html"
    os.replace(p, final)
    return final
