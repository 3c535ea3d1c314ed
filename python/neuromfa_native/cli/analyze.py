"""``neuromfa analyze``, ``report`` and ``info``: a checkpoint series analysed, a run directory
reported, a checkpoint described."""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Optional

from ..config import AnalysisConfig, flags
from ._common import (AGGREGATION_OPTIONS, UserError, HelpFormatter, add_options, headless_plots, nonempty, options_from,
                      positive_int, say, write_html)
from .correlate import correlate_and_write, print_correlation


ANALYZE_EXAMPLES = """\
examples:
  # the bundled example: 13 checkpoints of a tiny GPT-NeoX, 10 samples each
  neuromfa analyze examples/pythia-tiny/step* --out pythia-tiny-out

  # hub revisions of one model (downloads, or the cache with HF_HUB_OFFLINE=1)
  neuromfa analyze EleutherAI/pythia-160m --revisions step0,step1000,step143000 --threads 8

  # every revision of a suite, read by range without writing weights (HF_TOKEN raises the
  # hub's rate limits; waits are shown on the progress line)
  neuromfa analyze allenai/OLMo-2-1124-7B --revisions 'stage1-*' --cache none

  # a suite published as one repository per checkpoint; or a file of ids: @ids.txt
  neuromfa analyze 'google/multiberts-seed_0-step_{N}k' --values 0:200:20 --cache none

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


#: The options of ``neuromfa analyze``: every option of :class:`AnalysisConfig` that has a flag.
ANALYZE_OPTIONS = tuple(flags(AnalysisConfig))


def add_analyze(sub) -> None:
    """The ``analyze`` subcommand's options."""
    a = sub.add_parser("analyze", aliases=["analyse"], formatter_class=HelpFormatter, epilog=ANALYZE_EXAMPLES,
                       help="analyse a checkpoint series: spectra, alpha0, width, emergence E",
                       description="Analyse a series of checkpoints of one model: K sampled neuron "
                                   "interaction networks per checkpoint (the same neurons in each), their "
                                   "multifractal spectra, and the degree of emergence E with a bootstrap "
                                   "confidence interval. Writes tables, spectra and plots to --out.")
    a.add_argument("sources", nargs="+", metavar="SOURCE", type=nonempty("SOURCE"),
                   help="checkpoint directories/files, URLs or hub ids (org/name@rev); one hub id with --revisions; "
                        "@FILE for a file of sources")
    a.add_argument("--revisions", metavar="R1,R2,...",
                   help="comma-separated hub revisions of the one hub id: names, 'all' (every branch but main) "
                        "or globs ('step*', quoted); steps and tokens come from the names (docs/remote.md)")
    a.add_argument("--values", metavar="N1,N2,...",
                   help="values of {N} in a repository pattern (one repository per checkpoint, e.g. "
                        "'google/multiberts-seed_0-step_{N}k'): a list, or start:stop:step ranges")
    add_options(a, AnalysisConfig, ANALYZE_OPTIONS)
    a.add_argument("--baseline", metavar="NAME",
                   help="emergence baseline: a checkpoint label (step1000), source or step number "
                        "(default: the first checkpoint)")
    a.add_argument("--keep-order", action="store_true", help="keep the given order instead of sorting by step")
    a.add_argument("--threads", type=positive_int("--threads"), default=None, metavar="N",
                   help="OpenMP threads per task (default: all cores in process; 1 with --jobs/--scheduler)")
    a.add_argument("--jobs", type=positive_int("--jobs"), default=None, metavar="N",
                   help="run N tasks at once in local worker processes (spawned)")
    a.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (needs dask.distributed)")
    a.add_argument("--cache", choices=("keep", "evict", "none"), default="keep",
                   help="hub checkpoints: keep the downloads (default), evict each after its analysis, "
                        "or none: range reads, nothing written (docs/remote.md)")
    a.add_argument("--out", default="neuromfa-out", metavar="DIR", type=nonempty("--out"), help="run directory")
    a.add_argument("--overwrite", action="store_true",
                   help="discard results of another configuration in --out")
    a.add_argument("--verdict-step", metavar="STEP",
                   help="checkpoint of the verdict (is E more than weight scale? docs/answer.md): a training step "
                        "or label (default: the last checkpoint)")
    a.add_argument("--no-plots", dest="plots", action="store_false", help="do not render plots")
    a.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no table")
    # -- correlation with benchmark scores (docs/correlation.md) --
    a.add_argument("--evals", metavar="SOURCE", type=nonempty("--evals"),
                   help="at the end, correlate with these scores as 'neuromfa correlate' does (lm-eval JSON "
                        "directory, .csv/.parquet table or pythia:MODEL)")
    # -- end correlation --
    a.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_report(sub) -> None:
    """The ``report`` subcommand's options."""
    r = sub.add_parser("report", formatter_class=HelpFormatter, epilog=REPORT_EXAMPLES,
                       help="tables and plots of a finished or partial run directory",
                       description="Read a run directory written by 'neuromfa analyze' (finished or not), "
                                   "print the per-checkpoint table and write tables, spectra.npz, "
                                   "summary.json and plots into it. Needs no checkpoint files.")
    r.add_argument("run", metavar="DIR", help="run directory (--out of neuromfa analyze)")
    r.add_argument("--baseline", metavar="NAME", help="emergence baseline (default: the run's)")
    add_options(r, AnalysisConfig, ("filter",) + AGGREGATION_OPTIONS, defaults=False)
    r.add_argument("--verdict-step", metavar="STEP",
                   help="checkpoint of the verdict (docs/answer.md): a training step or label (default: the last)")
    r.add_argument("--no-plots", dest="plots", action="store_false", help="do not render plots")
    r.add_argument("-q", "--quiet", action="store_true", help="do not print the table")
    r.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_info(sub) -> None:
    """The ``info`` subcommand's options."""
    i = sub.add_parser("info", formatter_class=HelpFormatter, epilog=INFO_EXAMPLES,
                       help="architecture, tensors, node layers and network sizes of a checkpoint",
                       description="Describe a checkpoint without reading its weights: architecture, the "
                                   "tensors the network uses, node layers and sampled/full network sizes.")
    i.add_argument("source", metavar="SOURCE", help="checkpoint directory/file or hub id")
    i.add_argument("--revision", help="hub revision")
    add_options(i, AnalysisConfig, ("per_layer", "layout"))
    i.add_argument("--fingerprint", action="store_true", help="also hash the weights (reads them all)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


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


def cmd_analyze(args) -> int:
    headless_plots(args)
    from ..report.tables import format_table, write_report
    from ..run.runner import analyze_series
    from ..run.store import report_lock

    config = AnalysisConfig(**options_from(args, AnalysisConfig))
    executor, close, n_threads = _make_executor(args)
    try:
        series = analyze_series(args.sources, revisions=args.revisions, config=config, n_threads=n_threads,
                                baseline=args.baseline, sort=not args.keep_order, out=args.out,
                                overwrite=args.overwrite, executor=executor, progress=not args.quiet,
                                cache=args.cache, values=args.values)
    finally:
        close()
    corr = None
    if args.evals:  # correlation with benchmark scores (docs/correlation.md): first, so summary.json counts it
        corr = correlate_and_write(series, args.out, args.evals, plots=args.plots, quiet=True)
    with report_lock(args.out):  # `series` is the run's final state: nothing newer to load
        written = write_report(series, args.out, plots=args.plots, verdict_step=verdict_step(args))
    if not args.quiet:
        say(format_table(series))
        say(verdict_line(args.out))
        say(f"\n{series.n_computed} computed, {series.n_reused} reused; results in {args.out}/: "
            + files_written(written, args.out, html=args.plots) + no_parquet_note(written))
        line = _reading_line(args.out)
        if line:
            say(line)
        if corr is not None:
            say()
            print_correlation(corr[0], args.out, corr[1], 20)
    with report_lock(args.out):  # after the correlation, so that report.html shows it
        write_html(args, args.out)
    return 0


def no_parquet_note(written) -> str:
    """``"; no Parquet tables ..."`` when a report wrote CSV tables only (pyarrow missing), else ''."""
    if any(Path(p).suffix == ".parquet" for p in written) or not any(Path(p).suffix == ".csv" for p in written):
        return ""
    return "; CSV only: Parquet tables need pyarrow (pip install 'neuromfa-native[tables]')"


def verdict_step(args):
    """``--verdict-step`` as a step number when it is one, else the label as given (None: the last)."""
    v = getattr(args, "verdict_step", None)
    return int(v) if v is not None and v.strip().isdigit() else v


def verdict_line(out) -> str:
    """``Verdict: <sentence>`` from the summary.json just written (docs/spec.md section 13)."""
    from pathlib import Path

    from .._fs import no_link, read_json

    try:
        v = read_json(no_link(Path(out) / "summary.json"))["verdict"]
        return f"\nVerdict: {v['sentence']} [{v['label']}]" + "".join(f"\n  note: {n}" for n in v.get("notes") or ())
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def files_written(paths, out, *, html: bool) -> str:
    """The files in ``out`` just written, by name (Parquet twins and plots summarised)."""
    from pathlib import Path

    root = Path(out).resolve()
    names, plots, parquet = [], 0, 0
    for p in paths:
        p = Path(p).resolve()
        if p.parent != root:
            plots += 1
        elif p.suffix == ".parquet":
            parquet += 1
        else:
            names.append(p.name)
    text = ", ".join(dict.fromkeys(names))
    if parquet:
        text += " (and .parquet copies of the tables)"
    if plots:
        text += f", plots/ ({plots} figures)"
    return text + (", report.html" if html else "")


def _reading_line(out) -> str:
    """'read 31 MB of 2.9 GB' from run.json's ``reading``, or '' when not known."""
    from .._fs import no_link, read_json

    try:
        r = read_json(no_link(Path(out) / "run.json")).get("reading") or {}
    except (ValueError, AttributeError):
        return ""
    if not isinstance(r, dict) or not r.get("n_known"):
        return ""
    # run.json's schema checks only that reading is a dict: without two byte counts, no line (not a failed command)
    counts = [x for x in (r.get("bytes_read"), r.get("size"))
              if isinstance(x, (int, float)) and not isinstance(x, bool) and 0 <= x < 2**63]
    if len(counts) != 2:
        return ""
    got, size = counts

    def h(n: float) -> str:
        for unit in ("B", "kB", "MB", "GB", "TB"):
            if n < 1000 or unit == "TB":
                return f"{n:.0f} {unit}" if unit in ("B", "kB") or n >= 10 else f"{n:.1f} {unit}"
            n /= 1000
        return ""

    return f"read {h(got)} of {h(size)}"


def cmd_report(args) -> int:
    headless_plots(args)
    from ..report.tables import format_table, write_report
    from ..run.store import load_run, report_lock

    if not os.path.isfile(os.path.join(args.run, "run.json")):
        load_run(args.run)  # raises the error saying what is missing, before a lock file is made
    with report_lock(args.run):  # load under the lock: a concurrent writer's newer state is seen
        series = load_run(args.run, baseline=args.baseline, **options_from(args, AnalysisConfig))
        written = write_report(series, args.run, plots=args.plots, verdict_step=verdict_step(args))
        write_html(args, args.run)
    if not args.quiet:
        say(format_table(series))
        say(verdict_line(args.run))
        missing = series.missing
        if missing:
            shown = ", ".join(f"{c}/{s}" for c, s in missing[:6]) + (" ..." if len(missing) > 6 else "")
            say(f"\npartial run: {len(missing)} result(s) missing ({shown}); rerun the analyze command to finish")
        say(f"\nwritten to {args.run}/: " + files_written(written, args.run, html=args.plots) + no_parquet_note(written))
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
    if d.get("experts"):
        lines.append(_format_experts(d["experts"], full["nodes"], (d.get("sampled") or {}).get("nodes")))
    lines.append("")
    nl = _collapse_experts(d["node_layers"])
    w = max(len(x["name"]) for x in nl) if nl else 10
    lines.append(f"{'node layer'.ljust(w)}  {'size':>7}  {'offset':>9}  {'sampled':>7}")
    for x in nl:
        smp = "" if x["sampled"] is None else str(x["sampled"])
        lines.append(f"{x['name'].ljust(w)}  {x['size']:>7}  {x['offset']:>9}  {smp:>7}")
    lines.append("")
    t = _collapse_expert_tensors(d["tensors"])
    w = max(len(x["name"]) for x in t) if t else 10
    lines.append(f"{'tensor'.ljust(w)}  {'shape':>12}  {'dtype':>8}  edges")
    for x in t:
        shape = "x".join(map(str, x["shape"]))
        lines.append(f"{x['name'].ljust(w)}  {shape:>12}  {x['dtype']:>8}  {x['input_layer']} -> {x['output_layer']}")
    return "\n".join(lines)


def _format_experts(e: dict, full_nodes: int, sampled_nodes: Optional[int]) -> str:
    """The ``experts`` line of ``neuromfa info``: counts and shares of the network's nodes."""
    line = (f"experts       {e['experts_per_block']} per block in {e['blocks']} blocks, {e['hidden_per_expert']:,} "
            f"hidden neurons each; {e['nodes_full']:,} expert nodes ({e['nodes_full'] / full_nodes:.0%} of the full "
            f"network)")
    if e.get("nodes_sampled") is not None and sampled_nodes:
        line += (f", {e['nodes_sampled']:,} sampled ({e['nodes_sampled'] / sampled_nodes:.0%}; "
                 f"{e['sampling'].replace('_', ' ')} sampling)")
    return line


_EXPERT_LAYER = re.compile(r"(?<=\.expert)\d+(?=\.)")
_EXPERT_TENSOR = re.compile(r"(?<=\.experts\.)\d+(?=\.)")


def _collapse_experts(rows: list) -> list:
    """Node-layer rows with each block's experts of one kind as one row (``expert[0-63]``)."""
    out: dict = {}
    for x in rows:
        name = _EXPERT_LAYER.sub("[*]", x["name"])
        if name == x["name"]:
            out[name] = x
        elif name in out:
            r = out[name]
            r["n"] += 1
            r["sampled"] = None if x["sampled"] is None else (r["sampled"] or 0) + x["sampled"]
        else:
            out[name] = dict(x, name=name, n=1)
    for r in out.values():
        if "n" in r:
            r["name"], r["size"] = r["name"].replace("[*]", f"[0-{r['n'] - 1}]"), f"{r['n']}x{r['size']}"
    return list(out.values())


def _collapse_expert_tensors(rows: list) -> list:
    """Tensor rows with each block's experts of one role as one row (shape ``E x out x in``)."""
    out: dict = {}
    for x in rows:
        name = _EXPERT_TENSOR.sub("[*]", x["name"])
        if name == x["name"]:
            out[name] = x
        elif name in out:
            out[name]["n"] += 1
        else:
            out[name] = dict(x, name=name, n=1, input_layer=_EXPERT_LAYER.sub("[*]", x["input_layer"]),
                             output_layer=_EXPERT_LAYER.sub("[*]", x["output_layer"]))
    for r in out.values():
        if "n" in r:
            span = f"[0-{r['n'] - 1}]"
            r.update(name=r["name"].replace("[*]", span), shape=(r["n"], *r["shape"]),
                     input_layer=r["input_layer"].replace("[*]", span), output_layer=r["output_layer"].replace("[*]", span))
    return list(out.values())


def cmd_info(args) -> int:
    from ..network.architectures import UnsupportedArchitecture
    from ..network.fingerprint import fingerprint
    from ..network.nin import describe

    try:
        d = describe(args.source, per_layer=args.per_layer, layout=args.layout, revision=args.revision)
    except UnsupportedArchitecture as exc:  # the block tensors and a layer map to paste, then the error
        say(exc.report())
        raise
    fp = fingerprint(args.source, layout=args.layout, revision=args.revision) if args.fingerprint else None
    if args.json:
        from .._fs import dumps
        say(dumps(dict(d, fingerprint=fp) if fp else d, indent=1))
    else:
        say(_format_info(d, fp))
    return 0
