"""report.html, compare.html, sensitivity and the notebook views (without a browser; the
browser tests are in test_browser_report.py)."""
from __future__ import annotations

import dataclasses
import json
import shlex
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

from neuromfa_native import cli  # noqa: E402
from neuromfa_native.report import html as hr  # noqa: E402
from neuromfa_native.report.header import reproduce_command  # noqa: E402
from neuromfa_native.report.science_sections import by_layer_emergence  # noqa: E402
from neuromfa_native.report.compare import (compare_runs, emergence_difference, model_size, parse_vary,  # noqa: E402
                                     run_sensitivity)
from neuromfa_native.run.checkpoints import Checkpoint  # noqa: E402
from neuromfa_native.run.store import RunStore, load_run  # noqa: E402
from report_fixtures import K, STEPS, add_tables, copy_run, make_failed, make_partial, make_run  # noqa: E402
from tiny_series import PER_LAYER, make_series_dirs  # noqa: E402


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("html"))


class _Refs(HTMLParser):
    """Every URL-bearing attribute, every tag name, the CSP meta."""

    def __init__(self):
        super().__init__()
        self.refs, self.tags, self.csp = [], [], None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        for k in ("src", "href", "action", "data", "poster", "srcset", "formaction", "background"):
            if k in a:
                self.refs.append((tag, k, a[k]))
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp = a.get("content")


def external_refs(text: str) -> list:
    """References that would make the browser fetch something: any src/href that is not a
    data: URI or an in-page anchor, any CSS url() or @import, any http(s):// at all."""
    p = _Refs()
    p.feed(text)
    bad = [r for r in p.refs if not (r[2].startswith("data:") or r[2].startswith("#"))]
    import re
    bad += [("css", "url", m) for m in re.findall(r"url\(\s*['\"]?(?!data:)([^)'\"]+)", text)]
    bad += [("css", "@import", m) for m in re.findall(r"@import[^;]+", text)]
    bad += [("text", "url", m) for m in re.findall(r"(?:https?|ftp)://[^\s\"'<>]+", text)]
    return bad


def test_external_ref_checker_finds_what_it_should():
    bad = external_refs('<img src="http://x.org/a.png"><link href="s.css"><style>a{background:url(b.png)}</style>')
    assert len(bad) >= 3


@pytest.mark.slow
def test_plain_run_report(base, tmp_path):
    run = copy_run(base, tmp_path / "r")
    p = hr.write_html_report(run)
    text = p.read_text()
    assert p == run / "report.html"
    assert external_refs(text) == []
    refs = _Refs()
    refs.feed(text)
    assert refs.csp and "default-src 'none'" in refs.csp
    for sec in ("overview", "checkpoints", "node_dimensions", "cost"):
        assert f'<section id="{sec}">' in text
    for sec in ("controls", "stats", "by_layer", "correlation", "noticed"):  # no data, no section
        assert f'<section id="{sec}">' not in text
    assert "(partial)" not in text and "Partial run" not in text
    assert "neuromfa analyze" in text and f"--samples {K}" in text
    assert text.count("<figcaption>") == text.count("<img") + text.count("<svg")  # every plot has a caption


def test_reproduce_command_parses_back_to_the_run(base):
    info = json.loads((base / "run.json").read_text())
    cmd = reproduce_command(info, base)
    args = cli.build_parser().parse_args(shlex.split(cmd)[1:])
    assert args.command == "analyze"
    assert args.samples == K and args.per_layer == PER_LAYER and args.threshold == 150.0
    assert args.box == "edge" and args.out == str(base)
    assert [Path(s).name for s in args.sources] == [f"step{s}" for s in STEPS]


@pytest.mark.slow
def test_sections_light_up_when_their_tables_exist(base, tmp_path):
    run = copy_run(base, tmp_path / "r")
    add_tables(run)
    text = hr.render_report(run)
    for sec in ("controls", "stats", "by_layer", "correlation"):
        assert f'<section id="{sec}">' in text, sec
    assert "could not be drawn" not in text
    assert "controls-table" in text and "stats-table" in text and "by-layer-table" in text
    assert "correlation-table" in text
    assert "Never box centres" in text and "qkv" in text  # the group without centres is named
    # scaled removes the growth of the weight scale: what it gives is what remains without it
    assert "with the growth of the weight scale divided out (<i>scaled</i>) 10% remains" in text
    assert "<i>scaled</i> reproduces" not in text
    # correlations: E's rows first, each part by |rho|: E/piqa 0.88, E/arc_easy, E/lambada, then alpha0/lambada -0.87
    i = text.index('id="correlation-table"')
    body = text[text.index("<tbody>", i):text.index("</tbody>", i)]
    first = [r.split("</td>")[:2] for r in body.split("<tr>")[1:5]]
    assert [[c.rsplit(">", 1)[1] for c in r] for r in first] == [["E", "piqa"], ["E", "arc_easy"],
                                                                  ["E", "lambada_openai"], ["alpha0", "lambada_openai"]]
    assert external_refs(text) == []


def test_a_table_with_wrong_columns_says_so(base, tmp_path):
    run = copy_run(base, tmp_path / "r")
    (run / "controls.csv").write_text("step,checkpoint,control\n0,step0,none\n")
    text = hr.render_report(run, sections=["controls"])
    assert '<section id="controls">' in text
    assert "could not be drawn" in text and "E_lo" in text


def test_by_layer_emergence_matches_spec4():
    rows = [dict(step=0, group="a", alpha0=1.5, width=0.5, n_centres=3),
            dict(step=0, group="a", alpha0=1.3, width=0.7, n_centres=3),
            dict(step=10, group="a", alpha0=1.2, width=0.8, n_centres=3),
            dict(step=10, group="b", alpha0=1.0, width=0.8, n_centres=3)]
    groups, steps, e = by_layer_emergence(rows)
    assert groups == ["a", "b"] and steps == [0, 10]
    assert e[0, 0] == 0
    assert e[0, 1] == pytest.approx((0.8 / 0.6) * np.log(1.4 / 1.2))
    assert np.isnan(e[1]).all()  # no baseline value for b


def test_partial_run_is_marked(base, tmp_path):
    run = copy_run(base, tmp_path / "r")
    make_partial(run)
    text = hr.render_report(run, sections=["checkpoints", "noticed"])
    assert "(partial)</title>" in text and "Partial run (running)" in text
    assert '<section id="noticed">' in text and "missing result" in text
    assert f"step{STEPS[-1]}: sample(s) 1, 2 not computed" in text


def test_run_with_failures_says_so(base, tmp_path):
    run = copy_run(base, tmp_path / "r")
    make_failed(run)
    text = hr.render_report(run, sections=["noticed"])
    assert "Run with failures" in text and "(partial)" in text
    assert "<b>non-finite weights</b>" in text and "<b>failed task</b>" in text
    assert "truncated file" in text


def test_run_that_has_not_started(tmp_path):
    st = RunStore(tmp_path / "r", dict(per_layer=4, box="edge", threshold=150.0, q=[-1.0, 0.0, 1.0]))
    st.close()
    text = hr.render_report(tmp_path / "r")
    assert "Partial run" in text and "no result yet" in text
    with pytest.raises(ValueError, match="no run.json"):
        hr.render_report(tmp_path)
    with pytest.raises(ValueError, match="unknown report section"):
        hr.render_report(tmp_path / "r", sections=["overveiw"])


def test_identical_checkpoints_are_listed(tmp_path):
    dirs = [str(d) for d in make_series_dirs(tmp_path / "c", steps=(0, 50), identical={"step60": "step50"})]
    from neuromfa_native.run.runner import analyze_series
    with pytest.warns(UserWarning, match="byte-identical"):
        analyze_series(dirs, samples=2, per_layer=PER_LAYER, n_threads=1, out=tmp_path / "r")
    text = hr.render_report(tmp_path / "r", sections=["noticed"])
    assert "identical checkpoint" in text and "step60 has the same weights as step50" in text


@pytest.mark.slow
def test_a_27_by_10_run_is_a_few_mb(base, tmp_path):
    """Size bound of the issue: 27 checkpoints x 10 samples (results made from a real one)."""
    real = load_run(base).results[-1][0]
    info = json.loads((base / "run.json").read_text())
    steps = [0] + [int(x) for x in np.unique(np.round(np.geomspace(1, 143000, 26)))]
    steps = sorted(set(steps))[:27]
    cps = [Checkpoint(f"ckpt/step{s}", None, f"step{s}", s) for s in steps]
    st = RunStore(tmp_path / "r", info["config"])
    st.begin(cps, [f"fp{s}" for s in steps], dict(samples=list(range(10)), filter="none", baseline=cps[0].label,
                                                   n_bootstrap=200, ci=0.95, seed=0))
    rng = np.random.default_rng(0)
    for t, s in enumerate(steps):
        for k in range(10):
            f = 1 - 0.01 * t + 0.003 * rng.normal()
            sp = dataclasses.replace(real.spectrum, alpha=real.spectrum.alpha * f, alpha0=real.spectrum.alpha0 * f)
            st.put(f"fp{s}", k, dataclasses.replace(real, spectrum=sp, sample=k))
    st.finish({})
    st.close()
    p = hr.write_html_report(tmp_path / "r")
    size = p.stat().st_size
    assert 50_000 < size < 4_000_000, size
    assert "(partial)" not in p.read_text()


# -- compare -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def other(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("html2"), steps=(0, 40, 2000, 5000), samples=2, threshold=100.0,
                    name="pythia-410m")


@pytest.mark.slow
def test_compare_two_runs(base, other, tmp_path):
    a = copy_run(base, tmp_path / "pythia-160m")
    p = compare_runs([a, other], tmp_path / "cmp", n_boot=200)
    text = p.read_text()
    assert external_refs(text) == []
    for sec in ("emergence", "difference", "spectra", "scaling", "table"):
        assert f'<section id="{sec}">' in text, sec
    import csv
    with open(tmp_path / "cmp" / "compare_config.csv") as fh:
        cfg = {r["setting"]: r for r in csv.DictReader(fh)}
    assert cfg["threshold"]["pythia-160m"] == "150" and cfg["threshold"]["pythia-410m"] == "100"
    assert cfg["samples"]["pythia-160m"] == str(K)
    with open(tmp_path / "cmp" / "compare_difference.csv") as fh:
        diff = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in diff] == [0, 40, 2000]  # the common steps only
    for r in diff:
        lo, d, hi = float(r["difference_lo"]), float(r["difference"]), float(r["difference_hi"])
        assert lo <= d + 1e-12 and d <= hi + 1e-12
    with open(tmp_path / "cmp" / "compare_scaling.csv") as fh:
        sc = list(csv.DictReader(fh))
    assert [float(r["parameters"]) for r in sc] == [160e6, 410e6]


def test_compare_difference_of_a_run_with_itself_is_zero(base):
    s = load_run(base)
    rows = emergence_difference(s, s, n_boot=300, seed=1)
    assert all(r["difference"] == 0 for r in rows)
    assert all(r["difference_lo"] <= 0 <= r["difference_hi"] for r in rows)
    last = rows[-1]
    assert last["difference_hi"] - last["difference_lo"] > 0  # independent resamples: a real interval


def test_compare_refuses_only_without_a_common_step(base, tmp_path):
    c = make_run(tmp_path, steps=(1, 7), samples=2, name="disjoint")
    with pytest.raises(ValueError, match="share no training step"):
        compare_runs([base, c], tmp_path / "cmp")
    with pytest.raises(ValueError, match="at least two"):
        compare_runs([base], tmp_path / "cmp")
    assert cli.main(["compare", str(base), str(c), "--out", str(tmp_path / "cmp")]) == 1


def test_compare_cli(base, other, tmp_path, capsys):
    rc = cli.main(["compare", str(base), str(other), "--out", str(tmp_path / "o"), "--names", "a,b",
                   "--size", "a=1.4b", "--size", "b=2e9", "--bootstrap", "100"])
    assert rc == 0
    assert (tmp_path / "o" / "compare.html").is_file()
    assert "comparison of 2 runs" in capsys.readouterr().out
    with open(tmp_path / "o" / "compare_scaling.csv") as fh:
        assert "1400000000.0" in fh.read()
    assert cli.main(["compare", str(base), str(other), "--out", str(tmp_path / "o"), "--size", "a"]) == 1


def test_model_size():
    assert model_size("EleutherAI/pythia-160m-deduped") == 160e6
    assert model_size("pythia-1.4b") == 1.4e9
    assert model_size("run-7B") == 7e9
    assert model_size("examples/pythia-tiny") is None
    assert model_size("step1000") is None


# -- sensitivity ---------------------------------------------------------------------------------

def test_parse_vary():
    assert parse_vary(["threshold=100,150", "per-layer=8,full"]) == {"threshold": [100.0, 150.0],
                                                                      "per_layer": [8, None]}
    for bad, msg in ((["threshold"], "NAME=V1"), (["speed=1,2"], "unknown choice"), (["threshold=a"], "bad value"),
                     (["box=edge", "box=path"], "twice"), (["box=edge,edge"], "twice"), ([], "at least one")):
        with pytest.raises(ValueError, match=msg):
            parse_vary(bad)


@pytest.mark.slow
def test_sensitivity_grid_is_resumable(tmp_path):
    dirs = [str(d) for d in make_series_dirs(tmp_path / "c", steps=(0, 40, 2000))]
    out = tmp_path / "sens"
    p = run_sensitivity(dirs, {"threshold": [100.0, 150.0]}, out, samples=2, per_layer=PER_LAYER, n_threads=1,
                        n_boot=100)
    assert p == out / "sensitivity.html"
    cells = sorted(d.name for d in (out / "cells").iterdir())
    assert cells == ["threshold=100", "threshold=150"]
    for c in cells:
        assert (out / "cells" / c / "report.html").is_file()
        assert json.loads((out / "cells" / c / "run.json").read_text())["config"]["threshold"] == float(c[10:])
    text = p.read_text()
    assert "sensitivity-table" in text and external_refs(text) == []
    before = {c: (out / "cells" / c / "results").stat().st_mtime_ns for c in cells}
    rc = cli.main(["sensitivity", *dirs, "--vary", "threshold=100,150", "--samples", "2", "--threads", "1",
                   "--out", str(out), "-q", "--bootstrap", "100"])
    assert rc == 1  # per_layer differs from the CLI default: the stored cells refuse the new configuration
    run_sensitivity(dirs, {"threshold": [100.0, 150.0]}, out, samples=2, per_layer=PER_LAYER, n_threads=1,
                    n_boot=100, cell_reports=False)
    for c in cells:
        info = json.loads((out / "cells" / c / "run.json").read_text())
        assert info["n_computed"] == 0 and info["n_reused"] == 6, info  # all reused
        assert (out / "cells" / c / "results").stat().st_mtime_ns == before[c]


def test_sensitivity_refuses_a_choice_both_varied_and_fixed(tmp_path):
    with pytest.raises(ValueError, match="both varied and fixed"):
        run_sensitivity(["x"], {"threshold": [1.0, 2.0]}, tmp_path, threshold=3.0)


# -- notebook ------------------------------------------------------------------------------------

def test_notebook_views(base):
    s = load_run(base)
    h = s._repr_html_()
    assert "<table" in h and "<img" in h and "step2000" in h and "Series" in h
    from neuromfa_native import Analysis
    a = Analysis("step40", s.results[2])
    h = a._repr_html_()
    assert "<table" in h and f"{K} samples" in h
    h = s.results[0][0].spectrum._repr_html_()
    assert "alpha0" in h and "<img" in h
    assert external_refs(s._repr_html_() + h) == []


def test_series_plot_draws_on_the_given_figure(base):
    import matplotlib.pyplot as plt
    s = load_run(base)
    fig = plt.figure()
    try:
        assert s.plot(fig) is fig
        assert len(fig.axes) >= 4
    finally:
        plt.close(fig)
    fig = s.plot()
    plt.close(fig)


def test_partial_series_repr_says_partial(base, tmp_path):
    run = copy_run(base, tmp_path / "r")
    make_partial(run)
    assert "partial" in load_run(run)._repr_html_()


@pytest.mark.slow
def test_report_command_writes_report_html(base, tmp_path, capsys):
    run = copy_run(base, tmp_path / "r")
    assert cli.main(["report", str(run), "-q"]) == 0
    assert (run / "report.html").is_file()
    run2 = copy_run(base, tmp_path / "r2")
    assert cli.main(["report", str(run2), "-q", "--no-plots"]) == 0
    assert not (run2 / "report.html").exists()


@pytest.mark.slow
def test_bytes_read_per_checkpoint_are_shown_when_recorded(base, tmp_path):
    assert ">bytes_read</th>" not in hr.render_report(base, sections=["cost"])  # local files: not recorded
    from range_server import RangeServer

    from neuromfa_native.run.runner import analyze_series
    dirs = make_series_dirs(tmp_path / "c", steps=(0, 40, 2000))
    with RangeServer(dirs[0].parent) as srv:
        out = tmp_path / "url-run"
        analyze_series([srv.url(d.name) for d in dirs], out=out, cache="none", samples=2, per_layer=PER_LAYER,
                       n_threads=1)
    reading = json.loads((out / "run.json").read_text())["reading"]["checkpoints"]
    text = hr.render_report(out, sections=["cost"])
    assert ">bytes_read</th>" in text and ">checkpoint_bytes</th>" in text and "megabytes read" in text
    for d in dirs:
        got = reading[d.name]
        assert got["bytes_read"] > 0 and got["size"] == (d / "model.safetensors").stat().st_size
        assert f'data-v="{float(got["bytes_read"])!r}"' in text and f'data-v="{float(got["size"])!r}"' in text


def test_correlation_plots_written_by_correlate_are_embedded(base, tmp_path):
    run = copy_run(base, tmp_path / "r")
    add_tables(run)
    import matplotlib.pyplot as plt
    (run / "plots").mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(run / "plots" / "correlation_E_vs_scores.png")
    plt.close(fig)
    text = hr.render_report(run, sections=["correlation"])
    assert "plots/correlation_E_vs_scores.png" in text and text.count("<img") == 2


@pytest.mark.slow
def test_reuse_plots_only_when_fresh(base, tmp_path):
    run = copy_run(base, tmp_path / "r")
    (run / "plots").mkdir(exist_ok=True)
    marker = b"\x89PNG\r\n\x1a\n" + b"not-a-real-plot"
    (run / "plots" / "overview.png").write_bytes(marker)
    import base64
    enc = base64.b64encode(marker).decode()
    assert enc in hr.render_report(run, sections=["overview"], reuse_plots=True)
    assert enc not in hr.render_report(run, sections=["overview"])  # drawn again by default
    import os
    old = min(p.stat().st_mtime for p in (run / "results").glob("*/*.npz")) - 100
    os.utime(run / "plots" / "overview.png", (old, old))  # older than the results: stale
    assert enc not in hr.render_report(run, sections=["overview"], reuse_plots=True)
