"""What every ``neuromfa`` command shares: the parser class that reports one line, the help
formatter, the options' flags (built from the configuration's fields: :func:`add_options`),
printing and headless plots."""
from __future__ import annotations

import argparse
import dataclasses
import sys

from .. import _validation as check
from .._text import terminal
from ..config import AnalysisConfig, Flag, flags

PROG = "neuromfa"


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
        if ("default" in h or d is None or isinstance(d, bool) or d is argparse.SUPPRESS or d in ("", (), [])
                or not action.option_strings):
            return h
        return f"{h} (default: {d})"


#: The largest value of each integer flag that is not an option of a configuration (a process
#: count the machine can hold); a flag not named here is bounded by ``MAX_COUNT``.  The options'
#: own flags (``--samples``, ``--bootstrap``, ...) are read, and bounded, by their :class:`Flag`.
INT_BOUNDS = {"--threads": check.MAX_THREADS, "--jobs": 1024, "--rows": check.MAX_COUNT}


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


def _arg_type(flag: Flag):
    """``flag.parse`` as an argparse type (its ``ValueError`` becomes argparse's one-line error;
    argparse itself checks the choices)."""
    def conv(text):
        try:
            return flag.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    conv.__name__ = flag.name  # argparse names the type in some messages
    return conv


def add_options(p, cls: type, names, *, defaults: bool = True) -> None:
    """The flags of the options ``names`` of the configuration class ``cls`` (``AnalysisConfig``,
    ``CorrelationConfig``), from their fields' :class:`~neuromfa_native.config.Flag`: the
    destination is the option's name and the default the configuration's (``defaults=False``:
    ``None``, the value then comes from elsewhere, e.g. the run directory)."""
    fl = flags(cls)
    declared = {f.name: f.default for f in dataclasses.fields(cls)}
    base = cls()
    for name in names:
        flag = fl[name]
        if isinstance(declared[name], bool):
            p.add_argument(flag.name, dest=name, action="store_false" if declared[name] else "store_true",
                           help=flag.help)
            continue
        shown = flag.show(getattr(base, name))
        note = (f" (default: {shown})" if shown else "") if defaults else " (default: the run's)"
        p.add_argument(flag.name, dest=name, type=_arg_type(flag), choices=flag.choices,
                       default=declared[name] if defaults else None, metavar=flag.metavar,
                       help=flag.help + ("" if "default:" in flag.help else note))


def options_from(args, cls: type) -> dict:
    """``{option: value}`` of the options of ``cls`` that ``args`` (a parsed namespace) holds."""
    return {n: getattr(args, n) for n in flags(cls) if hasattr(args, n)}


def aggregation_args(p, *, defaults: bool) -> None:
    """``--bootstrap``, ``--ci`` and ``--seed`` (of :class:`~neuromfa_native.AnalysisConfig`)."""
    add_options(p, AnalysisConfig, AGGREGATION_OPTIONS, defaults=defaults)


#: The aggregation options every command that computes an interval of E takes.
AGGREGATION_OPTIONS = ("n_bootstrap", "ci", "seed")


def say(msg: str = "", *, err: bool = False) -> None:
    print(terminal(msg), file=sys.stderr if err else sys.stdout, flush=True)


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
