"""Results that went stale or joined wrongly without any attacker (docs/bad-inputs.md): a stored
result is keyed by the weights *and* the network config.json builds from them; a sharded index's
cached fingerprint covers its shards; a config that disagrees with the tensors is refused before
anything is built. Each is tested both ways: what changes the network recomputes, a plain rerun
with unchanged inputs reuses everything.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from model_factory import write_model
from tiny_series import PER_LAYER, make_series_dirs

import neuromfa_native as nm
from neuromfa_native.io.safetensors import write_safetensors
from neuromfa_native.network.fingerprint import network_digest
from neuromfa_native.network.nin import load_layout


def _run(sources, out=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nm.analyze_series(sources, samples=2, per_layer=PER_LAYER, n_threads=1, out=out, **kw)


def _set_config(folder, **changes) -> None:
    p = folder / "config.json"
    cfg = json.loads(p.read_text())
    cfg.update(changes)
    p.write_text(json.dumps(cfg))


def test_a_corrected_config_recomputes_and_a_plain_rerun_reuses(tmp_path) -> None:
    """GPT-NeoX with layout="heads": num_attention_heads shapes the QKV blocks, not the tensors."""
    dirs = make_series_dirs(tmp_path / "c", steps=(0, 100))
    out = tmp_path / "run"
    first = _run(dirs, out, layout="heads")
    again = _run(dirs, out, layout="heads")
    assert again.n_computed == 0 and again.n_reused == first.n_computed == 4  # unchanged inputs: reused
    for d in dirs:
        _set_config(d, num_attention_heads=8)
    fixed = _run(dirs, out, layout="heads")
    fresh = _run(dirs, layout="heads")
    assert fixed.n_computed == 4 and fixed.n_reused == 0
    np.testing.assert_array_equal(fixed.alpha0_mean, fresh.alpha0_mean)
    assert not np.array_equal(fixed.alpha0_mean, first.alpha0_mean)  # the old results would have been wrong
    assert fixed.fingerprints == first.fingerprints  # the same weights ...
    assert _run(dirs, out, layout="heads").n_computed == 0  # ... and the new key is reused in turn
    assert nm.load_run(out).alpha0_mean.tolist() == fresh.alpha0_mean.tolist()


def test_a_config_change_outside_the_network_changes_no_key(tmp_path) -> None:
    dirs = make_series_dirs(tmp_path / "c", steps=(0, 100))
    out = tmp_path / "run"
    _run(dirs, out)
    for d in dirs:
        _set_config(d, vocab_size=99, hidden_dropout=0.5)  # config.json changed, the network not
    assert _run(dirs, out).n_computed == 0


@pytest.mark.parametrize("changes", [dict(num_attention_heads=2, num_key_value_heads=1, head_dim=16),
                                     dict(num_key_value_heads=4, num_attention_heads=8, head_dim=4)])
def test_llama_heads_change_the_network_with_the_same_tensor_shapes(tmp_path, changes) -> None:
    d = write_model("llama", tmp_path / "m")
    _, before = load_layout(d, "default")
    out = tmp_path / "run"
    first = _run([d], out)
    _set_config(d, **changes)
    _, after = load_layout(d, "default")  # still fits the tensors: the same shapes
    assert network_digest(before) != network_digest(after)
    rerun = _run([d], out)
    assert rerun.n_computed == 2 and rerun.fingerprints == first.fingerprints
    np.testing.assert_array_equal(rerun.alpha0_mean, _run([d]).alpha0_mean)


def test_the_network_digest_is_the_same_in_another_process() -> None:
    _, lay = load_layout("examples/pythia-tiny/step0", "heads")
    code = ("from neuromfa_native.network.nin import load_layout\n"
            "from neuromfa_native.network.fingerprint import network_digest\n"
            "print(network_digest(load_layout('examples/pythia-tiny/step0', 'heads')[1]))")
    env = dict(os.environ, PYTHONHASHSEED="123")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == network_digest(lay)


def _shard(folder, src_dir, n_shards=2):
    """``folder/model.safetensors.index.json`` over ``n_shards`` shards of ``src_dir``'s weights."""
    src = nm.resolve_source(src_dir)
    names = src.tensor_names()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src_dir / "config.json", folder / "config.json")
    wmap = {}
    for i in range(n_shards):
        f = f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors"
        part = names[i::n_shards]
        write_safetensors(folder / f, {n: np.array(src.get(n)) for n in part})
        wmap.update({n: f for n in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wmap}))
    return folder / "model.safetensors.index.json"


def test_an_index_source_sees_its_shards_replaced(tmp_path) -> None:
    """With the index file as the source, the cached fingerprint covered the index only: after
    the shards were replaced, a rerun reported the old shards' alpha0."""
    dirs = make_series_dirs(tmp_path / "c", steps=(0, 100, 1000))
    idx = [_shard(tmp_path / "s" / f"step{t}", d) for t, d in zip((0, 100, 1000), dirs)]
    out = tmp_path / "run"
    first = _run(idx, out)
    assert _run(idx, out).n_computed == 0  # unchanged: everything reused
    for t in (100, 1000):  # the shards of step100 and step1000 now hold step0's weights
        src = tmp_path / "s" / "step0"
        for f in src.glob("model-*.safetensors"):
            dst = tmp_path / "s" / f"step{t}" / f.name
            shutil.copy(f, dst)
            st = dst.stat()
            os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    rerun = _run(idx, out)
    assert rerun.n_computed == 0 and rerun.n_reused == 2  # identical to step0 now: its results serve
    assert rerun.fingerprints[1] == rerun.fingerprints[0] != first.fingerprints[1]
    np.testing.assert_array_equal(rerun.alpha0_mean, np.full(3, first.alpha0_mean[0]))


def test_a_config_beside_a_single_file_is_part_of_its_signature(tmp_path) -> None:
    d = make_series_dirs(tmp_path / "c", steps=(0,))[0]
    f = d / "model.safetensors"
    out = tmp_path / "run"
    first = _run([f], out, layout="heads")
    _set_config(d, num_attention_heads=8)
    rerun = _run([f], out, layout="heads")
    assert rerun.n_computed == 2 and not np.array_equal(rerun.alpha0_mean, first.alpha0_mean)


# ----------------------------------------------------------------------------- config vs tensors


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2", "llama", "bert"])
def test_a_config_with_fewer_layers_than_the_checkpoint_is_refused(tmp_path, arch) -> None:
    d = write_model(arch, tmp_path / "m")
    key = "n_layer" if arch == "gpt2" else "num_hidden_layers"
    _set_config(d, **{key: 1})
    with pytest.raises(ValueError, match=rf"config\['{key}'\] = 1, but the checkpoint holds 2 blocks"):
        nm.describe(d)
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="holds 2 blocks"):
        _run([d], out)
    assert not list((out / "results").glob("*/*.npz")) if out.exists() else True


def test_a_config_with_more_layers_than_the_checkpoint_names_the_missing_tensor(tmp_path) -> None:
    d = write_model("gpt_neox", tmp_path / "m")
    _set_config(d, num_hidden_layers=3)
    with pytest.raises(ValueError, match=r"missing tensor 'gpt_neox\.layers\.2\."):
        nm.describe(d)


def test_config_integers_beyond_any_array_are_refused(tmp_path) -> None:
    d = write_model("gpt_neox", tmp_path / "m")
    _set_config(d, hidden_size=2**70)
    with pytest.raises(ValueError, match=r"config\['hidden_size'\] must be at most"):
        nm.describe(d)


# ----------------------------------------------------------------------------- derived files

def _evals_csv(path, steps) -> str:
    rows = ["step,task,metric,value,stderr"] + [f"{s},piqa,acc,{0.5 + 0.05 * i},0.01" for i, s in enumerate(steps)]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def _analyze(*args) -> None:
    from neuromfa_native import cli
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["analyze", *map(str, args), "--samples", "2", "--per-layer", str(PER_LAYER), "--threads", "1",
                         "-q", "--no-plots"]) == 0


def _page(out) -> str:
    from neuromfa_native import cli
    from neuromfa_native.report.html import render_report
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["report", str(out), "--no-plots", "-q"]) == 0
        return render_report(out)


SECTIONS = ("Controls: what each keeps", "Rival statistics", "Correlation with benchmark scores")


@pytest.mark.slow
def test_overwrite_discards_every_derived_file_of_the_old_run(tmp_path) -> None:
    """--overwrite into an --out of another configuration: the old controls, rival statistics
    and correlation are not presented as the new run's (summary.json, report.html)."""
    steps = (0, 100, 1000, 2000)
    dirs = make_series_dirs(tmp_path / "c", steps=steps)
    out = tmp_path / "run"
    _analyze(*dirs, "--controls", "gaussian,scaled", "--stats", "--evals", _evals_csv(tmp_path / "e.csv", steps),
             "--out", out)
    old = {p.name for p in out.iterdir()}
    assert {"controls.csv", "stats.csv", "correlations.csv", "correlations.json"} <= old
    page = _page(out)
    assert all(s in page for s in SECTIONS)
    (out / "plots").mkdir(exist_ok=True)
    for name in ("controls.png", "statistics.png", "correlation_heatmap.png", "mine.png"):
        (out / "plots" / name).write_bytes(b"old")
    _analyze(dirs[0], dirs[3], "--overwrite", "--out", out)
    left = {p.name for p in out.iterdir()}
    assert not left & {"controls.csv", "stats.csv", "correlations.csv", "correlations.json", "by_layer.csv"}, left
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["mine.png"]  # the package's plots only
    summary = json.loads((out / "summary.json").read_text())
    assert "correlation" not in summary and len(summary["checkpoints"]) == 2
    page = _page(out)
    assert not any(s in page for s in SECTIONS)


@pytest.mark.slow
def test_a_rerun_with_another_checkpoint_list_does_not_present_the_old_correlation(tmp_path) -> None:
    """The same configuration, fewer checkpoints: the results are reused, and correlations.json
    (of four checkpoints) is of another state of the run: not in summary.json, not on the page,
    and a note says so and how to redo it; correlating again brings it back."""
    steps = (0, 100, 1000, 2000)
    dirs = make_series_dirs(tmp_path / "c", steps=steps)
    out = tmp_path / "run"
    evals = _evals_csv(tmp_path / "e.csv", steps)
    _analyze(*dirs, "--evals", evals, "--out", out)
    assert json.loads((out / "summary.json").read_text())["correlation"]["n_units"] == 4
    _analyze(dirs[0], dirs[1], dirs[3], "--out", out)
    summary = json.loads((out / "summary.json").read_text())
    assert "correlation" not in summary
    assert any("another state of this run directory" in n and "neuromfa correlate" in n for n in summary["notes"])
    page = _page(out)
    assert "Correlation with benchmark scores" not in page and "another state of this run directory" in page
    from neuromfa_native import cli
    assert cli.main(["correlate", str(out), "--evals", evals, "-q", "--no-plots"]) == 0
    page = _page(out)
    assert json.loads((out / "summary.json").read_text())["correlation"]["n_units"] == 3
    assert "Correlation with benchmark scores" in page and "another state of this run directory" not in page


def test_a_correlation_that_records_no_run_state_is_not_used(tmp_path) -> None:
    steps = (0, 100, 1000)
    dirs = make_series_dirs(tmp_path / "c", steps=steps)
    out = tmp_path / "run"
    _analyze(*dirs, "--evals", _evals_csv(tmp_path / "e.csv", steps), "--out", out)
    info = json.loads((out / "correlations.json").read_text())
    del info["run_state"]
    (out / "correlations.json").write_text(json.dumps(info))
    page = _page(out)
    summary = json.loads((out / "summary.json").read_text())
    assert "correlation" not in summary and "Correlation with benchmark scores" not in page
    assert any("record no run state" in n for n in summary["notes"])


def test_write_report_removes_the_tables_it_no_longer_writes(tmp_path) -> None:
    """Without a run directory's reset: a series without controls or rival statistics written
    over one that had them leaves no controls.csv or stats.csv behind."""
    dirs = make_series_dirs(tmp_path / "c", steps=(0, 100))
    out = tmp_path / "tables"
    nm.write_report(_run(dirs, controls="gaussian", stats=True, by_layer=True), out, plots=False)
    assert {"controls.csv", "stats.csv", "by_layer.csv"} <= {p.name for p in out.iterdir()}
    nm.write_report(_run(dirs), out, plots=False)
    assert not {"controls.csv", "stats.csv", "by_layer.csv", "controls.parquet"} & {p.name for p in out.iterdir()}
