"""The families with published training checkpoints beyond GPT-NeoX, GPT-2, Llama and BERT
(docs/architectures.md): every block matrix (every expert) in the network, finite sampled and
full spectra, fused splits equal to the unfused weights the family's own code uses, both forms
of mixture-of-experts tensors, detection, and the help for a model no family serves.

Every family has a numpy-written tiny checkpoint (tests/family_models.py), so the suite covers
them without torch; the tests marked by ``_needs_transformers`` compare with transformers'
modelling code where it is installed.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import neuromfa_native as nm
from model_factory import FAMILY_ARCHS, make_model, tiny_config, tiny_state_dict
from neuromfa_native.cli import main as cli_main
from neuromfa_native.io.safetensors import write_safetensors
from neuromfa_native.network.architectures import UnsupportedArchitecture, detect_architecture
from neuromfa_native.network.nin import build_nin, describe, load_layout

ROUTERS = ("mlp.gate.weight", "block_sparse_moe.gate.weight")
MOE = ("olmoe", "qwen3_moe", "mixtral")
S = 4


def _write(folder: Path, sd: dict, cfg: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    write_safetensors(folder / "model.safetensors", sd)
    return folder


def _same_networks(a, b, layout: str = "default") -> None:
    """The sampled (two draws) and full networks of checkpoints ``a`` and ``b`` are identical."""
    for sample, per_layer in ((0, S), (3, S), (0, None)):
        x = build_nin(a, sample=sample, per_layer=per_layer, layout=layout)
        y = build_nin(b, sample=sample, per_layer=per_layer, layout=layout)
        assert x.layer_names == y.layer_names
        np.testing.assert_array_equal(x.node_ids, y.node_ids)
        np.testing.assert_array_equal(x.edge_array(), y.edge_array())


# ----------------------------------------------------------------------------- every family, numpy only
@pytest.mark.parametrize("arch", FAMILY_ARCHS)
def test_every_block_matrix_is_used(tiny_model, arch: str) -> None:
    src, lay = load_layout(tiny_model(arch))
    assert lay.architecture == arch
    sd = tiny_state_dict(arch)
    blocks = {n for n, w in sd.items() if w.ndim == 2 and re.search(r"\.\d+\.", n) and not n.endswith(ROUTERS)}
    assert set(lay.tensor_names) == blocks  # every block matrix, every expert; no router
    # a fused tensor's parts cover each of its rows exactly once
    by_tensor: dict = {}
    for m in lay.matrices:
        if m.part is not None:
            by_tensor.setdefault(m.tensor, []).append(m.part.rows(np.arange(lay.expected_shape(m)[0])))
    for t, rows in by_tensor.items():
        np.testing.assert_array_equal(np.sort(np.concatenate(rows)), np.arange(sd[t].shape[0]))


@pytest.mark.parametrize("arch", FAMILY_ARCHS)
def test_sampled_and_full_spectra_are_finite(tiny_model, arch: str) -> None:
    folder = tiny_model(arch)
    for sample, per_layer in ((0, S), (None, None)):
        r = nm.analyze_sample(folder, sample, per_layer=per_layer, min_edges=3, node_dimension=False)
        assert r.architecture == arch and r.n_network_edges > 0
        for x in (r.spectrum.tau, r.spectrum.alpha, r.spectrum.f, [r.alpha0, r.width]):
            assert np.all(np.isfinite(x)), (arch, per_layer)


def _split_rows(w: np.ndarray, sizes) -> list:
    return np.split(w, np.cumsum(sizes)[:-1])


def test_olmo1_original_equals_its_conversion(tiny_model, tmp_path: Path) -> None:
    """OLMo-1's fused att_proj/ff_proj read as AllenAI's conversion to the HF format splits them
    (scripts/convert_olmo_to_hf_new.py: ``q, k, v = torch.split(att_proj, (d, kv*hd, kv*hd))``,
    ``up, gate = torch.chunk(ff_proj, 2)``): the network equals the converted checkpoint's."""
    cfg, sd = tiny_config("hf_olmo"), tiny_state_dict("hf_olmo")
    d, hd, kv, inter = cfg["d_model"], cfg["d_model"] // cfg["n_heads"], cfg["n_kv_heads"], cfg["mlp_hidden_size"] // 2
    out = {}
    for b in range(cfg["n_layers"]):
        p, q = f"model.transformer.blocks.{b}.", f"model.layers.{b}."
        for x, w in zip("qkv", _split_rows(sd[p + "att_proj.weight"], (d, kv * hd, kv * hd))):
            out[q + f"self_attn.{x}_proj.weight"] = w
        up, gate = np.split(sd[p + "ff_proj.weight"], 2)
        out.update({q + "mlp.up_proj.weight": up, q + "mlp.gate_proj.weight": gate,
                    q + "self_attn.o_proj.weight": sd[p + "attn_out.weight"],
                    q + "mlp.down_proj.weight": sd[p + "ff_out.weight"]})
    hf = dict(tiny_config("olmo"), hidden_size=d, num_key_value_heads=kv, intermediate_size=inter)
    _same_networks(tiny_model("hf_olmo"), _write(tmp_path / "olmo", out, hf))


def test_phi3_equals_its_llama_split(tiny_model, tmp_path: Path) -> None:
    """Phi-3's qkv_proj rows are [q; k; v] and gate_up_proj's [gate; up] (Phi3Attention, Phi3MLP)."""
    cfg, sd = tiny_config("phi3"), tiny_state_dict("phi3")
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    nq, nkv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    out = {}
    for b in range(2):
        p = f"model.layers.{b}."
        for x, w in zip("qkv", _split_rows(sd[p + "self_attn.qkv_proj.weight"], (nq, nkv, nkv))):
            out[p + f"self_attn.{x}_proj.weight"] = w
        out[p + "mlp.gate_proj.weight"], out[p + "mlp.up_proj.weight"] = np.split(sd[p + "mlp.gate_up_proj.weight"], 2)
        for t in ("self_attn.o_proj.weight", "mlp.down_proj.weight"):
            out[p + t] = sd[p + t]
    _same_networks(tiny_model("phi3"), _write(tmp_path / "llama", out, dict(cfg, model_type="llama")))


def _fused_qkv(w: np.ndarray, mode: str, nh: int, nkv: int, hd: int) -> tuple:
    """q, k, v rows of a fused tensor, by the views of FalconAttention.forward / BloomAttention."""
    h = w.shape[-1]
    if mode == "grouped":  # Falcon's new decoder architecture
        g = w.reshape(nkv, -1, hd, h)  # (n_kv, heads per group + 2, hd, h)
        return g[:, :-2].reshape(-1, h), g[:, -2].reshape(-1, h), g[:, -1].reshape(-1, h)
    if mode == "multi_query":
        return tuple(_split_rows(w, (nh * hd, hd, hd)))
    g = w.reshape(nh, 3, hd, h)  # (n_h, 3, hd, h): BLOOM, Falcon-RW
    return tuple(g[:, j].reshape(-1, h) for j in range(3))


@pytest.mark.parametrize("arch, variant", [
    ("bloom", {}), ("falcon", {}), ("falcon", {"new_decoder_architecture": False, "multi_query": True}),
    ("falcon", {"new_decoder_architecture": False, "multi_query": False}),
])
def test_fused_qkv_per_head_equals_separate_projections(tmp_path: Path, arch: str, variant: dict) -> None:
    """BLOOM's and Falcon's three fused QKV layouts, split by reshapes as their modelling code
    views them, give the network of separate q/k/v projections (an Apertus-named checkpoint:
    the same attention, a plain MLP)."""
    cfg = dict(tiny_config(arch), **variant)
    h, nh = cfg["hidden_size"], cfg.get("num_attention_heads") or cfg["n_head"]
    hd = h // nh
    mode = ("interleaved" if arch == "bloom" else "grouped" if cfg["new_decoder_architecture"]
            else "multi_query" if cfg["multi_query"] else "interleaved")
    nkv = {"grouped": cfg.get("num_kv_heads"), "multi_query": 1, "interleaved": nh}[mode]
    rng = np.random.default_rng(5)
    sd, plain = {}, {}
    inter = 4 * h if arch == "bloom" else cfg["ffn_hidden_size"]
    for b in range(2):
        p, q = f"transformer.h.{b}.", f"model.layers.{b}."
        w = rng.standard_normal(((nh + 2 * nkv) * hd, h)).astype(np.float32)
        sd[p + "self_attention.query_key_value.weight"] = w
        for x, part in zip("qkv", _fused_qkv(w, mode, nh, nkv, hd)):
            plain[q + f"self_attn.{x}_proj.weight"] = part
        for t, u, shape in (("self_attention.dense", "self_attn.o_proj", (h, h)), ("mlp.dense_h_to_4h", "mlp.up_proj",
                            (inter, h)), ("mlp.dense_4h_to_h", "mlp.down_proj", (h, inter))):
            sd[p + t + ".weight"] = plain[q + u + ".weight"] = rng.standard_normal(shape).astype(np.float32)
    apertus = dict(tiny_config("apertus"), hidden_size=h, num_attention_heads=nh, num_key_value_heads=nkv,
                   intermediate_size=inter)
    _same_networks(_write(tmp_path / arch, sd, cfg), _write(tmp_path / "apertus", plain, apertus))


def _fuse_experts(arch: str, sd: dict) -> dict:
    """transformers 5's load-time form: per block ``mlp.experts.gate_up_proj`` (E, 2I, h) =
    each expert's [gate; up] rows, and ``mlp.experts.down_proj`` (E, h, I)."""
    names = ("w1", "w3", "w2") if arch == "mixtral" else ("gate_proj", "up_proj", "down_proj")
    moe = "block_sparse_moe." if arch == "mixtral" else "mlp."
    out = {k: v for k, v in sd.items() if ".experts." not in k}
    for b in range(2):
        p = f"model.layers.{b}."
        ex = [k for k in sd if k.startswith(p + moe + "experts.")]
        if not ex:
            continue
        n = len({k.split(".experts.")[1].split(".")[0] for k in ex})
        w = [[sd[p + moe + f"experts.{e}.{x}.weight"] for x in names] for e in range(n)]
        out[p + "mlp.experts.gate_up_proj"] = np.stack([np.concatenate([w[e][0], w[e][1]]) for e in range(n)])
        out[p + "mlp.experts.down_proj"] = np.stack([w[e][2] for e in range(n)])
        if arch == "mixtral":
            out[p + "mlp.gate.weight"] = out.pop(p + "block_sparse_moe.gate.weight")
    return out


@pytest.mark.parametrize("arch", MOE)
def test_both_forms_of_experts_read_the_same(tiny_model, tmp_path: Path, arch: str) -> None:
    fused = _write(tmp_path / "fused", _fuse_experts(arch, tiny_state_dict(arch)), tiny_config(arch))
    for layout in ("default", "per_expert"):
        _same_networks(tiny_model(arch), fused, layout)
    a, b = describe(tiny_model(arch), per_layer=S), describe(fused, per_layer=S)
    assert [t["name"] for t in a["tensors"]] == [t["name"] for t in b["tensors"]]  # the per-expert names
    assert any(t.get("stored", "").endswith("gate_up_proj") for t in b["tensors"])
    x, y = (nm.analyze_sample(f, 1, per_layer=S, min_edges=3, controls=("gaussian",)) for f in (tiny_model(arch), fused))
    assert x.spectrum == y.spectrum and x.controls == y.controls  # controls are keyed by the per-expert names


@pytest.mark.parametrize("arch", MOE)
def test_pooled_and_per_expert_sampling(tiny_model, arch: str) -> None:
    folder = tiny_model(arch)
    cfg = tiny_config(arch)
    n_exp = cfg.get("num_experts") or cfg["num_local_experts"]
    _, pooled = load_layout(folder)
    _, per = load_layout(folder, "per_expert")
    assert pooled.name == "default" and per.name == "per_expert"
    # the same node layers and matrices: the full networks are identical, only the draws differ
    assert pooled.layer_names == per.layer_names and pooled.matrices == per.matrices
    np.testing.assert_array_equal(build_nin(folder, per_layer=None).edge_array(),
                                  build_nin(folder, per_layer=None, layout="per_expert").edge_array())
    for lay, want in ((pooled, 2 * S), (per, 2 * S * n_exp)):
        draws = lay.sample(S, 2)
        hidden = [len(draws[k]) for k, nl in enumerate(lay.node_layers)
                  if nl.name.startswith("block0.expert") and nl.name.endswith("mlp_hidden")]
        assert len(hidden) == n_exp and sum(hidden) == want
        if lay is per:
            assert hidden == [2 * S] * n_exp
    # pooled: the drawn pooled indices e*I + j are expert e's neuron j
    k0 = pooled.layer_names.index("block0.expert0.mlp_hidden")
    size = pooled.node_layers[k0].size
    rs = np.random.RandomState(2)
    rs.choice(np.arange(32), S, replace=False)  # block0.input
    rs.choice(np.arange(32), S, replace=False)  # block0.context
    rs.choice(np.arange(32), S, replace=False)  # block0.attn_out
    drawn = rs.choice(np.arange(n_exp * size), 2 * S, replace=False)
    draws = pooled.sample(S, 2)
    for e in range(n_exp):
        k = pooled.layer_names.index(f"block0.expert{e}.mlp_hidden")
        np.testing.assert_array_equal(draws[k], drawn[drawn // size == e] - e * size)
    d = describe(folder, per_layer=S)["experts"]
    assert d == {"blocks": 2 if arch != "qwen3_moe" else 1, "experts_per_block": n_exp, "hidden_per_expert": size,
                 "sampling": "pooled", "nodes_full": d["blocks"] * n_exp * 3 * size,
                 "nodes_sampled": d["blocks"] * 3 * 2 * S}
    with pytest.raises(ValueError, match="needs 40 neurons of layer 'block0.expert0.gate', which has only 16"):
        build_nin(folder, per_layer=20, layout="per_expert")  # 2S of each expert's 16


def test_qwen3_moe_dense_and_expert_blocks(tiny_model) -> None:
    lay = load_layout(tiny_model("qwen3_moe"))[1]
    assert "block0.expert3.gate" in lay.layer_names and "block1.gate" in lay.layer_names
    assert "block1.expert0.gate" not in lay.layer_names  # mlp_only_layers=[1]


def test_fused_tensor_shape_errors_name_the_config(tiny_model, tmp_path: Path) -> None:
    bad = tmp_path / "phi3"
    shutil.copytree(tiny_model("phi3"), bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["num_key_value_heads"] = 4
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"qkv_proj.weight' has shape \(64, 32\).*implies \(96, 32\).*fused tensor"):
        build_nin(bad)
    fused = _write(tmp_path / "fused", _fuse_experts("olmoe", tiny_state_dict("olmoe")),
                   dict(tiny_config("olmoe"), intermediate_size=8))
    with pytest.raises(ValueError, match=r"gate_up_proj' has shape \(4, 32, 32\).*implies \(4, 16, 32\)"):
        build_nin(fused)


# ----------------------------------------------------------------------------- detection and unknown models
@pytest.mark.parametrize("arch", FAMILY_ARCHS)
def test_detected_from_model_type_and_class_name(arch: str) -> None:
    cfg = tiny_config(arch)
    assert detect_architecture(cfg) == arch
    assert detect_architecture({"architectures": cfg["architectures"]}) == arch


def test_detected_from_tensor_names_alone(tiny_model) -> None:
    # the more specific family wins: experts before Llama, Apertus (no gate_proj) before Llama
    for arch, want in (("olmoe", "olmoe"), ("mixtral", "mixtral"), ("apertus", "apertus"), ("phi3", "phi3"),
                       ("olmo2", "llama"), ("hf_olmo", "hf_olmo"), ("gptj", "gptj"), ("opt", "opt")):
        assert detect_architecture({}, tiny_state_dict(arch)) == want
    # a longer class name of another model is not this one
    assert detect_architecture({"architectures": ["Qwen3MoeForCausalLM"]}) == "qwen3_moe"
    with pytest.raises(ValueError, match="unknown architecture"):  # not Qwen2's
        detect_architecture({"architectures": ["Qwen2MoeForCausalLM"]}, ["x.weight"])


def test_unknown_model_type_gets_the_fitting_family_and_a_layout_to_paste(tiny_model, tmp_path: Path,
                                                                        capsys) -> None:
    folder = tmp_path / "mystery"
    shutil.copytree(tiny_model("apertus"), folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"], cfg["architectures"] = "mystery", ["MysteryForCausalLM"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedArchitecture) as err:
        build_nin(folder)
    e = err.value
    msg = str(e)
    assert "\n" not in msg and "model_type 'mystery'" in msg and e.fits == ("apertus",)
    assert "architecture='apertus'" in msg and "mlp.up_proj.weight 48x32" in msg
    assert e.prefix == "model.layers.{b}." and e.n_blocks == 2
    # the name-tolerant answer works...
    np.testing.assert_array_equal(build_nin(folder, architecture="apertus", per_layer=S).edge_array(),
                                  build_nin(tiny_model("apertus"), per_layer=S).edge_array())
    # ...and so does the proposed layer map, pasted as it is printed
    assert e.proposal is not None and e.proposal in msg
    ns: dict = {}
    exec(e.proposal, {"__builtins__": {"range": range}}, ns)
    net = build_nin(folder, layout=ns["layout"], per_layer=None)
    used = {t for t, _, _ in ns["layout"]}
    assert used == set(load_layout(tiny_model("apertus"))[1].tensor_names)  # every block matrix
    assert net.layout == "custom" and net.n_edges > 0
    # neuromfa info prints the pieces, one per line, then the one-line error
    assert cli_main(["info", str(folder)]) == 1
    out, errs = capsys.readouterr()
    assert "block tensors (2 blocks under 'model.layers.{b}.'" in out and "  mlp.act_fn.beta  scalar" in out
    assert "proposed custom layer map" in out and e.proposal in out
    assert errs.startswith("neuromfa: error: unsupported architecture") and errs.count("\n") == 1


def test_no_model_type_and_unknown_names_proposes_a_map(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sd = {}
    for b in range(3):
        sd[f"net.blocks.{b}.attn.wqkv.weight"] = rng.standard_normal((24, 8)).astype(np.float32)
        sd[f"net.blocks.{b}.attn.proj.weight"] = rng.standard_normal((8, 8)).astype(np.float32)
        sd[f"net.blocks.{b}.ffn.fc1.weight"] = rng.standard_normal((16, 8)).astype(np.float32)
        sd[f"net.blocks.{b}.ffn.fc2.weight"] = rng.standard_normal((8, 16)).astype(np.float32)
        sd[f"net.blocks.{b}.norm.weight"] = np.ones(8, np.float32)
    write_safetensors(tmp_path / "m.safetensors", sd)
    with pytest.raises(UnsupportedArchitecture) as err:
        build_nin(tmp_path / "m.safetensors")
    e = err.value
    assert e.prefix == "net.blocks.{b}." and e.n_blocks == 3 and not e.fits
    assert [n for n, _ in e.block_tensors] == ["attn.proj.weight", "attn.wqkv.weight", "ffn.fc1.weight",
                                               "ffn.fc2.weight", "norm.weight"]
    ns: dict = {}
    exec(e.proposal, {"__builtins__": {"range": range}}, ns)
    # attn.proj (unknown role) is left out; the chain wqkv -> fc1 -> fc2 -> next block
    assert ns["layout"][:3] == [("net.blocks.0.attn.wqkv.weight", "0.in", "0.wqkv"),
                                ("net.blocks.0.ffn.fc1.weight", "0.in", "0.ffn_fc1"),
                                ("net.blocks.0.ffn.fc2.weight", "0.ffn_fc1", "1.in")]
    assert build_nin(tmp_path / "m.safetensors", layout=ns["layout"], per_layer=2).n_edges > 0


def test_hostile_tensor_names_get_no_proposal(tmp_path: Path) -> None:
    sd = {"m.blocks.0.{b.__class__}.fc1.weight": np.ones((4, 4), np.float32),
          "m.blocks.1.{b.__class__}.fc1.weight": np.ones((4, 4), np.float32)}
    write_safetensors(tmp_path / "m.safetensors", sd)
    with pytest.raises(UnsupportedArchitecture) as err:
        build_nin(tmp_path / "m.safetensors")
    assert err.value.proposal is None and "layout=[(tensor name" in str(err.value)


def test_info_collapses_experts(tiny_model, capsys) -> None:
    assert cli_main(["info", str(tiny_model("olmoe")), "--per-layer", "4"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"experts +4 per block in 2 blocks, 16 hidden neurons each; 384 expert nodes \(52% of the full "
                     r"network\), 48 sampled \(48%; pooled sampling\)", out)
    assert re.search(r"block0\.expert\[0-3\]\.mlp_hidden +4x16 +\d+ +8\n", out)
    assert "block1.expert[0-3].gate" in out and "block0.expert1.gate" not in out
    # the tensors too: one row per block and role, with the experts' count
    assert re.search(r"model\.layers\.0\.mlp\.experts\.\[0-3\]\.down_proj\.weight +4x32x16 +float32 +"
                     r"block0\.expert\[0-3\]\.mlp_hidden -> block1\.input\n", out)
    assert "experts.1." not in out


def test_moe_by_layer_groups_pool_the_experts(tiny_model) -> None:
    r = nm.analyze_sample(tiny_model("olmoe"), 0, per_layer=S, by_layer=True, min_edges=2, node_dimension=False)
    groups = {row["group"] for row in r.by_layer}
    assert {"kind:mlp_hidden", "block0.mlp_hidden", "block1.gate"} <= groups
    assert not any("expert" in g for g in groups)


# ----------------------------------------------------------------------------- against transformers' code
def _needs_transformers():
    torch = pytest.importorskip("torch", reason="runs transformers' modelling code, torch modules")
    pytest.importorskip("transformers", reason="compares with transformers' modelling code")
    return torch


def _capture_qkv(torch, model, attn):
    """(attention input, q, k, v) of ``attn`` for one token at position 0 (rotary: identity),
    the q/k/v states as the modelling code splits them (an attention function registered in
    transformers' AttentionInterface records them)."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    got: list = []

    def record(module, q, k, v, mask, **kw):
        got.append((q.detach(), k.detach(), v.detach()))
        return sdpa_attention_forward(module, q, k, v, mask, **kw)

    AttentionInterface.register("neuromfa_test_capture", record)
    model.set_attn_implementation("neuromfa_test_capture")
    ins: list = []
    hook = attn.register_forward_pre_hook(
        lambda m, a, kw: ins.append((a[0] if a else kw["hidden_states"]).detach()), with_kwargs=True)
    try:
        with torch.no_grad():
            model(torch.tensor([[5]]))
    finally:
        hook.remove()
    q, k, v = got[0]
    return ins[0][0, 0], q[0, :, 0, :].reshape(-1), k[0, :, 0, :].reshape(-1), v[0, :, 0, :].reshape(-1)


def _model(arch: str, **changes):
    import torch
    import transformers as tf

    cfg = dict(tiny_config(arch), **changes)
    mt = cfg.pop("model_type")
    cfg.pop("architectures")
    torch.manual_seed(0)
    return tf.AutoModelForCausalLM.from_config(tf.AutoConfig.for_model(mt, **cfg)).eval()


@pytest.mark.parametrize("arch, changes", [
    ("phi3", {}), ("falcon", {}), ("falcon", {"new_decoder_architecture": False, "multi_query": True}),
    ("falcon", {"new_decoder_architecture": False, "multi_query": False, "num_kv_heads": None}),
])
def test_qkv_split_is_the_modelling_codes(arch: str, changes: dict) -> None:
    torch = _needs_transformers()
    model = _model(arch, **changes)
    attn = model.model.layers[0].self_attn if arch == "phi3" else model.transformer.h[0].self_attention
    x, *states = _capture_qkv(torch, model, attn)
    src, lay = load_layout(model)
    for m, state in zip(lay.matrices[:3], states):
        assert m.part is not None and m.name.endswith("]")
        w = torch.from_numpy(np.array(src.get(m.name)))
        torch.testing.assert_close(state, w @ x, rtol=0, atol=1e-6)


def test_bloom_split_is_its_reshape() -> None:
    torch = _needs_transformers()
    model = _model("bloom")
    attn = model.transformer.h[0].self_attention
    x = torch.randn(1, 1, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        q, k, v = attn._reshape(attn.query_key_value(x))  # BloomAttention's own split
    src, lay = load_layout(model)
    for m, state in zip(lay.matrices[:3], (q, k, v)):
        w = torch.from_numpy(np.array(src.get(m.name)))
        bias = attn.query_key_value.bias.detach()[m.part.rows(np.arange(32))]
        torch.testing.assert_close(state.reshape(-1), w @ x[0, 0] + bias, rtol=0, atol=1e-6)


def test_gate_up_order_is_the_modelling_codes() -> None:
    """Phi-3's gate_up_proj and OLMo-1's ff_proj: the MLP computed from our gate and up parts
    as ``down(silu(gate x) * up x)`` equals Phi3MLP, and OLMo's SwiGLU as AllenAI wrote it
    (olmo/model.py: ``x, gate = x.chunk(2, dim=-1); F.silu(gate) * x``)."""
    torch = _needs_transformers()
    F = torch.nn.functional
    x = torch.randn(3, 32, generator=torch.Generator().manual_seed(2))
    model = _model("phi3")
    mlp = model.model.layers[1].mlp
    src, _ = load_layout(model)
    part = lambda n: torch.from_numpy(np.array(src.get(f"model.layers.1.mlp.gate_up_proj.weight[{n}]")))  # noqa: E731
    with torch.no_grad():
        torch.testing.assert_close(mlp(x), mlp.down_proj(F.silu(x @ part("gate").T) * (x @ part("up").T)))
    sd = {k: torch.from_numpy(v) for k, v in tiny_state_dict("hf_olmo").items()}
    src, _ = load_layout(nm.resolve_source(tiny_state_dict("hf_olmo"), config=tiny_config("hf_olmo")))
    ff = sd["model.transformer.blocks.0.ff_proj.weight"]
    h, gate = (x @ ff.T).chunk(2, dim=-1)  # AllenAI's SwiGLU
    olmo = lambda n: torch.from_numpy(np.array(src.get(f"model.transformer.blocks.0.ff_proj.weight[{n}]")))  # noqa: E731
    torch.testing.assert_close(F.silu(gate) * h, F.silu(x @ olmo("gate").T) * (x @ olmo("up").T))
    qkv = x @ sd["model.transformer.blocks.0.att_proj.weight"].T
    for got, n in zip(qkv.split((32, 16, 16), dim=-1), "qkv"):  # AllenAI's OLMoSequentialBlock split
        w = torch.from_numpy(np.array(src.get(f"model.transformer.blocks.0.att_proj.weight[{n}]")))
        torch.testing.assert_close(got, x @ w.T)


@pytest.mark.parametrize("arch", MOE)
def test_live_fused_experts_are_the_saved_ones(tiny_model, tmp_path: Path, arch: str) -> None:
    """transformers 5 fuses the experts at load time; read from the live model they are the
    per-expert tensors of the checkpoint, and the network and spectra are the checkpoint's."""
    torch = _needs_transformers()
    model = make_model(arch)
    live = model.state_dict()
    assert any(k.endswith("mlp.experts.gate_up_proj") for k in live)  # the fused 3-d form
    src, lay = load_layout(model)
    sd = tiny_state_dict(arch)
    for m in lay.matrices:
        if m.part is not None and ".experts." in m.name:
            np.testing.assert_array_equal(src.get(m.name), sd[m.name])
    # the modelling code's own use of the stack: linear(x, gate_up_proj[e]).chunk(2) -> gate, up
    x = torch.randn(2, 32, generator=torch.Generator().manual_seed(3))
    stack = live["model.layers.0.mlp.experts.gate_up_proj"]
    gate_name, up_name = [m.name for m in lay.matrices if m.name.startswith("model.layers.0.")
                          and ".experts.2." in m.name][:2]
    gate, up = torch.nn.functional.linear(x, stack[2]).chunk(2, dim=-1)
    torch.testing.assert_close(gate, x @ torch.from_numpy(np.array(src.get(gate_name))).T)
    torch.testing.assert_close(up, x @ torch.from_numpy(np.array(src.get(up_name))).T)
    for layout in ("default", "per_expert"):
        np.testing.assert_array_equal(build_nin(model, per_layer=S, sample=1, layout=layout).edge_array(),
                                      build_nin(tiny_model(arch), per_layer=S, sample=1, layout=layout).edge_array())


@pytest.mark.parametrize("arch", ["olmoe", "phi3"])
def test_monitor_reads_the_live_model_like_its_checkpoint(tmp_path: Path, arch: str) -> None:
    _needs_transformers()
    from neuromfa_native.integrations.monitor import Monitor

    model = make_model(arch)
    model.save_pretrained(tmp_path / "ck")
    opts = dict(samples=2, per_layer=S, n_threads=1, min_edges=3)
    r = Monitor(model, background=False, **opts).step(0)
    a = nm.analyze(str(tmp_path / "ck"), **opts)
    for x, y in zip(a.results, r.results):
        assert x.alpha0 == y.alpha0 and x.width == y.width and x.n_network_edges == y.n_network_edges
        np.testing.assert_array_equal(x.spectrum.tau, y.spectrum.tau)


def test_amber_sharded_fp32_bin(tiny_model, tmp_path: Path) -> None:
    """LLM360 Amber ships fp32 ``pytorch_model-0000k-of-00003.bin`` shards and an index: read
    lazily, the same network as the safetensors copy."""
    torch = pytest.importorskip("torch", reason="the .bin shards are written with torch.save")
    sd = tiny_state_dict("llama")
    names = sorted(sd)
    folder = tmp_path / "amber"
    folder.mkdir()
    shutil.copy(tiny_model("llama") / "config.json", folder)
    weight_map = {}
    for k in range(3):
        shard = f"pytorch_model-{k + 1:05d}-of-00003.bin"
        part = names[k::3]
        torch.save({n: torch.from_numpy(sd[n]) for n in part}, folder / shard)
        weight_map.update({n: shard for n in part})
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    _same_networks(folder, tiny_model("llama"))


def test_configs_larger_than_their_tensors_fail_before_laying_out(tiny_model, tmp_path: Path) -> None:
    """A config claiming 10**9 blocks or experts is refused at once, naming the first missing tensor."""
    for arch, key, want in (("olmo2", "num_hidden_layers", "model.layers.2.self_attn.q_proj.weight"),
                            ("olmoe", "num_experts", "model.layers.0.mlp.experts.999999999.gate_proj.weight"),
                            ("mixtral", "num_local_experts", "block_sparse_moe.experts.999999999.w1.weight")):
        folder = tmp_path / f"{arch}-{key}"
        shutil.copytree(tiny_model(arch), folder)
        cfg = json.loads((folder / "config.json").read_text())
        cfg[key] = 10**9
        (folder / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(ValueError, match=f"missing tensor '.*{re.escape(want)}'"):
            describe(folder)


def test_control_characters_in_tensor_names_are_quoted(tmp_path: Path) -> None:
    bad = "m.blocks.0.\x1b[31mfc1.weight"
    write_safetensors(tmp_path / "m.safetensors", {bad: np.ones((4, 4), np.float32),
                                                   bad.replace(".0.", ".1."): np.ones((4, 4), np.float32)})
    with pytest.raises(UnsupportedArchitecture) as err:
        build_nin(tmp_path / "m.safetensors")
    assert "\x1b" not in str(err.value) and "\x1b" not in err.value.report()
    assert "\\x1b[31mfc1.weight" in err.value.report()


def test_nd_tensors_are_sliced_as_their_row_view(tmp_path: Path) -> None:
    """get_slice of an (E, R, C) stack reads rows of its (E*R, C) view, from every reader."""
    from neuromfa_native.io.sources import resolve_source

    w = np.random.default_rng(1).standard_normal((4, 6, 5)).astype(np.float32)
    write_safetensors(tmp_path / "s.safetensors", {"stack": w, "v": np.ones(3, np.float32)})
    rows, cols = np.array([23, 0, 7, 7]), np.array([4, 1])
    want = w.reshape(24, 5)[rows][:, cols]
    sources = [resolve_source(tmp_path / "s.safetensors"), resolve_source({"stack": w})]
    try:
        import torch

        sources.append(resolve_source({"stack": torch.from_numpy(w)}))
        torch.save({"stack": torch.from_numpy(w)}, tmp_path / "pytorch_model.bin")
        sources.append(resolve_source(tmp_path / "pytorch_model.bin"))  # read by range, without torch
    except ImportError:
        pass
    for src in sources:
        np.testing.assert_array_equal(src.get_slice("stack", rows, cols), want)
        np.testing.assert_array_equal(src.get_slice("stack", rows), w.reshape(24, 5)[rows])
        with pytest.raises(ValueError, match="out of range"):
            src.get_slice("stack", np.array([24]))
    with pytest.raises(ValueError, match="2 or more dimensions"):
        sources[0].get_slice("v", np.array([0]))


@pytest.mark.parametrize("arch", [a for a in FAMILY_ARCHS if a != "hf_olmo"])
def test_checkpoint_written_by_transformers(tmp_path: Path, arch: str) -> None:
    """A random model of transformers' own class, saved with save_pretrained: every block matrix
    (every expert) is in the network, and the live model gives the saved checkpoint's network."""
    _needs_transformers()
    model = _model(arch)
    model.save_pretrained(tmp_path)
    lay = load_layout(tmp_path)[1]
    assert lay.architecture == arch
    src = nm.resolve_source(tmp_path)  # the stored tensors (load_layout's source adds the parts)
    saved = {n for n in src.tensor_names() if len(src.shape(n)) == 2 and re.search(r"\.\d+\.", n)}
    assert set(lay.tensor_names) == {n for n in saved if not n.endswith(ROUTERS)}
    for per_layer in (S, None):
        np.testing.assert_array_equal(build_nin(tmp_path, sample=1, per_layer=per_layer).edge_array(),
                                      build_nin(model, sample=1, per_layer=per_layer).edge_array())
