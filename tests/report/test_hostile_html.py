"""Every HTML the library writes, fed hostile strings in every field that can come from a file
(docs/bad-inputs.md): checkpoint names and sources, revisions, notes, run.json strings, result
headers (architecture, layout, spectrum notes, layer names), CSV cells, eval tasks and metrics,
error messages. Every notebook view and every page must hold them as text: no element, no
attribute, no ``javascript:`` URL of theirs; the pages run exactly one script, the one whose
hash their content security policy names.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from tiny_series import PER_LAYER, make_series_dirs

import neuromfa_native as nm
from neuromfa_native.report.page import CSP, SORT_JS, page
from neuromfa_native.run.derived import run_state
from neuromfa_native.run.store import run_info

pytest.importorskip("matplotlib", reason="the report pages embed matplotlib figures")

#: Strings an attacker writes into a run directory or a checkpoint's files.
PAYLOADS = ['<xss1 id=a>', '"><xss2 onerror=alert(2)>', "'><xss3 onload=alert(3)>", "</style><xss4>",
            "</script><xss5>", "javascript:alert(6)", "<img src=x onerror=alert(7)>", "&lt;xss8&gt;",
            "</textarea><xss9>", "<!--<xss10>-->"]
HOSTILE = " ".join(PAYLOADS)
#: What a file name can hold (no '/').
FS_HOSTILE = "<xssfs onerror=alert(11)>\"'&"


class _Markup(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list = []
        self.scripts: list = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def assert_inert(html: str, *, scripts: int = 0, where: str = "") -> _Markup:
    """No element, attribute or URL of the payloads; at most ``scripts`` scripts."""
    p = _Markup()
    p.feed(html)
    p.close()
    for tag, attrs in p.tags:
        assert not tag.startswith("xss"), f"{where}: the payload made an element <{tag}>"
        for name, value in attrs:
            assert not name.startswith("on"), f"{where}: the payload made an attribute {name} on <{tag}>"
            assert not (value or "").strip().lower().startswith("javascript:"), f"{where}: a javascript: URL"
        if tag == "img":
            src = dict(attrs).get("src") or ""
            assert src.startswith("data:image/png;base64,"), f"{where}: an image from elsewhere: {src[:40]}"
    assert len(p.scripts) <= scripts, f"{where}: {len(p.scripts)} scripts"
    assert "<xss" not in html.replace("&lt;xss", ""), f"{where}: a raw payload"
    return p


def _csp_hashes(html: str) -> list:
    m = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert m, "no content security policy"
    policy = m.group(1)
    script_src = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src
    return re.findall(r"'sha256-([A-Za-z0-9+/=]+)'", script_src)


def test_the_csp_hash_is_the_hash_of_the_one_inline_script() -> None:
    html = page("t", "<p>x</p>")
    p = assert_inert(html, scripts=1)
    want = base64.b64encode(hashlib.sha256(p.scripts[0].encode()).digest()).decode()
    assert p.scripts[0] == SORT_JS and _csp_hashes(html) == [want] and f"'sha256-{want}'" in CSP


# ----------------------------------------------------------------------------- a hostile run


def _rewrite_results(run: Path) -> None:
    """Every result header's strings hostile, with valid checksums (as an attacker writes them)."""
    for f in (run / "results").glob("*/*.npz"):
        with np.load(f, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(str(data["meta"]))
        meta["architecture"] = meta["layout"] = HOSTILE
        meta["spectrum"]["notes"] = [HOSTILE]
        if meta.get("node_dimensions"):
            meta["node_dimensions"]["layer_names"] = [HOSTILE + str(i) for i in
                                                       range(len(meta["node_dimensions"]["layer_names"]))]
        for row in meta.get("by_layer") or []:
            for k, v in row.items():
                if isinstance(v, str):
                    row[k] = v + HOSTILE
        body = json.dumps(meta)
        data["meta"], data["meta_sha256"] = np.array(body), np.array(hashlib.sha256(body.encode()).hexdigest())
        buf = io.BytesIO()
        np.savez(buf, **data)
        f.write_bytes(buf.getvalue())


def _rewrite_run_json(run: Path) -> None:
    info = json.loads((run / "run.json").read_text())
    for e in info["series"]:
        e["source"] += HOSTILE
        e["revision"] = HOSTILE
        e["notes"] = HOSTILE
        e["label"] += HOSTILE
    info["aggregation"]["baseline"] = info["series"][0]["label"]
    info.update(machine=HOSTILE, version=HOSTILE, errors=[HOSTILE], status="failed", n_failed=1)
    info["config"]["layout"] = [[HOSTILE, "a" + HOSTILE, "b" + HOSTILE]]
    (run / "run.json").write_text(json.dumps(info))


def _rewrite_csvs(run: Path) -> None:
    """Every text cell of every table hostile (the numbers stay numbers)."""
    for f in run.glob("*.csv"):
        with open(f, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            continue
        for r in rows:
            for k, v in r.items():
                try:
                    float(v)
                except (TypeError, ValueError):
                    r[k] = (v or "") + HOSTILE
        with open(f, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


def _evals() -> dict:
    task, metric = "piqa" + HOSTILE, "acc" + HOSTILE
    return {s: {task: {metric: v}, "arc" + HOSTILE: {"acc": 1 - v}} for s, v in ((0, 0.3), (100, 0.5), (1000, 0.7))}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    dirs = [d.rename(d.with_name(d.name + FS_HOSTILE)) for d in make_series_dirs(root / "c", steps=(0, 100, 1000))]
    run = root / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = nm.analyze_series(dirs, samples=2, per_layer=PER_LAYER, n_threads=1, out=run, controls="gaussian",
                              stats=True, by_layer=True)
        nm.write_report(s, run)
        corr = nm.correlate(s, _evals(), metric=None, n_boot=20)
    (run / "correlations.csv").write_text(corr.to_csv())
    _rewrite_results(run)
    _rewrite_run_json(run)
    _rewrite_csvs(run)
    # of the run as it now is (the report shows a correlation only of the run's current state)
    state = run_state(run_info(run))
    (run / "correlations.json").write_text(json.dumps({"evals": HOSTILE, "run_state": state}))
    return run, dirs


@pytest.mark.slow
def test_the_report_page_holds_hostile_strings_as_text(hostile_run) -> None:
    from neuromfa_native.report.html import render_report
    run, _ = hostile_run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        html = render_report(run)
    p = assert_inert(html, scripts=1, where="report.html")
    assert _csp_hashes(html) == [base64.b64encode(hashlib.sha256(p.scripts[0].encode()).digest()).decode()]
    assert html.count("&lt;xss1 id=a&gt;") >= 5  # the payloads are there, as text
    assert "&amp;lt;xss8&amp;gt;" in html  # escaped text stays text, not markup


@pytest.mark.slow
def test_the_notebook_views_hold_hostile_strings_as_text(hostile_run) -> None:
    run, dirs = hostile_run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = nm.load_run(run)
        html = s._repr_html_()
        assert_inert(html, where="Series")
        assert "&lt;xss1 id=a&gt;" in html
        for rs in s.results:
            for r in rs:
                assert_inert(r.spectrum._repr_html_(), where="Spectrum")
        a = nm.analyze(dirs[0], samples=2, per_layer=PER_LAYER, n_threads=1)
        assert_inert(a._repr_html_(), where="Analysis")
        corr = nm.correlate(s, _evals(), metric=None, n_boot=0)
        assert_inert(corr._repr_html_(), where="Correlation")


@pytest.mark.slow
def test_compare_and_sensitivity_pages_hold_hostile_strings_as_text(hostile_run, tmp_path) -> None:
    from neuromfa_native.report.compare import compare_runs, run_sensitivity
    import shutil

    run, dirs = hostile_run
    other = tmp_path / "run-copy"  # compare refuses the same run twice: a second directory of it
    shutil.copytree(run, other)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = compare_runs([run, other], tmp_path / "cmp", names=["a" + HOSTILE, "b" + HOSTILE], n_boot=20,
                         title=HOSTILE, intro="")
        assert_inert(p.read_text(), scripts=1, where="compare.html")
        q = run_sensitivity(dirs, {"per_layer": [8, PER_LAYER]}, tmp_path / "sens", evals=_evals(), n_boot=20,
                            samples=2, n_threads=1)
    assert_inert(q.read_text(), scripts=1, where="sensitivity.html")
    for cell in (tmp_path / "sens" / "cells").iterdir():
        assert_inert((cell / "report.html").read_text(), scripts=1, where=f"{cell.name}/report.html")


@pytest.mark.slow
def test_a_section_error_message_is_text(hostile_run, tmp_path) -> None:
    """A table that cannot be drawn says why, and the why may quote the file."""
    import shutil

    from neuromfa_native.report.html import render_report
    run, _ = hostile_run
    bad = tmp_path / "run"
    shutil.copytree(run, bad)
    (bad / "controls.csv").write_text(f"{HOSTILE}\n1\n")
    (bad / "stats.csv").write_text(f"checkpoint,{HOSTILE}\nx,1\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_inert(render_report(bad), scripts=1, where="report.html with broken tables")


def test_a_series_built_in_memory_escapes_its_config_strings(hostile_run) -> None:
    """The notebook view does not rely on run.json's schema: a Series made from any config dict
    (a library user's, a pipeline's) is shown as text too."""
    import dataclasses
    run, _ = hostile_run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = nm.load_run(run)
    cfg = dict(s.config, box=HOSTILE, per_layer=HOSTILE, threshold=HOSTILE, layout=HOSTILE)
    hostile = dataclasses.replace(s, config=cfg)
    assert_inert(hostile._repr_html_(), where="Series with a hostile config")


@pytest.mark.slow
def test_a_plot_that_is_a_link_is_not_embedded(hostile_run, tmp_path) -> None:
    """A PNG in plots/ that links to a file elsewhere (a key, a password file) would be read and
    embedded, base64, in a page the user may share."""
    import shutil

    from neuromfa_native.report.html import render_report
    run, _ = hostile_run
    d = tmp_path / "run"
    shutil.copytree(run, d, symlinks=True)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"SECRET-KEY-MATERIAL" * 10)
    (d / "plots").mkdir(exist_ok=True)
    for name in ("correlation_scatter.png", "controls_E.png", "overview.png"):
        (d / "plots" / name).unlink(missing_ok=True)
        (d / "plots" / name).symlink_to(secret)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        html = render_report(d, reuse_plots=True)
    assert base64.b64encode(secret.read_bytes())[:40].decode() not in html


@pytest.mark.slow
def test_a_table_that_is_a_link_is_not_shown(hostile_run, tmp_path) -> None:
    import shutil

    from neuromfa_native.report.html import render_report
    run, _ = hostile_run
    d = tmp_path / "run"
    shutil.copytree(run, d, symlinks=True)
    secret = tmp_path / "secret.csv"
    secret.write_text("checkpoint,quantity,value\nSECRET-ROW,E,1\n")
    for name in ("stats.csv", "controls.csv", "correlations.csv", "by_layer.csv"):
        (d / name).unlink(missing_ok=True)
        (d / name).symlink_to(secret)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        html = render_report(d)
    assert "SECRET-ROW" not in html
