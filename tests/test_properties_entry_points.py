"""Hypothesis property tests of the other public engine entry points against the slow
reference (tests/reference_impl.py): path boxes, node fractal dimension, histograms,
the spectrum and emergence."""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import neuromfa_native as nm
from neuromfa_native.mfa.engine import analyze_histogram
from reference_impl import reference_nfd, reference_path_lists, reference_spectrum, reference_tau

pytest.importorskip("scipy", reason="scipy is optional; it is the yardstick here")
Q3 = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
QUIET = warnings.catch_warnings


@st.composite
def graphs(draw, max_nodes=14, max_edges=120):
    n = draw(st.integers(1, max_nodes))
    big = draw(st.booleans())
    ids = np.array(draw(st.lists(st.integers(0, 2**62 if big else 60), min_size=n, max_size=n, unique=True)))
    m = draw(st.integers(1, max_edges))
    src = ids[np.array(draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)))]
    dst = ids[np.array(draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m)))]  # self-loops, duplicates
    mags = st.one_of(st.floats(1 / 160, 1.1), st.sampled_from([1.0, 1 / 150, 0.5, 1 / 2.5, 0.0, 1 / 3.0]))
    w = np.array(draw(st.lists(mags, min_size=m, max_size=m)))
    w *= np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=m, max_size=m)))
    return src.astype(np.int64), dst.astype(np.int64), w.astype(draw(st.sampled_from([np.float64, np.float16])))


def _same_or_both_fail(reference, engine):
    try:
        want = reference()
    except ValueError:
        want = None
    if want is None:
        with pytest.raises(ValueError):
            engine()
        return None, None
    return want, engine()


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs(), st.sampled_from(["forward", "undirected"]), st.integers(1, 6), st.sampled_from([150.0, 40.0]))
def test_path_boxes_match_dijkstra(g, direction, min_edges, threshold):
    src, dst, w = g

    def reference():
        lists = reference_path_lists(src, dst, w, threshold, direction == "undirected")
        tau, radii, n = reference_tau(lists, threshold=threshold, min_edges=min_edges, q=Q3)
        if radii.size < 2:
            raise ValueError("single radius")
        return tau, radii, n

    with QUIET():
        warnings.simplefilter("ignore")
        want, spec = _same_or_both_fail(reference, lambda: nm.analyze_graph(
            src, dst, w, box="path", direction=direction, threshold=threshold, min_edges=min_edges, q=Q3))
    if want is not None:
        tau, radii, n = want
        assert spec.n_nodes == n
        np.testing.assert_array_equal(spec.radius, radii)
        np.testing.assert_allclose(spec.tau, tau, atol=1e-9)


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(graphs(max_edges=200), st.sampled_from([200.0, 50.0]))
def test_node_fractal_dimension_matches_reference(g, threshold):
    src, _, w = g
    _nd = nm.node_fractal_dimension(src, w, threshold=threshold)
    nodes, dims = _nd.node, _nd.dimension
    np.testing.assert_array_equal(nodes, np.unique(src))
    wd = w.astype(np.float64)
    for node, dim in zip(nodes, dims):
        mine = wd[(src == node) & (wd != 0)]
        assert dim == pytest.approx(reference_nfd(1 / np.abs(mine), threshold), abs=1e-9)


@st.composite
def histograms(draw):
    n = draw(st.integers(1, 8))
    lists = {}
    for c in range(n):
        keys = draw(st.lists(st.integers(2, 40), min_size=1, max_size=12))  # distances > 1, as kept
        lists[c] = sorted(keys)
    return lists


@settings(max_examples=80, deadline=None)
@given(histograms())
def test_histograms_match_reference(lists):
    indptr, key, count = [0], [], []
    for c in sorted(lists):
        k, cnt = np.unique(lists[c], return_counts=True)
        key += k.tolist()
        count += cnt.tolist()
        indptr.append(len(key))
    with QUIET():
        warnings.simplefilter("ignore")
        want, spec = _same_or_both_fail(
            lambda: _checked(reference_tau({c: [float(v) for v in ks] for c, ks in lists.items()}, min_edges=1, q=Q3)),
            lambda: analyze_histogram(indptr, key, count, q=Q3))
    if want is not None:
        np.testing.assert_allclose(spec.tau, want[0], atol=1e-9)


def _checked(res):
    if res[1].size < 2:
        raise ValueError("single radius")
    return res


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=3, max_size=30))
def test_spectrum_from_tau_properties(tau_tail):
    q = np.arange(len(tau_tail)) * 0.1 - 0.1 * (len(tau_tail) // 2)
    tau = np.asarray(tau_tail, float)
    alpha, f, alpha0, width = nm.spectrum_from_tau(q, tau)
    ra, rf = reference_spectrum(tau, q)
    np.testing.assert_allclose(alpha, ra)
    np.testing.assert_allclose(f, rf)
    assert alpha.min() - 1e-12 <= alpha0 <= alpha.max() + 1e-12
    assert width == pytest.approx(alpha.max() - alpha.min()) and width >= 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 3.0), st.floats(0.01, 2.0)), min_size=1, max_size=20), st.data())
def test_emergence_properties(points, data):
    a0, w = map(np.array, zip(*points))
    b = data.draw(st.integers(0, len(points) - 1))
    e = nm.emergence(a0, w, baseline=b)
    assert e[b] == 0.0
    np.testing.assert_allclose(e, (w / w[b]) * np.log(a0[b] / a0), rtol=1e-12)
    assert np.all(np.sign(e[a0 < a0[b]]) >= 0) and np.all(np.sign(e[a0 > a0[b]]) <= 0)
