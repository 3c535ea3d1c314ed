"""The first-screen sentences of report.html on cases with a known answer: the controls' shares
(from a hand-written controls.csv), the E line (from the stored series), the note of a partial
run with tables, and a control whose name reads as a format string."""
from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

from neuromfa_native.report.html import render_report  # noqa: E402
from neuromfa_native.report.science_sections import control_shares  # noqa: E402
from neuromfa_native.run.store import load_run  # noqa: E402
from neuromfa_native.science.controls import CONTROL_COLUMNS  # noqa: E402
from report_fixtures import K, add_tables, copy_run, make_partial, make_run  # noqa: E402


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("sentences"))


def _row(step, control, e):
    return dict(step=step, checkpoint=f"step{step}", control=control, E=e)


def test_control_shares_on_a_known_case() -> None:
    rows = [_row(0, c, 0.0) for c in ("none", "gaussian", "scaled", "shuffle")]
    rows += [_row(20000, "none", 0.4), _row(20000, "gaussian", 0.1), _row(20000, "scaled", 0.3),
             _row(20000, "shuffle", 0.2)]
    assert control_shares(rows) == (
        "At the last step (20,000) the real network has E = 0.400; a Gaussian network with the same row RMS "
        "(<i>gaussian</i>) reproduces 25% of it; with the growth of the weight scale divided out (<i>scaled</i>) "
        "75% remains; the shuffled weights (<i>shuffle</i>, the same distribution) reproduce 50%")


def test_control_shares_says_nothing_without_a_real_e() -> None:
    assert control_shares([_row(5, "none", 0.0), _row(5, "gaussian", 0.1)]) == ""
    assert control_shares([_row(5, "none", float("nan")), _row(5, "gaussian", 0.1)]) == ""
    assert control_shares([_row(5, "gaussian", 0.1)]) == ""


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


def test_e_line_gives_the_last_finite_e_with_its_interval(base) -> None:
    s = load_run(base)
    e = np.asarray(s.emergence)
    t = int(np.flatnonzero(np.isfinite(e))[-1])
    lo, hi = s.emergence_ci[t]
    text = render_report(base, sections=[])
    assert (f"Degree of emergence E at {s.checkpoints[t].label}: <b>{e[t]:+.3f}</b> [{lo:+.3f}, {hi:+.3f}] "
            f"(95% bootstrap interval over samples), relative to {s.checkpoints[s.baseline].label}") in text
    peak = int(np.nanargmax(e))
    if peak != t:
        assert f"; highest at {s.checkpoints[peak].label} ({e[peak]:+.3f})" in text
    else:
        assert "highest at" not in text


def test_partial_run_says_its_tables_may_predate_its_results(base, tmp_path) -> None:
    run = copy_run(base, tmp_path / "run")
    add_tables(run)
    complete = render_report(run, sections=[])
    assert "Controls</a>: At the last step (2000)" in complete and "may predate" not in complete
    make_partial(run)
    partial = render_report(run, sections=[])
    assert f"Partial run (running): {K - 1} result(s) missing." in partial  # make_partial keeps one of K
    assert "which may predate the results of this partial run" in partial
