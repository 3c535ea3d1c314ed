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
