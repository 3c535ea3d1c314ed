"""report.html and compare.html in a real browser: headless Chromium opens them from file://
with the network disabled; the DOM has every section the data call for, every image decodes
with a non-zero size, clicking a column header sorts its table, nothing is logged as an error
and nothing outside the page is requested (the page's Content-Security-Policy reports any such
attempt to the probe), and a screenshot of the first screen is not blank.

Needs Chromium (Debian: ``apt-get install chromium``; or set NEUROMFA_CHROMIUM); skipped
without it.  .ci/run installs it.
"""
from __future__ import annotations


import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

from browser import blank_fraction, console_errors, find_chromium, inspect_page, screenshot  # noqa: E402

pytestmark = [pytest.mark.slow,  # a browser per test: seconds each
              pytest.mark.skipif(find_chromium() is None,
                                reason="no Chromium (apt-get install chromium, or set NEUROMFA_CHROMIUM)")]

from neuromfa_native.report import html as hr  # noqa: E402
from neuromfa_native.report.page import page  # noqa: E402
from neuromfa_native.report.compare import compare_runs  # noqa: E402
from report_fixtures import STEPS, add_tables, copy_run, make_failed, make_partial, make_run  # noqa: E402


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    base = make_run(root)
    full = copy_run(base, root / "full")
    add_tables(full)
    other = make_run(root / "o", steps=(0, 40, 2000, 5000), samples=2, threshold=100.0, name="other")
    return dict(base=base, full=full, other=other, root=root)


def _clean(r: dict) -> None:
    assert r["errors"] == [], r["errors"]
    assert r["console"] == [], r["console"]
    assert r["csp"] == [], r["csp"]  # no request outside the page was even attempted
    assert console_errors(r["stderr"]) == []


def _images_decode(r: dict) -> None:
    assert r["images"], "no image in the page"
    for im in r["images"]:
        assert im["complete"] and im["w"] > 0 and im["h"] > 0, im


def _sorted(r: dict) -> None:
    s = r["sort"]
    vals = [float(v) for v in s["before"]]
    asc = [float(v) for v in s["asc"]]
    desc = [float(v) for v in s["desc"]]
    assert asc == sorted(vals) and desc == sorted(vals, reverse=True)
    assert asc != desc  # the column has distinct values, so the click really reordered rows


def test_probe_catches_errors_and_outside_requests(tmp_path):
    """The harness itself can fail: a page with an external image and a throwing script."""
    p = tmp_path / "bad.html"
    p.write_text(page("bad", '<img alt="x" src="http://192.0.2.1/x.png">'
                             "<script>document.title='ran';undefinedFunction();</script>"))
    r = inspect_page(p, tmp_path / "w")
    assert r["csp"] and "192.0.2.1" in r["csp"][0]  # blocked by the page's policy, and reported
    # an inline script slipped into the page does not run: the policy allows only the page's own
    # script, by its hash
    assert r["title"] == "bad" and not any("undefinedFunction" in e for e in r["errors"] + r["console"])
    q = tmp_path / "throws.html"  # a page without that policy: the harness sees the script run and fail
    q.write_text('<!DOCTYPE html><html lang="en"><head><title>t</title></head><body>'
                 '<script>undefinedFunction();</script></body></html>')
    r = inspect_page(q, tmp_path / "w2")
    assert any("undefinedFunction" in e for e in r["errors"] + r["console"]) or console_errors(r["stderr"])


def test_report_in_chromium(runs, tmp_path):
    page = hr.write_html_report(runs["full"])
    r = inspect_page(page, tmp_path / "w", sort_table="checkpoints-table", sort_col=8)  # the E column
    _clean(r)
    assert r["sections"] == ["overview", "checkpoints", "controls", "stats", "correlation", "by_layer",
                             "node_dimensions", "cost"]
    _images_decode(r)
    assert len(r["images"]) == 6
    assert [(g["label"], g["bars"]) for g in r["svgs"]] == [("compute time per checkpoint", 4)]  # the SVG bars
    assert all(g["w"] > 100 and g["h"] > 50 for g in r["svgs"]), r["svgs"]
    _sorted(r)
    assert "(partial)" not in r["title"]
    png = screenshot(page, tmp_path / "report.png", tmp_path / "w")
    assert blank_fraction(png) < 0.97


def test_controls_table_sorts(runs, tmp_path):
    page = hr.write_html_report(runs["full"])
    r = inspect_page(page, tmp_path / "w", sort_table="controls-table", sort_col=8)
    _clean(r)
    _sorted(r)


def test_partial_and_failed_runs_in_chromium(runs, tmp_path):
    part = copy_run(runs["base"], tmp_path / "partial")
    make_partial(part)
    r = inspect_page(hr.write_html_report(part), tmp_path / "w1")
    _clean(r)
    assert "(partial)" in r["title"] and "status" in r["ids"] and "Partial run" in r["text"]
    assert "noticed" in r["sections"]
    failed = copy_run(runs["base"], tmp_path / "failed")
    make_failed(failed)
    r = inspect_page(hr.write_html_report(failed), tmp_path / "w2")
    _clean(r)
    assert "Run with failures" in r["text"] and "non-finite weights" in r["text"]
    _images_decode(r)


def test_compare_in_chromium(runs, tmp_path):
    a = copy_run(runs["base"], tmp_path / "model-160m")
    b = copy_run(runs["other"], tmp_path / "model-410m")
    page = compare_runs([a, b], tmp_path / "cmp", n_boot=200)
    r = inspect_page(page, tmp_path / "w", sort_table="emergence-table", sort_col=4)  # the E column
    _clean(r)
    assert r["sections"] == ["emergence", "difference", "spectra", "scaling", "table"]
    assert "config-table" in r["ids"]
    _images_decode(r)
    _sorted(r)
    png = screenshot(page, tmp_path / "compare.png", tmp_path / "w")
    assert blank_fraction(png) < 0.97
    assert STEPS[-1] == 2000 and "2,000" in r["text"]  # the last common step is named


@pytest.fixture(scope="module")
def answered(tmp_path_factory):
    """A run whose weights only grow in scale, with the three controls: its verdict is 'scale'."""
    import neuromfa_native as nm
    from tiny_series import scale_growth_weights, write_checkpoints

    root = tmp_path_factory.mktemp("verdict")
    dirs = write_checkpoints(root / "ckpt", {t: scale_growth_weights(k) for k, t in enumerate((0, 100, 1000))})
    out = root / "run"
    s = nm.analyze_series(dirs, samples=4, per_layer=12, n_threads=1, out=out, progress=False,
                          controls=("gaussian", "shuffle", "scaled"))
    nm.write_report(s, out)
    return out, s.verdict()


def test_the_first_screen_leads_with_the_verdict(answered, tmp_path):
    out, v = answered
    page = hr.write_html_report(out)
    r = inspect_page(page, tmp_path / "w")
    _clean(r)
    assert v.label == "scale"
    top, height, text = r["rects"]["verdict"]
    assert 0 < top < 200 and height > 20  # under the title, before anything else
    assert text.startswith("Verdict: scale — E is mostly weight scale: at step1000")
    assert "Gaussian network with the same row RMS reproduces" in text and "divided out" in text
    key = r["text"].index("Degree of emergence E at step1000")
    assert r["text"].index("Verdict: scale") < key
    png = screenshot(page, tmp_path / "first.png", tmp_path / "w")
    assert blank_fraction(png) < 0.97


def test_the_controls_caption_says_what_each_control_keeps_and_removes(answered, tmp_path):
    out, _ = answered
    r = inspect_page(hr.write_html_report(out), tmp_path / "w")
    _clean(r)
    cap = r["captions"]["controls"][0]
    assert "gaussian keeps the weight scale (the RMS of the rows the network reads) and removes the distribution of " \
           "the weights and which neuron holds which weight" in cap
    assert "shuffle keeps the distribution of the used weights and removes which neuron holds which weight" in cap
    assert "scaled keeps the structure and the shape of the weight distribution and removes the growth of the " \
           "weight scale since the baseline" in cap
    assert "where scaled stays near 0, E is the growth of the weight scale" in cap
    assert "the weight scale for scaled" not in cap and "null network" not in " ".join(r["captions"]["controls"])
