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

from .._version import __version__
from . import analyze, compare, correlate
from ._common import PROG, UserError, HelpFormatter, Parser, say

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, formatter_class=HelpFormatter,
                description="Neuron-based multifractal analysis (NeuroMFA) of neural-network weights over training.",
                epilog="Run 'neuromfa COMMAND --help' for the options and examples of a command.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    analyze.add_analyze(sub)
    analyze.add_report(sub)
    analyze.add_info(sub)
    compare.add_compare(sub)
    correlate.add_correlate(sub)
    return p


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
    say(f"{PROG}: warning: {text}", err=True)


#: The subcommands and the function that runs each.
COMMANDS = {"analyze": analyze.cmd_analyze, "report": analyze.cmd_report, "info": analyze.cmd_info,
            "compare": compare.cmd_compare, "sensitivity": compare.cmd_sensitivity,
            "correlate": correlate.cmd_correlate}

#: Other spellings of a subcommand (argparse ``aliases``) -> the subcommand.
ALIASES = {"analyse": "analyze"}


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
    args.command = ALIASES.get(args.command, args.command)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    debug = getattr(args, "debug", False)
    old = warnings.showwarning
    if not debug:
        warnings.showwarning = _showwarning
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        say(f"{PROG}: interrupted" + ("; finished results are kept in --out, rerun the same command to resume"
                                       if args.command == "analyze" else ""), err=True)
        return 130
    except BrokenPipeError:  # the reader went away (`neuromfa ... | head`): nothing more to say to it
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except OSError:
            pass
        return 141  # as a shell reports a command ended by SIGPIPE
    except (UserError, ValueError, TypeError, OSError, ImportError) as exc:
        if debug:
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{msg}: {exc.filename}"
        say(f"{PROG}: error: {msg}", err=True)
        return 1
    finally:
        warnings.showwarning = old
