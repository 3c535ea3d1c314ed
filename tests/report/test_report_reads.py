"""Building report.html reads each file of the run directory it needs once."""
from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

from neuromfa_native.report.html import render_report  # noqa: E402
from neuromfa_native.run import derived  # noqa: E402
from report_fixtures import add_tables, make_run, stamp_correlation  # noqa: E402


def test_the_page_reads_correlations_json_once(tmp_path, monkeypatch) -> None:
    run = make_run(tmp_path)
    add_tables(run)
    stamp_correlation(run, evals="scores.csv")
    reads = []
    real = derived.read_json

    def counting(path, *a, **k):
        reads.append(path.name)
        return real(path, *a, **k)

    monkeypatch.setattr(derived, "read_json", counting)
    text = render_report(run, sections=[])
    assert reads.count("correlations.json") == 1
    assert "--evals scores.csv" in text  # the reproduce command still names the scores
