"""Path boxes against an independent implementation (scipy.sparse.csgraph Dijkstra)."""
import numpy as np
import pytest

import neuromfa_native as nm
from reference_impl import reference_path_lists, reference_tau

csgraph = pytest.importorskip("scipy.sparse.csgraph", reason="scipy is optional; its shortest paths are the yardstick here")
sparse = pytest.importorskip("scipy.sparse", reason="scipy is optional; its sparse graphs are the yardstick here")


def layered(rng, sizes=(12, 20, 16, 10), fan=0.7, scale=0.05, dtype=np.float64):
    """Random layered DAG: each consecutive pair of layers densely connected (prob. `fan`)."""
    offs = np.concatenate([[0], np.cumsum(sizes)])
    src, dst = [], []
    for a in range(len(sizes) - 1):
        for i in range(sizes[a]):
            for j in range(sizes[a + 1]):
                if rng.random() < fan:
                    src.append(offs[a] + i)
                    dst.append(offs[a + 1] + j)
    w = rng.normal(0, scale, len(src)).astype(dtype)
    return np.array(src), np.array(dst), w


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("direction", ["forward", "undirected"])
@pytest.mark.slow
def test_path_boxes_match_scipy(seed, direction):
    rng = np.random.default_rng(seed)
    src, dst, w = layered(rng, scale=[0.03, 0.05, 0.1][seed % 3])
    threshold = [150.0, 80.0][seed % 2]
    lists = reference_path_lists(src, dst, w, threshold, direction == "undirected")
    # the lists hold path lengths, which the reference filters with 1 < d <= T: all are > 1
    tau, radii, n = reference_tau(lists, threshold=threshold, min_edges=5)
    spec = nm.analyze_graph(src, dst, w, box="path", direction=direction, threshold=threshold, min_edges=5)
    assert spec.n_nodes == n
    np.testing.assert_array_equal(spec.radius, radii)
    np.testing.assert_allclose(spec.tau, tau, atol=1e-9)


def test_one_hop_is_the_special_case_of_paths():
    # bipartite graph without duplicate edges: every path has one edge
    rng = np.random.default_rng(11)
    src = np.repeat(np.arange(30), 25)
    dst = 30 + np.tile(np.arange(25), 30)
    w = rng.normal(0, 0.03, src.size)
    a = nm.analyze_graph(src, dst, w, box="edge")
    b = nm.analyze_graph(src, dst, w, box="path")
    np.testing.assert_array_equal(a.radius, b.radius)
    np.testing.assert_allclose(a.tau, b.tau, atol=1e-12)


def test_path_boxes_threads_identical():
    rng = np.random.default_rng(3)
    src, dst, w = layered(rng, sizes=(40, 60, 50, 40, 30), scale=0.04, dtype=np.float16)
    ref = nm.analyze_graph(src, dst, w, box="path", n_threads=1)
    for n in (2, 8):
        assert np.array_equal(nm.analyze_graph(src, dst, w, box="path", n_threads=n).log_z, ref.log_z)


def test_bad_box_options():
    rng = np.random.default_rng(4)
    src, dst, w = layered(rng)
    with pytest.raises(ValueError, match="box must be"):
        nm.analyze_graph(src, dst, w, box="hop")
    with pytest.raises(ValueError, match="direction must be"):
        nm.analyze_graph(src, dst, w, box="path", direction="backward")
    with pytest.raises(ValueError, match="dst holds negative"):
        nm.analyze_graph(src, -dst, w, box="path")


def test_path_boxes_with_huge_sparse_ids_equal_dense_ids():
    rng = np.random.default_rng(5)
    src, dst, w = layered(rng, scale=0.04)
    big = 10 ** 12 + 7
    a = nm.analyze_graph(src, dst, w, box="path", min_edges=5)
    b = nm.analyze_graph(src * big, dst * big, w, box="path", min_edges=5)
    assert np.array_equal(a.log_z, b.log_z)
