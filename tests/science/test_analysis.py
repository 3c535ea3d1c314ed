"""analyze / analyze_sample: sampled and streamed full networks, node dimensions, executors."""
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import neuromfa_native as nm
from reference_impl import reference_nfd
from paths import DATA

FIXTURES = DATA  # golden fixtures: see data/README.md


def test_analyze_reproduces_published_spectra():
    ref = json.loads((FIXTURES / "reference_results.json").read_text())
    for step in range(3):
        a = nm.analyze(FIXTURES / "neox_tiny" / f"step{step}", samples=2, per_layer=16)
        assert [r.sample for r in a.results] == [0, 1]
        for r in a.results:
            case = ref["cases"][f"neox_tiny/step{step}/sample{r.sample}"]
            np.testing.assert_allclose(r.spectrum.tau, case["tau"], atol=1e-9)
        np.testing.assert_allclose(a.width_mean, ref["emergence"]["width_mean"][step], atol=1e-9)


def test_streamed_full_network_equals_explicit_edge_list():
    src = FIXTURES / "neox_tiny" / "step1"
    streamed = nm.analyze_sample(src, per_layer=None)
    nin = nm.build_nin(src, per_layer=None)
    explicit = nm.analyze_graph(nin.src, nin.dst, nin.weight)
    assert np.array_equal(streamed.spectrum.log_z, explicit.log_z)
    assert streamed.sample is None and streamed.n_network_nodes == nin.n_nodes
    _nd = nm.node_fractal_dimension(nin.src, nin.weight)
    nodes, dims = _nd.node, _nd.dimension
    np.testing.assert_array_equal(streamed.node_dimensions.dimension[nodes], dims)


@pytest.mark.parametrize("arch", ["gpt2", "llama", "bert"])
def test_full_streaming_on_other_architectures(tiny_model, arch):
    folder = tiny_model(arch)
    streamed = nm.analyze_sample(folder, per_layer=None, min_edges=5, node_dimension=False)
    nin = nm.build_nin(folder, per_layer=None)
    explicit = nm.analyze_graph(nin.src, nin.dst, nin.weight, min_edges=5)
    assert np.array_equal(streamed.spectrum.log_z, explicit.log_z)


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_full_streaming_of_bfloat16_keeps_the_bits(tiny_model, arch, monkeypatch):
    """bfloat16 weights are binned as 16-bit patterns (kind bf16, table look-up), never widened
    to float32, and give exactly the numbers of the widened edge list (conv1d included)."""
    folder = tiny_model(arch, dtype="bfloat16")
    kinds = []
    accumulate = nm._core.accumulate_matrix
    monkeypatch.setattr(nm._core, "accumulate_matrix",
                        lambda table, w, kind, *a: kinds.append((w.dtype, kind)) or accumulate(table, w, kind, *a))
    streamed = nm.analyze_sample(folder, per_layer=None, min_edges=5)
    assert kinds and set(kinds) == {(np.dtype(np.uint16), "bf16")}
    nin = nm.build_nin(folder, per_layer=None)
    assert nin.weight.dtype == np.float32
    explicit = nm.analyze_graph(nin.src, nin.dst, nin.weight, min_edges=5)
    assert np.array_equal(streamed.spectrum.log_z, explicit.log_z)
    _nd = nm.node_fractal_dimension(nin.src, nin.weight)
    nodes, dims = _nd.node, _nd.dimension
    np.testing.assert_array_equal(streamed.node_dimensions.dimension[nodes], dims)


def test_full_streaming_finds_a_nan_in_bfloat16(tmp_path):
    from neuromfa_native.io.safetensors import write_safetensors
    from tiny_series import config, weights

    ws = weights(100)
    name = "gpt_neox.layers.1.mlp.dense_4h_to_h.weight"
    bits = {k: (v.view(np.uint32) >> 16).astype(np.uint16) for k, v in ws.items()}
    bits[name][7, 3] = 0x7FC0  # a bfloat16 NaN
    (tmp_path / "config.json").write_text(json.dumps(config()))
    write_safetensors(tmp_path / "model.safetensors", bits, dtypes={k: "BF16" for k in bits})
    with pytest.raises(ValueError, match=rf"{name} holds a NaN or infinite weight at \[7, 3\]"):
        nm.analyze_sample(tmp_path, per_layer=None)


def test_node_fractal_dimension_against_slow_reference():
    rng = np.random.default_rng(0)
    src = np.repeat(np.arange(40), 30)
    w = rng.standard_t(3, src.size) * 0.02
    w[:5] = 0.9   # distances near 1 (rounded radius 1)
    w[5] = 3.0    # d = 1/3 rounds to 0: counted in c(r), not a fit point
    _nd = nm.node_fractal_dimension(src, w)
    nodes, dims = _nd.node, _nd.dimension
    np.testing.assert_array_equal(nodes, np.arange(40))
    for n in nodes:
        np.testing.assert_allclose(dims[n], reference_nfd(1 / np.abs(w[src == n])), atol=1e-10)
    # too few distances -> 0
    _nd = nm.node_fractal_dimension(np.zeros(10, int), np.full(10, 0.05))
    _, d2 = _nd.node, _nd.dimension
    assert d2[0] == 0.0


def test_node_dimension_summary_per_layer():
    a = nm.analyze(FIXTURES / "neox_tiny" / "step0", samples=2, per_layer=16)
    rows = a.node_dimension_summary()
    names = [r["layer"] for r in rows]
    assert names[0] == "block0.input" and len(names) == len(set(names))
    assert all(r["n_measured"] <= r["n_nodes"] for r in rows)
    first = rows[0]
    assert first["n_measured"] > 0 and 0 < first["mean"] < 3


def test_executor_matches_in_process():
    src = FIXTURES / "neox_tiny" / "step2"
    local = nm.analyze(src, samples=3, per_layer=16)
    with ThreadPoolExecutor(2) as ex:
        remote = nm.analyze(str(src), samples=3, per_layer=16, executor=ex, n_threads=1)
    for a, b in zip(local.results, remote.results):
        assert np.array_equal(a.spectrum.tau, b.spectrum.tau)


def test_filters_and_aggregate():
    a = nm.analyze(FIXTURES / "neox_tiny" / "step0", samples=[1, 0], per_layer=16, filter="none")
    assert [r.sample for r in a.results] == [1, 0]
    assert a.alpha0_mean == pytest.approx(np.mean([r.alpha0 for r in a.results]))
    assert a.alpha0_std == pytest.approx(np.std([r.alpha0 for r in a.results], ddof=1))
    strict = nm.analyze(FIXTURES / "neox_tiny" / "step0", samples=2, per_layer=16, filter="both")
    assert len(strict.kept) <= 2
    if not strict.kept:
        assert np.isnan(strict.alpha0_mean)  # missing is NaN, as in Series
    table = a.table()
    assert list(table["sample"]) == [1, 0] and "alpha0" in table


@pytest.mark.parametrize("kwargs,match", [
    (dict(samples=0), "samples"),
    (dict(samples=[1, 1]), "samples"),
    (dict(filter="x"), "filter"),
    (dict(per_layer=None, box="path"), "sampled network"),
    (dict(per_layer=97), "per_layer"),
    (dict(threshold=0.5), "threshold"),
    (dict(q=[]), "q"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nm.analyze(FIXTURES / "neox_tiny" / "step0", **{"per_layer": 16, **kwargs})


def test_executor_needs_a_path():
    with ThreadPoolExecutor(1) as ex, pytest.raises(TypeError, match="path or hub id"):
        nm.analyze({"w": np.zeros((2, 2))}, executor=ex)
