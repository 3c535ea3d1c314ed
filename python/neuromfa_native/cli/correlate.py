"""``neuromfa correlate``: E and the other quantities of a run against benchmark scores
(docs/spec.md section 8)."""
from __future__ import annotations

import argparse

from ..config import CorrelationConfig, flags
from ._common import HelpFormatter, add_options, headless_plots, nonempty, options_from, positive_int, say


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


def add_correlate(sub) -> None:
    c = sub.add_parser("correlate", formatter_class=HelpFormatter, epilog=CORRELATE_EXAMPLES,
                       help="correlate E, alpha0 and width of a run with benchmark scores",
                       description="Join the checkpoints of a run directory with benchmark scores on the "
                                   "training step and give, for every quantity and (task, metric), Spearman's "
                                   "rho with a bootstrap interval and p-value, Kendall's tau-b and Pearson's r.")
    c.add_argument("run", metavar="RUN_DIR", help="run directory (--out of neuromfa analyze)")
    c.add_argument("--evals", required=True, metavar="SOURCE", type=nonempty("--evals"),
                   help="lm-evaluation-harness JSON file(s) or directory, a .csv/.parquet table, or pythia:MODEL "
                        "(pythia:MODEL:5shot for five-shot)")
    add_options(c, CorrelationConfig, tuple(flags(CorrelationConfig)))
    c.add_argument("--rows", type=rows_arg, default=20, metavar="N",
                   help="rows printed, E's first ('all' for every row; all are written to correlations.csv)")
    c.add_argument("--no-plots", dest="plots", action="store_false", help="do not render plots")
    c.add_argument("-q", "--quiet", action="store_true", help="do not print the table")
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def rows_arg(s):
    """``--rows``: a positive number of rows, or ``all``."""
    if s.strip().lower() == "all":
        return None
    return positive_int("--rows")(s)


def correlate_and_write(series, out, evals, *, plots=True, quiet=False, rows=20, **options):
    """Correlate ``series`` with ``evals`` (``options``: :class:`~.config.CorrelationConfig`'s, the
    defaults where not given), write correlations.csv, correlations.json and the plots into
    ``out``, print the table (``rows`` of it, None: all) unless ``quiet``; returns
    ``(correlation, the plot files)``."""
    from ..report.tables import write_correlation
    from ..scores.correlation import correlate

    if options.get("metric") == "all":
        options["metric"] = None
    corr = correlate(series, evals, config=CorrelationConfig(**options))
    # where the scores came from (report.html's reproduce command), whose they are, what the table
    # holds, and the state of the run it belongs to (summary.json and report.html check it)
    written = write_correlation(corr, out, evals, plots=plots)
    if not quiet:
        print_correlation(corr, out, written, rows)
    return corr, written


def print_correlation(corr, out, written, rows) -> None:
    """The table (E's rows first) and the files written."""
    say(corr.format(max_rows=rows, more="--rows all prints them; correlations.csv has them all"))
    say(f"\ncorrelations.csv, correlations.json{', ' + ', '.join('plots/' + p.name for p in written) if written else ''}"
        f" written to {out}/")


def cmd_correlate(args) -> int:
    headless_plots(args)
    from ..run.store import load_run

    series = load_run(args.run)  # reads only; the run's own files are not rewritten
    correlate_and_write(series, args.run, args.evals, plots=args.plots, quiet=args.quiet, rows=args.rows,
                        **options_from(args, CorrelationConfig))
    return 0
