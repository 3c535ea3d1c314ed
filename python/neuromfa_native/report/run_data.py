"""What a run directory holds, read lazily for the pages: ``run.json``, the series, the CSV tables."""
from __future__ import annotations

import csv
import os
import warnings
from functools import cached_property
from pathlib import Path
from typing import Optional

from .._fs import no_link, read_json
from ..run.derived import current_correlation
from ..run.store import load_run, run_info
from .page import read_csv

__all__ = ["RunData"]


class RunData:
    """What a run directory holds, read lazily: ``run.json``, the series, the CSV tables."""

    def __init__(self, path: os.PathLike):
        self.path = Path(path)
        self.info = run_info(self.path)  # checked against its schema: a run directory may come from elsewhere
        self.problems: list = []  # tables that could not be shown, with the reason
        self.reuse_plots = False  # embed plots/<name>.png just written by write_report instead of redrawing
        # the correlation with scores, when correlate wrote it for the run as it is now (else why not)
        self.correlation, note = current_correlation(self.path, self.info)
        self.problems += [note] if note else []

    def fresh_plot(self, name: str) -> Optional[Path]:
        """``plots/<name>.png`` when reusing plots is on and it is newer than every result."""
        p = self.path / "plots" / f"{name}.png"
        if not self.reuse_plots or not p.is_file() or p.is_symlink() or p.parent.is_symlink():
            return None  # a link could embed a file from elsewhere in the page
        res = self.path / "results"
        newest = max((q.stat().st_mtime for q in res.glob("*/*.npz")), default=0.0) if res.is_dir() else 0.0
        return p if p.stat().st_mtime >= newest else None

    @cached_property
    def series(self):
        """The :class:`~neuromfa_native.run.series.Series` of the stored results (None before the
        first checkpoint is recorded)."""
        if not self.info.get("series"):
            return None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            s = load_run(self.path)
        self.load_warnings = [str(w.message) for w in caught]
        return s

    @cached_property
    def verdict(self):
        """The run's verdict (docs/spec.md section 13) from its stored results, at the step that
        summary.json records as asked for (``--verdict-step``), else at the last checkpoint."""
        from ..run.verdict import verdict

        step = None
        try:
            step = read_json(no_link(self.path / "summary.json"))["verdict"]["requested_step"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        try:
            return verdict(self.series, step)
        except ValueError:  # the recorded step is not in the run any more
            return verdict(self.series)

    @property
    def status(self) -> str:
        return str(self.info.get("status", "unknown"))

    @property
    def partial(self) -> bool:
        s = self.series
        return self.status != "complete" or s is None or not s.complete

    @property
    def has_results(self) -> bool:
        s = self.series
        return s is not None and any(len(r) for r in s.results)

    def has_table(self, name: str) -> bool:
        p = self.path / f"{name}.csv"
        if name == "correlations" and self.correlation is None:  # of another state of the run, or unreadable
            return False
        return p.is_file() and not p.is_symlink()  # a link could show a file from elsewhere in the page

    def table(self, name: str) -> list:
        """Rows of ``RUN_DIR/<name>.csv`` (an empty list when absent or unreadable)."""
        cache = self.__dict__.setdefault("_tables", {})
        if name not in cache:
            p = self.path / f"{name}.csv"
            try:
                cache[name] = read_csv(p) if self.has_table(name) else []
            except (OSError, ValueError, csv.Error) as exc:
                self.problems.append(f"{name}.csv could not be read: {exc}")
                cache[name] = []
        return cache[name]

    @property
    def name(self) -> str:
        s = self.info.get("series") or []
        if s:
            src = str(s[0].get("source", ""))
            parts = [p for p in src.replace("\\", "/").split("/") if p]
            if "@" in src or len(parts) == 2 and not Path(src).exists():
                return src.split("@")[0]
            if len(parts) >= 2:
                return parts[-2]
        return self.path.name
