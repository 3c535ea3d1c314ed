"""Our own safetensors reader: values, lazy slices, sharded indexes and every error path."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from neuromfa_native.io.safetensors import (
    SafetensorsFile,
    ShardedSafetensors,
    bf16_to_float32,
    open_safetensors,
    write_safetensors,
)


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "a.f16": rng.standard_normal((5, 7)).astype(np.float16),
        "b.f32": rng.standard_normal((4, 3)).astype(np.float32),
        "c.f64": rng.standard_normal((6,)).astype(np.float64),
        "d.i64": np.arange(12, dtype=np.int64).reshape(3, 4),
        "e.u8": np.arange(5, dtype=np.uint8),
        "f.empty": np.zeros((0, 4), dtype=np.float32),
    }


def _write_raw(path: Path, header: dict, data: bytes, pad: bool = True) -> Path:
    hb = json.dumps(header).encode()
    if pad:
        hb += b" " * (-len(hb) % 8)
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + data)
    return path


def test_roundtrip_values_and_views(tmp_path: Path) -> None:
    arrs = _arrays()
    write_safetensors(tmp_path / "m.safetensors", arrs, metadata={"format": "np"})
    f = SafetensorsFile(tmp_path / "m.safetensors")
    assert f.tensor_names() == list(arrs)
    assert f.metadata == {"format": "np"}
    for name, a in arrs.items():
        got = f.get(name)
        assert got.dtype == a.dtype and got.shape == a.shape
        np.testing.assert_array_equal(got, a)
        assert not got.flags.writeable
    assert f.dtype("a.f16") == "float16" and f.shape("b.f32") == (4, 3)


def test_matches_safetensors_package(tmp_path: Path) -> None:
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors package is optional; it is the reference writer here")
    arrs = {k: v for k, v in _arrays().items() if v.size}
    st.save_file(arrs, str(tmp_path / "p.safetensors"), metadata={"x": "y"})
    f = SafetensorsFile(tmp_path / "p.safetensors")
    assert f.metadata == {"x": "y"}
    for name, a in arrs.items():
        np.testing.assert_array_equal(f.get(name), a)


def test_bf16_widened_exactly(tmp_path: Path) -> None:
    vals = np.array([[1.0, -2.5, 3.140625], [1e-3, 65504.0, -0.0]], dtype=np.float32)
    bits = (vals.view(np.uint32) >> 16).astype(np.uint16)  # truncation = exact for these
    write_safetensors(tmp_path / "b.safetensors", {"w": bits}, dtypes={"w": "BF16"})
    f = SafetensorsFile(tmp_path / "b.safetensors")
    assert f.dtype("w") == "bfloat16"
    got = f.get("w")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, bf16_to_float32(bits))
    np.testing.assert_array_equal(f.get_slice("w", [1], [2, 0]), bf16_to_float32(bits)[[1]][:, [2, 0]])
    torch = pytest.importorskip("torch", reason="torch is optional; this test reads or writes torch objects")
    t = torch.from_numpy(vals).to(torch.bfloat16)
    np.testing.assert_array_equal(bf16_to_float32(t.view(torch.int16).numpy().view(np.uint16)), t.float().numpy())


def test_get_slice_reads_only_selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.arange(200, dtype=np.float16).reshape(10, 20)
    write_safetensors(tmp_path / "s.safetensors", {"w": a})
    f = SafetensorsFile(tmp_path / "s.safetensors")
    # never materialise the whole tensor: get() is not used by get_slice
    monkeypatch.setattr(SafetensorsFile, "get", lambda self, name: (_ for _ in ()).throw(AssertionError))
    rows, cols = np.array([7, 2, 9]), np.array([19, 0, 5, 5])
    out = f.get_slice("w", rows, cols)
    np.testing.assert_array_equal(out, a[rows][:, cols])
    assert out.dtype == np.float16 and out.flags.writeable
    assert f._mm is None  # rows were read with positioned reads, the file was never mapped
    rows2 = np.array([3, 4, 5, 3, -1, 0])  # runs, repeats and a negative index
    np.testing.assert_array_equal(f.get_slice("w", rows2, cols), a[rows2][:, cols])
    np.testing.assert_array_equal(f.get_slice("w", None, cols), a[:, cols])
    np.testing.assert_array_equal(f.get_slice("w", rows, None), a[rows])
    with pytest.raises(ValueError, match="out of range"):
        f.get_slice("w", [10], None)
    with pytest.raises(ValueError, match="1-d integer"):
        f.get_slice("w", [[1]], None)


def test_missing_tensor_lists_close_names(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "m.safetensors", _arrays())
    f = SafetensorsFile(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=r"no tensor named 'a\.f61'.*a\.f16"):
        f.get("a.f61")


@pytest.mark.parametrize(
    "case, match",
    [
        ("short", "truncated"),
        ("len_beyond", "beyond the end"),
        ("not_json", "corrupt safetensors header"),
        ("not_object", "expected a JSON object"),
        ("offsets_beyond", "beyond the data section"),
        ("offsets_mismatch", "needs 24"),
        ("bad_dtype", "unknown or unsupported dtype 'F8_E4M3'"),
        ("bad_shape", "shape must be"),
        ("bad_entry", "must have dtype"),
    ],
)
def test_errors_name_file_and_problem(tmp_path: Path, case: str, match: str) -> None:
    p = tmp_path / f"{case}.safetensors"
    good = {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}
    if case == "short":
        p.write_bytes(b"\x01\x02")
    elif case == "len_beyond":
        p.write_bytes(struct.pack("<Q", 10_000) + b"{}")
    elif case == "not_json":
        p.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    elif case == "not_object":
        _write_raw(p, [1, 2], b"")  # type: ignore[arg-type]
    elif case == "offsets_beyond":
        _write_raw(p, good, bytes(20))
    elif case == "offsets_mismatch":
        _write_raw(p, {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}, bytes(24))
    elif case == "bad_dtype":
        _write_raw(p, {"w": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, bytes(2))
    elif case == "bad_shape":
        _write_raw(p, {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, bytes(4))
    elif case == "bad_entry":
        _write_raw(p, {"w": {"dtype": "F32"}}, b"")
    with pytest.raises(ValueError, match=match) as err:
        SafetensorsFile(p)
    assert p.name in str(err.value)


def test_truncated_data_section(tmp_path: Path) -> None:
    write_safetensors(tmp_path / "m.safetensors", {"w": np.ones((50, 50), np.float32)})
    raw = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "t.safetensors").write_bytes(raw[:-100])
    with pytest.raises(ValueError, match="truncated"):
        SafetensorsFile(tmp_path / "t.safetensors")
    with pytest.raises(ValueError, match="does not exist"):
        SafetensorsFile(tmp_path / "nope.safetensors")


def _shard(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    arrs = _arrays()
    names = list(arrs)
    write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {k: arrs[k] for k in names[:3]})
    write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {k: arrs[k] for k in names[3:]})
    wmap = {k: ("model-00001-of-00002.safetensors" if i < 3 else "model-00002-of-00002.safetensors")
            for i, k in enumerate(names)}
    idx = tmp_path / "model.safetensors.index.json"
    idx.write_text(json.dumps({"metadata": {"total_size": 1}, "weight_map": wmap}))
    return idx, arrs


def test_sharded_index(tmp_path: Path) -> None:
    idx, arrs = _shard(tmp_path)
    s = open_safetensors(idx)
    assert isinstance(s, ShardedSafetensors)
    assert sorted(s.tensor_names()) == sorted(arrs)
    for k, a in arrs.items():
        np.testing.assert_array_equal(s.get(k), a)
    np.testing.assert_array_equal(s.get_slice("a.f16", [0, 4], [6]), arrs["a.f16"][[0, 4]][:, [6]])
    with pytest.raises(ValueError, match="close names"):
        s.shape("d.i46")


def test_sharded_index_errors(tmp_path: Path) -> None:
    idx, _ = _shard(tmp_path)
    data = json.loads(idx.read_text())
    data["weight_map"]["a.f16"] = "model-00002-of-00002.safetensors"  # wrong shard
    idx.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="does not hold it"):
        ShardedSafetensors(idx).get("a.f16")
    data["weight_map"]["a.f16"] = "gone.safetensors"
    idx.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="missing"):
        ShardedSafetensors(idx)
    idx.write_text("{not json")
    with pytest.raises(ValueError, match="corrupt"):
        ShardedSafetensors(idx)
    idx.write_text(json.dumps({"nothing": 1}))
    with pytest.raises(ValueError, match="weight_map"):
        ShardedSafetensors(idx)
