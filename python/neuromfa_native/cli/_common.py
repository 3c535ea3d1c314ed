"""What every ``neuromfa`` command shares: the parser class that reports one line, the help
formatter, argument converters, the aggregation options, printing and headless plots."""
from __future__ import annotations

import argparse
import sys

from .. import _validation as check
from ..config import defaults

PROG = "neuromfa"

#: The option defaults, from :class:`~neuromfa_native.AnalysisConfig` (never restated here).
DEFAULTS = defaults()


class UserError(Exception):
    """An error to report as one line, without a traceback."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + line
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; ``(default: X)`` only where a default says something."""

    def _get_help_string(self, action):
        h = action.help or ""
        d = action.default
        if "default" in h or d is None or isinstance(d, bool) or d is argparse.SUPPRESS or not action.option_strings:
            return h
        return f"{h} (default: {d})"


#: The largest value of each integer flag (the library's own bounds, and a process count the
#: machine can hold); a flag not named here is bounded by ``MAX_COUNT``.
INT_BOUNDS = {"--samples": check.MAX_SAMPLES, "--bootstrap": check.MAX_BOOTSTRAP, "--threads": check.MAX_THREADS,
              "--jobs": 1024, "--min-edges": check.MAX_COUNT, "--per-layer": check.MAX_COUNT,
              "--rows": check.MAX_COUNT}


def positive_int(name, minimum: int = 1):
    """Converter of an integer flag: in ``[minimum, INT_BOUNDS[name]]``, else one line naming it."""
    top = INT_BOUNDS.get(name, check.MAX_COUNT)

    def conv(s):
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {v}")
        if v > top:
            raise argparse.ArgumentTypeError(f"{name} must be at most {top}, got {s[:40]}")
        return v
    return conv


def nonempty(name):
    """Converter of a name or path flag: an empty string is refused (it would mean the current
    directory)."""
    def conv(s):
        if not s.strip():
            raise argparse.ArgumentTypeError(f"{name} must not be empty")
        return s
    return conv


def per_layer_arg(s):
    if s.lower() in ("full", "none", "all"):
        return None
    return positive_int("--per-layer")(s)


def float_arg(name):
    def conv(s):
        try:
            return float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None
    return conv


def aggregation_args(p, *, defaults: bool) -> None:
    p.add_argument("--bootstrap", type=positive_int("--bootstrap"),
                   default=DEFAULTS["n_bootstrap"] if defaults else None, metavar="N",
                   help="bootstrap replicates of the E interval" + ("" if defaults else " (default: the run's)"))
    p.add_argument("--ci", type=float_arg("--ci"), default=DEFAULTS["ci"] if defaults else None,
                   help="confidence level of the E interval" + ("" if defaults else " (default: the run's)"))
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"] if defaults else None,
                   help="bootstrap seed" + ("" if defaults else " (default: the run's)"))



def say(msg: str = "", *, err: bool = False) -> None:
    print(msg, file=sys.stderr if err else sys.stdout, flush=True)


def headless_plots(args) -> None:
    """A command-line run draws files, never windows: select Agg before pyplot is imported.
    Plots asked for without matplotlib installed are refused before any work starts."""
    if getattr(args, "plots", False):
        try:
            import matplotlib
        except ImportError:
            raise UserError("plots need matplotlib (pip install matplotlib); or pass --no-plots") from None
        matplotlib.use("Agg")


def write_html(args, run_dir) -> None:
    """report.html next to the tables (needs matplotlib: skipped with --no-plots)."""
    if not getattr(args, "plots", False):
        return
    from ..report.html import write_html_report
    write_html_report(run_dir, reuse_plots=True)  # write_report has just drawn plots/*.png
