"""Mixture-of-experts models with Llama's attention names and experts
``mlp.experts.{e}.{gate,up,down}_proj`` plus a router ``mlp.gate`` (``olmoe``: OLMoE;
``qwen3_moe``: Qwen3-MoE, whose dense blocks have ``mlp.{gate,up,down}_proj``); layouts
``"default"`` (expert neurons sampled pooled) and ``"per_expert"``.  See docs/architectures.md
and docs/spec.md ("Mixture-of-experts blocks").

Both forms of the experts read the same: the per-expert 2-d tensors of a saved checkpoint, and
the fused 3-d ``mlp.experts.gate_up_proj`` / ``mlp.experts.down_proj`` that transformers 5
builds at load time (a live model, the monitor).  The router is not part of the network.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from .base import Family, Layout, cfg_int, first_prefix, n_blocks, need
from .decoder import Block, Experts, Gated, Ref, decoder_layout, expert_refs
from .llama import LLAMA_KEYS, llama_dims

#: ``layout_for`` of the mixture-of-experts families.
MOE_LAYOUTS = {"reference": "default", "heads": "default", "default": "default", "per_expert": "per_expert"}

#: Config fields the mixture-of-experts layouts read besides Llama's.
MOE_KEYS = LLAMA_KEYS + ("num_experts", "num_local_experts", "moe_intermediate_size", "decoder_sparse_step",
                         "mlp_only_layers")


def sparse_blocks(config: Mapping[str, Any], nb: int) -> list[bool]:
    """Which blocks have experts: all, except Qwen3-MoE's ``mlp_only_layers`` and the blocks
    ``decoder_sparse_step`` skips (``(b + 1) % step != 0``), as its modelling code decides."""
    dense = config.get("mlp_only_layers") or ()
    if not isinstance(dense, (list, tuple)) or not all(isinstance(x, int) for x in dense):
        raise ValueError(f"config['mlp_only_layers'] must be a list of block indices, got {dense!r}")
    step = cfg_int(config, ["decoder_sparse_step"], 1)
    return [b not in dense and (b + 1) % step == 0 for b in range(nb)]


def moe_like(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str,
             prefixes: Sequence[str], probe: str, expert_tensors: tuple, fused: str = "mlp.experts.") -> Layout:
    """Llama-named attention; per block either experts (``expert_tensors``: per-expert gate, up,
    down names after the prefix, ``{e}`` the expert; or the fused 3-d stacks ``fused +
    gate_up_proj``/``down_proj``) or a dense gated MLP (``mlp.{gate,up,down}_proj``)."""
    arch = str(config.get("model_type") or "olmoe")
    prefix = first_prefix(names, prefixes, probe) or first_prefix(names, prefixes, "self_attn.q_proj.weight") \
        or prefixes[0]
    dims = llama_dims(config, arch, layout)
    ne = need(cfg_int(config, ["num_experts", "num_local_experts"]), "num_experts", arch, layout)
    size = cfg_int(config, ["moe_intermediate_size"], None) or need(
        cfg_int(config, ["intermediate_size"]), "intermediate_size", arch, layout)
    nb = n_blocks(config, ["num_hidden_layers"], names, prefix, "self_attn.q_proj.weight")
    blocks = []
    for b, sparse in enumerate(sparse_blocks(config, nb)):
        p = prefix.format(b=b)
        q, k, v, o = (Ref(p + f"self_attn.{x}_proj.weight") for x in "qkvo")
        if sparse:
            mlp: Experts | Gated = Experts(expert_refs(p, names, shapes, ne, size, dims.h, expert_tensors, fused), size)
        else:
            inter = need(cfg_int(config, ["intermediate_size"]), "intermediate_size", arch, layout)
            gate, up, down = (Ref(p + f"mlp.{x}_proj.weight") for x in ("gate", "up", "down"))
            mlp = Gated(gate, up, down, inter)
        blocks.append(Block(q, k, v, o, mlp))
    return decoder_layout(arch, layout, config, dims, blocks, per_expert=layout == "per_expert")


def _olmoe(config: Mapping[str, Any], names: set[str], shapes: Callable[[str], tuple], layout: str) -> Layout:
    return moe_like(config, names, shapes, layout, FAMILY.tensor_prefixes, FAMILY.probe,
                    tuple(f"mlp.experts.{{e}}.{x}_proj.weight" for x in ("gate", "up", "down")))


FAMILY = Family(
    name="olmoe", model_types=("olmoe", "qwen3_moe"), class_prefixes={"Olmoe": "olmoe", "Qwen3Moe": "qwen3_moe"},
    tensor_prefixes=("model.layers.{b}.", "layers.{b}."), probe="mlp.gate.weight",
    layouts=("default", "per_expert"), layout_for=MOE_LAYOUTS, build=_olmoe, config_keys=MOE_KEYS,
)
