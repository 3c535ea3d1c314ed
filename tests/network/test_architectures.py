"""Layouts of every architecture on tiny random transformers models: counts, numbering,
weights equal to the tensor entries, synthetic blocks, custom layer maps and errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from model_factory import ALL_ARCHS, make_model, tiny_config, tiny_state_dict, write_model
from neuromfa_native.network.architectures import ARCHITECTURES, detect_architecture, get_layout
from neuromfa_native.network.fingerprint import find_identical
from neuromfa_native.network.nin import build_nin, describe, iter_full_matrices, load_layout
from neuromfa_native.io.safetensors import write_safetensors
from neuromfa_native.io.sources import resolve_source


def _check_edges_are_entries(nin, src, lay) -> None:
    """Every edge carries W[out, in] of its tensor (or 1 for synthetic blocks)."""
    offs = lay.offsets
    layer_of = lambda ids: np.searchsorted(offs, ids, side="right") - 1  # noqa: E731
    ls, ld = layer_of(nin.src), layer_of(nin.dst)
    covered = np.zeros(nin.n_edges, dtype=bool)
    for m in lay.matrices:
        sel = (ls == m.in_layer) & (ld == m.out_layer)
        covered |= sel
        i, j = nin.src[sel] - offs[m.in_layer], nin.dst[sel] - offs[m.out_layer]
        if m.is_synthetic:
            assert np.all(nin.weight[sel] == 1)
            assert np.all(m.synthetic(j, i).diagonal())
            continue
        W = np.asarray(src.get(m.name))  # a part of a fused tensor: its rows (parts.PartsSource)
        w = W[i, j] if m.orientation == "conv1d" else W[j, i]
        np.testing.assert_array_equal(nin.weight[sel], w.astype(nin.weight.dtype))
    assert covered.all()


@pytest.mark.parametrize("arch", ALL_ARCHS)
@pytest.mark.slow
def test_layouts_on_tiny_models(tiny_model, arch: str) -> None:
    folder = tiny_model(arch)
    src, lay = load_layout(folder)
    assert lay.architecture == arch
    assert lay.name == ("reference" if arch == "gpt_neox" else "default")
    S = 4
    nin = build_nin(folder, sample=3, per_layer=S)
    _check_edges_are_entries(nin, src, lay)
    d = describe(folder, per_layer=S)
    assert d["architecture"] == arch
    # random weights have no exact zeros: counts are exact; describe uses sample 0's draw
    nin0 = build_nin(folder, sample=0, per_layer=S)
    assert nin0.n_edges == d["sampled"]["edges"]
    assert nin0.n_nodes == d["sampled"]["nodes"]
    # every node layer got S neurons (2S in MLP hidden layers; GQA k/v sets may collapse; the
    # experts of a block share one pooled draw of 2S: each gets its share of it)
    pooled: dict = {}
    for k, nl in enumerate(lay.node_layers):
        assert int(np.sum(nin0.node_layer == k)) == d["node_layers"][k]["sampled"]
        want = {1: S, 2: 2 * S}[nl.draw_factor] * (3 if nl.name.endswith(".qkv") else 1)
        got = int(np.sum(nin.node_layer == k))
        if ".expert" in nl.name:
            pooled[nl.name.split(".expert")[0] + nl.name.rsplit(".", 1)[1]] = \
                pooled.get(nl.name.split(".expert")[0] + nl.name.rsplit(".", 1)[1], 0) + got
            continue
        assert got == want or (nl.name.endswith((".k", ".v")) and 0 < got <= want)
    assert all(n == 2 * S for n in pooled.values()), pooled
    # node ids: ascending, inside their layer's id range
    assert np.all(np.diff(nin.node_ids) > 0)
    assert np.all(lay.offsets[nin.node_layer] <= nin.node_ids)
    assert np.all(nin.node_ids < lay.offsets[nin.node_layer + 1])
    assert set(nin.src) | set(nin.dst) <= set(nin.node_ids)
    # full network
    full = build_nin(folder, per_layer=None)
    assert full.n_edges == d["full"]["edges"] == lay.full_edge_count()
    assert full.n_nodes == d["full"]["nodes"] == lay.n_nodes
    _check_edges_are_entries(full, src, lay)
    assert set(map(tuple, nin.edge_array())) <= set(map(tuple, full.edge_array()))
    # synthetic nnz recorded in the layout equals the block's ones
    for m in lay.matrices:
        if m.is_synthetic:
            n_in, n_out = lay.node_layers[m.in_layer].size, lay.node_layers[m.out_layer].size
            assert m.nnz == int(np.count_nonzero(m.synthetic(np.arange(n_out), np.arange(n_in))))
    # streaming gives the same edges
    n = sum(int(np.count_nonzero(fm.weight)) for fm in iter_full_matrices(folder))
    assert n == full.n_edges


def test_gpt2_conv1d_orientation(tiny_model) -> None:
    folder = tiny_model("gpt2")
    src, lay = load_layout(folder)
    nin = build_nin(folder, per_layer=None)
    W = np.asarray(src.get("transformer.h.0.attn.c_attn.weight"))  # stored (in=32, out=96)
    assert W.shape == (32, 96)
    h = 32
    # edge input 5 -> qkv output 70 carries W[5, 70]
    sel = (nin.src == 5) & (nin.dst == h + 70)
    assert nin.weight[sel].tolist() == [W[5, 70]]
    fm = next(iter_full_matrices(folder))
    assert fm.weight.shape == (96, 32)


def test_neox_heads_layout(tiny_model) -> None:
    folder = tiny_model("gpt_neox")
    cfg = json.loads((folder / "config.json").read_text())
    h, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = h // nh
    src, lay = load_layout(folder, "heads")
    assert lay.name == "heads"
    nin = build_nin(folder, layout="heads", sample=1, per_layer=4)
    _check_edges_are_entries(nin, src, lay)
    samples = lay.sample(4, 1)
    ctx, qkv = samples[2], samples[1]
    head, d = ctx // hd, ctx % hd
    np.testing.assert_array_equal(qkv, np.concatenate([head * 3 * hd + d, head * 3 * hd + hd + d,
                                                       head * 3 * hd + 2 * hd + d]))
    # the same draws as the reference layout: input, context, attn_out, mlp sets coincide
    ref = get_layout(src.config, src.tensor_names(), src.shape, "reference").sample(4, 1)
    for k in (0, 2, 3, 4):
        np.testing.assert_array_equal(ref[k], samples[k])
    # v row (head, d) feeds only context (head, d); q and k rows feed all of their head
    syn = lay.matrices[1].synthetic(np.arange(h), np.arange(3 * h))
    for r in range(3 * h):
        hr, part, dr = r // (3 * hd), (r % (3 * hd)) // hd, r % hd
        want = np.zeros(h, bool)
        if part < 2:
            want[hr * hd:(hr + 1) * hd] = True
        else:
            want[hr * hd + dr] = True
        np.testing.assert_array_equal(syn[:, r], want)


@pytest.mark.slow
def test_heads_layout_matches_hf_attention_split() -> None:
    """The interleaving assumed by the heads layout is the one GPTNeoXAttention uses."""
    torch = pytest.importorskip("torch", reason="runs transformers' GPTNeoXAttention, a torch module")
    pytest.importorskip("transformers", reason="runs transformers' GPTNeoXAttention")
    model = make_model("gpt_neox")
    attn = model.gpt_neox.layers[0].attention
    h, nh = 32, 4
    hd = h // nh
    x = torch.randn(1, 1, h)
    with torch.no_grad():
        qkv = attn.query_key_value(x)
    # HF: view(..., -1, 3 * head_dim) then chunk into q, k, v per head
    q, k, v = qkv.view(1, 1, nh, 3 * hd).chunk(3, dim=-1)
    flat = qkv.reshape(-1)
    for head in range(nh):
        base = head * 3 * hd
        np.testing.assert_array_equal(q[0, 0, head].numpy(), flat[base:base + hd].numpy())
        np.testing.assert_array_equal(v[0, 0, head].numpy(), flat[base + 2 * hd:base + 3 * hd].numpy())


def test_llama_gqa_and_gated_mlp(tiny_model) -> None:
    folder = tiny_model("llama")
    src, lay = load_layout(folder)
    names = lay.layer_names
    assert names[:10] == ("block0.input", "block0.q", "block0.k", "block0.v", "block0.context",
                          "block0.attn_out", "block0.gate", "block0.up", "block0.mlp_hidden", "block1.input")
    sizes = [nl.size for nl in lay.node_layers[:9]]
    assert sizes == [32, 32, 16, 16, 32, 32, 48, 48, 48]
    # gate and up share the input (attn_out) and both feed the hidden layer elementwise
    mats = {m.name.split(".")[-2] if not m.is_synthetic else m.name: m for m in lay.matrices[:12]}
    assert mats["gate_proj"].in_layer == mats["up_proj"].in_layer == 5
    assert mats["down_proj"].in_layer == 8
    syn_k = lay.matrices[4].synthetic(np.arange(32), np.arange(16))
    # 4 heads of 8, 2 kv heads: heads 0,1 use kv head 0
    assert syn_k[:16, :8].all() and not syn_k[:16, 8:].any() and syn_k[16:, 8:].all()
    nin = build_nin(folder, sample=0, per_layer=4)
    assert nin.n_edges > 0
    samples = lay.sample(4, 0)
    np.testing.assert_array_equal(samples[6], samples[8])  # gate == up == hidden sample
    assert len(samples[8]) == 8


@pytest.mark.parametrize("arch", ["mistral", "qwen2", "bert", "gpt2"])
def test_detect_from_names_and_classes(tiny_model, arch: str) -> None:
    folder = tiny_model(arch)
    cfg = json.loads((folder / "config.json").read_text())
    src, _ = load_layout(folder)
    assert detect_architecture(cfg) == arch
    fam = {"mistral": "llama", "qwen2": "llama"}.get(arch, arch)
    assert detect_architecture({}, src.tensor_names()) == fam
    if cfg.get("architectures"):
        assert detect_architecture({"architectures": cfg["architectures"]}) == arch


def test_unknown_architecture_explains_custom_map(tiny_model, tmp_path: Path) -> None:
    folder = tiny_model("llama")
    bad = tmp_path / "t5"
    shutil.copytree(folder, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model_type"], cfg["architectures"] = "t5", ["T5Model"]
    (bad / "config.json").write_text(json.dumps(cfg))
    # a config naming an unsupported model is an error, even when the tensor names look known...
    with pytest.raises(ValueError, match="model_type 't5'.*architecture="):
        build_nin(bad, per_layer=2)
    # ...unless the architecture is passed explicitly
    assert build_nin(bad, per_layer=2, architecture="llama").architecture == "llama"
    # arbitrary tensors without a config are not recognised
    write_safetensors(tmp_path / "mlp.safetensors", {"fc1.weight": np.ones((8, 4), np.float32),
                                                     "fc2.weight": np.ones((3, 8), np.float32)})
    with pytest.raises(ValueError) as err:
        build_nin(tmp_path / "mlp.safetensors")
    msg = str(err.value)
    for a in ARCHITECTURES:
        assert a in msg
    assert "layout=[" in msg
    with pytest.raises(ValueError, match="architecture must be one of"):
        build_nin(folder, architecture="t5")
    with pytest.raises(ValueError, match="layout must be one of"):
        build_nin(folder, layout="fancy")


def test_custom_layer_map(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((8, 4)).astype(np.float32)
    w2 = rng.standard_normal((8, 3)).astype(np.float32)  # stored (in, out): conv1d
    write_safetensors(tmp_path / "mlp.safetensors", {"fc1.weight": w1, "fc2.weight": w2})
    lm = [("fc1.weight", "in", "hidden"), ("fc2.weight", "hidden", "out", "conv1d")]
    full = build_nin(tmp_path / "mlp.safetensors", layout=lm, per_layer=None)
    assert full.layout == "custom" and full.layer_names == ("in", "hidden", "out")
    assert full.n_nodes == 15 and full.n_edges == 32 + 24
    # edge in 2 -> hidden 5 carries w1[5, 2]; hidden 5 -> out 1 carries w2[5, 1]
    assert full.weight[(full.src == 2) & (full.dst == 4 + 5)].tolist() == [w1[5, 2]]
    assert full.weight[(full.src == 4 + 5) & (full.dst == 12 + 1)].tolist() == [w2[5, 1]]
    s = build_nin(tmp_path / "mlp.safetensors", layout=lm, per_layer=2, sample=4)
    assert s.n_nodes == 6 and s.n_edges == 8
    with pytest.raises(ValueError, match="layer 'out'.*only 3"):
        build_nin(tmp_path / "mlp.safetensors", layout=lm, per_layer=4)
    with pytest.raises(ValueError, match="size 3, but an earlier tensor gave it size 4"):
        build_nin(tmp_path / "mlp.safetensors", layout=[("fc1.weight", "a", "b"), ("fc2.weight", "a", "b")])
    with pytest.raises(ValueError, match="missing tensor 'fc3.weight'"):
        build_nin(tmp_path / "mlp.safetensors", layout=[("fc3.weight", "a", "b")])
    with pytest.raises(ValueError, match=r"layout\[0\] must be"):
        build_nin(tmp_path / "mlp.safetensors", layout=[("fc1.weight", "a")])


def test_shape_mismatch_and_missing_tensor(tiny_model, tmp_path: Path) -> None:
    folder = tiny_model("gpt_neox")
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["intermediate_size"] = 100
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"dense_h_to_4h.weight' has shape \(128, 32\).*implies \(100, 32\)"):
        build_nin(bad)
    with pytest.raises(ValueError, match="implies"):
        describe(bad)
    cfg["intermediate_size"], cfg["num_hidden_layers"] = 128, 3
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="missing tensor 'gpt_neox.layers.2.attention.query_key_value.weight'"):
        build_nin(bad)


def test_non_finite_weight_names_tensor() -> None:
    sd = tiny_state_dict("bert")
    name = "encoder.layer.1.intermediate.dense.weight"
    sd[name][:, :] = np.nan
    cfg = tiny_config("bert")
    with pytest.raises(ValueError, match=f"{name}.*non-finite"):
        build_nin(sd, config=cfg, per_layer=2)
    with pytest.raises(ValueError, match=f"{name}.*non-finite"):
        build_nin(sd, config=cfg, per_layer=None)


def test_find_identical_groups(tiny_model, tmp_path: Path) -> None:
    a = tiny_model("gpt2")
    b = tmp_path / "b"
    shutil.copytree(a, b)
    c = write_model("gpt2", tmp_path / "c", seed=1)
    d = resolve_source(tiny_state_dict("gpt2"), config=tiny_config("gpt2"))  # in memory
    assert find_identical([a, c, b, d]) == [[0, 2, 3]]
    assert find_identical([a, c]) == []
