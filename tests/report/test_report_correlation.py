"""report.html, sensitivity --evals and analyze --evals against the real correlation module:
the correlation section shows what ``neuromfa correlate`` writes, with no hand-written
correlations.csv in between."""
from __future__ import annotations

import csv
import json

import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

from neuromfa_native import cli  # noqa: E402
from neuromfa_native.report import html as hr  # noqa: E402
from neuromfa_native.report.science_sections import CORRELATE_PLOTS  # noqa: E402
from neuromfa_native.report.compare import run_sensitivity  # noqa: E402
from neuromfa_native.scores.correlation import COLUMNS, correlate  # noqa: E402
from neuromfa_native.report.tables import write_correlation  # noqa: E402
from report_fixtures import STEPS, copy_run, make_run  # noqa: E402
from test_html_report import external_refs  # noqa: E402
from tiny_series import PER_LAYER, make_series_dirs  # noqa: E402


def write_evals(path, steps, tasks=("piqa", "lambada")):
    """Scores per step: piqa rises with the step, lambada falls (two signs of rho to sort)."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "task", "metric", "value", "stderr"])
        for i, s in enumerate(steps):
            w.writerow([s, tasks[0], "acc", 0.5 + 0.05 * i, 0.01])
            w.writerow([s, tasks[1], "acc", 0.4 - 0.03 * i * i, 0.01])
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("corr"))


@pytest.mark.slow
def test_section_shows_what_correlate_writes(base, tmp_path):
    run = copy_run(base, tmp_path / "r")
    evals = write_evals(tmp_path / "evals.csv", STEPS)
    corr = correlate(run, evals, n_boot=200)
    written = {p.stem for p in write_correlation(corr, run, evals)}
    text = hr.render_report(run, sections=["correlation"])
    assert external_refs(text) == []
    for name, (alt, _) in CORRELATE_PLOTS.items():  # each figure correlate wrote, with its caption
        assert (f'alt="{alt}"' in text) == (name in written)
    assert 'alt="E against each score"' in text
    head = text[text.index('id="correlation-table"'):]
    head = head[:head.index("</thead>")]
    for c in ("quantity", "task", "metric", "spearman", "spearman_lo", "spearman_hi", "p_spearman", "kendall"):
        assert f">{c}</th>" in head
    assert ">covariate</th>" not in head  # empty without --covariate: left out
    body = text[text.index('id="correlation-table"'):]
    first = corr.sorted_rows()[0]
    assert body.index(f">{first['task']}<") < body.index("</tbody>")


def test_heat_map_drawn_when_correlate_wrote_no_plots(base, tmp_path):
    run = copy_run(base, tmp_path / "r")
    evals = write_evals(tmp_path / "evals.csv", STEPS)
    corr = correlate(run, evals, n_boot=0)
    write_correlation(corr, run, evals, plots=False)
    text = hr.render_report(run, sections=["correlation"])
    assert text.count("<img") == 1 and 'alt="heat map of Spearman rho, quantities x scores"' in text
    assert {r["quantity"] for r in corr.rows} <= {c["quantity"] for c in hr.RunData(run).table("correlations")}


@pytest.mark.slow
def test_sensitivity_with_evals_correlates_every_cell(tmp_path):
    steps = (0, 40, 500, 2000)
    dirs = [str(d) for d in make_series_dirs(tmp_path / "c", steps=steps)]
    evals = write_evals(tmp_path / "evals.csv", steps)
    out = tmp_path / "sens"
    run_sensitivity(dirs, {"threshold": [100.0, 150.0]}, out, evals=str(evals), samples=2, per_layer=PER_LAYER,
                    n_threads=1, n_boot=100, cell_reports=False)
    with open(out / "sensitivity.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["cell"] for r in rows] == ["threshold=100", "threshold=150"]
    for r in rows:
        cell = out / "cells" / r["cell"]
        with open(cell / "correlations.csv") as fh:
            got = list(csv.DictReader(fh))
        assert tuple(got[0]) == tuple(COLUMNS)
        expect = correlate(cell, str(evals), n_boot=100)  # the cell's correlation, recomputed from its directory
        e = {(x["task"], x["metric"]): x["spearman"] for x in expect.rows if x["quantity"] == "E"}
        assert float(r["rho_E_piqa"]) == pytest.approx(e[("piqa", "acc")])
        assert float(r["rho_E_lambada"]) == pytest.approx(e[("lambada", "acc")])
    assert "rho_E_piqa" in (out / "sensitivity.html").read_text()


@pytest.mark.slow
def test_analyze_with_evals_puts_the_correlation_in_report_html(tmp_path):
    steps = (0, 40, 500, 2000)
    dirs = [str(d) for d in make_series_dirs(tmp_path / "c", steps=steps)]
    evals = write_evals(tmp_path / "evals.csv", steps)
    out = tmp_path / "run"
    rc = cli.main(["analyze", *dirs, "--samples", "2", "--per-layer", str(PER_LAYER), "--threads", "1",
                   "--bootstrap", "100", "--out", str(out), "-q", "--evals", str(evals)])
    assert rc == 0
    text = (out / "report.html").read_text()
    assert 'id="correlation"' in text and 'alt="E against each score"' in text
    assert json.loads((out / "run.json").read_text())["config"]["per_layer"] == PER_LAYER


def test_correlation_result_shows_a_table_in_a_notebook(base, tmp_path):
    corr = correlate(base, write_evals(tmp_path / "evals.csv", STEPS), n_boot=50)
    h = corr._repr_html_()
    assert "<table" in h and "spearman" in h and external_refs(h) == []
