"""The ``neuromfa`` command: ``analyze`` a checkpoint series, ``report`` a run, ``info`` on a model.

Exit status: 0 on success, 1 for an error (one line ``neuromfa: error: ...`` on stderr; add
``--debug`` for the traceback), 2 for a bad command line, 130 when interrupted.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Optional, Sequence

from .mfa.boxes import BOXES, DIRECTIONS
from .config import CONTROLS, SPECTRUM_FILTERS, AnalysisConfig, defaults

__all__ = ["main"]

PROG = "neuromfa"

#: The option defaults, from :class:`~neuromfa_native.AnalysisConfig` (never restated here).
DEFAULTS = defaults()


class UserError(Exception):
    """An error to report as one line, without a traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + line
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; ``(default: X)`` only where a default says something."""

    def _get_help_string(self, action):
        h = action.help or ""
        d = action.default
        if "default" in h or d is None or isinstance(d, bool) or d is argparse.SUPPRESS or not action.option_strings:
            return h
        return f"{h} (default: {d})"


ANALYZE_EXAMPLES = """\
examples:
  # the bundled example: 13 checkpoints of a tiny GPT-NeoX, 10 samples each
  neuromfa analyze examples/pythia-tiny/step* --out pythia-tiny-out

  # hub revisions of one model (downloads, or the cache with HF_HUB_OFFLINE=1)
  neuromfa analyze EleutherAI/pythia-160m --revisions step0,step1000,step143000 --threads 8

  # path boxes, 64 neurons per layer, E relative to step 1000
  neuromfa analyze ckpts/step* --box path --per-layer 64 --baseline step1000 --out run-path

  # on a Dask cluster (one task per checkpoint x sample)
  neuromfa analyze ckpts/step* --scheduler tcp://10.0.0.5:8786 --threads 4

Rerunning the same command resumes: finished (checkpoint, sample) results in --out are
reused; a different configuration in the same --out is refused unless --overwrite.
Checkpoint names such as step1000 or checkpoint-500 give the training step, and the
checkpoints are ordered by it; otherwise the given order is kept.
"""

REPORT_EXAMPLES = """\
examples:
  neuromfa report pythia-tiny-out                   # tables + plots/*.png
  neuromfa report pythia-tiny-out --no-plots        # tables only
  neuromfa report run --baseline step1000 --ci 0.9  # re-aggregate without recomputing

Works on a partial run (killed, or still running): missing results are listed and left out.
"""

INFO_EXAMPLES = """\
examples:
  neuromfa info examples/pythia-tiny/step250
  neuromfa info EleutherAI/pythia-1.4b --revision step143000 --per-layer 64
  neuromfa info ckpt/ --json --fingerprint
"""


def _positive_int(name):
    def conv(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {v}")
        return v
    return conv


def _per_layer(s):
    if s.lower() in ("full", "none", "all"):
        return None
    return _positive_int("--per-layer")(s)


def _float(name):
    def conv(s):
        try:
            return float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None
    return conv


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, formatter_class=_Formatter,
                description="Neuron-based multifractal analysis (NeuroMFA) of neural-network weights over training.",
                epilog="Run 'neuromfa COMMAND --help' for the options and examples of a command.")
    from . import __version__
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    a = sub.add_parser("analyze", formatter_class=_Formatter, epilog=ANALYZE_EXAMPLES,
                       help="analyse a checkpoint series: spectra, alpha0, width, emergence E",
                       description="Analyse a series of checkpoints of one model: K sampled neuron "
                                   "interaction networks per checkpoint (the same neurons in each), their "
                                   "multifractal spectra, and the degree of emergence E with a bootstrap "
                                   "confidence interval. Writes tables, spectra and plots to --out.")
    a.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="checkpoint directories/files or hub ids (org/name@rev); one hub id with --revisions")
    a.add_argument("--revisions", metavar="R1,R2,...", help="comma-separated hub revisions of the one hub id")
    a.add_argument("--samples", type=_positive_int("--samples"), default=DEFAULTS["samples"], metavar="K",
                   help="sampled networks per checkpoint (samples 0..K-1)")
    a.add_argument("--per-layer", type=_per_layer, default=DEFAULTS["per_layer"], metavar="S",
                   help="neurons sampled per layer; 'full' for the whole network (one-hop boxes)")
    a.add_argument("--threshold", type=_float("--threshold"), default=DEFAULTS["threshold"], metavar="T",
                   help="largest distance 1/|w| kept")
    a.add_argument("--box", choices=BOXES, default=DEFAULTS["box"],
                   help="one-hop boxes (reference) or shortest-path boxes")
    a.add_argument("--direction", choices=DIRECTIONS, default=DEFAULTS["direction"],
                   help="path direction for --box path")
    a.add_argument("--min-edges", type=_positive_int("--min-edges"), default=DEFAULTS["min_edges"], metavar="N",
                   help="distances a node needs to be a box centre")
    a.add_argument("--decimals", type=int, default=DEFAULTS["decimals"], metavar="D", help="rounding of distances")
    a.add_argument("--layout", default=DEFAULTS["layout"], help="layer map: reference, heads or default")
    a.add_argument("--filter", choices=SPECTRUM_FILTERS, default=DEFAULTS["filter"],
                   help="published spectrum filter applied to the statistics")
    a.add_argument("--no-node-dimension", dest="node_dimension", action="store_false",
                   help="skip node fractal dimensions")
    a.add_argument("--nfd-threshold", type=_float("--nfd-threshold"), default=DEFAULTS["nfd_threshold"], metavar="T",
                   help="distance threshold of node fractal dimensions")
    a.add_argument("--baseline", metavar="NAME",
                   help="emergence baseline: a checkpoint label (step1000), source or step number "
                        "(default: the first checkpoint)")
    a.add_argument("--keep-order", action="store_true", help="keep the given order instead of sorting by step")
    a.add_argument("--threads", type=_positive_int("--threads"), default=None, metavar="N",
                   help="OpenMP threads per task (default: all cores in process; 1 with --jobs/--scheduler)")
    a.add_argument("--jobs", type=_positive_int("--jobs"), default=None, metavar="N",
                   help="run N tasks at once in local worker processes (spawned)")
    a.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (needs dask.distributed)")
    a.add_argument("--cache", choices=("keep", "evict", "none"), default="keep",
                   help="hub checkpoints: keep the downloads (default), evict each after its analysis, "
                        "or none: range reads, nothing written (docs/remote.md)")
    a.add_argument("--out", default="neuromfa-out", metavar="DIR", help="run directory")
    a.add_argument("--overwrite", action="store_true",
                   help="discard results of another configuration in --out")
    _aggregation_args(a, defaults=True)
    # --- controls, rival statistics, breakdown by layer (docs/controls.md) ---
    a.add_argument("--controls", default="", metavar="C1,C2",
                   help="null-network controls: any of " + ",".join(CONTROLS) + " (writes controls.csv)")
    a.add_argument("--stats", action="store_true",
                   help="rival weight statistics (rms, kurtosis, Weibull fit, ...; writes stats.csv)")
    a.add_argument("--by-layer", action="store_true",
                   help="spectra of node-layer kinds, blocks and node layers (writes by_layer.csv)")
    a.add_argument("--no-plots", dest="plots", action="store_false", help="do not render plots")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no table")
    # -- correlation with benchmark scores (docs/correlation.md) --
    a.add_argument("--evals", metavar="SOURCE",
                   help="at the end, correlate with these scores as 'neuromfa correlate' does (lm-eval JSON "
                        "directory, .csv/.parquet table or pythia:MODEL)")
    # -- end correlation --
    a.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    r = sub.add_parser("report", formatter_class=_Formatter, epilog=REPORT_EXAMPLES,
                       help="tables and plots of a finished or partial run directory",
                       description="Read a run directory written by 'neuromfa analyze' (finished or not), "
                                   "print the per-checkpoint table and write tables, spectra.npz, "
                                   "summary.json and plots into it. Needs no checkpoint files.")
    r.add_argument("run", metavar="DIR", help="run directory (--out of neuromfa analyze)")
    r.add_argument("--baseline", metavar="NAME", help="emergence baseline (default: the run's)")
    r.add_argument("--filter", choices=SPECTRUM_FILTERS, default=None,
                   help="spectrum filter (default: the run's)")
    _aggregation_args(r, defaults=False)
    r.add_argument("--no-plots", dest="plots", action="store_false", help="do not render plots")
    r.add_argument("-q", "--quiet", action="store_true", help="do not print the table")
    r.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    i = sub.add_parser("info", formatter_class=_Formatter, epilog=INFO_EXAMPLES,
                       help="architecture, tensors, node layers and network sizes of a checkpoint",
                       description="Describe a checkpoint without reading its weights: architecture, the "
                                   "tensors the network uses, node layers and sampled/full network sizes.")
    i.add_argument("source", metavar="SOURCE", help="checkpoint directory/file or hub id")
    i.add_argument("--revision", help="hub revision")
    i.add_argument("--per-layer", type=_per_layer, default=DEFAULTS["per_layer"], metavar="S",
                   help="neurons sampled per layer")
    i.add_argument("--layout", default=DEFAULTS["layout"], help="layer map: reference, heads or default")
    i.add_argument("--fingerprint", action="store_true", help="also hash the weights (reads them all)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    _compare_parsers(sub)
    _correlate_parser(sub)
    return p


def _aggregation_args(p, *, defaults: bool) -> None:
    p.add_argument("--bootstrap", type=_positive_int("--bootstrap"),
                   default=DEFAULTS["n_bootstrap"] if defaults else None, metavar="N",
                   help="bootstrap replicates of the E interval" + ("" if defaults else " (default: the run's)"))
    p.add_argument("--ci", type=_float("--ci"), default=DEFAULTS["ci"] if defaults else None,
                   help="confidence level of the E interval" + ("" if defaults else " (default: the run's)"))
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"] if defaults else None,
                   help="bootstrap seed" + ("" if defaults else " (default: the run's)"))


# ---------------------------------------------------------------------------------------------


def _say(msg: str = "", *, err: bool = False) -> None:
    print(msg, file=sys.stderr if err else sys.stdout, flush=True)


def _make_executor(args):
    """(executor, closer, n_threads) for --jobs / --scheduler."""
    if args.jobs and args.scheduler:
        raise UserError("--jobs and --scheduler exclude each other")
    if args.scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise UserError("--scheduler needs dask.distributed (pip install 'dask[distributed]')") from None
        try:
            client = Client(args.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise UserError(f"cannot reach the Dask scheduler {args.scheduler!r}: {exc}") from None
        return client.get_executor(), client.close, args.threads or 1
    if args.jobs:
        import concurrent.futures as cf
        import multiprocessing as mp
        method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        ex = cf.ProcessPoolExecutor(args.jobs, mp_context=mp.get_context(method))
        return ex, lambda: ex.shutdown(cancel_futures=True), args.threads or 1
    return None, lambda: None, args.threads


def _headless_plots(args) -> None:
    """A command-line run draws files, never windows: select Agg before pyplot is imported.
    Plots asked for without matplotlib installed are refused before any work starts."""
    if getattr(args, "plots", False):
        try:
            import matplotlib
        except ImportError:
            raise UserError("plots need matplotlib (pip install matplotlib); or pass --no-plots") from None
        matplotlib.use("Agg")


def cmd_analyze(args) -> int:
    _headless_plots(args)
    from .report.tables import format_table, write_report
    from .run.runner import analyze_series
    from .run.store import report_lock

    config = AnalysisConfig(samples=args.samples, per_layer=args.per_layer, layout=args.layout, box=args.box,
                            direction=args.direction, threshold=args.threshold, min_edges=args.min_edges,
                            decimals=args.decimals, filter=args.filter, node_dimension=args.node_dimension,
                            nfd_threshold=args.nfd_threshold, n_bootstrap=args.bootstrap, ci=args.ci,
                            seed=args.seed, controls=args.controls, stats=args.stats, by_layer=args.by_layer)
    executor, close, n_threads = _make_executor(args)
    try:
        series = analyze_series(args.sources, revisions=args.revisions, config=config, n_threads=n_threads,
                                baseline=args.baseline, sort=not args.keep_order, out=args.out,
                                overwrite=args.overwrite, executor=executor, progress=not args.quiet,
                                cache=args.cache)
    finally:
        close()
    with report_lock(args.out):  # `series` is the run's final state: nothing newer to load
        write_report(series, args.out, plots=args.plots)
    if not args.quiet:
        _say(format_table(series))
        _say(f"\n{series.n_computed} computed, {series.n_reused} reused; results in {args.out}/ "
             f"(checkpoints.csv, samples.csv, spectra.npz{', plots/, report.html' if args.plots else ''})")
        line = _reading_line(args.out)
        if line:
            _say(line)
    if args.evals:  # correlation with benchmark scores (docs/correlation.md)
        _correlate_and_write(series, args.out, args.evals, plots=args.plots, quiet=args.quiet)
    with report_lock(args.out):  # after the correlation, so that report.html shows it
        _write_html(args, args.out)
    return 0


def _reading_line(out) -> str:
    """'read 31 MB of 2.9 GB' from run.json's ``reading``, or '' when not known."""
    import json
    from pathlib import Path

    try:
        r = json.loads((Path(out) / "run.json").read_text()).get("reading") or {}
    except (OSError, ValueError):
        return ""
    if not r.get("n_known"):
        return ""

    def h(n: float) -> str:
        for unit in ("B", "kB", "MB", "GB", "TB"):
            if n < 1000 or unit == "TB":
                return f"{n:.0f} {unit}" if unit in ("B", "kB") or n >= 10 else f"{n:.1f} {unit}"
            n /= 1000
        return ""

    return f"read {h(r['bytes_read'])} of {h(r['size'])}"


def cmd_report(args) -> int:
    _headless_plots(args)
    from .report.tables import format_table, write_report
    from .run.store import load_run, report_lock

    if not os.path.isfile(os.path.join(args.run, "run.json")):
        load_run(args.run)  # raises the error saying what is missing, before a lock file is made
    with report_lock(args.run):  # load under the lock: a concurrent writer's newer state is seen
        series = load_run(args.run, n_bootstrap=args.bootstrap, ci=args.ci, seed=args.seed,
                          baseline=args.baseline, filter=args.filter)
        write_report(series, args.run, plots=args.plots)
        _write_html(args, args.run)
    if not args.quiet:
        _say(format_table(series))
        missing = series.missing
        if missing:
            shown = ", ".join(f"{c}/{s}" for c, s in missing[:6]) + (" ..." if len(missing) > 6 else "")
            _say(f"\npartial run: {len(missing)} result(s) missing ({shown}); rerun the analyze command to finish")
        _say(f"\ntables, spectra.npz, summary.json{', plots/ and report.html' if args.plots else ''} "
             f"written to {args.run}/")
    return 0


def _format_info(d: dict, fp: Optional[str]) -> str:
    lines = [f"source        {d['source']}", f"architecture  {d['architecture']} (layout {d['layout']})",
             f"weights       {d['weight_dtype']}, {d['n_tensors']} tensors used, "
             f"{d['n_synthetic_blocks']} synthetic blocks"]
    full = d["full"]
    lines.append(f"full network  {full['nodes']:,} nodes, {full['edges']:,} edges")
    if d.get("sampled"):
        s = d["sampled"]
        lines.append(f"sampled       {s['nodes']:,} nodes, {s['edges']:,} edges (per_layer={s['per_layer']}, sample 0)")
    if fp:
        lines.append(f"fingerprint   {fp}")
    lines.append("")
    nl = d["node_layers"]
    w = max(len(x["name"]) for x in nl) if nl else 10
    lines.append(f"{'node layer'.ljust(w)}  {'size':>7}  {'offset':>9}  {'sampled':>7}")
    for x in nl:
        smp = "" if x["sampled"] is None else str(x["sampled"])
        lines.append(f"{x['name'].ljust(w)}  {x['size']:>7}  {x['offset']:>9}  {smp:>7}")
    lines.append("")
    t = d["tensors"]
    w = max(len(x["name"]) for x in t) if t else 10
    lines.append(f"{'tensor'.ljust(w)}  {'shape':>12}  {'dtype':>8}  edges")
    for x in t:
        shape = "x".join(map(str, x["shape"]))
        lines.append(f"{x['name'].ljust(w)}  {shape:>12}  {x['dtype']:>8}  {x['input_layer']} -> {x['output_layer']}")
    return "\n".join(lines)


def cmd_info(args) -> int:
    from .network.nin import describe, fingerprint

    d = describe(args.source, per_layer=args.per_layer, layout=args.layout, revision=args.revision)
    fp = fingerprint(args.source, layout=args.layout, revision=args.revision) if args.fingerprint else None
    if args.json:
        from .run.store import dumps
        _say(dumps(dict(d, fingerprint=fp) if fp else d, indent=1))
    else:
        _say(_format_info(d, fp))
    return 0

# ---------------------------------------------------------------------------------------------
# correlate: E and the other quantities of a run against benchmark scores (docs/spec.md section 8)

CORRELATE_EXAMPLES = """\
examples:
  # the bundled example: held-out next-byte accuracy and loss of each checkpoint
  neuromfa correlate pythia-tiny-out --evals examples/pythia-tiny/evals --metric acc,loss

  # a Pythia run against EleutherAI's zero-shot scores (shipped), the paper's tasks
  neuromfa correlate run-160m --evals pythia:160m-deduped \\
      --tasks lambada_openai,piqa,winogrande,wsc,arc_easy,arc_challenge,sciq,logiqa

  # lm-evaluation-harness output of your own checkpoints, partial rho given the step
  neuromfa correlate run --evals lm-eval-results/ --covariate step

Prints the table sorted by |rho| and writes DIR/correlations.csv and DIR/plots/correlation_*.png;
nothing else in the run directory changes. A partial run correlates the checkpoints it has.
The interval covers measurement noise of both sides, not the dependence between neighbouring
checkpoints.
"""


def _correlate_parser(sub) -> None:
    from .config import correlation_defaults

    d = correlation_defaults()
    c = sub.add_parser("correlate", formatter_class=_Formatter, epilog=CORRELATE_EXAMPLES,
                       help="correlate E, alpha0 and width of a run with benchmark scores",
                       description="Join the checkpoints of a run directory with benchmark scores on the "
                                   "training step and give, for every quantity and (task, metric), Spearman's "
                                   "rho with a bootstrap interval and p-value, Kendall's tau-b and Pearson's r.")
    c.add_argument("run", metavar="RUN_DIR", help="run directory (--out of neuromfa analyze)")
    c.add_argument("--evals", required=True, metavar="SOURCE",
                   help="lm-evaluation-harness JSON file(s) or directory, a .csv/.parquet table, or pythia:MODEL "
                        "(pythia:MODEL:5shot for five-shot)")
    c.add_argument("--tasks", metavar="A,B,...", help="tasks to use (default: every task with the metric)")
    c.add_argument("--metric", default=d["metric"], metavar="M[,M2]", help="metric(s); 'all' for every metric")
    c.add_argument("--quantities", metavar="Q1,Q2", help="quantities (default: all the run holds)")
    c.add_argument("--covariate", metavar="NAME", help="partial rho given this quantity, or 'step'")
    c.add_argument("--bootstrap", type=int, default=d["n_boot"], metavar="N", help="bootstrap replicates (0: none)")
    c.add_argument("--seed", type=int, default=d["seed"], help="bootstrap seed")
    c.add_argument("--rows", type=int, default=20, metavar="N", help="rows printed (all are written)")
    c.add_argument("--no-plots", dest="plots", action="store_false", help="do not render plots")
    c.add_argument("-q", "--quiet", action="store_true", help="do not print the table")
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _correlate_and_write(series, out, evals, *, plots=True, quiet=False, rows=20, **options):
    """Correlate ``series`` with ``evals`` (``options``: :class:`~.config.CorrelationConfig`'s, the
    defaults where not given), write correlations.csv and the plots into ``out``, print the table."""
    from pathlib import Path

    import json

    from .config import CorrelationConfig
    from .scores.correlation import correlate
    from .run.store import atomic_write_text

    if options.get("metric") == "all":
        options["metric"] = None
    corr = correlate(series, evals, config=CorrelationConfig(**options))
    atomic_write_text(Path(out) / "correlations.csv", corr.to_csv())
    # where the scores came from, for report.html's reproduce command (issue 13)
    atomic_write_text(Path(out) / "correlations.json", json.dumps({"evals": str(evals)}) + "\n")
    written = []
    if plots:
        from .plots.correlation import write_correlation_plots
        written = write_correlation_plots(corr, out)
    if not quiet:
        _say(corr.format(max_rows=rows))
        _say(f"\ncorrelations.csv{' and ' + ', '.join('plots/' + p.name for p in written) if written else ''} "
             f"written to {out}/")
    return corr


def cmd_correlate(args) -> int:
    _headless_plots(args)
    from .run.store import load_run

    if args.bootstrap < 0:
        raise UserError(f"--bootstrap must be >= 0, got {args.bootstrap}")
    series = load_run(args.run)  # reads only; the run's own files are not rewritten
    _correlate_and_write(series, args.run, args.evals, tasks=args.tasks, metric=args.metric,
                         quantities=args.quantities, covariate=args.covariate, n_boot=args.bootstrap,
                         seed=args.seed, plots=args.plots, quiet=args.quiet, rows=args.rows)
    return 0

# -- end correlate --


# ---------------------------------------------------------------------------------------------
# report.html, compare and sensitivity (issue 13; see html_report.py and compare.py)

COMPARE_EXAMPLES = """\
examples:
  neuromfa compare run-160m run-410m run-1b --out cmp           # compare.html + compare_*.csv
  neuromfa compare run-std run-dedup --names standard,deduped --out cmp
  neuromfa compare run-a run-b --size run-a=160m --size run-b=410m --step 143000 --out cmp

Runs with different configurations are compared; the differences are listed at the top.
Only runs that share no training step are refused.
"""

SENSITIVITY_EXAMPLES = """\
examples:
  neuromfa sensitivity examples/pythia-tiny/step* --vary threshold=100,150,200 --vary per-layer=16,32 \\
      --samples 4 --out sens
  neuromfa sensitivity ckpts/step* --vary box=edge,path --vary layout=reference,heads --out sens

Each cell of the grid is its own run directory (sens/cells/threshold=100,per_layer=16/ ...);
rerunning the command resumes every cell.  Writes sens/sensitivity.html and sensitivity.csv.
"""


def _compare_parsers(sub) -> None:
    c = sub.add_parser("compare", formatter_class=_Formatter, epilog=COMPARE_EXAMPLES,
                       help="compare two or more run directories in one HTML page and tables",
                       description="Compare run directories side by side: E curves with intervals on a shared "
                                   "step axis, the difference of E per common step with a bootstrap interval, "
                                   "spectra at matched steps and E against model size. Writes compare.html and "
                                   "compare_*.csv into --out.")
    c.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories (--out of neuromfa analyze)")
    c.add_argument("--out", required=True, metavar="DIR", help="directory for compare.html and the tables")
    c.add_argument("--names", metavar="A,B,...", help="names of the runs (default: the directory names)")
    c.add_argument("--size", action="append", default=[], metavar="NAME=N",
                   help="parameter count of a run (160m, 1.4b, 2.8e9); default: parsed from the model name")
    c.add_argument("--step", type=int, default=None, metavar="STEP",
                   help="step of the E-against-size figure (default: the last common step)")
    _aggregation_args(c, defaults=True)
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    s = sub.add_parser("sensitivity", formatter_class=_Formatter, epilog=SENSITIVITY_EXAMPLES,
                       help="rerun the analysis over a grid of method choices and compare the results",
                       description="Analyse the same checkpoints once per combination of the --vary choices "
                                   "(each cell its own resumable run directory) and write a comparison page: "
                                   "does the E curve, and its correlation with the scores, hold across them?")
    s.add_argument("sources", nargs="+", metavar="SOURCE", help="checkpoints, as for neuromfa analyze")
    s.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2",
                   help="a choice and its values: threshold, per-layer, box, layout, min-edges, decimals, "
                        "direction, samples, filter, nfd-threshold (repeatable)")
    s.add_argument("--revisions", metavar="R1,R2,...", help="comma-separated hub revisions of the one hub id")
    s.add_argument("--samples", type=_positive_int("--samples"), default=10, metavar="K",
                   help="sampled networks per checkpoint, unless varied")
    s.add_argument("--evals", metavar="SOURCE", help="benchmark scores to correlate every cell with")
    s.add_argument("--threads", type=_positive_int("--threads"), default=None, metavar="N", help="OpenMP threads")
    s.add_argument("--out", required=True, metavar="DIR", help="directory of the grid")
    s.add_argument("--bootstrap", type=_positive_int("--bootstrap"), default=1000, metavar="N",
                   help="bootstrap replicates")
    s.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress")
    s.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _write_html(args, run_dir) -> None:
    """report.html next to the tables (needs matplotlib: skipped with --no-plots)."""
    if not getattr(args, "plots", False):
        return
    from .report.html import write_html_report
    write_html_report(run_dir, reuse_plots=True)  # write_report has just drawn plots/*.png


def _parse_size(item: str):
    name, sep, v = item.partition("=")
    if not sep:
        raise UserError(f"--size takes NAME=N (e.g. run-a=160m), got {item!r}")
    from .report.compare import model_size
    try:
        return name, float(v)
    except ValueError:
        n = model_size(v)
        if n is None:
            raise UserError(f"--size {name}: cannot read a parameter count from {v!r}") from None
        return name, n


def cmd_compare(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    from .report.compare import compare_runs

    names = [n.strip() for n in args.names.split(",")] if args.names else None
    sizes = dict(_parse_size(x) for x in args.size)
    p = compare_runs(args.runs, args.out, names=names, sizes=sizes, step=args.step, n_boot=args.bootstrap,
                     ci=args.ci, seed=args.seed)
    _say(f"comparison of {len(args.runs)} runs written to {p} (and compare_*.csv)")
    return 0


def cmd_sensitivity(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    from .report.compare import parse_vary, run_sensitivity

    vary = parse_vary(args.vary)
    options = dict(n_threads=args.threads)
    if "samples" not in vary:
        options["samples"] = args.samples
    if args.revisions:
        options["revisions"] = args.revisions
    p = run_sensitivity(args.sources, vary, args.out, evals=args.evals, progress=not args.quiet,
                        n_boot=args.bootstrap, seed=args.seed, **options)
    _say(f"sensitivity grid written to {p} (cells in {os.path.join(args.out, 'cells')}/)")
    return 0


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _is_own_warning(category, filename) -> bool:
    """Whether a warning is the library's: its category is defined in the package, or it is
    attributed to a line of the package."""
    if getattr(category, "__module__", "").split(".")[0] == __package__:
        return True
    try:
        return os.path.commonpath([os.path.abspath(str(filename)), _PACKAGE_DIR]) == _PACKAGE_DIR
    except ValueError:  # different drives
        return False


def _showwarning(message, category, filename, lineno, file=None, line=None):
    """One ``neuromfa: warning:`` line per warning; other packages' deprecation warnings (a
    dependency of a dependency speaking to its own developers) are not shown."""
    if issubclass(category, _DEPRECATIONS) and not _is_own_warning(category, filename):
        return
    text = " ".join(str(message).split())
    print(f"{PROG}: warning: {text}", file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``neuromfa`` command (and of ``python -m neuromfa_native``).

    Parameters
    ----------
    argv : the arguments after the command name (default: ``sys.argv[1:]``), e.g.
        ``["analyze", "ckpt/step*", "--out", "run"]``; see docs/cli.md.

    Returns
    -------
    int
        the exit status: 0 on success, 2 when no command is given, 1 for a bad input (reported
        on stderr as ``neuromfa: error: ...``), 130 when interrupted.

    Raises
    ------
    SystemExit
        from argparse, for ``--help`` or unknown options. Errors of the analysis itself are
        reported and returned as a status (with ``--debug``: raised with their traceback).

    Examples
    --------
    >>> from neuromfa_native.cli import main
    >>> main(["info", "examples/pythia-tiny/step0"])  # doctest: +ELLIPSIS
    source        examples/pythia-tiny/step0
    architecture  gpt_neox (layout reference)
    ...
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    debug = getattr(args, "debug", False)
    old = warnings.showwarning
    if not debug:
        warnings.showwarning = _showwarning
    try:
        return {"analyze": cmd_analyze, "report": cmd_report, "info": cmd_info, "compare": cmd_compare,
                "sensitivity": cmd_sensitivity, "correlate": cmd_correlate}[args.command](args)
    except KeyboardInterrupt:
        _say(f"{PROG}: interrupted" + ("; finished results are kept in --out, rerun the same command to resume"
                                       if args.command == "analyze" else ""), err=True)
        return 130
    except (UserError, ValueError, TypeError, OSError, ImportError) as exc:
        if debug:
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{msg}: {exc.filename}"
        _say(f"{PROG}: error: {msg}", err=True)
        return 1
    finally:
        warnings.showwarning = old


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
