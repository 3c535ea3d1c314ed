"""Sources: directories, files, shards, pickles, modules, state dicts and the hub cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_factory import bfloat16_bits, hf_config, make_model, tiny_state_dict
from neuromfa_native.network.fingerprint import fingerprint
from neuromfa_native.network.nin import build_nin
from neuromfa_native.io.safetensors import SafetensorsFile, write_safetensors
from neuromfa_native.io.sources import SafetensorsSource, StateDictSource, TensorSource, resolve_source
from paths import DATA

FIXTURE = DATA / "neox_tiny" / "step0"  # see data/README.md
QKV0 = "gpt_neox.layers.0.attention.query_key_value.weight"


def test_import_does_not_pull_torch_or_hub() -> None:
    code = (
        "import sys; import neuromfa_native.io.sources, neuromfa_native.network.nin, neuromfa_native.network.architectures; "
        "bad = [m for m in ('torch', 'huggingface_hub', 'transformers', 'safetensors') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    # the installed package (the source tree has no compiled _core)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_directory_and_single_file(tmp_path: Path) -> None:
    d = resolve_source(FIXTURE)
    assert isinstance(d, SafetensorsSource) and d.config["model_type"] == "gpt_neox"
    assert d.dtype(QKV0) == "float16" and d.shape(QKV0) == (288, 96)
    full = d.get(QKV0)
    np.testing.assert_array_equal(d.get_slice(QKV0, [5, 1], [0, 95]), full[[5, 1]][:, [0, 95]])
    # a lone .safetensors without config: architecture inferred from tensor names
    shutil.copy(FIXTURE / "model.safetensors", tmp_path / "weights.safetensors")
    f = resolve_source(tmp_path / "weights.safetensors")
    assert f.config == {}
    a = build_nin(FIXTURE, sample=1, per_layer=8)
    b = build_nin(tmp_path / "weights.safetensors", sample=1, per_layer=8)
    np.testing.assert_array_equal(a.edge_array(), b.edge_array())
    assert b.architecture == "gpt_neox"
    # the heads layout needs the head count, which only the config has
    with pytest.raises(ValueError, match="num_attention_heads"):
        build_nin(tmp_path / "weights.safetensors", layout="heads", per_layer=4)
    cfg = json.loads((FIXTURE / "config.json").read_text())
    build_nin(tmp_path / "weights.safetensors", layout="heads", per_layer=4, config=cfg)


def test_sharded_directory(tmp_path: Path) -> None:
    st = SafetensorsFile(FIXTURE / "model.safetensors")
    names = st.tensor_names()
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    wmap = {}
    for fname, ns in shards.items():
        write_safetensors(tmp_path / fname, {n: np.array(st.get(n)) for n in ns})
        wmap.update({n: fname for n in ns})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": wmap}))
    shutil.copy(FIXTURE / "config.json", tmp_path / "config.json")
    a = build_nin(FIXTURE, sample=0, per_layer=16)
    b = build_nin(tmp_path, sample=0, per_layer=16)
    np.testing.assert_array_equal(a.edge_array(), b.edge_array())
    assert fingerprint(FIXTURE) == fingerprint(tmp_path)
    assert resolve_source(FIXTURE).fingerprint() == resolve_source(tmp_path).fingerprint()


def test_errors() -> None:
    with pytest.raises(ValueError, match="not an existing file"):
        resolve_source("./does/not/exist")
    with pytest.raises(TypeError, match="source must be"):
        resolve_source(3.5)
    with pytest.raises(TypeError, match="torch tensor or numpy array"):
        resolve_source({"w": [1, 2]})
    with pytest.raises(TypeError, match="config must be"):
        resolve_source({"w": np.ones(2)}, config=[1])


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="holds no weights"):
        resolve_source(tmp_path)
    (tmp_path / "config.json").write_text("{bad")
    with pytest.raises(ValueError, match="corrupt config.json"):
        resolve_source(tmp_path)


def test_numpy_state_dict() -> None:
    rng = np.random.default_rng(1)
    sd = {"a": rng.standard_normal((6, 4)).astype(np.float32), "b": np.arange(3)}
    s = resolve_source(sd)
    assert isinstance(s, StateDictSource) and s.dtype("a") == "float32"
    np.testing.assert_array_equal(s.get_slice("a", [5, 0], [3]), sd["a"][[5, 0]][:, [3]])
    assert not s.get("a").flags.writeable
    with pytest.raises(ValueError, match="close names"):
        s.get("aa")
    assert s.fingerprint() == resolve_source(dict(sd)).fingerprint()
    assert s.fingerprint(["a"]) != s.fingerprint(["b"])
    assert resolve_source(s) is s


def test_module_bin_and_safetensors_agree(tiny_model, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch modules and pytorch_model.bin need torch")
    pytest.importorskip("transformers", reason="the module is a transformers model")
    st_dir = tiny_model("gpt_neox")
    bin_dir = tiny_model("gpt_neox", fmt="bin")
    assert (bin_dir / "pytorch_model.bin").is_file() and not (bin_dir / "model.safetensors").exists()
    model = make_model("gpt_neox")  # loaded from the same numpy-written weights
    nets = [build_nin(s, sample=2, per_layer=4) for s in (st_dir, bin_dir, model, model.state_dict())]
    for n in nets[1:]:
        np.testing.assert_array_equal(n.edge_array(), nets[0].edge_array())
    fps = {fingerprint(s) for s in (st_dir, bin_dir, model)}
    assert len(fps) == 1
    src = resolve_source(model)
    assert src.config["model_type"] == "gpt_neox"
    name = "gpt_neox.layers.1.mlp.dense_4h_to_h.weight"
    np.testing.assert_array_equal(src.get_slice(name, [3, 1], [100, 7]),
                                  model.state_dict()[name].numpy()[[3, 1]][:, [100, 7]])
    assert isinstance(resolve_source(bin_dir), TensorSource)
    del torch


def test_bin_refuses_code(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is optional; this test reads or writes torch objects")

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    import pickle

    p = tmp_path / "pytorch_model.bin"
    with open(p, "wb") as fh:
        pickle.dump({"w": Evil()}, fh, protocol=2)
    with pytest.raises(ValueError, match="weights_only"):
        resolve_source(p)


NAME_16 = "model.layers.0.mlp.down_proj.weight"


def _half_precision(dtype: str) -> np.ndarray:
    """The float32 values of the tiny llama's NAME_16 stored as ``dtype``."""
    w = tiny_state_dict("llama")[NAME_16]
    if dtype == "float16":
        return w.astype(np.float16).astype(np.float32)
    return (bfloat16_bits(w).astype(np.uint32) << 16).view(np.float32)


@pytest.mark.parametrize("dtype, want", [("bfloat16", np.float32), ("float16", np.float16)])
def test_bfloat16_and_float16_checkpoints(tiny_model, dtype, want) -> None:
    folder = tiny_model("llama", dtype=dtype)
    src = resolve_source(folder)
    assert src.dtype(NAME_16) == dtype
    got = src.get(NAME_16)
    assert got.dtype == want
    np.testing.assert_array_equal(got.astype(np.float32), _half_precision(dtype))
    nin = build_nin(folder, per_layer=4)
    assert nin.weight.dtype == want


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_bfloat16_and_float16_modules(dtype) -> None:
    torch = pytest.importorskip("torch", reason="torch modules need torch")
    pytest.importorskip("transformers", reason="the module is a transformers model")
    model = make_model("llama", dtype=dtype)
    ref = model.state_dict()[NAME_16].float().numpy()
    np.testing.assert_array_equal(ref, _half_precision(dtype))
    msrc = resolve_source(model)
    assert msrc.dtype(NAME_16) == dtype
    np.testing.assert_array_equal(msrc.get_slice(NAME_16, [0, 2], [5]).astype(np.float32), ref[[0, 2]][:, [5]])
    del torch


def test_meta_module_is_an_error() -> None:
    torch = pytest.importorskip("torch", reason="a meta-device module is a torch object")
    pytest.importorskip("transformers", reason="the module is a transformers model")
    import transformers as tf

    with torch.device("meta"):
        model = tf.AutoModelForCausalLM.from_config(hf_config("gpt2"))
    with pytest.raises(ValueError, match="meta device"):
        resolve_source(model)
    with pytest.raises(ValueError, match="meta device"):
        build_nin(model)


def _hub_cache(root: Path, repo: str, revision: str, files: dict[str, Path]) -> str:
    """Hand-made huggingface_hub cache layout: models--org--name/{refs,snapshots}."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = root / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, src in files.items():
        shutil.copy(src, snap / name)
    (base / "refs").mkdir()
    (base / "refs" / revision).write_text(commit)
    return commit


def test_hub_id_from_local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub_mode) -> None:
    pytest.importorskip("huggingface_hub", reason="huggingface_hub is optional; it resolves hub ids")
    hub_mode(offline=True)
    cache = tmp_path / "hub"
    _hub_cache(cache, "EleutherAI/pythia-tiny", "step3000",
               {"config.json": FIXTURE / "config.json", "model.safetensors": FIXTURE / "model.safetensors"})
    src = resolve_source("EleutherAI/pythia-tiny@step3000", cache_dir=cache)
    assert "step3000" in src.description
    a = build_nin(src, sample=0, per_layer=16)
    ref = np.load(FIXTURE.parent / "step0_sample0_edges.npy")
    np.testing.assert_array_equal(a.edge_array(), ref)
    src2 = resolve_source("EleutherAI/pythia-tiny", revision="step3000", cache_dir=cache)
    assert src2.fingerprint() == src.fingerprint()
    with pytest.raises(ValueError, match="HF_HUB_OFFLINE"):
        resolve_source("EleutherAI/pythia-tiny@step4000", cache_dir=cache)
    with pytest.raises(ValueError, match="revision given twice"):
        resolve_source("EleutherAI/pythia-tiny@step3000", revision="step1", cache_dir=cache)


def test_hub_revision_with_only_a_pickle_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hub_mode) -> None:
    """Safetensors are asked for first; a revision without them falls back to pytorch_model.bin."""
    pytest.importorskip("huggingface_hub", reason="huggingface_hub is optional; it resolves hub ids")
    torch = pytest.importorskip("torch", reason="torch is optional; this test reads or writes torch objects")
    from neuromfa_native.io.sources import hub_snapshot

    hub_mode(offline=True)
    hub_snapshot.cache_clear()
    bin_path = tmp_path / "pytorch_model.bin"
    sd = {k: torch.from_numpy(np.array(v)) for k, v in
          ((n, resolve_source(FIXTURE).get(n)) for n in resolve_source(FIXTURE).tensor_names())}
    torch.save(sd, bin_path)
    cache = tmp_path / "hub"
    _hub_cache(cache, "org/pickled", "step1", {"config.json": FIXTURE / "config.json", "pytorch_model.bin": bin_path})
    src = resolve_source("org/pickled@step1", cache_dir=cache)
    assert src.fingerprint() == resolve_source(FIXTURE).fingerprint()
