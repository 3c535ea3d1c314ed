"""The cost section reads run.json's ``reading`` (its schema checks only that it is an object):
a hostile shape leaves the byte counts out, and the page is still written."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

from neuromfa_native.report.html import render_report  # noqa: E402
from report_fixtures import copy_run, make_run  # noqa: E402


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("cost"))


def _with_reading(base, dst, reading):
    run = copy_run(base, dst)
    info = json.loads((run / "run.json").read_text())
    info["reading"] = reading
    (run / "run.json").write_text(json.dumps(info))
    return run, [e["label"] for e in info["series"]]


def test_known_byte_counts_are_shown(base, tmp_path) -> None:
    run, labels = _with_reading(base, tmp_path / "run", None)
    info = json.loads((run / "run.json").read_text())
    info["reading"] = {"checkpoints": {labels[-1]: {"bytes_read": 3_000_000, "size": 9_000_000}}}
    (run / "run.json").write_text(json.dumps(info))
    text = render_report(run, sections=["cost"])
    assert "megabytes read per checkpoint" in text and ">3.00 MB<" in text
    assert "could not be drawn" not in text


@pytest.mark.parametrize("shape", [
    {"checkpoints": [1, 2]},
    {"checkpoints": "all"},
    {"checkpoints": {"LABEL": "x"}},
    {"checkpoints": {"LABEL": {"bytes_read": "many", "size": 10 ** 400}}},
    {"checkpoints": {"LABEL": {"bytes_read": True, "size": [1]}}},
])
def test_hostile_reading_leaves_the_bytes_out(base, tmp_path, shape) -> None:
    run, labels = _with_reading(base, tmp_path / "run", None)
    shape = json.loads(json.dumps(shape).replace("LABEL", labels[-1]))
    info = json.loads((run / "run.json").read_text())
    info["reading"] = shape
    (run / "run.json").write_text(json.dumps(info))
    text = render_report(run, sections=["cost"])  # the header reads no byte count
    assert 'id="cost-table"' in text and "could not be drawn" not in text
    assert "megabytes read per checkpoint" not in text
    assert "The run recorded no byte counts" in text
