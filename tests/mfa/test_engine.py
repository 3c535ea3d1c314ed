"""Public engine API: hand-computed graphs, invariants of docs/spec.md, the slow reference, errors."""
import math
import warnings

import numpy as np
import pytest

import neuromfa_native as nm
from reference_impl import reference_graph, reference_spectrum


def layered_graph(rng, n_src=60, fan=40, scale=0.05, n_dst=500, dtype=np.float64):
    src = np.repeat(np.arange(n_src), fan)
    dst = rng.integers(n_src, n_src + n_dst, size=src.size)
    w = rng.normal(0, scale, size=src.size).astype(dtype)
    return src, dst, w


def test_hand_computed_two_nodes():
    # node 0: distances 2, 2, 4 ; node 1: distances 2, 4, 4 (weights 1/d), min_edges=3
    src = np.array([0, 0, 0, 1, 1, 1])
    w = np.array([0.5, 0.5, 0.25, 0.5, 0.25, 0.25])
    with pytest.warns(RuntimeWarning, match="only 2 radii in the grid"):
        spec = nm.analyze_graph(src, src, w, min_edges=3)
    assert spec.n_nodes == 2
    np.testing.assert_array_equal(spec.radius, [2.0, 4.0])
    # N_0 = (3, 4), N_1 = (2, 4) -> mu_0(2) = 3/4, mu_1(2) = 1/2; Z_q(2) = .75^q + .5^q, Z_q(4) = 2
    x = math.log(2 / 4)
    for k, q in enumerate(spec.q):
        expected = (math.log(2) - math.log(0.75 ** q + 0.5 ** q)) / (0 - x)
        assert spec.tau[k] == pytest.approx(expected, abs=1e-12)
        assert spec.log_z[k, 0] == pytest.approx(math.log(0.75 ** q + 0.5 ** q), abs=1e-13)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.slow
def test_matches_slow_reference_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    scale = [0.01, 0.02, 0.05, 0.1][seed % 4]
    decimals = [0, 0, 1, 2][seed % 4]
    src, dst, w = layered_graph(rng, n_src=int(rng.integers(15, 40)), fan=int(rng.integers(12, 50)), scale=scale)
    # duplicates and self loops are edges like any other
    src = np.concatenate([src, src[:30]])
    dst = np.concatenate([dst, src[:30]])
    w = np.concatenate([w, w[:30]])
    perm = rng.permutation(src.size)
    src, dst, w = src[perm], dst[perm], w[perm]
    tau, radii, n = reference_graph(src, w, decimals=decimals)
    spec = nm.analyze_graph(src, dst, w, decimals=decimals)
    assert spec.n_nodes == n
    np.testing.assert_allclose(spec.radius, radii, rtol=0, atol=0)
    np.testing.assert_allclose(spec.tau, tau, rtol=0, atol=1e-9)
    alpha, f = reference_spectrum(tau)
    np.testing.assert_allclose(spec.alpha, alpha, atol=1e-9)
    np.testing.assert_allclose(spec.f, f, atol=1e-9)


def test_invariants():
    rng = np.random.default_rng(1)
    spec = nm.analyze_graph(*layered_graph(rng, scale=0.03))
    assert spec.tau[list(spec.q).index(0.0)] == 0.0
    np.testing.assert_allclose(spec.log_z[list(spec.q).index(0.0)], math.log(spec.n_nodes), rtol=1e-13)
    np.testing.assert_allclose(spec.log_z[:, -1], math.log(spec.n_nodes), rtol=1e-12)
    assert spec.radius[-1] == spec.diameter <= 150
    assert np.all(np.diff(spec.radius) > 0)
    # Z_q(r) is monotone in r: decreasing for q < 0, increasing for q > 0
    assert np.all(np.diff(spec.log_z[spec.q < 0], axis=1) <= 1e-12)
    assert np.all(np.diff(spec.log_z[spec.q > 0], axis=1) >= -1e-12)
    assert spec.f.max() == pytest.approx(0.0, abs=1e-9)  # spectra peak at f = 0
    assert spec.width == pytest.approx(spec.alpha.max() - spec.alpha.min())


def test_threads_give_identical_bits():
    rng = np.random.default_rng(2)
    src, dst, w = layered_graph(rng, n_src=3000, fan=60, scale=0.03)
    ref = nm.analyze_graph(src, dst, w, n_threads=1)
    for n in (2, 3, 8):
        spec = nm.analyze_graph(src, dst, w, n_threads=n)
        assert np.array_equal(spec.log_z, ref.log_z)
        assert np.array_equal(spec.tau, ref.tau)


def test_relabelling_and_order_do_not_matter():
    rng = np.random.default_rng(3)
    src, dst, w = layered_graph(rng)
    base = nm.analyze_graph(src, dst, w)
    relabel = rng.permutation(10 ** 6)[: src.max() + 1] * 10 ** 9  # sparse, huge ids
    perm = rng.permutation(src.size)
    spec = nm.analyze_graph(relabel[src][perm], dst[perm], w[perm])
    np.testing.assert_allclose(spec.tau, base.tau, atol=1e-12)


def test_weight_dtypes_equal_when_values_equal():
    rng = np.random.default_rng(4)
    src, dst, w = layered_graph(rng, dtype=np.float16)
    a = nm.analyze_graph(src, dst, w)
    b = nm.analyze_graph(src, dst, w.astype(np.float32))
    c = nm.analyze_graph(src, dst, w.astype(np.float64))
    assert np.array_equal(a.log_z, b.log_z) and np.array_equal(a.log_z, c.log_z)


def test_filter_boundaries():
    # |w| = 1 -> d = 1 is dropped; |w| = 1/150 -> kept exactly when 1/(1/150) <= 150 in double
    # precision (as in the published scripts); 1/150.5 -> dropped; 0 -> no edge
    base = np.full(11, 0.1)
    edge = 1 / 150
    assert 1.0 / edge <= 150
    w = np.concatenate([base, [1.0, -1.0, edge, 1 / 150.5, 0.0]])
    src = np.zeros(w.size, np.int64)
    src2 = np.ones(11, np.int64)
    with pytest.warns(RuntimeWarning, match="only 3 radii in the grid"):
        spec = nm.analyze_graph(np.concatenate([src, src2]), np.concatenate([src, src2]),
                                np.concatenate([w, np.full(11, 0.5)]))
    assert spec.n_nodes == 2
    assert spec.n_distances == 11 + 1 + 11
    assert spec.radius[-1] == 150.0


def test_alpha0_tie_rule():
    q = np.array([-0.2, -0.1, 0.0, 0.1, 0.2])
    tau = np.array([-0.3, -0.14, 0.0, 0.12, 0.22])
    alpha, f, alpha0, width = nm.spectrum_from_tau(q, tau)
    # f(-0.1) and f(0) both equal -tau(0) = 0: the central difference
    assert alpha0 == pytest.approx((tau[3] - tau[1]) / 0.2)
    assert width == pytest.approx(alpha.max() - alpha.min())
    # a unique maximum takes its own alpha
    alpha, f, alpha0, _ = nm.spectrum_from_tau([0.0, 1.0, 2.0], [0.0, 1.0, 3.0])
    assert alpha0 == alpha[int(np.argmax(f))]


def test_spectrum_filters():
    rng = np.random.default_rng(5)
    spec = nm.analyze_graph(*layered_graph(rng, scale=0.03))
    assert spec.passes("none")
    assert spec.passes("f_positive") == (not np.any(spec.f > 0))
    assert spec.passes("alpha_range") == (not (spec.alpha.max() - spec.alpha[0] > 0.01))
    assert spec.passes("both") == (spec.passes("f_positive") and spec.passes("alpha_range"))
    with pytest.raises(ValueError, match="filter"):
        spec.passes("bogus")


def test_result_is_frozen_and_read_only():
    spec = nm.analyze_graph(*layered_graph(np.random.default_rng(6)))
    with pytest.raises(AttributeError):  # dataclasses.FrozenInstanceError is an AttributeError
        spec.alpha0 = 1.0
    with pytest.raises(ValueError):
        spec.tau[0] = 1.0
    assert spec.to_dict()["alpha0"] == spec.alpha0


def test_emergence():
    e = nm.emergence([1.6, 1.5, 1.4], [0.4, 0.5, 0.6])
    np.testing.assert_allclose(e, [0.0, 1.25 * math.log(1.6 / 1.5), 1.5 * math.log(1.6 / 1.4)])
    np.testing.assert_allclose(nm.emergence([1.6, 1.5], [0.4, 0.5], baseline=1)[1], 0.0)
    with pytest.raises(ValueError, match="alpha0 must be positive"):
        nm.emergence([1.0, -1.0], [0.3, 0.3])
    with pytest.raises(ValueError, match="same non-zero length"):
        nm.emergence([1.0], [0.3, 0.3])
    with pytest.raises(ValueError, match="baseline width"):
        nm.emergence([1.0, 1.1], [0.0, 0.3])


def test_custom_q_and_extreme_moments_stay_finite():
    rng = np.random.default_rng(7)
    src, dst, w = layered_graph(rng, n_src=50, fan=400, n_dst=5000, scale=0.03)
    spec = nm.analyze_graph(src, dst, w, q=[-300.0, -1.0, 0.0, 1.0, 300.0])
    assert np.all(np.isfinite(spec.log_z))
    assert np.all(np.isfinite(spec.tau))
    tau, _, _ = reference_graph(src, w, q=np.array([-1.0, 0.0, 1.0]))
    np.testing.assert_allclose(spec.tau[1:4], tau, atol=1e-9)


BAD = [
    (dict(src=[0, 1], dst=[0], weight=[0.1, 0.1]), ValueError, "same length"),
    (dict(src=[-1] * 12, dst=[0] * 12, weight=[0.1] * 12), ValueError, "negative"),
    (dict(src=[0] * 12, dst=[-3] * 12, weight=[0.1] * 12), ValueError, "dst holds negative"),
    (dict(src=[0] * 12, dst=[0] * 12, weight=[0.1] * 11 + [np.nan]), ValueError, "NaN or infinite"),
    (dict(src=[0] * 12, dst=[0] * 12, weight=[0.1] * 11 + [np.inf]), ValueError, "NaN or infinite"),
    (dict(src=[], dst=[], weight=[]), ValueError, "empty"),
    (dict(src=[0] * 5, dst=[0] * 5, weight=[0.1] * 5), ValueError, "no node kept"),
    (dict(src=[0.5] * 12, dst=[0] * 12, weight=[0.1] * 12), ValueError, "non-integer"),
    (dict(src=["a"] * 12, dst=[0] * 12, weight=[0.1] * 12), TypeError, "integer node ids"),
    (dict(src=[0] * 12, dst=[0] * 12, weight=["x"] * 12), TypeError, "floating-point"),
    (dict(src=[[0]] * 12, dst=[0] * 12, weight=[0.1] * 12), ValueError, "1-dimensional"),
]


@pytest.mark.parametrize("kwargs,exc,match", BAD)
def test_bad_inputs(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        nm.analyze_graph(kwargs["src"], kwargs["dst"], kwargs["weight"])


@pytest.mark.parametrize("opts,match", [
    (dict(threshold=1.0), "threshold"),
    (dict(threshold=float("nan")), "threshold"),
    (dict(threshold="x"), "threshold"),
    (dict(min_edges=-1), "min_edges"),
    (dict(min_edges=0), "min_edges"),
    (dict(decimals=0.5), "decimals"),
    (dict(q=[0.0, 0.0, 1.0]), "strictly increasing"),
    (dict(q=[1.0]), "at least 2"),
    (dict(q=[]), "at least 2"),
    (dict(q=[0.0, np.nan]), "finite"),
    (dict(n_threads=0), "n_threads"),
    (dict(n_threads=2.5), "n_threads"),
])
def test_bad_options(opts, match):
    rng = np.random.default_rng(8)
    with pytest.raises((ValueError, TypeError), match=match):
        nm.analyze_graph(*layered_graph(rng), **opts)


def test_single_radius_is_a_clear_error():
    src = np.zeros(12, np.int64)
    with pytest.raises(ValueError, match="single value"):
        nm.analyze_graph(src, src, np.full(12, 0.1))


def test_radius_rounded_to_zero_is_a_clear_error():
    src = np.zeros(12, np.int64)
    w = np.array([0.5] * 6 + [0.01] * 6)  # d = 2 rounds to 0 with decimals=-1
    with pytest.raises(ValueError, match="rounds to 0"):
        nm.analyze_graph(src, src, w, decimals=-1)


def test_poor_fit_is_recorded_and_warned():
    # two radii only -> stderr undefined and a note
    src = np.zeros(12, np.int64)
    w = np.array([0.5] * 6 + [0.25] * 6)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = nm.analyze_graph(src, src, w)
    assert any("radii" in n for n in spec.notes)
    assert any("radii" in str(c.message) for c in caught)
    assert np.all(np.isnan(spec.tau_stderr))


@pytest.mark.parametrize("q", [[-3.0, -1.5, -0.2, 0.0, 0.7, 2.9], [0.5, 1.0, 1.5], [-2.0, -1.0], [-0.05, 0.05, 0.15]])
def test_uneven_and_one_sided_moments_match_reference(q):
    rng = np.random.default_rng(9)
    src, dst, w = layered_graph(rng, n_src=30, fan=60, scale=0.03)
    tau, _, _ = reference_graph(src, w, q=np.array(q))
    spec = nm.analyze_graph(src, dst, w, q=q)
    np.testing.assert_allclose(spec.tau, tau, atol=1e-9)


def test_power_tables_and_exponentials_agree():
    # the same graph with moments small enough for power tables and, scaled, too large for them
    rng = np.random.default_rng(10)
    src, dst, w = layered_graph(rng, n_src=40, fan=300, n_dst=3000, scale=0.03)
    q = np.arange(-30, 31) / 10.0
    a = nm.analyze_graph(src, dst, w, q=q)
    b = nm.analyze_graph(src, dst, w, q=np.concatenate([q, [200.0]]))  # 200*ln(301) > 600: exp path
    np.testing.assert_allclose(a.log_z, b.log_z[:-1], rtol=1e-13, atol=1e-13)
