"""The question in compare and sensitivity (docs/spec.md section 13): each run's verdict side by
side, E values of different configurations marked as not comparable, runs that cannot be
compared refused with a message, and a sensitivity grid that says whether the answer holds."""
from __future__ import annotations

import csv
import json
import os

import pytest

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")

import neuromfa_native as nm  # noqa: E402
from neuromfa_native import cli  # noqa: E402
from neuromfa_native.report.compare import compare_runs  # noqa: E402
from report_fixtures import make_run  # noqa: E402
from tiny_series import PER_LAYER, make_series_dirs, scale_growth_weights, write_checkpoints  # noqa: E402

STEPS = (0, 100, 1000)


def _controlled(root, name, threshold=150.0):
    dirs = write_checkpoints(root / "ckpt", {t: scale_growth_weights(k) for k, t in enumerate(STEPS)})
    out = root / name
    nm.analyze_series(dirs, samples=3, per_layer=12, n_threads=1, out=out, progress=False, threshold=threshold,
                      controls=("gaussian", "scaled"))
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("answers")
    return dict(a=_controlled(root, "a"), b=_controlled(root, "b", threshold=100.0),
                plain=make_run(root / "p", steps=STEPS, name="plain"))


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_compare_shows_each_runs_verdict_and_marks_e_not_comparable(runs, tmp_path):
    p = compare_runs([runs["a"], runs["b"], runs["plain"]], tmp_path / "cmp", names=["a", "b", "plain"], n_boot=100)
    v = {r["run"]: r for r in _rows(tmp_path / "cmp" / "compare_verdict.csv")}
    assert v["a"]["verdict"] == nm.load_run(runs["a"]).verdict().label == "scale"
    assert v["plain"]["verdict"] == "undetermined" and "--controls gaussian,scaled" in v["plain"]["reason"]
    text = p.read_text()
    assert 'id="verdict-table"' in text and text.index('id="verdict-table"') < text.index('<section id="emergence">')
    assert "E values of these runs are not comparable: they differ in threshold (150, 100, 150)" in text
    assert "(not comparable: see below)" in text and "<b>Not comparable:</b> E values of these runs" in text


@pytest.mark.slow
def test_runs_of_one_configuration_are_not_marked(runs, tmp_path):
    other = _controlled(tmp_path, "again")  # the same configuration, another directory
    text = compare_runs([runs["a"], other], tmp_path / "cmp", n_boot=50).read_text()
    assert "not comparable" not in text and 'id="verdict-table"' in text


@pytest.mark.slow
def test_the_same_run_twice_is_refused(runs, tmp_path):
    for second in (runs["a"], str(runs["a"]) + os.sep + ".", runs["a"].parent / ".." / runs["a"].parent.name / "a"):
        with pytest.raises(ValueError, match="the same run directory is given twice"):
            compare_runs([runs["a"], second], tmp_path / "cmp", names=["x", "y"])
    assert cli.main(["compare", str(runs["a"]), str(runs["a"]), "--out", str(tmp_path / "c")]) == 1


def test_runs_without_a_common_step_axis_are_refused(runs, tmp_path, capsys):
    d = make_series_dirs(tmp_path / "m", steps=(0,))[0]
    released = tmp_path / "final"
    d.rename(released)  # a released model: its name carries no step
    out = tmp_path / "one"
    nm.analyze_series([released], samples=2, per_layer=PER_LAYER, n_threads=1, out=out, progress=False)
    with pytest.raises(ValueError, match=r"no common step axis: the checkpoints of one carry no training step "
                                         r"\(one: final\)"):
        compare_runs([runs["plain"], out], tmp_path / "cmp", names=["plain", "one"])
    assert cli.main(["compare", str(runs["plain"]), str(out), "--out", str(tmp_path / "c")]) == 1
    assert "no common step axis" in capsys.readouterr().err


@pytest.mark.slow
def test_sensitivity_asks_the_question_in_every_cell(tmp_path, capsys):
    dirs = [str(d) for d in write_checkpoints(tmp_path / "ckpt", {t: scale_growth_weights(k)
                                                                  for k, t in enumerate(STEPS)})]
    evals = tmp_path / "ev.csv"
    evals.write_text("step,task,metric,value,stderr\n" + "".join(
        f"{s},piqa,acc,{0.5 + 0.1 * i},0.01\n{s},arc,acc,{0.3 + 0.05 * i},0.02\n" for i, s in enumerate(STEPS)))
    rc = cli.main(["sensitivity", *dirs, "--vary", "per-layer=8,12", "--samples", "3", "--threads", "1",
                   "--controls", "gaussian,scaled", "--stats", "--evals", str(evals), "--bootstrap", "100",
                   "--out", str(tmp_path / "sens"), "-q"])
    assert rc == 0
    out = capsys.readouterr().out
    rows = _rows(tmp_path / "sens" / "sensitivity.csv")
    assert [r["cell"] for r in rows] == ["per_layer=8", "per_layer=12"]
    for r in rows:
        v = nm.load_run(tmp_path / "sens" / "cells" / r["cell"]).verdict()
        assert r["verdict"] == v.label and float(r["gaussian_share"]) == pytest.approx(v.gaussian_share)
        assert float(r["remainder_share_hi"]) == pytest.approx(v.remainder_share_hi)
        assert f"{r['cell']}: verdict {v.label}" in out
        assert "rho_E_piqa" in r and "E_vs_step_piqa" in r
        cell = json.loads((tmp_path / "sens" / "cells" / r["cell"] / "summary.json").read_text())
        assert cell["config"]["stats"] is True and cell["config"]["controls"] == ["gaussian", "scaled"]
    text = (tmp_path / "sens" / "sensitivity.html").read_text()
    assert 'id="grid-answer"' in text and "E values of different cells are not comparable" in text
    assert "The verdict is <b>" in text and "rho of E with piqa acc ranges from" in text
