"""Configs and tensor shapes of tiny checkpoints of the families beyond the original six, as
``transformers`` 5's ``save_pretrained`` writes them (hidden 32, 2 blocks, 4 heads, 2 key/value
heads where the family has grouped attention, MLP 48, 4 experts of 16).  Used by
``model_factory`` (which writes the weights with numpy); ``tests/network/test_model_factory.py`` checks,
where transformers is installed, that it loads each folder with no missing, unexpected or
mismatched tensor, and saves the same names, shapes and bytes back.

``hf_olmo`` is OLMo-1's original format (AllenAI's custom code, not in transformers): its
config keys are those of ``hf_olmo/configuration_olmo.py`` (``OLMoConfig``: ``ModelConfig``'s
fields), its tensors those of ``OLMoForCausalLM`` (``model.transformer.blocks.N.att_proj``,
``attn_out``, ``ff_proj``, ``ff_out``; OLMo-1B's layer norms have no parameters).
"""
from __future__ import annotations

from typing import Any, Callable

H, I, E, IE, V = 32, 48, 4, 16, 64  # noqa: E741  (hidden, MLP, experts, expert MLP, vocabulary)
KV = 16  # 2 key/value heads of 8

_ROPE = {"rope_theta": 10000.0, "rope_type": "default"}
_DECODER = {"hidden_size": H, "intermediate_size": I, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "vocab_size": V, "max_position_embeddings": 64, "tie_word_embeddings": False,
            "hidden_act": "silu", "initializer_range": 0.02, "attention_dropout": 0.0, "use_cache": True,
            "rope_parameters": _ROPE}

CONFIGS: dict[str, dict[str, Any]] = {
    "olmo": {**_DECODER, "architectures": ["OlmoForCausalLM"], "model_type": "olmo", "attention_bias": False,
             "clip_qkv": None, "pad_token_id": 1, "bos_token_id": None, "eos_token_id": 0},
    "olmo2": {**_DECODER, "architectures": ["Olmo2ForCausalLM"], "model_type": "olmo2", "attention_bias": False,
              "rms_norm_eps": 1e-05, "pad_token_id": 1, "bos_token_id": None, "eos_token_id": 0},
    "olmo3": {**_DECODER, "architectures": ["Olmo3ForCausalLM"], "model_type": "olmo3", "attention_bias": False,
              "rms_norm_eps": 1e-05, "pad_token_id": 1, "bos_token_id": None, "eos_token_id": 0,
              "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 4096},
    "apertus": {**_DECODER, "architectures": ["ApertusForCausalLM"], "model_type": "apertus", "hidden_act": "xielu",
                "attention_bias": False, "rms_norm_eps": 1e-05, "pad_token_id": 3, "bos_token_id": 1,
                "eos_token_id": 2},
    "smollm3": {**_DECODER, "architectures": ["SmolLM3ForCausalLM"], "model_type": "smollm3", "attention_bias": False,
                "mlp_bias": False, "rms_norm_eps": 1e-06, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
                "no_rope_layer_interval": 4, "use_sliding_window": False, "sliding_window": None},
    "qwen3": {**_DECODER, "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "head_dim": 8,
              "attention_bias": False, "rms_norm_eps": 1e-06, "use_sliding_window": False, "sliding_window": None},
    "gemma2": {**_DECODER, "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "head_dim": 8,
               "hidden_activation": "gelu_pytorch_tanh", "attention_bias": False, "rms_norm_eps": 1e-06,
               "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "query_pre_attn_scalar": 8},
    "phi3": {**_DECODER, "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "rms_norm_eps": 1e-05,
             "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2, "resid_pdrop": 0.0, "embd_pdrop": 0.0},
    "olmoe": {**_DECODER, "architectures": ["OlmoeForCausalLM"], "model_type": "olmoe", "intermediate_size": IE,
              "num_experts": E, "num_experts_per_tok": 2, "attention_bias": False, "clip_qkv": None,
              "rms_norm_eps": 1e-05, "pad_token_id": 1, "bos_token_id": None, "eos_token_id": 0},
    "mixtral": {**_DECODER, "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "intermediate_size": IE,
                "num_local_experts": E, "num_experts_per_tok": 2, "rms_norm_eps": 1e-05},
    # block 1 dense (mlp_only_layers): Qwen3-MoE mixes expert and dense blocks
    "qwen3_moe": {**_DECODER, "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "head_dim": 8,
                  "moe_intermediate_size": IE, "num_experts": E, "num_experts_per_tok": 2, "decoder_sparse_step": 1,
                  "mlp_only_layers": [1], "attention_bias": False, "rms_norm_eps": 1e-06},
    "bloom": {"architectures": ["BloomForCausalLM"], "model_type": "bloom", "hidden_size": H, "n_head": 4, "n_layer": 2,
              "vocab_size": V, "layer_norm_epsilon": 1e-05, "initializer_range": 0.02, "bos_token_id": 1,
              "eos_token_id": 2, "tie_word_embeddings": False, "use_cache": True},
    "falcon": {"architectures": ["FalconForCausalLM"], "model_type": "falcon", "hidden_size": H,
               "num_attention_heads": 4, "num_hidden_layers": 2, "num_kv_heads": 2, "new_decoder_architecture": True,
               "multi_query": True, "parallel_attn": True, "bias": False, "ffn_hidden_size": I, "vocab_size": V,
               "alibi": False, "rope_parameters": _ROPE, "bos_token_id": 1, "eos_token_id": 2,
               "tie_word_embeddings": False, "max_position_embeddings": 64},
    "gptj": {"architectures": ["GPTJForCausalLM"], "model_type": "gptj", "n_embd": H, "n_head": 4, "n_layer": 2,
             "n_inner": I, "rotary_dim": 4, "n_positions": 64, "vocab_size": V, "bos_token_id": 1, "eos_token_id": 2,
             "tie_word_embeddings": False, "activation_function": "gelu_new"},
    "opt": {"architectures": ["OPTForCausalLM"], "model_type": "opt", "hidden_size": H, "num_attention_heads": 4,
            "num_hidden_layers": 2, "ffn_dim": I, "word_embed_proj_dim": H, "vocab_size": V,
            "max_position_embeddings": 64, "do_layer_norm_before": True, "pad_token_id": 1, "bos_token_id": 2,
            "eos_token_id": 2, "tie_word_embeddings": False, "activation_function": "relu"},
    "hf_olmo": {"architectures": ["OLMoForCausalLM"], "model_type": "hf_olmo", "d_model": H, "n_heads": 4,
                "n_kv_heads": 2, "multi_query_attention": None, "n_layers": 2, "mlp_ratio": 4, "mlp_hidden_size": 2 * I,
                "activation_type": "swiglu", "block_type": "sequential", "block_group_size": 1, "include_bias": False,
                "weight_tying": False, "layer_norm_type": "default", "layer_norm_with_affine": False, "rope": True,
                "vocab_size": V, "embedding_size": V, "max_sequence_length": 64, "eos_token_id": 0,
                "pad_token_id": 1},
}

#: The families' tiny models, in the order the tests parametrize them.
FAMILY_ARCHS = tuple(CONFIGS)


def shapes(arch: str, linear: Callable, norm: Callable, out: dict) -> None:
    """Fill ``out`` (name -> shape) with ``arch``'s tensors; ``linear(name, n_out, n_in, bias)``
    and ``norm(name, n, bias)`` add a weight (and bias)."""
    if arch == "hf_olmo":
        out["model.transformer.wte.weight"] = (V, H)
        for b in range(2):
            p = f"model.transformer.blocks.{b}."
            linear(p + "att_proj", H + 2 * KV, H, False)
            linear(p + "attn_out", H, H, False)
            linear(p + "ff_proj", 2 * I, H, False)
            linear(p + "ff_out", H, I, False)
        out["model.transformer.ff_out.weight"] = (V, H)
        return
    if arch in ("bloom", "falcon", "gptj"):
        _transformer_h(arch, linear, norm, out)
        return
    if arch == "opt":
        out["model.decoder.embed_tokens.weight"] = (V, H)
        out["model.decoder.embed_positions.weight"] = (64 + 2, H)
        for b in range(2):
            p = f"model.decoder.layers.{b}."
            for x in ("q", "k", "v", "out"):
                linear(p + f"self_attn.{x}_proj", H, H, True)
            norm(p + "self_attn_layer_norm", H, True)
            linear(p + "fc1", I, H, True)
            linear(p + "fc2", H, I, True)
            norm(p + "final_layer_norm", H, True)
        norm("model.decoder.final_layer_norm", H, True)
        out["lm_head.weight"] = (V, H)
        return
    _llama_named(arch, linear, norm, out)


def _llama_named(arch: str, linear: Callable, norm: Callable, out: dict) -> None:
    hd = 8
    out["model.embed_tokens.weight"] = (V, H)
    for b in range(2):
        p = f"model.layers.{b}."
        if arch == "phi3":
            linear(p + "self_attn.qkv_proj", H + 2 * KV, H, False)
        else:
            for x, n in (("q", H), ("k", KV), ("v", KV)):
                linear(p + f"self_attn.{x}_proj", n, H, False)
        linear(p + "self_attn.o_proj", H, H, False)
        if arch in ("olmo2", "olmo3", "olmoe"):  # norms over all heads
            norm(p + "self_attn.q_norm", H, False)
            norm(p + "self_attn.k_norm", KV, False)
        elif arch in ("qwen3", "qwen3_moe", "apertus"):  # per-head norms
            norm(p + "self_attn.q_norm", hd, False)
            norm(p + "self_attn.k_norm", hd, False)
        norms = {"olmo": (), "olmo2": ("post_attention", "post_feedforward"), "olmo3": ("post_attention", "post_feedforward"),
                 "apertus": ("attention", "feedforward"),
                 "gemma2": ("input", "post_attention", "pre_feedforward", "post_feedforward")}
        for n in norms.get(arch, ("input", "post_attention")):
            norm(p + f"{n}_layernorm", H, False)
        if arch == "phi3":
            linear(p + "mlp.gate_up_proj", 2 * I, H, False)
            linear(p + "mlp.down_proj", H, I, False)
        elif arch == "apertus":
            linear(p + "mlp.up_proj", I, H, False)
            linear(p + "mlp.down_proj", H, I, False)
            for x in ("alpha_n", "alpha_p"):
                out[p + f"mlp.act_fn.{x}"] = (1,)
            for x in ("beta", "eps"):
                out[p + f"mlp.act_fn.{x}"] = ()
        elif arch in ("olmoe", "mixtral") or (arch == "qwen3_moe" and b == 0):
            moe = "block_sparse_moe." if arch == "mixtral" else "mlp."
            out[p + moe + "gate.weight"] = (E, H)
            names = ("w1", "w3", "w2") if arch == "mixtral" else ("gate_proj", "up_proj", "down_proj")
            for e in range(E):
                linear(p + moe + f"experts.{e}.{names[0]}", IE, H, False)
                linear(p + moe + f"experts.{e}.{names[1]}", IE, H, False)
                linear(p + moe + f"experts.{e}.{names[2]}", H, IE, False)
        else:
            for x, shape in (("gate", (I, H)), ("up", (I, H)), ("down", (H, I))):
                linear(p + f"mlp.{x}_proj", *shape, False)
    if arch != "olmo":
        norm("model.norm", H, False)
    out["lm_head.weight"] = (V, H)


def _transformer_h(arch: str, linear: Callable, norm: Callable, out: dict) -> None:
    out["transformer.wte.weight" if arch == "gptj" else "transformer.word_embeddings.weight"] = (V, H)
    if arch == "bloom":
        norm("transformer.word_embeddings_layernorm", H, True)
    for b in range(2):
        p = f"transformer.h.{b}."
        if arch == "bloom":
            norm(p + "input_layernorm", H, True)
            linear(p + "self_attention.query_key_value", 3 * H, H, True)
            linear(p + "self_attention.dense", H, H, True)
            norm(p + "post_attention_layernorm", H, True)
            linear(p + "mlp.dense_h_to_4h", 4 * H, H, True)
            linear(p + "mlp.dense_4h_to_h", H, 4 * H, True)
        elif arch == "falcon":  # new decoder architecture: 2 kv heads, two layer norms
            norm(p + "ln_attn", H, True)
            norm(p + "ln_mlp", H, True)
            linear(p + "self_attention.query_key_value", H + 2 * KV, H, False)
            linear(p + "self_attention.dense", H, H, False)
            linear(p + "mlp.dense_h_to_4h", I, H, False)
            linear(p + "mlp.dense_4h_to_h", H, I, False)
        else:  # gptj
            norm(p + "ln_1", H, True)
            for x in ("q", "k", "v", "out"):
                linear(p + f"attn.{x}_proj", H, H, False)
            linear(p + "mlp.fc_in", I, H, True)
            linear(p + "mlp.fc_out", H, I, True)
    norm("transformer.ln_f", H, True)
    out["lm_head.weight"] = (V, H)
    if arch == "gptj":
        out["lm_head.bias"] = (V,)
