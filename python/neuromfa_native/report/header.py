"""The head of ``report.html``: the key numbers, the status banner, what was analysed and the
command that reproduces the run."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import platform
import shlex
from typing import Any

import numpy as np

from ..run.derived import current_correlation
from .._html import esc
from .._version import __version__
from ..config import DEFAULT_CONFIG, AnalysisConfig, command_line
from .run_data import RunData
from .science_sections import control_shares, correlation_headline

__all__ = ["reproduce_command"]


def reproduce_command(info: dict, run_dir: os.PathLike) -> str:
    """The ``neuromfa analyze`` command line that recomputes this run (into the same directory):
    the flag of every option that differs from its default (:func:`~neuromfa_native.config.command_line`),
    and a ``#`` note for what the command line cannot say."""
    corr, _ = current_correlation(run_dir, info)  # of the run as it is now, read from no link
    return _command(info, run_dir, corr)


def _command(info: dict, run_dir: os.PathLike, corr: Any) -> str:
    """:func:`reproduce_command` given the run's current correlation ``corr`` (the page passes
    the one :class:`RunData` has read, so that correlations.json is read once per page)."""
    agg = info.get("aggregation", {})
    series = info.get("series") or []
    hub = [e for e in series if e.get("revision")]
    args = ["neuromfa", "analyze"]
    notes = []
    if series and len(hub) == len(series) and len({e["source"] for e in series}) == 1:
        args += [series[0]["source"], "--revisions", ",".join(e["revision"] for e in series)]
    else:
        args += [e["source"] + (f"@{e['revision']}" if e.get("revision") else "") for e in series]
    stored = {**info.get("config", {}), **agg}
    names = {f.name for f in dataclasses.fields(AnalysisConfig)}
    try:
        flags, notes = command_line(AnalysisConfig.from_json({k: v for k, v in stored.items() if k in names}))
    except (TypeError, ValueError) as exc:
        flags, notes = [], [f"the run's configuration is not one of this version: {' '.join(str(exc).split())}"]
    args += flags
    if agg.get("baseline") and series and agg["baseline"] != series[0].get("label"):
        args += ["--baseline", str(agg["baseline"])]
    if corr is not None:
        if isinstance(corr, dict) and isinstance(corr.get("evals"), str):
            args += ["--evals", corr["evals"]]
        else:
            notes.append("and --evals SOURCE: correlations.csv holds scores whose source was not recorded")
    steps = [e.get("step", 0) for e in series]
    if steps != sorted(steps):
        args.append("--keep-order")
    args += ["--out", str(run_dir)]
    return " ".join(shlex.quote(a) for a in args) + "".join(f"  # {n}" for n in notes)


def _when(t: Any) -> str:
    try:
        return _dt.datetime.fromtimestamp(float(t), _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def header(run: RunData) -> str:
    info, cfg, agg = run.info, run.info.get("config", {}), run.info.get("aggregation", {})
    s = run.series
    series = info.get("series") or []
    arch = sorted({r.architecture for rs in (s.results if s else ()) for r in rs if r.architecture})
    layouts = sorted({r.layout for rs in (s.results if s else ()) for r in rs if r.layout})
    q = cfg.get("q") or []
    revs = [e.get("revision") for e in series if e.get("revision")]
    srcs = list(dict.fromkeys(e.get("source", "") for e in series))
    common = os.path.commonpath(srcs) if len(srcs) > 1 and all(not x.count("@") for x in srcs) else ""
    src_txt = (srcs[0] if len(srcs) == 1 else f"{common}/ ({len(srcs)} directories)" if common else
               f"{len(srcs)} sources: " + ", ".join(srcs[:3]) + (" ..." if len(srcs) > 3 else ""))
    sampling = ("full network" if cfg.get("per_layer") is None else
                f"{len(agg.get('samples') or [])} samples x {cfg.get('per_layer')} neurons per layer")
    machine = info.get("machine") or (f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores), where "
                                      "this page was written (the run does not record where it was computed)")
    labels = [e.get("label", "") for e in series]
    meta = [("status", run.status), ("sources", src_txt), ("checkpoints", f"{len(series)}" + (f": {labels[0]} ... {labels[-1]}" if labels
                                                                      else "") + (" (hub revisions)" if revs else "")),
            ("architecture", ", ".join(arch) or "(no result yet)"),
            ("layout", ", ".join(layouts) or str(cfg.get("layout"))), ("sampling", sampling),
            ("boxes", f"{cfg.get('box')}" + (f" ({cfg.get('direction')})" if cfg.get("box") == "path" else "")),
            ("threshold T", f"{cfg.get('threshold', float('nan')):g}"),
            ("q range", f"{min(q):g} .. {max(q):g} ({len(q)} moments)" if q else ""),
            ("filter", str(agg.get("filter", DEFAULT_CONFIG.filter))), ("baseline", str(agg.get("baseline", ""))),
            ("computed with", f"neuromfa-native {info.get('version', '?')}"), ("report by", f"neuromfa-native "
                                                                                      f"{__version__}"),
            ("run started", _when(info.get("created"))),
            ("last update", _when(info.get("finished") or info.get("updated"))), ("machine", machine)]
    dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in meta)
    return (f"<dl class=\"meta\">{dl}</dl><p class=\"note\" style=\"margin:6px 0 0\">Reproduce:</p>"
            f"<pre class=\"cmd\">{esc(_command(info, run.path, run.correlation))}</pre>")


def _whose_scores(run: RunData) -> str:
    """A warning when correlations.json says the scores are another model's than the run's."""
    from ..scores.provenance import model_mismatch

    info = run.correlation  # read (from no link) and checked to be of the run as it is now
    if not isinstance(info, dict):
        return ""
    msg = model_mismatch(str(info.get("scores_model") or ""), str(info.get("run_model") or ""))
    return f'<p class="banner partial" id="whose-scores">Warning: {esc(msg)}.</p>' if msg else ""


def banner(run: RunData) -> str:
    s = run.series
    if run.status == "failed":
        n = run.info.get("n_failed", "some")
        return (f'<div class="banner failed" id="status">Run with failures: {esc(n)} task(s) failed '
                f'&mdash; see <a href="#noticed">what the run noticed</a>. This report shows the results '
                f'that were stored (partial).</div>')
    if run.partial:
        miss = len(s.missing) if s is not None else None
        what = "no result yet" if s is None or not run.has_results else f"{miss} result(s) missing"
        return (f'<div class="banner partial" id="status">Partial run ({esc(run.status)}): {what}. Rerun the same '
                f'analyze command to finish; this page shows what is stored.</div>')
    return ""


def verdict_block(run: RunData) -> str:
    """The first lines of the page: the verdict's label, its sentence and why."""
    if not run.has_results:
        return ""
    v = run.verdict
    why = "" if v.label == "undetermined" else f" Why this label: {esc(v.reason)}."
    notes = "".join(f" Note: {esc(n)}." for n in v.notes)
    link = ' See <a href="#controls">the controls</a>.' if run.has_table("controls") else ""
    return (f'<div class="verdict {esc(v.label)}" id="verdict"><p class="key"><b>Verdict: {esc(v.label)}</b> '
            f"&mdash; {esc(v.sentence)}</p><p class=\"note\">Is E more than weight scale? The <i>gaussian</i> control "
            "keeps only the weight scale, the <i>scaled</i> control removes its growth (docs/answer.md)."
            f"{why}{notes}{link}</p></div>")


def key_numbers(run: RunData) -> str:
    s = run.series
    if not run.has_results:
        return ""
    if len(s.checkpoints) < 2:
        return verdict_block(run) + ("<p class=\"key2\">One checkpoint: the degree of emergence E compares a checkpoint "
                                     "with a baseline and is not defined here.</p>")
    e = np.asarray(s.emergence)
    ok = np.flatnonzero(np.isfinite(e))
    if ok.size == 0:
        return ""
    t = int(ok[-1])
    lo, hi = s.emergence_ci[t]
    ci = int(round(100 * s.bootstrap.get("ci", DEFAULT_CONFIG.ci)))
    peak = int(ok[np.argmax(e[ok])])
    txt = (f"Degree of emergence E at {esc(s.checkpoints[t].label)}: <b>{e[t]:+.3f}</b> [{lo:+.3f}, {hi:+.3f}] "
           f"({ci}% bootstrap interval over samples), relative to {esc(s.checkpoints[s.baseline].label)}")
    if peak != t:
        txt += f"; highest at {esc(s.checkpoints[peak].label)} ({e[peak]:+.3f})"
    more = ""
    if run.has_table("controls") and run.table("controls") and "E" in run.table("controls")[0]:
        more += control_shares(run.table("controls"))
        more = f'<p class="key2"><a href="#controls">Controls</a>: {more}.</p>' if more else ""
    if run.has_table("correlations") and run.table("correlations"):
        head = correlation_headline(run.table("correlations"))
        more += f'<p class="key2"><a href="#correlation">Scores</a>: {head}.</p>' if head else ""
        more += _whose_scores(run)
    if more and run.partial:  # the tables are written at the end of a pass, the results as they come
        more += ('<p class="note">The lines above come from the tables as last written (controls.csv, '
                 "correlations.csv), which may predate the results of this partial run.</p>")
    return (verdict_block(run) + f"<p class=\"key\">{txt}.</p>" + more
            + "<p class=\"note\">E = 0 at the baseline; it grows as the network's "
            "structure becomes more regular (&alpha;<sub>0</sub> falls) and more heterogeneous (the spectrum "
            "widens).</p>")
