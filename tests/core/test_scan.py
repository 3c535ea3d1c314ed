"""_core.count_nonfinite (cpp/include/neuromfa/scan.hpp), the fingerprint pass's finiteness
scan, against numpy.isfinite; and the pass's counts and digest against the slow way."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from neuromfa_native import _core


def _bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_counts_equal_numpy_isfinite_on_random_bit_patterns(dtype) -> None:
    rng = np.random.default_rng(3)
    np_dtype = np.dtype(dtype)
    raw = rng.integers(0, 256, size=np_dtype.itemsize * 100_003, dtype=np.uint8)  # every kind of value
    x = raw.view(np_dtype)
    want = int(np.count_nonzero(~np.isfinite(x)))
    assert want > 0
    for t in (1, 2, -1):
        assert _core.count_nonfinite(raw, dtype, t) == want


def test_bfloat16_every_pattern() -> None:
    bits = np.arange(1 << 16, dtype=np.uint16)
    want = int(np.count_nonzero(~np.isfinite(_bf16_to_f32(bits))))
    assert _core.count_nonfinite(bits.view(np.uint8), "bfloat16", 2) == want == 256


def test_float16_every_pattern() -> None:
    bits = np.arange(1 << 16, dtype=np.uint16)
    want = int(np.count_nonzero(~np.isfinite(bits.view(np.float16))))
    assert _core.count_nonfinite(bits.view(np.uint8), "float16", 1) == want == 2048


def test_refuses_what_it_cannot_count() -> None:
    with pytest.raises(ValueError, match="not a whole number of float32 values"):
        _core.count_nonfinite(np.zeros(6, np.uint8), "float32", 1)
    with pytest.raises(ValueError, match="dtype must be one of"):
        _core.count_nonfinite(np.zeros(4, np.uint8), "int8", 1)
    with pytest.raises(TypeError):
        _core.count_nonfinite(np.zeros(4, np.int16), "float16", 1)  # no silent conversion
    assert _core.count_nonfinite(np.zeros(0, np.uint8), "float64", 1) == 0


def test_the_pass_gives_the_fingerprint_and_the_counts_of_the_slow_way(tmp_path) -> None:
    """fingerprint_and_scan against blake2b over the bytes and numpy.isfinite per tensor, with
    chunks that end inside a value (a 16 MB chunk is not a multiple of every tensor)."""
    from neuromfa_native.io.safetensors import write_safetensors
    from neuromfa_native.io.sources import resolve_source
    from neuromfa_native.network.fingerprint import fingerprint_and_scan

    rng = np.random.default_rng(0)
    tensors = {"a": rng.standard_normal((300, 7)).astype(np.float32),
               "b": rng.standard_normal((5, 3)).astype(np.float16), "c": np.zeros((0, 4), np.float32)}
    tensors["a"][3, 2] = np.nan
    tensors["b"][1, 1] = np.inf
    write_safetensors(tmp_path / "x.safetensors", tensors)
    digest, bad = fingerprint_and_scan(str(tmp_path / "x.safetensors"), layout=None)
    h = hashlib.blake2b(digest_size=16)
    src = resolve_source(str(tmp_path / "x.safetensors"))
    for n in sorted(tensors):
        h.update(f"{n}\0{src.dtype(n)}\0{src.shape(n)}\0".encode() + tensors[n].tobytes())
    assert digest == h.hexdigest() == src.fingerprint()
    assert bad == {"a": 1, "b": 1}
