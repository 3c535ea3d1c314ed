"""Determinism, a design property of the library: repeated runs and 1, 2 and 8
threads give bit-identical spectra, on every grouping path of the core and end to end from a
checkpoint.  Graphs are large enough to span several of the core's fixed blocks (65536 edges,
256 centres, 2**15 cost units), so the thread count really changes who computes what.
"""
from __future__ import annotations

import numpy as np
import pytest

import neuromfa_native as nm
from neuromfa_native.network.nin import build_nin

THREADS = (1, 2, 8)
REPEATS = 2


def _bits(spec) -> tuple[bytes, ...]:
    return (spec.tau.tobytes(), spec.log_z.tobytes(), spec.radius.tobytes(), spec.alpha.tobytes(),
            np.float64(spec.alpha0).tobytes(), np.float64(spec.width).tobytes(), spec.tau_r2.tobytes())


def _assert_deterministic(src, dst, weight, **kw):
    """Runs every thread count REPEATS times; returns the (common) spectrum."""
    first = None
    for _ in range(REPEATS):
        for t in THREADS + (None,):
            spec = nm.analyze_graph(src, dst, weight, n_threads=t, **kw)
            if first is None:
                first = spec
                continue
            assert spec.n_nodes == first.n_nodes and spec.n_distances == first.n_distances
            assert _bits(spec) == _bits(first), f"n_threads={t} changed the bits"
    return first


def _graph(seed: int, n_edges: int, n_sources: int, scale: float = 0.04):
    rng = np.random.default_rng(seed)
    # heavy-tailed out-degrees: a few hubs and many small nodes, in a shuffled edge order
    src = (rng.pareto(1.5, n_edges) * n_sources / 20).astype(np.int64) % n_sources
    dst = rng.integers(0, 4 * n_sources, n_edges)
    w = rng.normal(0.0, scale, n_edges)
    return src, dst, w


GRAPH = _graph(0, 300_000, 4000)


def test_dense_path_small_ids():
    spec = _assert_deterministic(*GRAPH)
    assert spec.n_nodes > 256 and np.isfinite(spec.tau).all()


def test_sparse_path_huge_ids_same_bits_as_dense():
    """Ids spread beyond 2**61 (the counting-sort path); an order-preserving relabelling of the
    nodes must not change a single bit of the spectrum."""
    src, dst, w = GRAPH
    stride = (1 << 62) // (4 * 4000)  # dst ids go up to 4 * n_sources
    huge = _assert_deterministic(src * stride + 12345, dst * stride, w)
    dense = nm.analyze_graph(src, dst, w, n_threads=2)
    assert _bits(huge) == _bits(dense)


def test_mid_range_ids():
    """Ids beyond the direct (source x key) table but below 4 * n_edges: the counting sort with
    a dense slot table."""
    src, dst, w = GRAPH
    spread = _assert_deterministic(src * 97, dst, w)
    assert _bits(spread) == _bits(nm.analyze_graph(src, dst, w, n_threads=1))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_low_precision_weights(dtype):
    src, dst, w = GRAPH
    spec = _assert_deterministic(src, dst, w.astype(dtype))
    # the weights are widened exactly: float16 data given as float64 gives the same bits
    assert _bits(spec) == _bits(nm.analyze_graph(src, dst, w.astype(dtype).astype(np.float64), n_threads=8))


@pytest.mark.filterwarnings("ignore:.*tau fits have r\\^2:RuntimeWarning")
@pytest.mark.slow
def test_options_decimals_threshold_and_extreme_moments():
    src, dst, w = _graph(1, 40_000, 500, scale=0.02)
    q = np.concatenate([[-300.0, -120.0], np.arange(-30, 31) / 10.0, [120.0, 300.0]])
    spec = _assert_deterministic(src, dst, w, threshold=400.0, decimals=1, min_edges=5, q=q)
    assert np.isfinite(spec.log_z).all()


def test_duplicates_and_self_loops():
    rng = np.random.default_rng(5)
    src = rng.integers(0, 500, 80_000)
    dst = np.where(rng.random(80_000) < 0.2, src, rng.integers(0, 500, 80_000))  # 20% self-loops
    w = np.round(rng.normal(0, 0.03, 80_000), 3)  # many equal weights
    src, dst, w = (np.concatenate([a, a[:20_000]]) for a in (src, dst, w))  # duplicate edges
    _assert_deterministic(src, dst, w)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_tiny_gpt_neox_end_to_end(tiny_model, dtype):
    """build_nin + analyze_graph on a tiny random GPT-NeoX: repeated builds give identical edge
    lists, and the spectra are bit-identical across runs and thread counts."""
    folder = tiny_model("gpt_neox", dtype=dtype)
    for per_layer, sample, kw in ((16, 0, {"min_edges": 5}), (16, 3, {"min_edges": 5}), (None, None, {})):
        nins = [build_nin(folder, per_layer=per_layer, sample=sample or 0) for _ in range(2)]
        a, b = nins
        assert a.src.tobytes() == b.src.tobytes() and a.dst.tobytes() == b.dst.tobytes()
        assert a.weight.tobytes() == b.weight.tobytes() and a.weight.dtype == np.dtype(dtype)
        _assert_deterministic(a.src, a.dst, a.weight, **kw)
