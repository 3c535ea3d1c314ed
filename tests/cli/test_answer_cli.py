"""The paper's question asked the way a new user asks it (docs/answer.md): ``neuromfa analyze ...
--controls ... --stats --evals ...`` answers it in the terminal, summary.json and the report;
without the controls it says which flag adds them; one checkpoint is its own case."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from paths import ROOT

ROOT = ROOT
EXAMPLE = ROOT / "examples" / "pythia-tiny"
PICK = ("step0", "step64", "step500", "step2000")


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "neuromfa_native.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg"))


@pytest.fixture(scope="module")
def answered(tmp_path_factory):
    out = tmp_path_factory.mktemp("answer") / "run"
    p = _cli("analyze", *(EXAMPLE / s for s in PICK), "--samples", 3, "--per-layer", 16, "--threads", 1,
             "--controls", "gaussian,shuffle,scaled", "--stats", "--evals", EXAMPLE / "evals", "--out", out,
             "--bootstrap", 300)
    assert p.returncode == 0, p.stderr
    return out, p


@pytest.mark.slow
def test_the_terminal_answers_after_the_table(answered):
    out, p = answered
    lines = p.stdout.splitlines()
    table_end = max(i for i, ln in enumerate(lines) if ln.strip().startswith("2000"))
    verdict = [i for i, ln in enumerate(lines) if ln.startswith("Verdict: ")]
    assert len(verdict) == 1 and verdict[0] > table_end
    summary = json.loads((out / "summary.json").read_text())
    v = summary["verdict"]
    assert lines[verdict[0]] == f"Verdict: {v['sentence']} [{v['label']}]"
    assert v["label"] in ("scale", "beyond_scale", "mixed", "no_emergence") and v["step"] == 2000
    for k in ("gaussian_share_lo", "gaussian_share_hi", "remainder_share_lo", "remainder_share_hi", "reason"):
        assert k in v
    files = next(ln for ln in lines if "results in" in ln)
    for name in ("controls.csv", "stats.csv", "checkpoints.csv", "summary.json", "report.html"):
        assert name in files, (name, files)
    assert "correlations.csv, correlations.json" in p.stdout
    first = lines[next(i for i, ln in enumerate(lines) if ln.startswith("quantity")) + 1]
    assert first.split()[0] == "E"
    assert "rho(E, step) = " in p.stdout and "have q < 0.05" in p.stdout
    corr = summary["correlation"]
    assert corr["scores_model"] == "examples/pythia-tiny" and corr["run_model"].endswith("examples/pythia-tiny")
    assert corr["n_q_below_0_05"] >= 1 and corr["n_rows"] == 19
    assert "warning" not in p.stderr


@pytest.mark.slow
def test_the_report_leads_with_the_verdict(answered):
    out, _ = answered
    page = (out / "report.html").read_text()
    header = page[page.index('<header id="header">'):page.index("</header>")]
    v = json.loads((out / "summary.json").read_text())["verdict"]
    assert header.index('id="verdict"') < header.index("Degree of emergence E")
    assert f"<b>Verdict: {v['label']}</b>" in header
    assert "<i>scaled</i> reproduces" not in page and "each null network" not in page
    cap = page[page.index('<section id="controls">'):]
    cap = cap[cap.index("<figcaption>"):cap.index("</figcaption>")]
    assert "<i>scaled</i> keeps the structure and the shape of the weight distribution and removes the growth of " \
           "the weight scale since the baseline" in cap
    assert "<i>gaussian</i> keeps the weight scale" in cap and "<i>shuffle</i> keeps the distribution" in cap


@pytest.mark.slow
def test_report_names_the_verdict_step_and_refuses_an_unknown_one(answered, tmp_path):
    out, _ = answered
    p = _cli("report", out, "--verdict-step", 500, "--no-plots")
    assert p.returncode == 0, p.stderr
    v = json.loads((out / "summary.json").read_text())["verdict"]
    assert v["step"] == 500 and v["requested_step"] == 500 and "at step500" in p.stdout
    p = _cli("report", out, "--verdict-step", 7, "--no-plots")
    assert p.returncode == 1 and p.stderr.startswith("neuromfa: error: step must be a training step or a checkpoint")
    assert json.loads((out / "summary.json").read_text())["verdict"]["step"] == 500  # nothing rewritten
    _cli("report", out, "--no-plots")


@pytest.mark.slow
def test_a_run_without_controls_says_which_flag_adds_them(tmp_path):
    out = tmp_path / "run"
    p = _cli("analyze", *(EXAMPLE / s for s in PICK[::2]), "--samples", 2, "--per-layer", 8, "--threads", 1,
             "--no-plots", "--out", out)
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("Verdict: "))
    assert line.startswith("Verdict: Undetermined: the run lacks the gaussian and scaled controls: add --controls "
                           "gaussian,scaled") and line.endswith("[undetermined]")


@pytest.mark.slow
def test_one_checkpoint_compares_with_the_controls_instead_of_an_e(tmp_path):
    out = tmp_path / "run"
    p = _cli("analyze", EXAMPLE / "step2000", "--samples", 3, "--per-layer", 16, "--threads", 1,
             "--controls", "gaussian,shuffle", "--out", out, "--bootstrap", 200)
    assert p.returncode == 0, p.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert "controls" not in summary  # no "E = 0.000 (real E = 0.000)"
    v = summary["verdict"]
    assert v["label"] == "undetermined" and [r["network"] for r in v["contrast"]] == ["real", "gaussian", "shuffle"]
    assert "Verdict: Undetermined: one checkpoint has no E." in p.stdout and "cannot say" in p.stdout
    page = (out / "report.html").read_text()
    header = page[page.index('<header id="header">'):page.index("</header>")]
    assert "Degree of emergence E at" not in header and "One checkpoint" in header
    assert "One checkpoint: the real network" in page  # the contrast figure, not a one-dot E curve
