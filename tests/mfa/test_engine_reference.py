"""The engine against the published scripts' golden outputs (tests/data, see data/README.md)."""
import json

import numpy as np
import pytest

import neuromfa_native as nm
from neuromfa_native.mfa.engine import DEFAULT_Q
from paths import DATA

FIXTURES = DATA
REF = json.loads((FIXTURES / "reference_results.json").read_text())
CASES = [(s, k) for s in range(3) for k in range(2)]


def check_case(spec, case):
    np.testing.assert_allclose(spec.tau, case["tau"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(spec.alpha, case["alpha"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(spec.f, case["f"], rtol=0, atol=1e-9)
    assert abs(spec.width - case["width"]) <= 1e-9
    gap = abs(case["alpha"][29] - case["alpha"][30]) / 2
    assert abs(spec.alpha0 - case["alpha0"]) <= gap + 1e-9


def test_default_q_is_the_published_grid():
    np.testing.assert_array_equal(DEFAULT_Q, REF["q"])


def test_distances_t4():
    d = np.load(FIXTURES / "distances_t4.npy")
    src = np.repeat(np.arange(d.shape[0]), d.shape[1])
    spec = nm.analyze_graph(src, src, 1.0 / d.ravel())
    check_case(spec, REF["cases"]["distances_t4"])
    assert spec.n_nodes == 300


@pytest.mark.parametrize("step,sample", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_neox_tiny_edge_lists(step, sample, dtype):
    e = np.load(FIXTURES / "neox_tiny" / f"step{step}_sample{sample}_edges.npy")
    # the weights are float16 values stored as float64: every dtype here holds them exactly
    spec = nm.analyze_graph(e[:, 0], e[:, 1], e[:, 2].astype(dtype))
    check_case(spec, REF["cases"][f"neox_tiny/step{step}/sample{sample}"])
    assert spec.tau[30] == 0.0  # tau(0) = 0
    np.testing.assert_allclose(spec.log_z[:, -1], np.log(spec.n_nodes), rtol=1e-12)  # Z_q(D) = n


def test_emergence_fixture():
    em = REF["emergence"]
    a0 = []
    w = []
    for step in range(3):
        specs = []
        for sample in range(2):
            e = np.load(FIXTURES / "neox_tiny" / f"step{step}_sample{sample}_edges.npy")
            specs.append(nm.analyze_graph(e[:, 0], e[:, 1], e[:, 2]))
        a0.append(np.mean([s.alpha0 for s in specs]))
        w.append(np.mean([s.width for s in specs]))
    np.testing.assert_allclose(w, em["width_mean"], rtol=0, atol=1e-9)
    # alpha0 differs from the published means only through the tie rule
    assert np.all(np.abs(np.array(a0) - em["alpha0_mean"]) < 0.01)
    e_ours = nm.emergence(a0, w)
    np.testing.assert_allclose(e_ours, (np.array(w) / w[0]) * np.log(a0[0] / np.array(a0)), rtol=1e-12)
    np.testing.assert_allclose(e_ours, em["E"], atol=0.02)
    assert e_ours[0] == 0.0
