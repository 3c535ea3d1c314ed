"""pytorch_model.bin without torch (torch_zip.py): equal to torch.load, bit for bit; code refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from model_factory import ARCHS
from neuromfa_native.science.analysis import analyze_sample
from neuromfa_native.network.fingerprint import fingerprint
from neuromfa_native.network.nin import build_nin
from neuromfa_native.io.ranged import RangedSource
from neuromfa_native.io.sources import StateDictSource, resolve_source
from neuromfa_native.io.torch_zip import open_torch_zip

torch = pytest.importorskip("torch", reason="torch is optional; these tests compare the torch-free reader with torch.load and torch.save")

# a subprocess in which "import torch" fails
NO_TORCH = "import sys; sys.modules['torch'] = None\n"


def _torch_source(folder: Path) -> StateDictSource:
    """The same checkpoint through torch.load: the yardstick."""
    files = sorted(folder.glob("pytorch_model*.bin"))
    sd: dict = {}
    for f in files:
        sd.update(torch.load(f, weights_only=True, map_location="cpu"))
    return StateDictSource(sd, json.loads((folder / "config.json").read_text()), "torch.load")


def _same_result(a, b) -> None:
    for f in ("alpha", "f_alpha", "tau", "q"):
        if hasattr(a.spectrum, f):
            np.testing.assert_array_equal(getattr(a.spectrum, f), getattr(b.spectrum, f))
    assert a.alpha0 == b.alpha0 and a.width == b.width
    assert (a.n_network_nodes, a.n_network_edges) == (b.n_network_nodes, b.n_network_edges)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_equals_torch_load(tiny_model, arch) -> None:
    folder = tiny_model(arch, fmt="bin")
    src = resolve_source(folder)
    assert isinstance(src, RangedSource)
    ref = _torch_source(folder)
    assert sorted(src.tensor_names()) == sorted(ref.tensor_names())
    for n in src.tensor_names():
        assert src.dtype(n) == ref.dtype(n) and src.shape(n) == ref.shape(n)
        np.testing.assert_array_equal(src.get(n), ref.get(n))
    for per_layer in (4, None):
        a = build_nin(src, sample=1, per_layer=per_layer)
        b = build_nin(ref, sample=1, per_layer=per_layer)
        np.testing.assert_array_equal(a.edge_array(), b.edge_array())
    _same_result(analyze_sample(src, 0, per_layer=8), analyze_sample(ref, 0, per_layer=8))
    _same_result(analyze_sample(src, None, per_layer=None), analyze_sample(ref, None, per_layer=None))
    assert fingerprint(src) == fingerprint(ref) == fingerprint(tiny_model(arch))  # == the safetensors copy


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_each_dtype_and_slices(tmp_path, dtype) -> None:
    g = torch.Generator().manual_seed(3)
    w = torch.randn(37, 23, generator=g).to(getattr(torch, dtype))
    sd = {"w": w, "v": torch.randn(5, generator=g).to(getattr(torch, dtype)), "t": w.t(), "part": w[3:9, 2:7]}
    p = tmp_path / "x.bin"
    torch.save(sd, p)
    src = resolve_source(p)
    ref = StateDictSource(torch.load(p, weights_only=True), None, "ref")
    rows, cols = np.array([5, 1, 1, 36, -2]), np.array([22, 0, 4])
    for n in sd:
        assert src.dtype(n) == dtype
        np.testing.assert_array_equal(src.get(n), ref.get(n))
        if len(src.shape(n)) == 2:
            r = rows % src.shape(n)[0]
            c = cols % src.shape(n)[1]
            for bits in (False, True):
                got = src.get_slice(n, r, c, bf16_bits=bits)
                want = ref.get_slice(n, r, c, bf16_bits=bits)
                assert got.dtype == want.dtype
                np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(src.get_slice(n, np.arange(2, 5)), ref.get_slice(n, np.arange(2, 5)))
            np.testing.assert_array_equal(src.get_slice(n, None, c), ref.get_slice(n, None, c))
    assert src.fingerprint() == ref.fingerprint()
    store = open_torch_zip(p)
    assert store.info("t").strides is not None and store.info("w").strides is None


def test_sharded_bin_and_bytes_read(tiny_model, tmp_path) -> None:
    one = tiny_model("gpt_neox", fmt="bin")
    sd = torch.load(one / "pytorch_model.bin", weights_only=True)
    names = list(sd)
    shards = {"pytorch_model-00001-of-00002.bin": names[: len(names) // 2],
              "pytorch_model-00002-of-00002.bin": names[len(names) // 2:]}
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "config.json").write_text((one / "config.json").read_text())
    for fname, ns in shards.items():
        torch.save({n: sd[n] for n in ns}, folder / fname)
    (folder / "pytorch_model.bin.index.json").write_text(
        json.dumps({"weight_map": {n: f for f, ns in shards.items() for n in ns}}))
    src = resolve_source(folder)
    assert isinstance(src, RangedSource) and len(src.stores) == 2
    assert src.size == sum((folder / f).stat().st_size for f in shards)
    a = build_nin(src, sample=0, per_layer=4)
    before = src.bytes_read
    assert 0 < before < src.size  # the sample reads rows, not whole tensors
    np.testing.assert_array_equal(a.edge_array(), build_nin(one, sample=0, per_layer=4).edge_array())
    assert fingerprint(folder) == fingerprint(one)


def test_compressed_entry_is_refused(tmp_path) -> None:
    p, q = tmp_path / "a.bin", tmp_path / "deflated.bin"
    torch.save({"w": torch.ones(4, 4)}, p)
    with zipfile.ZipFile(p) as zin, zipfile.ZipFile(q, "w", zipfile.ZIP_DEFLATED) as zout:
        for i in zin.infolist():
            zout.writestr(i.filename, zin.read(i.filename))
    with pytest.raises(ValueError, match=r"deflated.bin: storage entry 'a/data/0' is compressed"):
        resolve_source(q)


def test_truncated_and_corrupt(tmp_path) -> None:
    p = tmp_path / "a.bin"
    torch.save({"w": torch.ones(64, 64)}, p)
    data = p.read_bytes()
    (tmp_path / "cut.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.bin"):
        resolve_source(tmp_path / "cut.bin")


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# torch 2.13 deprecates quantize_per_tensor; the test only needs a quantized tensor in the pickle.
_QUANTIZED = pytest.param("quantized tensor", marks=pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning"))


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", _QUANTIZED])
@pytest.mark.slow
def test_code_is_refused_before_it_runs(tmp_path, payload) -> None:
    marker = tmp_path / "PWNED"
    sd = {"w": torch.ones(3, 3)}
    if payload == "os.system":
        sd["x"] = _Evil(str(marker))
        want = "posix.system"
    elif payload == "builtins.eval":
        class E:
            def __reduce__(self):
                return (eval, (f"open({str(marker)!r}, 'w')",))
        sd["x"] = E()
        want = "(__builtin__|builtins).eval"  # protocol 2 writes the Python 2 name
    else:  # not code, but not a plain tensor either: refused as weights_only would not be
        sd["x"] = torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.quint8)
        want = "torch._utils._rebuild_qtensor"
    p = tmp_path / "pytorch_model.bin"
    torch.save(sd, p)
    with pytest.raises(ValueError, match=rf"refused, as torch.load\(weights_only=True\) would: refused global '{want}"):
        resolve_source(p)
    assert not marker.exists()
    # the same file in a process where torch cannot be imported
    code = NO_TORCH + (
        "from neuromfa_native.io.sources import resolve_source\n"
        f"try:\n    resolve_source({str(p)!r})\nexcept ValueError as e:\n    print('REFUSED', e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "REFUSED" in out.stdout and re.search(want, out.stdout)
    assert not marker.exists(), "reading the checkpoint executed code from its pickle"


@pytest.mark.slow
def test_no_torch_imported_and_works_without_torch(tiny_model) -> None:
    folder = tiny_model("llama", dtype="bfloat16", fmt="bin")
    want = analyze_sample(_torch_source(folder), 2, per_layer=4)
    for prelude in ("", NO_TORCH):
        code = prelude + (
            "import sys\nfrom neuromfa_native.science.analysis import analyze_sample\n"
            f"r = analyze_sample({str(folder)!r}, 2, per_layer=4)\n"
            "print(repr(r.alpha0), repr(r.width), 'torch' in sys.modules and sys.modules['torch'] is not None)\n")
        out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        a0, w, has_torch = out.stdout.split()
        assert (float(a0), float(w)) == (want.alpha0, want.width)
        assert has_torch == "False"


def test_legacy_format_without_torch_says_so(tmp_path) -> None:
    p = tmp_path / "old.bin"
    torch.save({"w": torch.ones(2, 2)}, p, _use_new_zipfile_serialization=False)
    np.testing.assert_array_equal(resolve_source(p).get("w"), np.ones((2, 2), np.float32))  # through torch
    code = NO_TORCH + (
        "from neuromfa_native.io.sources import resolve_source\n"
        f"try:\n    resolve_source({str(p)!r})\nexcept ValueError as e:\n    print('ERR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert "ERR" in out.stdout and "needs torch" in out.stdout, out.stdout + out.stderr
