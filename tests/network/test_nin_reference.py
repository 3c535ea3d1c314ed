"""GPT-NeoX reference layout (docs/spec.md sections 1.1/1.2) against the published edge lists.

The fixtures under tests/data/neox_tiny were made by the authors' scripts; the edge lists
must match exactly as sets of rows (they match in order too). A slow transcription of docs/spec.md
section 1.1's x/y offset numbering is the yardstick for the full network.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neuromfa_native.network.fingerprint import find_identical, fingerprint
from neuromfa_native.network.nin import NIN, build_nin, describe, iter_full_matrices
from neuromfa_native.io.safetensors import SafetensorsFile
from paths import DATA

FIXTURES = DATA / "neox_tiny"  # see data/README.md


def _rows(a: np.ndarray) -> set[tuple[float, float, float]]:
    return set(map(tuple, np.asarray(a, dtype=np.float64)))


@pytest.mark.parametrize("step", [0, 1, 2])
@pytest.mark.parametrize("k", [0, 1])
def test_sampled_edges_equal_published(step: int, k: int) -> None:
    nin = build_nin(FIXTURES / f"step{step}", sample=k, per_layer=16)
    ref = np.load(FIXTURES / f"step{step}_sample{k}_edges.npy")
    mine = nin.edge_array()
    assert mine.shape == ref.shape
    assert _rows(mine) == _rows(ref)
    assert len(_rows(mine)) == len(mine)  # no duplicate edges
    # stronger than required: the published order too
    np.testing.assert_array_equal(mine, ref)
    assert nin.weight.dtype == np.float16
    assert nin.architecture == "gpt_neox" and nin.layout == "reference"


def _published_sampled(path: Path, k: int, S: int) -> np.ndarray:
    """docs/spec.md sections 1.1/1.2 transcribed literally, with numpy's global generator (the yardstick)."""
    cfg = json.loads((path / "config.json").read_text())
    h, B = cfg["hidden_size"], cfg["num_hidden_layers"]
    st = SafetensorsFile(path / "model.safetensors")
    state = np.random.get_state()
    try:
        np.random.seed(k)
        draw = lambda size, n: np.random.choice(np.arange(n), size, replace=False)  # noqa: E731
        sets = []
        for _ in range(B):
            n1, n2, n4, n5 = draw(S, h), draw(S, h), draw(S, h), draw(2 * S, 4 * h)
            sets.append((n1, n2, n4, n5))
        n6 = draw(S, h)
    finally:
        np.random.set_state(state)
    rows = []
    x, y = 0, h
    for b in range(B):
        n1, n2, n4, n5 = sets[b]
        nxt = sets[b + 1][0] if b + 1 < B else n6
        p = f"gpt_neox.layers.{b}."
        for tname, xs, ys in [
            ("attention.query_key_value.weight", n1, np.concatenate([n2, n2 + h, n2 + 2 * h])),
            ("attention.dense.weight", n2, n4),
            ("mlp.dense_h_to_4h.weight", n4, n5),
            ("mlp.dense_4h_to_h.weight", n5, nxt),
        ]:
            W = np.asarray(st.get(p + tname), dtype=np.float64)
            for i in xs:
                for j in ys:
                    if W[j, i] != 0:
                        rows.append((x + i, y + j, W[j, i]))
            s0, s1 = W.shape
            y += s0
            x += s1
            if tname.startswith("attention.query"):
                adj = np.vstack((np.eye(h), np.ones((2 * h, h))))
                for i in ys:
                    for j in n2:
                        if adj[i, j] != 0:
                            rows.append((x + i, y + j, adj[i, j]))
                y += h
                x += 3 * h
    return np.array(rows, dtype=np.float64)


def test_transcription_matches_published_and_library() -> None:
    ref = np.load(FIXTURES / "step1_sample1_edges.npy")
    slow = _published_sampled(FIXTURES / "step1", 1, 16)
    np.testing.assert_array_equal(slow, ref)
    np.testing.assert_array_equal(build_nin(FIXTURES / "step1", sample=3, per_layer=8).edge_array(),
                                  _published_sampled(FIXTURES / "step1", 3, 8))


def test_sampling_leaves_global_generator_alone() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    build_nin(FIXTURES / "step0", sample=5, per_layer=4)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def _full_reference(path: Path) -> np.ndarray:
    """Full network in docs/spec.md section 1.1 numbering: all nonzero entries, synthetic block included."""
    cfg = json.loads((path / "config.json").read_text())
    h, B = cfg["hidden_size"], cfg["num_hidden_layers"]
    st = SafetensorsFile(path / "model.safetensors")
    rows = []
    x, y = 0, h
    for b in range(B):
        p = f"gpt_neox.layers.{b}."
        for tname in ("attention.query_key_value.weight", "attention.dense.weight",
                      "mlp.dense_h_to_4h.weight", "mlp.dense_4h_to_h.weight"):
            W = np.asarray(st.get(p + tname), dtype=np.float64)
            ii, jj = np.nonzero(W.T)
            rows.append(np.column_stack([x + ii, y + jj, W.T[ii, jj]]))
            s0, s1 = W.shape
            y, x = y + s0, x + s1
            if tname.startswith("attention.query"):
                adj = np.vstack((np.eye(h), np.ones((2 * h, h))))
                ii, jj = np.nonzero(adj)
                rows.append(np.column_stack([x + ii, y + jj, adj[ii, jj]]))
                y, x = y + h, x + 3 * h
    return np.concatenate(rows).astype(np.float64)


def test_full_network_numbering() -> None:
    nin = build_nin(FIXTURES / "step2", per_layer=None)
    ref = _full_reference(FIXTURES / "step2")
    np.testing.assert_array_equal(nin.edge_array(), ref)
    h, B = 96, 3
    assert nin.n_nodes == 10 * h * B + h
    np.testing.assert_array_equal(nin.node_ids, np.arange(nin.n_nodes))
    assert nin.sample is None and nin.per_layer is None
    # node layers: block b occupies [10hb, 10h(b+1)), then the output layer
    assert nin.layer_names[:5] == ("block0.input", "block0.qkv", "block0.context", "block0.attn_out",
                                   "block0.mlp_hidden")
    assert nin.layer_names[-1] == "output"
    assert np.array_equal(np.bincount(nin.node_layer)[:5], [h, 3 * h, h, h, 4 * h])
    d = describe(FIXTURES / "step2", per_layer=None)
    assert d["full"]["edges"] == nin.n_edges  # no exact zeros in these weights
    assert d["full"]["nodes"] == nin.n_nodes


def test_sampled_is_subgraph_of_full() -> None:
    full = build_nin(FIXTURES / "step0", per_layer=None)
    sampled = build_nin(FIXTURES / "step0", sample=0, per_layer=16)
    assert _rows(sampled.edge_array()) <= _rows(full.edge_array())
    assert set(sampled.node_ids) >= set(sampled.src) | set(sampled.dst)
    code = dict(zip(full.node_ids.tolist(), full.node_layer.tolist()))
    assert [code[n] for n in sampled.node_ids.tolist()] == sampled.node_layer.tolist()


def test_iter_full_matrices_streams_same_edges() -> None:
    full = build_nin(FIXTURES / "step0", per_layer=None)
    rows = []
    names = []
    for fm in iter_full_matrices(FIXTURES / "step0"):
        names.append(fm.name)
        assert fm.weight.shape == (len(fm.out_ids), len(fm.in_ids))
        ii, jj = np.nonzero(fm.weight.T)
        rows.append(np.column_stack([fm.in_ids[ii], fm.out_ids[jj], fm.weight.T[ii, jj].astype(np.float64)]))
        if not fm.synthetic:
            assert fm.weight.dtype == np.float16
    np.testing.assert_array_equal(np.concatenate(rows), full.edge_array())
    assert names[:2] == ["gpt_neox.layers.0.attention.query_key_value.weight", "synthetic:block0.attention"]
    real = [fm.name for fm in iter_full_matrices(FIXTURES / "step0", include_synthetic=False)]
    assert len(real) == 12 and not any(n.startswith("synthetic") for n in real)


def test_describe_counts_match_build() -> None:
    d = describe(FIXTURES / "step0", per_layer=16)
    nin = build_nin(FIXTURES / "step0", sample=0, per_layer=16)
    assert d["architecture"] == "gpt_neox" and d["layout"] == "reference"
    assert d["sampled"]["edges"] == nin.n_edges == 7728
    assert d["sampled"]["nodes"] == nin.n_nodes
    assert d["weight_dtype"] == "float16"
    assert d["n_tensors"] == 12
    assert d["tensors"][0] == {
        "name": "gpt_neox.layers.0.attention.query_key_value.weight", "shape": (288, 96),
        "dtype": "float16", "orientation": "torch", "input_layer": "block0.input", "output_layer": "block0.qkv",
    }


def test_nin_is_frozen_and_read_only() -> None:
    nin = build_nin(FIXTURES / "step0", sample=0, per_layer=4)
    assert isinstance(nin, NIN)
    with pytest.raises(ValueError):
        nin.src[0] = 1
    with pytest.raises(ValueError):
        nin.weight[0] = 1
    with pytest.raises(AttributeError):
        nin.sample = 3  # type: ignore[misc]


def test_per_layer_too_large_names_layer() -> None:
    with pytest.raises(ValueError, match=r"block0.input.*96"):
        build_nin(FIXTURES / "step0", per_layer=97)
    with pytest.raises(ValueError, match="per_layer"):
        build_nin(FIXTURES / "step0", per_layer=0)


def test_fixture_checkpoints_differ_and_copies_are_found(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(FIXTURES / "step0", tmp_path / "copy")
    groups = find_identical([FIXTURES / "step0", FIXTURES / "step1", tmp_path / "copy", FIXTURES / "step2"])
    assert groups == [[0, 2]]
    assert fingerprint(FIXTURES / "step1") != fingerprint(FIXTURES / "step2")
