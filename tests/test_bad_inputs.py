"""The bad-input catalogue (docs/bad-inputs.md): every broken checkpoint or invalid
option gets an exception of a stated type whose message names the problem, never a crash, a
hang or a silently wrong number.  One test (or parametrised group) per catalogue entry, in the
order of the document.
"""
from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import neuromfa_native as nm
from neuromfa_native.network.nin import build_nin, describe, iter_full_matrices
from neuromfa_native.io.safetensors import SafetensorsFile, write_safetensors
from neuromfa_native.io.sources import resolve_source

# A tiny GPT-NeoX-shaped checkpoint written with numpy only (no torch): hidden 8, 2 blocks.
H, BLOCKS = 8, 2
CONFIG = {"model_type": "gpt_neox", "architectures": ["GPTNeoXForCausalLM"], "hidden_size": H,
          "num_hidden_layers": BLOCKS, "num_attention_heads": 2, "intermediate_size": 4 * H}
QKV = "gpt_neox.layers.{b}.attention.query_key_value.weight"
DENSE = "gpt_neox.layers.{b}.attention.dense.weight"
UP = "gpt_neox.layers.{b}.mlp.dense_h_to_4h.weight"
DOWN = "gpt_neox.layers.{b}.mlp.dense_4h_to_h.weight"


def neox_tensors(seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for b in range(BLOCKS):
        for name, shape in ((QKV, (3 * H, H)), (DENSE, (H, H)), (UP, (4 * H, H)), (DOWN, (H, 4 * H))):
            out[name.format(b=b)] = (rng.standard_normal(shape) * 0.05).astype(dtype)
    return out


def save_model(folder: Path, tensors: dict, config: dict | None = CONFIG) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_safetensors(folder / "model.safetensors", tensors)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def model(tmp_path) -> Path:
    return save_model(tmp_path / "model", neox_tensors())


def raw_safetensors(path: Path, header: bytes | dict, data: bytes = b"", header_len: int | None = None) -> Path:
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(hb) if header_len is None else header_len) + hb + data)
    return path


# --------------------------------------------------------------------------- safetensors files
@pytest.mark.parametrize("keep", [0, 5, 8 + 20, -100, -1])
def test_truncated_safetensors(model, keep):
    """A download cut short: fewer than 8 bytes, a header cut in the middle, or data missing."""
    f = model / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[:keep])
    with pytest.raises(ValueError, match=r"truncated|beyond the end of the file|header length"):
        build_nin(model, per_layer=2)


def test_corrupt_header_not_json(tmp_path):
    p = raw_safetensors(tmp_path / "x.safetensors", b"\xff\xfe not json at all")
    with pytest.raises(ValueError, match=r"corrupt safetensors header \(not UTF-8 JSON\)"):
        SafetensorsFile(p)
    p = raw_safetensors(tmp_path / "y.safetensors", b"[1, 2, 3]")
    with pytest.raises(ValueError, match=r"expected a JSON object, got list"):
        SafetensorsFile(p)


def test_header_length_beyond_file(tmp_path):
    p = raw_safetensors(tmp_path / "x.safetensors", b"{}", header_len=1 << 40)
    with pytest.raises(ValueError, match=r"header length 1099511627776 goes beyond the end of the file"):
        SafetensorsFile(p)


def test_header_offsets_beyond_file(tmp_path):
    header = {"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}
    p = raw_safetensors(tmp_path / "x.safetensors", header, data=b"\0" * 32)
    with pytest.raises(ValueError, match=r"tensor 'w': data_offsets \[0, 64\] go beyond the data section \(32 bytes\)"):
        SafetensorsFile(p)
    # offsets inside the file but not matching the shape
    header = {"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 32]}}
    p = raw_safetensors(tmp_path / "y.safetensors", header, data=b"\0" * 64)
    with pytest.raises(ValueError, match=r"span 32 bytes but shape \[4, 4\] of F32 needs 64"):
        SafetensorsFile(p)
    header = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}
    p = raw_safetensors(tmp_path / "z.safetensors", header, data=b"\0" * 8)
    with pytest.raises(ValueError, match=r"0 <= begin <= end"):
        SafetensorsFile(p)


def test_unknown_dtype_in_header(tmp_path):
    header = {"w": {"dtype": "F8_E4M3", "shape": [2, 2], "data_offsets": [0, 4]}}
    p = raw_safetensors(tmp_path / "x.safetensors", header, data=b"\0" * 4)
    with pytest.raises(ValueError, match=r"unknown or unsupported dtype 'F8_E4M3'; supported: \["):
        SafetensorsFile(p)


def test_wrong_dtype_of_a_weight(tmp_path):
    """A weight stored as integers is refused by name, before any network is built."""
    t = neox_tensors()
    t[DENSE.format(b=1)] = np.ones((H, H), np.int64)
    folder = save_model(tmp_path / "m", t)
    msg = r"tensor 'gpt_neox.layers.1.attention.dense.weight' has dtype int64; weights must be float16"
    with pytest.raises(ValueError, match=msg):
        build_nin(folder, per_layer=2)
    with pytest.raises(ValueError, match=msg):
        describe(folder, per_layer=2)


def test_missing_tensor(tmp_path):
    t = neox_tensors()
    del t[DOWN.format(b=1)]
    folder = save_model(tmp_path / "m", t)
    with pytest.raises(ValueError, match=r"missing tensor 'gpt_neox.layers.1.mlp.dense_4h_to_h.weight'.*close names"):
        build_nin(folder, per_layer=2)


def test_shape_not_matching_config(tmp_path):
    folder = save_model(tmp_path / "m", neox_tensors(), dict(CONFIG, hidden_size=16))
    with pytest.raises(ValueError, match=r"has shape \(24, 8\), but the config \(.*'hidden_size': 16.*\) implies \(48, 16\)"):
        build_nin(folder, per_layer=2)
    # one tensor of the wrong shape in an otherwise consistent checkpoint
    t = neox_tensors()
    t[UP.format(b=1)] = t[UP.format(b=1)][:-1]
    folder = save_model(tmp_path / "n", t)
    with pytest.raises(ValueError, match=r"'gpt_neox.layers.1.mlp.dense_h_to_4h.weight' has shape \(31, 8\).*implies \(32, 8\)"):
        describe(folder, per_layer=2)


# --------------------------------------------------------------------------- weights
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nonfinite_weights_in_checkpoint(tmp_path, bad, dtype):
    t = neox_tensors(dtype=dtype)
    t[DENSE.format(b=1)][:] = bad  # the whole matrix, so every sample reads some of it
    folder = save_model(tmp_path / "m", t)
    with pytest.raises(ValueError, match=r"tensor 'gpt_neox.layers.1.attention.dense.weight' has \d+ non-finite weights"):
        build_nin(folder, per_layer=2)
    with pytest.raises(ValueError, match=r"non-finite weights \(NaN or inf\) in the tensor"):
        build_nin(folder, per_layer=None)
    with pytest.raises(ValueError, match=r"non-finite"):
        list(iter_full_matrices(folder))


def test_single_nonfinite_weight_full_network(tmp_path):
    t = neox_tensors()
    t[QKV.format(b=0)][5, 3] = np.inf
    folder = save_model(tmp_path / "m", t)
    with pytest.raises(ValueError, match=r"'gpt_neox.layers.0.attention.query_key_value.weight' has 1 non-finite"):
        build_nin(folder, per_layer=None)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nonfinite_weights_in_edge_list(bad):
    w = np.full(50, 0.1)
    w[17] = bad
    with pytest.raises(ValueError, match=r"weight of edge 17 is NaN or infinite"):
        nm.analyze_graph(np.zeros(50, np.int64), np.arange(50), w)
    with pytest.raises(ValueError, match=r"weight of edge 17 is NaN or infinite"):
        nm.analyze_graph(np.zeros(50, np.int64), np.arange(50), w.astype(np.float16))


def test_all_zero_layer_gives_no_edges_and_the_rest_still_works(tmp_path):
    """One all-zero matrix: it contributes no edge (zero weights give none); the network and
    its spectrum are built from the other matrices."""
    t = neox_tensors()
    t[UP.format(b=0)][:] = 0
    folder = save_model(tmp_path / "m", t)
    nin = build_nin(folder, per_layer=4)
    up_in = set(range(5 * H, 6 * H))  # block 0's L3 (attention output) node ids
    assert not any(s in up_in for s in nin.src.tolist())  # no edge leaves L3 of block 0
    full = build_nin(folder, per_layer=None)
    assert not np.isin(full.src, list(up_in)).any()
    spec = nm.analyze_graph(full.src, full.dst, full.weight, min_edges=1)
    assert np.isfinite(spec.tau).all()


def test_all_zero_model_says_no_node_kept(tmp_path):
    """Every weight zero: only the synthetic QKV edges (distance exactly 1, always filtered) are
    left, and the analysis says that nothing passed the distance filter."""
    t = {k: np.zeros_like(v) for k, v in neox_tensors().items()}
    folder = save_model(tmp_path / "m", t)
    nin = build_nin(folder, per_layer=4)
    assert nin.n_edges > 0 and np.all(nin.weight == 1)  # synthetic edges only
    with pytest.raises(ValueError, match=r"no node kept: 0 nodes have distances 1 < d <= 150 \(0 of \d+ edges pass\)"):
        nm.analyze_graph(nin.src, nin.dst, nin.weight)


def test_no_node_kept_names_min_edges():
    with pytest.raises(ValueError, match=r"no node kept: 1 nodes .* none has at least min_edges=11"):
        nm.analyze_graph(np.zeros(5, np.int64), np.arange(5), np.full(5, 0.1))


def test_empty_graph():
    with pytest.raises(ValueError, match=r"the graph is empty"):
        nm.analyze_graph([], [], [])


# --------------------------------------------------------------------------- torch objects
def test_meta_device_module():
    torch = pytest.importorskip("torch", reason="a meta-device module is a torch object")
    pytest.importorskip("transformers", reason="the module is a transformers model")
    import transformers as tf
    from model_factory import hf_config

    with torch.device("meta"):
        module = tf.AutoModelForCausalLM.from_config(hf_config("gpt_neox"))
    with pytest.raises(ValueError, match=r"tensors are on the meta device \(no data\).*load the real weights"):
        build_nin(module, per_layer=2)
    sd = {k: torch.empty(v.shape, device="meta") for k, v in neox_tensors().items()}
    with pytest.raises(ValueError, match=r"8 tensors are on the meta device"):
        resolve_source(sd)


class _Evil:
    """Unpickling this calls os.system: what a malicious pytorch_model.bin would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# torch warns that the hand-written raw pickle uses protocol 4 before it refuses it: expected.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4 in the checkpoint:UserWarning")
@pytest.mark.parametrize("container", ["torch.save", "raw pickle"])
def test_pickle_checkpoint_that_runs_code_is_refused(tmp_path, container):
    torch = pytest.importorskip("torch", reason="torch is optional; this test reads or writes torch objects")
    marker = tmp_path / "PWNED"
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(CONFIG))
    payload = {k: torch.from_numpy(v) for k, v in neox_tensors().items()}
    payload["evil"] = _Evil(marker)
    if container == "torch.save":  # zip container, the format transformers writes
        torch.save(payload, folder / "pytorch_model.bin")
    else:  # a plain pickle stream (legacy, not memory-mappable)
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Evil(marker)))
    assert not marker.exists()
    # the zip format is refused by the torch-free restricted unpickler, naming the global;
    # the legacy format by torch.load(weights_only=True)
    want = (r"pytorch_model.bin: refused, as torch.load\(weights_only=True\) would: refused global 'posix.system'"
            if container == "torch.save" else r"pytorch_model.bin: torch.load\(weights_only=True\) refused or failed")
    with pytest.raises(ValueError, match=want):
        build_nin(folder, per_layer=2)
    with pytest.raises(ValueError, match=r"weights_only=True"):
        resolve_source(folder / "pytorch_model.bin")
    assert not marker.exists(), "loading the checkpoint executed code from its pickle"


def test_pickle_checkpoint_that_is_not_a_state_dict(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is optional; this test reads or writes torch objects")
    p = tmp_path / "pytorch_model.bin"
    torch.save([torch.zeros(2)], p)
    with pytest.raises(ValueError, match=r"expected a state dict \(name -> tensor\), got list"):
        resolve_source(p)


# --------------------------------------------------------------------------- architectures
def test_unknown_architecture_in_config(tmp_path):
    cfg = {"model_type": "mamba", "architectures": ["MambaForCausalLM"], "hidden_size": H}
    folder = save_model(tmp_path / "m", neox_tensors(), cfg)  # tensors look like GPT-NeoX: not guessed
    with pytest.raises(ValueError, match=r"unsupported architecture \(model_type 'mamba'\); supported: \['gpt_neox'.*custom layer map"):
        build_nin(folder, per_layer=2)
    with pytest.raises(ValueError, match=r"architecture must be one of \["):
        build_nin(folder, per_layer=2, architecture="mamba")


def test_unknown_architecture_without_config(tmp_path):
    folder = save_model(tmp_path / "m", {"blocks.0.fc.weight": np.ones((4, 4), np.float32)}, config=None)
    with pytest.raises(ValueError, match=r"unknown architecture \(no model_type.*layout=\[\(tensor name, input layer, output layer\)"):
        describe(folder)
    # the custom layer map the message suggests does work
    nin = build_nin(folder, per_layer=2, layout=[("blocks.0.fc.weight", "in", "out")])
    assert nin.n_edges == 4


def test_unknown_layout_name(model):
    with pytest.raises(ValueError, match=r"layout must be one of \['reference', 'heads'\] for gpt_neox"):
        build_nin(model, layout="bogus")


def test_directory_without_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    with pytest.raises(ValueError, match=r"holds no weights: expected model.safetensors"):
        build_nin(tmp_path)


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize("fn", [build_nin, describe])
def test_per_layer_larger_than_a_layer(model, fn):
    with pytest.raises(ValueError, match=rf"per_layer=9 needs 9 neurons of layer 'block0.input', which has only {H}"):
        fn(model, per_layer=9)
    # the MLP layer draws 2S of 4h: S = h is fine, so the limit is the smallest layer
    assert build_nin(model, per_layer=H).per_layer == H


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "8"])
def test_per_layer_not_a_positive_integer(model, bad):
    with pytest.raises(ValueError, match=r"per_layer must be a positive integer or None"):
        build_nin(model, per_layer=bad)


@pytest.mark.parametrize("bad", [-1, 2**32, 1.0])
def test_sample_index_out_of_range(model, bad):
    with pytest.raises(ValueError, match=r"sample must be an integer in \[0, 2\*\*32\)"):
        build_nin(model, per_layer=2, sample=bad)


GRAPH = (np.repeat(np.arange(3), 20), np.arange(60), np.linspace(0.01, 0.9, 60))


@pytest.mark.parametrize("threshold", [1, 1.0, 0.5, 0, -5, float("nan"), float("inf")])
def test_threshold_not_above_one(threshold):
    with pytest.raises(ValueError, match=r"threshold must be a finite number > 1"):
        nm.analyze_graph(*GRAPH, threshold=threshold)


def test_threshold_not_a_number():
    with pytest.raises(TypeError, match=r"threshold must be a number, got 'abc'"):
        nm.analyze_graph(*GRAPH, threshold="abc")


@pytest.mark.parametrize("q, msg", [
    ([], r"q must be a 1-d sequence of at least 2 moments, got shape \(0,\)"),
    ([1.0], r"at least 2 moments"),
    ([[0.0, 1.0]], r"1-d sequence"),
    ([0.0, 0.0, 1.0], r"q must be strictly increasing"),
    ([1.0, 0.0], r"q must be strictly increasing"),
    ([0.0, float("nan")], r"q must hold finite moments"),
    ([0.0, float("inf")], r"q must hold finite moments"),
])
def test_invalid_q(q, msg):
    with pytest.raises(ValueError, match=msg):
        nm.analyze_graph(*GRAPH, q=q)


@pytest.mark.parametrize("kw, msg", [
    ({"min_edges": 0}, r"min_edges must be an integer >= 1, got 0"),
    ({"min_edges": 2.0}, r"min_edges must be an integer >= 1"),
    ({"decimals": 16}, r"decimals must be an integer in \[-15, 15\], got 16"),
    ({"n_threads": 0}, r"n_threads must be a positive integer, -1 or None, got 0"),
    ({"n_threads": 1.5}, r"n_threads must be a positive integer"),
])
def test_invalid_engine_options(kw, msg):
    with pytest.raises(ValueError, match=msg):
        nm.analyze_graph(*GRAPH, **kw)


def test_invalid_edge_arrays():
    with pytest.raises(ValueError, match=r"must have the same length, got 3, 2, 3"):
        nm.analyze_graph([0, 1, 2], [1, 2], [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match=r"src holds negative node ids \(first at index 1: -4\)"):
        nm.analyze_graph([0, -4], [1, 2], [0.1, 0.1])
    with pytest.raises(ValueError, match=r"dst holds non-integer ids"):
        nm.analyze_graph([0, 1], [1.5, 2], [0.1, 0.1])
    with pytest.raises(TypeError, match=r"weight must be a real floating-point array, got dtype complex128"):
        nm.analyze_graph([0, 1], [1, 2], np.array([0.1, 0.1], complex))
    with pytest.raises(TypeError, match=r"src must hold integer node ids, got dtype <U1"):
        nm.analyze_graph(["a"], [1], [0.1])


# --------------------------------------------------------------------------- regressions
def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)


# Regression test (found by the hardening pass, fixed since):
# Was a bug (cpp/bindings.cpp log_partition_py / partition.hpp validate_histogram): only
# indptr[-1] == len(key) is checked before the core runs; validate_histogram reads
# key/count[indptr[c]:indptr[c+1]] before it has seen the whole of indptr, so an inner
# indptr entry beyond len(key) reads out of bounds (SIGSEGV here) instead of a ValueError
def test_analyze_histogram_indptr_beyond_key_is_an_error_not_a_crash():
    # count ends exactly at a page whose successor is unreadable: any read past it faults.
    r = _run("""
        import ctypes, mmap, numpy as np
        from neuromfa_native.mfa.engine import analyze_histogram
        page = mmap.PAGESIZE
        buf = mmap.mmap(-1, 2 * page, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        assert libc.mprotect(addr + page, page, 0) == 0
        count = np.frombuffer(buf, dtype=np.int64, count=2, offset=page - 16)
        count[:] = 1
        try:
            analyze_histogram(np.array([0, 1 << 40, 2]), np.array([1, 2]), count, q=[0.0, 1.0])
        except ValueError as exc:
            print("ValueError:", exc)
    """)
    assert r.returncode == 0, f"the interpreter died (return code {r.returncode}): {r.stderr[-500:]}"
    assert "ValueError: " in r.stdout and "indptr" in r.stdout


# Regression test (found by the hardening pass, fixed since):
# Was a bug (partition.hpp PartitionKernel): along evenly spaced moments t(q_k) is chained from
# t(q_{k-1}); the first two moments are always chained, and when |q_0| * ln(max mass)
# exceeds ~708 t(q_0) is subnormal (a few significant bits), so q_1 inherits a relative
# error up to ~1e-3 while its sum is too large to trigger the per-radius fallback
def test_extreme_first_moment_does_not_spoil_the_next():
    # One centre of mass 1257: Z_q(D) = 1, so ln Z_q(D) must be 0 for every q (docs/spec.md section 2).
    rng = np.random.default_rng(0)
    w = 1.0 / rng.choice([1.2, 2.0, 3.0], 1256)
    with pytest.warns(RuntimeWarning, match="only 3 radii in the grid"):
        spec = nm.analyze_graph(np.zeros(1256, np.int64), np.arange(1, 1257), w, min_edges=1,
                                q=[-103.0, -4.6, 0.0, 1.0])
    np.testing.assert_allclose(spec.log_z[:, -1], 0.0, atol=1e-9)
