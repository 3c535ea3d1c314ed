"""report.html of a REAL run of the bundled example with every optional table: controls, rival
statistics, the breakdown by layer and the correlation with the example's scores
(``neuromfa analyze examples/pythia-tiny/step* --controls ... --stats --by-layer --evals ...``,
cheap: 2 samples of 16 neurons per layer).  The fixture-built runs of test_html_report.py have
hand-written tables; this checks the page that the real pipeline gives: every section the data
call for, one name per quantity across the page's tables, the headline of the first screen, a
reproduce command that names everything the run did, no warning on the way (pytest is strict and
the CLI prints any as ``neuromfa: warning:``), and in Chromium, when there is one, a clean page.
"""
from __future__ import annotations

import re

import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

from neuromfa_native import cli  # noqa: E402
from paths import ROOT

ROOT = ROOT
EXAMPLE = ROOT / "examples" / "pythia-tiny"
SECTIONS = ["overview", "checkpoints", "controls", "stats", "correlation", "by_layer", "node_dimensions", "cost"]
#: Names one quantity may go by in the page's tables; the page must use one of each group.
#: (``n`` is not here: the correlation table's n counts matched checkpoints, not kept samples.)
SYNONYMS = [{"alpha0_sd", "alpha0_std"}, {"width_sd", "width_std"}, {"E", "emergence"},
            {"E_lo", "emergence_low"}, {"E_hi", "emergence_high"}]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    # a fixed subset, so that the test stays cheap when the example gains checkpoints
    srcs = [EXAMPLE / f"step{n}" for n in (0, 16, 64, 250, 1000, 2000) if (EXAMPLE / f"step{n}").is_dir()]
    if len(srcs) < 6 or not (EXAMPLE / "evals").is_dir():
        pytest.skip("the bundled example examples/pythia-tiny is not there")
    out = tmp_path_factory.mktemp("real") / "run"
    import contextlib
    import io
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = cli.main(["analyze", *map(str, srcs), "--samples", "2", "--per-layer", "16", "--threads", "1",
                       "--controls", "gaussian,shuffle,scaled", "--stats", "--by-layer",
                       "--evals", str(EXAMPLE / "evals"), "--bootstrap", "200", "-q", "--out", str(out)])
    assert rc == 0, err.getvalue()
    return out, err.getvalue()


def _headers(page: str, table_id: str) -> list:
    m = re.search(rf'<table id="{table_id}"[^>]*>.*?<thead><tr>(.*?)</tr></thead>', page, re.S)
    assert m is not None, f"no table {table_id}"
    return re.findall(r"<th[^>]*>(.*?)</th>", m.group(1))


def test_real_run_has_every_section_and_no_warning(real_run):
    out, err = real_run
    assert "warning" not in err.lower(), err  # e.g. matplotlib's "constrained_layout not applied"
    page = (out / "report.html").read_text()
    ids = re.findall(r'<section id="([^"]+)"', page)
    assert [s for s in ids if s != "noticed"] == SECTIONS
    assert "could not be drawn" not in page
    # every plot is embedded; the correlation section holds correlate's three figures
    assert page.count('src="data:image/png;base64,') >= 8
    corr = page[page.index('<section id="correlation"'):page.index('<section id="by_layer"')]
    assert corr.count("<figure>") == 3


def test_real_run_names_each_quantity_once(real_run):
    out, _ = real_run
    page = (out / "report.html").read_text()
    tables = re.findall(r'<table id="([^"]+)"', page)
    assert {"checkpoints-table", "controls-table", "stats-table", "correlation-table", "by-layer-table",
            "cost-table"} <= set(tables)
    used = set().union(*(_headers(page, t) for t in tables))
    for group in SYNONYMS:
        assert len(group & used) <= 1, f"one quantity, two names in the page: {sorted(group & used)}"
    ck = _headers(page, "checkpoints-table")
    ctl = _headers(page, "controls-table")
    for name in ("alpha0_mean", "alpha0_sd", "width_mean", "width_sd", "E", "E_lo", "E_hi", "n_kept"):
        assert name in ck and name in ctl, name
    # the stored CSV keeps its columns (the page only shows other names)
    head = (out / "checkpoints.csv").read_text().splitlines()[0].split(",")
    assert {"alpha0_std", "emergence", "emergence_low", "emergence_high"} <= set(head)
    assert "partial_spearman" not in _headers(page, "correlation-table")  # all NaN here: not shown


def test_real_run_first_screen_and_reproduce_command(real_run):
    out, _ = real_run
    page = (out / "report.html").read_text()
    header = page[page.index('<header id="header">'):page.index("</header>")]
    assert "Degree of emergence E at step2000" in header
    assert re.search(r"Controls</a>: At the last step \(2000\) the real network has E = [0-9.]+; a Gaussian network "
                     r"with the same row RMS \(<i>gaussian</i>\) reproduces -?\d+% of it", header)
    assert re.search(r'<div class="verdict [a-z_]+" id="verdict"><p class="key"><b>Verdict: [a-z_]+</b>', header)
    assert header.index('id="verdict"') < header.index("Degree of emergence E at step2000")
    assert re.search(r"Scores</a>: Spearman rho of E with heldout_next_byte acc: <b>[+-][0-9.]+</b>", header)
    cmd = re.search(r'<pre class="cmd">(.*?)</pre>', header, re.S).group(1)
    for part in ("--samples 2", "--per-layer 16", "--controls gaussian,shuffle,scaled", "--stats", "--by-layer",
                 "--evals " + str(EXAMPLE / "evals")):
        assert part in cmd, (part, cmd)
    # tables of up to SCROLL_ROWS rows are shown whole (no box of their own); longer ones scroll
    assert '<div class="scroll"><table id="controls-table"' not in page
    assert '<div class="scroll"><table id="by-layer-table"' in page


def test_real_run_in_chromium(real_run, tmp_path):
    from browser import blank_fraction, console_errors, find_chromium, inspect_page, screenshot
    if find_chromium() is None:
        pytest.skip("no Chromium (apt-get install chromium, or set NEUROMFA_CHROMIUM)")
    out, _ = real_run
    page = out / "report.html"
    r = inspect_page(page, tmp_path / "w", sort_table="controls-table", sort_col=8)  # the E column
    assert r["errors"] == [] and r["console"] == [] and r["csp"] == [], r
    assert console_errors(r["stderr"]) == []
    assert [s for s in r["sections"] if s != "noticed"] == SECTIONS
    assert r["images"] and all(im["complete"] and im["w"] > 0 and im["h"] > 0 for im in r["images"])
    vals = [float(v) for v in r["sort"]["before"]]
    assert [float(v) for v in r["sort"]["asc"]] == sorted(vals)
    png = screenshot(page, tmp_path / "first-screen.png", tmp_path / "w")
    assert blank_fraction(png) < 0.97
