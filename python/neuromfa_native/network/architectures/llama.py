"""The Llama family: Llama's tensor names (``self_attn.{q,k,v,o}_proj``, ``mlp.{gate,up,down}_proj``)
with grouped key/value heads and a gated MLP; layout ``"default"``.  See docs/architectures.md.

Model types: ``llama`` (also TinyLlama, SmolLM/SmolLM2, LLM360 Amber and K2), ``mistral``,
``qwen2``, ``qwen3``, ``smollm3``, ``gemma2``.  They differ only in norms (``q_norm``/``k_norm``,
pre/post norms), biases, soft-capping and positional details, none of which is a weight matrix
of the network.  :func:`llama_like` is also the builder of the OLMo and Apertus families.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from .base import Family, Layout, cfg_int, first_prefix, n_blocks, need
from .decoder import Block, Dims, Gated, Plain, Ref, decoder_layout

#: The config fields a Llama-named layout reads.
LLAMA_KEYS = ("hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size",
              "num_hidden_layers")

#: ``layout_for`` of a family whose only layout is ``"default"``.
DEFAULT_ONLY = {"reference": "default", "heads": "default", "default": "default"}


def llama_dims(config: Mapping[str, Any], arch: str, layout: str) -> Dims:
    """Attention sizes from ``hidden_size``, ``num_attention_heads``, ``num_key_value_heads``
    (default: no grouping) and ``head_dim`` (default ``hidden_size / num_attention_heads``)."""
    h = need(cfg_int(config, ["hidden_size"]), "hidden_size", arch, layout)
    nh = need(cfg_int(config, ["num_attention_heads"]), "num_attention_heads", arch, layout)
    nkv = cfg_int(config, ["num_key_value_heads"], nh)
    hd = cfg_int(config, ["head_dim"], None) or h // nh
    return Dims(h, nh, nkv, hd)


def llama_like(config: Mapping[str, Any], names: set[str], layout: str, prefixes: Sequence[str], probe: str,
               mlp: str = "gated") -> Layout:
    """A stack of Llama-named blocks ``prefix + self_attn.{q,k,v,o}_proj.weight`` and a gated
    (``mlp.{gate,up,down}_proj.weight``) or plain (``mlp.{up,down}_proj.weight``) MLP."""
    arch = str(config.get("model_type") or "llama")
    prefix = first_prefix(names, prefixes, probe) or prefixes[0]
    dims = llama_dims(config, arch, layout)
    inter = need(cfg_int(config, ["intermediate_size"]), "intermediate_size", arch, layout)
    nb = n_blocks(config, ["num_hidden_layers"], names, prefix, probe)
    blocks = []
    for b in range(nb):
        p = prefix.format(b=b)
        q, k, v, o = (Ref(p + f"self_attn.{x}_proj.weight") for x in "qkvo")
        up, down = Ref(p + "mlp.up_proj.weight"), Ref(p + "mlp.down_proj.weight")
        m = Gated(Ref(p + "mlp.gate_proj.weight"), up, down, inter) if mlp == "gated" else Plain(up, down, inter)
        blocks.append(Block(q, k, v, o, m))
    return decoder_layout(arch, layout, config, dims, blocks)


def _llama(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    return llama_like(config, names, layout, FAMILY.tensor_prefixes, FAMILY.probe)


FAMILY = Family(
    name="llama", model_types=("llama", "mistral", "qwen2", "qwen3", "smollm3", "gemma2"),
    class_prefixes={"Llama": "llama", "Mistral": "mistral", "Qwen2": "qwen2", "Qwen3": "qwen3",
                    "SmolLM3": "smollm3", "Gemma2": "gemma2"},
    tensor_prefixes=("model.layers.{b}.", "layers.{b}."), probe="self_attn.q_proj.weight",
    layouts=("default",), layout_for=DEFAULT_ONLY, build=_llama, config_keys=LLAMA_KEYS,
)
