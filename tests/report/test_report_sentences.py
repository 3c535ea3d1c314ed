"""The first-screen sentences of report.html: a control whose name reads as a format string."""
from __future__ import annotations

import csv

import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

from neuromfa_native.report.html import render_report  # noqa: E402
from neuromfa_native.report.science_sections import control_shares  # noqa: E402
from neuromfa_native.science.controls import CONTROL_COLUMNS  # noqa: E402
from report_fixtures import add_tables, copy_run, make_run  # noqa: E402


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("sentences"))


def _row(step, control, e):
    return dict(step=step, checkpoint=f"step{step}", control=control, E=e)


@pytest.mark.parametrize("name", ["{p}", "{0}", "{x.__class__}", "<b>{}</b>"])
def test_control_name_is_text_not_a_format_string(name) -> None:
    out = control_shares([_row(9, "none", 0.5), _row(9, name, 0.25)])
    esc = name.replace("<", "&lt;").replace(">", "&gt;")
    assert out == f"At the last step (9) the real network has E = 0.500; <i>{esc}</i> gives 50%"


def test_report_of_a_control_named_like_a_format_string(base, tmp_path) -> None:
    run = copy_run(base, tmp_path / "run")
    add_tables(run)
    with open(run / "controls.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        if r["control"] == "shuffle":
            r["control"] = "{shuffle}"
    with open(run / "controls.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(CONTROL_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    text = render_report(run, sections=["controls"])
    # add_tables: at step 2000 E of none is 0.6, of the control 0.8 * 0.6
    assert "<i>{shuffle}</i> gives 80%" in text
