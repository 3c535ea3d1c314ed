"""Text from elsewhere in a figure is shown as written: matplotlib reads the text between two
'$' as mathematics, so a checkpoint label, task, control, statistic or group name holding
'$\\nope$' failed to draw (and '$5 and $10' turned italic)."""
from __future__ import annotations

import io
import warnings

import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

import neuromfa_native as nm  # noqa: E402
from neuromfa_native.plots.controls import plot_control_emergence  # noqa: E402
from neuromfa_native.plots.correlation import draw_rho_heatmap, write_correlation_plots  # noqa: E402
from neuromfa_native.plots.series import PLOTS, plain  # noqa: E402
from neuromfa_native.report.html import render_report  # noqa: E402
from report_fixtures import add_tables, copy_run, make_run  # noqa: E402
from tiny_series import PER_LAYER, make_series_dirs  # noqa: E402

MATH = r"$\nope$"


def _draws(fig) -> None:
    fig.savefig(io.BytesIO(), format="png")


def test_plain_escapes_every_dollar() -> None:
    assert plain(MATH) == r"\$\nope\$"
    assert plain("cost $5 and $10") == r"cost \$5 and \$10"
    assert plain("step1000") == "step1000" and plain(3) == "3"


def test_rho_heat_map_of_a_task_named_like_mathematics() -> None:
    rows = [dict(quantity=q, task=MATH, metric="acc", spearman=0.5) for q in ("E", MATH)]
    ax = draw_rho_heatmap(rows)
    _draws(ax.figure)
    assert [t.get_text() for t in ax.get_xticklabels()] == [r"\$\nope\$"]


def test_control_curve_of_a_control_named_like_mathematics() -> None:
    rows = [dict(step=s, control=c, E=e, E_lo=e - 0.1, E_hi=e + 0.1)
            for s in (0, 10) for c, e in (("none", 0.1 * s), (MATH, 0.05 * s))]
    _draws(plot_control_emergence(rows).figure)


@pytest.fixture(scope="module")
def math_run(tmp_path_factory):
    """A run whose checkpoint labels (its directories' names) hold mathematics."""
    root = tmp_path_factory.mktemp("math")
    dirs = [d.rename(d.with_name(d.name + MATH)) for d in make_series_dirs(root / "c", steps=(0, 100, 1000))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = nm.analyze_series(dirs, samples=2, per_layer=PER_LAYER, n_threads=1, out=root / "run", sort=False)
    return s, root / "run"


@pytest.mark.slow
def test_series_plots_of_labels_like_mathematics(math_run) -> None:
    s, _ = math_run
    assert all(MATH in c.label for c in s.checkpoints)
    for plot in PLOTS.values():
        drawn = plot(s)
        _draws(drawn if hasattr(drawn, "savefig") else drawn.figure)


def test_correlation_plots_of_scores_named_like_mathematics(math_run, tmp_path) -> None:
    s, _ = math_run
    evals = {c.step: {MATH: {"acc" + MATH: 0.1 * i + 0.2}} for i, c in enumerate(s.checkpoints)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        corr = nm.correlate(s, evals, metric=None, n_boot=20)
    assert write_correlation_plots(corr, tmp_path)


@pytest.mark.slow
def test_report_sections_of_statistics_and_groups_like_mathematics(tmp_path) -> None:
    run = make_run(tmp_path)
    add_tables(run)
    for name, column in (("stats.csv", "statistic"), ("by_layer.csv", "group")):
        text = (run / name).read_text().splitlines()
        head = text[0].split(",")
        k = head.index(column)
        rows = [ln.split(",") for ln in text[1:]]
        for r in rows:
            r[k] = r[k] + MATH.replace(",", "")
        (run / name).write_text("\n".join([text[0]] + [",".join(r) for r in rows]) + "\n")
    page = render_report(run, sections=["stats", "by_layer"])
    assert "could not be drawn" not in page
    assert 'id="stats-table"' in page and 'id="by-layer-table"' in page


@pytest.mark.slow
def test_compare_page_of_runs_named_like_mathematics(math_run, tmp_path) -> None:
    from neuromfa_native.report.compare import compare_runs

    _, run = math_run
    other = copy_run(run, tmp_path / "other")
    names = [MATH, "b" + MATH]
    page = compare_runs([run, other], tmp_path / "cmp", names=names, sizes={n: 10**6 * (i + 1) for i, n in
                                                                         enumerate(names)}, n_boot=20).read_text()
    assert "<figure>" in page and "could not be drawn" not in page
