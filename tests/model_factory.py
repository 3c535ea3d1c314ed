"""Tiny random checkpoints of every supported architecture, written with numpy alone.

``write_model(arch, folder)`` writes ``config.json`` and ``model.safetensors`` the way
``transformers``' ``save_pretrained`` lays them out (same tensor names, shapes and config keys;
hidden 32, 2 blocks, 4 heads; Llama-family models use grouped-query attention with 2
key/value heads; the other families' configs and shapes are in ``tests/family_models.py``), with weights drawn from ``numpy.random.default_rng(seed)``: matrices and
embeddings ``N(0, 0.02)``, norm scales 1, biases 0 (the ``transformers`` initialisation).
No torch is needed; ``tests/network/test_model_factory.py`` checks, where ``transformers`` is
installed, that it loads these folders with no missing, unexpected or mismatched tensor.

The session fixture ``tiny_model`` caches one folder per (architecture, dtype, format):
``tiny_model("llama")`` -> folder. ``fmt="bin"`` (``pytorch_model.bin``) needs torch, as
does ``make_model``, which loads a folder into a ``transformers`` module.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from family_models import CONFIGS as FAMILY_CONFIGS, FAMILY_ARCHS, shapes as family_shapes
from neuromfa_native.io.safetensors import write_safetensors

#: The original six; ``FAMILY_ARCHS`` (tests/family_models.py) the other families, ``ALL_ARCHS`` both.
ARCHS = ("gpt_neox", "gpt2", "llama", "mistral", "qwen2", "bert")
ALL_ARCHS = ARCHS + FAMILY_ARCHS
DTYPES = ("float32", "float16", "bfloat16")

_LLAMA_COMMON = {
    "attention_dropout": 0.0, "hidden_act": "silu", "hidden_size": 32, "initializer_range": 0.02,
    "intermediate_size": 48, "max_position_embeddings": 64, "num_attention_heads": 4,
    "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}, "tie_word_embeddings": False,
    "use_cache": True, "vocab_size": 64,
}

# The config.json that transformers 5 writes for these small models (version key left out).
_CONFIGS: dict[str, dict[str, Any]] = {
    "gpt_neox": {
        "architectures": ["GPTNeoXForCausalLM"], "model_type": "gpt_neox", "attention_bias": True,
        "attention_dropout": 0.0, "bos_token_id": 0, "classifier_dropout": 0.1, "eos_token_id": 2,
        "hidden_act": "gelu", "hidden_dropout": 0.0, "hidden_size": 32, "initializer_range": 0.02,
        "intermediate_size": 128, "is_decoder": False, "layer_norm_eps": 1e-05,
        "max_position_embeddings": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "rope_parameters": {"partial_rotary_factor": 0.25, "rope_theta": 10000.0, "rope_type": "default"},
        "tie_word_embeddings": False, "use_cache": True, "use_parallel_residual": True, "vocab_size": 64,
    },
    "gpt2": {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
        "attn_pdrop": 0.1, "bos_token_id": 0, "embd_pdrop": 0.1, "eos_token_id": 0,
        "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "n_embd": 32, "n_head": 4, "n_inner": None,
        "n_layer": 2, "n_positions": 64, "resid_pdrop": 0.1, "scale_attn_weights": True,
        "tie_word_embeddings": True, "use_cache": True, "vocab_size": 64,
    },
    "llama": {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
              "bos_token_id": 1, "eos_token_id": 2, "head_dim": 8, "mlp_bias": False, "pretraining_tp": 1,
              **_LLAMA_COMMON},
    "mistral": {"architectures": ["MistralForCausalLM"], "model_type": "mistral", "bos_token_id": 1,
                "eos_token_id": 2, "head_dim": 8, "sliding_window": 4096, **_LLAMA_COMMON},
    "qwen2": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
              "layer_types": ["full_attention", "full_attention"], "max_window_layers": 28,
              "sliding_window": None, "use_sliding_window": False, **_LLAMA_COMMON},
    "bert": {
        "architectures": ["BertModel"], "model_type": "bert", "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 32, "initializer_range": 0.02,
        "intermediate_size": 64, "is_decoder": False, "layer_norm_eps": 1e-12, "max_position_embeddings": 64,
        "num_attention_heads": 4, "num_hidden_layers": 2, "pad_token_id": 0, "tie_word_embeddings": True,
        "type_vocab_size": 2, "use_cache": True, "vocab_size": 64,
    },
}


_CONFIGS.update(FAMILY_CONFIGS)


def tiny_config(arch: str) -> dict[str, Any]:
    """The ``config.json`` contents of the tiny ``arch`` model (a fresh dict)."""
    if arch not in _CONFIGS:
        raise ValueError(f"unknown arch {arch!r}; one of {ALL_ARCHS}")
    return json.loads(json.dumps(_CONFIGS[arch]))


def _shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape, as ``save_pretrained`` stores them (tied weights stored once)."""
    c = _CONFIGS[arch]
    v, nl = c["vocab_size"], 2
    out: dict[str, tuple[int, ...]] = {}

    def linear(name: str, n_out: int, n_in: int, bias: bool = True) -> None:
        out[name + ".weight"] = (n_out, n_in)
        if bias:
            out[name + ".bias"] = (n_out,)

    def norm(name: str, n: int, bias: bool = True) -> None:
        out[name + ".weight"] = (n,)
        if bias:
            out[name + ".bias"] = (n,)

    if arch in FAMILY_ARCHS:
        family_shapes(arch, linear, norm, out)
    elif arch == "gpt_neox":
        h, i = c["hidden_size"], c["intermediate_size"]
        out["gpt_neox.embed_in.weight"] = (v, h)
        for b in range(nl):
            p = f"gpt_neox.layers.{b}."
            norm(p + "input_layernorm", h)
            linear(p + "attention.query_key_value", 3 * h, h)
            linear(p + "attention.dense", h, h)
            norm(p + "post_attention_layernorm", h)
            linear(p + "mlp.dense_h_to_4h", i, h)
            linear(p + "mlp.dense_4h_to_h", h, i)
        norm("gpt_neox.final_layer_norm", h)
        out["embed_out.weight"] = (v, h)
    elif arch == "gpt2":  # Conv1D: weights stored (in, out)
        h = c["n_embd"]
        out["transformer.wte.weight"] = (v, h)
        out["transformer.wpe.weight"] = (c["n_positions"], h)
        for b in range(nl):
            p = f"transformer.h.{b}."
            norm(p + "ln_1", h)
            out[p + "attn.c_attn.weight"], out[p + "attn.c_attn.bias"] = (h, 3 * h), (3 * h,)
            out[p + "attn.c_proj.weight"], out[p + "attn.c_proj.bias"] = (h, h), (h,)
            norm(p + "ln_2", h)
            out[p + "mlp.c_fc.weight"], out[p + "mlp.c_fc.bias"] = (h, 4 * h), (4 * h,)
            out[p + "mlp.c_proj.weight"], out[p + "mlp.c_proj.bias"] = (4 * h, h), (h,)
        norm("transformer.ln_f", h)
    elif arch in ("llama", "mistral", "qwen2"):
        h, i = c["hidden_size"], c["intermediate_size"]
        hd = h // c["num_attention_heads"]
        kv = c["num_key_value_heads"] * hd
        qkv_bias = arch == "qwen2"
        out["model.embed_tokens.weight"] = (v, h)
        for b in range(nl):
            p = f"model.layers.{b}."
            norm(p + "input_layernorm", h, bias=False)
            linear(p + "self_attn.q_proj", h, h, qkv_bias)
            linear(p + "self_attn.k_proj", kv, h, qkv_bias)
            linear(p + "self_attn.v_proj", kv, h, qkv_bias)
            linear(p + "self_attn.o_proj", h, h, bias=False)
            norm(p + "post_attention_layernorm", h, bias=False)
            linear(p + "mlp.gate_proj", i, h, bias=False)
            linear(p + "mlp.up_proj", i, h, bias=False)
            linear(p + "mlp.down_proj", h, i, bias=False)
        norm("model.norm", h, bias=False)
        out["lm_head.weight"] = (v, h)
    elif arch == "bert":
        h, i = c["hidden_size"], c["intermediate_size"]
        out["embeddings.word_embeddings.weight"] = (v, h)
        out["embeddings.position_embeddings.weight"] = (c["max_position_embeddings"], h)
        out["embeddings.token_type_embeddings.weight"] = (c["type_vocab_size"], h)
        norm("embeddings.LayerNorm", h)
        for b in range(nl):
            p = f"encoder.layer.{b}."
            for part in ("query", "key", "value"):
                linear(p + "attention.self." + part, h, h)
            linear(p + "attention.output.dense", h, h)
            norm(p + "attention.output.LayerNorm", h)
            linear(p + "intermediate.dense", i, h)
            linear(p + "output.dense", h, i)
            norm(p + "output.LayerNorm", h)
        linear("pooler.dense", h, h)
    else:
        raise ValueError(f"unknown arch {arch!r}; one of {ALL_ARCHS}")
    return out


def tiny_state_dict(arch: str, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float32 weights of the tiny ``arch`` model, keyed by checkpoint tensor name."""
    rng = np.random.default_rng(seed)
    sd: dict[str, np.ndarray] = {}
    for name, shape in _shapes(arch).items():
        is_norm = "norm" in name.lower() or ".ln_" in name
        if name.endswith(".bias"):
            sd[name] = np.zeros(shape, np.float32)
        elif is_norm:
            sd[name] = np.ones(shape, np.float32)
        else:
            sd[name] = np.asarray(rng.normal(0.0, 0.02, shape), dtype=np.float32)
    return sd


def bfloat16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (``uint16``), rounding to nearest even as torch does."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def write_model(arch: str, folder: Path, *, dtype: str = "float32", seed: int = 0) -> Path:
    """Write ``config.json`` and ``model.safetensors`` of the tiny ``arch`` model to ``folder``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = tiny_config(arch)
    cfg["dtype"] = dtype
    (folder / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    sd = tiny_state_dict(arch, seed=seed)
    if dtype == "bfloat16":
        write_safetensors(folder / "model.safetensors", {k: bfloat16_bits(v) for k, v in sd.items()},
                          metadata={"format": "pt"}, dtypes={k: "BF16" for k in sd})
    else:
        write_safetensors(folder / "model.safetensors", {k: v.astype(dtype) for k, v in sd.items()},
                          metadata={"format": "pt"})
    return folder


def write_bin_model(arch: str, folder: Path, *, dtype: str = "float32", seed: int = 0) -> Path:
    """The same weights as ``write_model``, saved as ``pytorch_model.bin`` with ``torch.save``."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = tiny_config(arch)
    cfg["dtype"] = dtype
    (folder / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    sd = {k: torch.from_numpy(v).to(getattr(torch, dtype)) for k, v in tiny_state_dict(arch, seed=seed).items()}
    torch.save(sd, folder / "pytorch_model.bin")
    return folder


def hf_config(arch: str) -> Any:
    """The tiny ``arch`` config as a ``transformers`` config object (needs transformers)."""
    import transformers as tf

    cfg = tiny_config(arch)
    return tf.AutoConfig.for_model(cfg.pop("model_type"), **cfg)


def make_model(arch: str, folder: Path | None = None, *, dtype: str = "float32", seed: int = 0) -> Any:
    """A ``transformers`` module holding exactly the weights ``write_model`` writes (needs torch).

    The module is loaded with ``from_pretrained`` from ``folder`` (written first if it holds no
    checkpoint) or from a temporary folder.
    """
    import torch
    import transformers as tf

    cls = tf.BertModel if arch == "bert" else tf.AutoModelForCausalLM
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(folder) if folder is not None else Path(tmp)
        if not (where / "model.safetensors").is_file():
            write_model(arch, where, dtype=dtype, seed=seed)
        model = cls.from_pretrained(where, dtype=getattr(torch, dtype))
    return model.eval()


def read_config(folder: Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text())
