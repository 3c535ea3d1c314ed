"""Run directories from elsewhere (docs/bad-inputs.md): a run touches only its own tree, never
follows a link out of it, reads ``run.json`` only through its schema, and quarantines (and
recomputes) any result it cannot read whole, with a warning and never a traceback.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from tiny_series import PER_LAYER, make_series_dirs

import neuromfa_native as nm
from neuromfa_native.run.schema import check_run_info
from neuromfa_native.run.store import RunStore, load_run, report_lock, run_info


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    return make_series_dirs(tmp_path_factory.mktemp("ckpts"), steps=(0, 100))


def _run(ckpts, out, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = nm.analyze_series(ckpts, samples=2, per_layer=PER_LAYER, n_threads=1, out=out, **kw)
    return s, [str(w.message) for w in caught]


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def done(ckpts, tmp_path):
    """A finished run directory, and the numbers a fresh run gives."""
    out = tmp_path / "run"
    s, _ = _run(ckpts, out)
    return out, s


# ----------------------------------------------------------------------------- links


def test_a_linked_result_folder_is_skipped_and_nothing_outside_is_renamed(ckpts, done, tmp_path) -> None:
    out, fresh = done
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "sample-00000.npz").write_bytes(b"not a result, and not ours")
    key = sorted(p.name for p in (out / "results").iterdir())[0]
    real = out / "results" / key
    real.rename(tmp_path / "moved")
    real.symlink_to(elsewhere, target_is_directory=True)
    before = _snapshot(elsewhere)
    s, msgs = _run(ckpts, out)
    assert _snapshot(elsewhere) == before, "the run touched a folder outside its directory"
    assert any("symbolic link" in m and key in m for m in msgs)
    assert not real.is_symlink() and (real / "sample-00000.npz").is_file()  # recomputed into its own folder
    np.testing.assert_array_equal(s.alpha0_mean, fresh.alpha0_mean)


def test_a_linked_result_file_is_neither_read_nor_renamed(ckpts, done, tmp_path) -> None:
    out, fresh = done
    outside = tmp_path / "outside.npz"
    f = sorted((out / "results").glob("*/sample-00001.npz"))[0]
    outside.write_bytes(f.read_bytes())
    f.unlink()
    f.symlink_to(outside)
    before = outside.read_bytes()
    s, msgs = _run(ckpts, out)
    assert outside.read_bytes() == before and not outside.with_name("outside.npz.corrupt").exists()
    assert any("symbolic link" in m for m in msgs)
    assert not f.is_symlink() and f.is_file()
    np.testing.assert_array_equal(s.alpha0_mean, fresh.alpha0_mean)


#: the derived files the package reads back (summary.json, the report): never links either
READ_BACK = ["summary.json", "correlations.json", "correlations.csv", "samples.csv", "checkpoints.csv",
             "node_dimensions.csv", "controls.csv", "stats.csv", "by_layer.csv"]


@pytest.mark.parametrize("name", ["results", "run.json", "fingerprints.json", ".lock", "plots", *READ_BACK])
@pytest.mark.slow
def test_a_link_among_the_directory_s_own_entries_is_refused(ckpts, done, tmp_path, name) -> None:
    out, _ = done
    target = tmp_path / f"target-{name.strip('.')}"
    p = out / name
    if p.is_dir():
        p.rename(target)
    elif p.exists():
        p.rename(target)
    p.symlink_to(target)
    before = target.exists()
    with pytest.raises(ValueError, match="is a symbolic link") as err:
        _run(ckpts, out)
    assert "\n" not in str(err.value)
    assert target.exists() == before, "the lock file behind the link was created"


@pytest.mark.parametrize("name", [".lock", ".report.lock"])
def test_a_lock_behind_a_dangling_link_is_not_created(ckpts, done, tmp_path, name) -> None:
    out, _ = done
    target = tmp_path / "created-by-the-run"
    (out / name).unlink(missing_ok=True)
    (out / name).symlink_to(target)
    with pytest.raises(ValueError, match="symbolic link"):
        if name == ".lock":
            RunStore(out, json.loads((out / "run.json").read_text())["config"])
        else:
            with report_lock(out):
                pass
    assert not target.exists()


def test_load_run_skips_a_linked_results_folder(done, tmp_path) -> None:
    out, _ = done
    (out / "results").rename(tmp_path / "res")
    (out / "results").symlink_to(tmp_path / "res", target_is_directory=True)
    with pytest.warns(RuntimeWarning, match="symbolic link"):
        s = load_run(out)
    assert not s.complete


SECRET = '{"evals": "SECRET-EVALS", "aws_secret_access_key": "SECRET-DO-NOT-SHARE"}'


@pytest.mark.parametrize("name", READ_BACK)
def test_neuromfa_report_refuses_a_derived_file_that_is_a_link(done, tmp_path, capsys, name) -> None:
    from neuromfa_native.cli import main
    out, _ = done
    secret = tmp_path / "credentials.json"
    secret.write_text(SECRET)
    (out / name).symlink_to(secret)
    assert main(["report", str(out), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neuromfa: error:") and err.count("\n") == 1 and "symbolic link" in err
    assert "SECRET" not in "".join(p.read_text() for p in out.glob("*.json") if not p.is_symlink())


@pytest.mark.slow
def test_a_linked_correlation_is_never_copied_into_summary_json_or_the_page(done, tmp_path) -> None:
    """write_report and report.html read no lock (the API): the linked correlations.json is not
    read, and a note says why; nothing of the file it points to reaches summary.json, the
    page, or the page's reproduce command."""
    from neuromfa_native.report.html import render_report
    out, s = done
    secret = tmp_path / "credentials.json"
    secret.write_text(SECRET)
    (out / "correlations.json").symlink_to(secret)
    (out / "correlations.csv").write_text("quantity,task,metric\nE,piqa,acc\n")
    nm.write_report(s, out, plots=False)
    summary = (out / "summary.json").read_text()
    assert "SECRET" not in summary and "correlation" not in json.loads(summary)
    assert any("symbolic link" in n for n in json.loads(summary)["notes"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = render_report(out)
    assert "SECRET" not in page and "symbolic link" in page


def test_a_correlation_json_nested_without_end_is_one_note_not_a_traceback(done) -> None:
    """A correlations.json nested 100 000 deep: `neuromfa report` writes its files, and the
    summary says why the correlation is not used (it ended in a RecursionError traceback)."""
    from neuromfa_native.cli import main
    from neuromfa_native.report.html import render_report
    out, _ = done
    (out / "correlations.json").write_bytes(b"[" * 100_000 + b"]" * 100_000)
    assert main(["report", str(out), "--no-plots", "-q"]) == 0
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert any("correlations.json" in n and "nested too deeply" in n and "\n" not in n for n in notes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "nested too deeply" in render_report(out)


# ----------------------------------------------------------------------------- result files


def _rewrite_meta(path: Path, change) -> None:
    """A result file with its header changed and a *valid* checksum (as an attacker writes it)."""
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    meta = json.loads(str(data["meta"]))
    change(meta)
    body = json.dumps(meta)
    data["meta"], data["meta_sha256"] = np.array(body), np.array(hashlib.sha256(body.encode()).hexdigest())
    buf = io.BytesIO()
    np.savez(buf, **data)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("change", [
    lambda m: m.pop("n_network_nodes"),
    lambda m: m.pop("spectrum"),
    lambda m: m.update(spectrum=[1, 2]),
    lambda m: m.update(spectrum_tuples=5),
    lambda m: m.update(n_network_edges="many"),
    lambda m: m.update(node_dimensions={"layer_names": 3}),
    lambda m: m.update(seconds=[1]),
    lambda m: m["spectrum"].update(alpha0="0.95"),
    lambda m: m["spectrum"].update(notes=[{"x": 1}]),
    lambda m: m.update(architecture=["gpt_neox"]),
    lambda m: m["node_dimensions"].update(layer_names=["one"]),
], ids=["no-nodes", "no-spectrum", "spectrum-list", "tuples-int", "edges-str", "nd-bad", "seconds-list",
        "alpha0-str", "notes-dict", "arch-list", "nd-layers-short"])
@pytest.mark.slow
def test_a_result_with_a_valid_checksum_but_bad_fields_is_quarantined(ckpts, done, change) -> None:
    out, fresh = done
    f = sorted((out / "results").glob("*/sample-00000.npz"))[0]
    _rewrite_meta(f, change)
    s, msgs = _run(ckpts, out)
    assert any("could not be trusted" in m and "recomputed" in m for m in msgs)
    assert f.with_name(f.name + ".corrupt").exists() and f.is_file()
    np.testing.assert_array_equal(s.alpha0_mean, fresh.alpha0_mean)
    assert s.n_computed == 1


@pytest.mark.slow
def test_a_compressed_result_member_is_never_inflated(ckpts, done) -> None:
    out, fresh = done
    f = sorted((out / "results").glob("*/sample-00000.npz"))[0]
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:  # 256 MB of zeros in a few hundred kB
        with z.open("meta.npy", "w") as fh:
            for _ in range(256):
                fh.write(bytes(1 << 20))
    assert f.stat().st_size < 2 << 20
    s, msgs = _run(ckpts, out)
    assert any("compressed" in m for m in msgs)
    np.testing.assert_array_equal(s.alpha0_mean, fresh.alpha0_mean)


# ----------------------------------------------------------------------------- run.json


@pytest.mark.parametrize(("change", "what"), [
    (lambda i: i.update(config=[1]), "'config' must be an object"),
    (lambda i: i.update(config={"per_layer": "x"}), "per_layer"),
    (lambda i: i.update(series=5), "'series' must be a list"),
    (lambda i: i["series"].append(7), r"series\[2\] must be an object"),
    (lambda i: i["series"][0].update(step="zero"), r"series\[0\].step has the wrong type"),
    (lambda i: i["series"][0].update(step=2**70), r"series\[0\].step is out of range"),
    (lambda i: i["series"][0].update(tokens="4B"), r"series\[0\].tokens has the wrong type"),
    (lambda i: i["series"][0].update(tokens=-1), r"series\[0\].tokens is out of range"),
    (lambda i: i["series"][0].pop("label"), r"series\[0\] has no 'label'"),
    (lambda i: i["series"][1].update(source=["a"]), r"series\[1\].source"),
    (lambda i: i.update(aggregation=[]), "'aggregation' must be an object"),
    (lambda i: i["aggregation"].update(samples="01"), "aggregation.samples"),
    (lambda i: i["aggregation"].update(n_bootstrap=10**12), "n_bootstrap must be at most"),
    (lambda i: i["aggregation"].pop("seed"), "'aggregation' lacks"),
    (lambda i: i.update(format="other/9"), "format"),
    (lambda i: i.update(created="yesterday"), "'created' has the wrong type"),
    (lambda i: i.update(errors=[{"x": 1}]), "'errors' must hold strings"),
    (lambda i: i["aggregation"].update(seed=-1), "seed must be a non-negative integer"),
    (lambda i: i["series"][1].update(label=i["series"][0]["label"]),
     r"series\[1\] has the label 'step0' of series\[0\]: labels must be distinct"),
    (lambda i: i["series"][1].update(step=i["series"][0]["step"]),
     r"series\[1\] has the training step 0 of series\[0\]: steps must be distinct"),
    (lambda i: i["series"][1].update(source=i["series"][0]["source"]),
     r"series\[1\] names the checkpoint of series\[0\]"),
])
@pytest.mark.slow
def test_a_run_json_with_wrong_types_is_one_line(ckpts, done, change, what) -> None:
    out, _ = done
    info = json.loads((out / "run.json").read_text())
    change(info)
    (out / "run.json").write_text(json.dumps(info))
    for attempt in (lambda: load_run(out), lambda: run_info(out), lambda: _run(ckpts, out)):
        with pytest.raises(ValueError, match=what) as err:
            attempt()
        assert "run.json" in str(err.value) and "\n" not in str(err.value)


def test_hub_revisions_of_one_step_in_two_stages_are_not_refused(done) -> None:
    """make_series keeps hub revisions of one step in two training stages (their names order
    them): the check of run.json refuses repeated steps only where make_series does."""
    out, _ = done
    info = json.loads((out / "run.json").read_text())
    for e in info["series"]:
        e.update(revision="stage1-step0" if e is info["series"][0] else "stage2-step0", step=0)
    assert [e["step"] for e in check_run_info(info, "run.json")["series"]] == [0, 0]


def test_baseline_index_says_when_a_label_names_several_checkpoints() -> None:
    from neuromfa_native.run.checkpoints import Checkpoint, baseline_index
    cps = [Checkpoint("a", None, "step0", 0), Checkpoint("b", None, "step0", 1), Checkpoint("c", None, "x", 2)]
    with pytest.raises(ValueError, match=r"baseline 'step0' names 2 checkpoints of the series \(labels: "):
        baseline_index(cps, "step0")
    with pytest.raises(ValueError, match=r"baseline 'y' names no checkpoint of the series"):
        baseline_index(cps, "y")


def test_overwrite_replaces_a_broken_run_json(ckpts, done) -> None:
    out, fresh = done
    (out / "run.json").write_text(json.dumps({"format": "neuromfa-run/1", "config": [1]}))
    s, _ = _run(ckpts, out, overwrite=True)
    np.testing.assert_array_equal(s.alpha0_mean, fresh.alpha0_mean)


def test_a_run_json_nested_without_end_is_one_line(done) -> None:
    out, _ = done
    (out / "run.json").write_bytes(b'{"config": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(ValueError, match=r"run\.json.*nested too deeply") as err:
        load_run(out)
    assert "\n" not in str(err.value)


def test_a_hostile_fingerprint_cache_is_dropped(ckpts, done) -> None:
    out, fresh = done
    cache = json.loads((out / "fingerprints.json").read_text())
    (out / "fingerprints.json").write_text(json.dumps({k: [1, 2] for k in cache}))
    s, _ = _run(ckpts, out)
    np.testing.assert_array_equal(s.alpha0_mean, fresh.alpha0_mean)
    assert s.n_computed == 0  # the fingerprints were computed again and the results reused


def test_the_cli_reports_a_broken_run_in_one_line(done, capsys) -> None:
    from neuromfa_native.cli import main
    out, _ = done
    info = json.loads((out / "run.json").read_text())
    info["config"] = [1]
    (out / "run.json").write_text(json.dumps(info))
    assert main(["report", str(out), "--no-plots"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neuromfa: error:") and err.count("\n") == 1 and os.fspath(out) in err


def test_the_cli_lines_read_from_the_run_directory_survive_hostile_json(tmp_path) -> None:
    """The verdict line (summary.json) and the bytes-read line (run.json) the CLI prints after a
    run read their files through the one JSON reader: nested without end, or a link, they are
    left out (a RecursionError traceback before)."""
    from neuromfa_native.cli.analyze import _reading_line, verdict_line
    deep = b"[" * 100_000 + b"]" * 100_000
    for name in ("summary.json", "run.json"):
        (tmp_path / name).write_bytes(deep)
    assert verdict_line(tmp_path) == "" and _reading_line(tmp_path) == ""
    secret = tmp_path / "elsewhere.json"
    secret.write_text(json.dumps({"verdict": {"sentence": "SECRET", "label": "x"}, "reading": {"n_known": 1}}))
    for name in ("summary.json", "run.json"):
        (tmp_path / name).unlink()
        (tmp_path / name).symlink_to(secret)
    assert verdict_line(tmp_path) == "" and _reading_line(tmp_path) == ""
