"""``neuromfa compare`` (runs side by side) and ``sensitivity`` (a grid of method choices)."""
from __future__ import annotations

import argparse
import os

from ..config import AnalysisConfig, flags
from ._common import UserError, HelpFormatter, aggregation_args, add_options, nonempty, positive_int, say


COMPARE_EXAMPLES = """\
examples:
  neuromfa compare run-160m run-410m run-1b --out cmp           # compare.html + compare_*.csv
  neuromfa compare run-std run-dedup --names standard,deduped --out cmp
  neuromfa compare run-a run-b --size run-a=160m --size run-b=410m --step 143000 --out cmp

Runs with different configurations are compared; the differences are listed at the top, and
E values of runs that differ in a setting of the method are marked as not comparable. Each
run's verdict (is E more than weight scale?) is shown side by side. Refused: the same run
twice, runs without a common step axis (checkpoints without a training step), runs that share
no training step.
"""

SENSITIVITY_EXAMPLES = """\
examples:
  neuromfa sensitivity examples/pythia-tiny/step* --vary threshold=100,150,200 --vary per-layer=16,32 \\
      --samples 4 --out sens
  neuromfa sensitivity ckpts/step* --vary box=edge,path --vary layout=reference,heads --out sens
  # does the answer (is E more than weight scale?) survive the choice of S?
  neuromfa sensitivity examples/pythia-tiny/step* --vary per-layer=16,32 --controls gaussian,scaled --stats \
      --evals examples/pythia-tiny/evals --out sens

Each cell of the grid is its own run directory (sens/cells/threshold=100,per_layer=16/ ...);
rerunning the command resumes every cell.  Writes sens/sensitivity.html and sensitivity.csv.
"""


def add_compare(sub) -> None:
    c = sub.add_parser("compare", formatter_class=HelpFormatter, epilog=COMPARE_EXAMPLES,
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
    aggregation_args(c, defaults=True)
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    s = sub.add_parser("sensitivity", formatter_class=HelpFormatter, epilog=SENSITIVITY_EXAMPLES,
                       help="rerun the analysis over a grid of method choices and compare the results",
                       description="Analyse the same checkpoints once per combination of the --vary choices "
                                   "(each cell its own resumable run directory) and write a comparison page: "
                                   "does the E curve, and its correlation with the scores, hold across them?")
    s.add_argument("sources", nargs="+", metavar="SOURCE", help="checkpoints, as for neuromfa analyze")
    s.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2",
                   help="a choice and its values: " + ", ".join(f.name[2:] for f in flags().values() if f.vary)
                        + " (repeatable)")
    s.add_argument("--revisions", metavar="R1,R2,...", help="comma-separated hub revisions of the one hub id")
    add_options(s, AnalysisConfig, ("samples",))
    s.add_argument("--evals", metavar="SOURCE", type=nonempty("--evals"), help="benchmark scores to correlate every cell with")
    add_options(s, AnalysisConfig, ("controls", "stats"))  # of every cell (gaussian,scaled: each cell's verdict)
    s.add_argument("--threads", type=positive_int("--threads"), default=None, metavar="N", help="OpenMP threads")
    s.add_argument("--out", required=True, metavar="DIR", help="directory of the grid")
    add_options(s, AnalysisConfig, ("n_bootstrap", "seed"))
    s.add_argument("-q", "--quiet", action="store_true", help="no progress")
    s.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def _parse_size(item: str):
    name, sep, v = item.partition("=")
    if not sep:
        raise UserError(f"--size takes NAME=N (e.g. run-a=160m), got {item!r}")
    from ..report.compare import model_size
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
    from ..report.compare import compare_runs

    names = [n.strip() for n in args.names.split(",")] if args.names else None
    sizes = dict(_parse_size(x) for x in args.size)
    p = compare_runs(args.runs, args.out, names=names, sizes=sizes, step=args.step, n_boot=args.n_bootstrap,
                     ci=args.ci, seed=args.seed)
    say(f"comparison of {len(args.runs)} runs written to {p} (and compare_*.csv)")
    return 0


def cmd_sensitivity(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    from ..report.compare import parse_vary, run_sensitivity

    vary = parse_vary(args.vary)
    options = dict(n_threads=args.threads)
    if args.controls:
        options["controls"] = args.controls
    if args.stats:
        options["stats"] = True
    if "samples" not in vary:
        options["samples"] = args.samples
    if args.revisions:
        options["revisions"] = args.revisions
    p = run_sensitivity(args.sources, vary, args.out, evals=args.evals, progress=not args.quiet,
                        n_boot=args.n_bootstrap, seed=args.seed, **options)
    _say_grid(args.out)
    say(f"sensitivity grid written to {p} (cells in {os.path.join(args.out, 'cells')}/)")
    return 0


def _say_grid(out) -> None:
    """Each cell's verdict and E's strongest correlation, from sensitivity.csv."""
    import csv
    import math

    try:
        with open(os.path.join(out, "sensitivity.csv"), newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return
    for r in rows:
        rho = [(k, r[k]) for k in r if k.startswith("rho_E_") and r[k] not in ("", None)]
        share = ""
        try:
            g, rem = float(r.get("gaussian_share") or "nan"), float(r.get("remainder_share") or "nan")
            if math.isfinite(g) and math.isfinite(rem):
                share = f" (gaussian share {100 * g:.0f}%, remainder {100 * rem:.0f}%)"
        except ValueError:
            pass
        extra = f"; {rho[0][0]} = {float(rho[0][1]):+.2f}" if rho else ""
        say(f"{r['cell']}: verdict {r.get('verdict', '')}{share}{extra}")
