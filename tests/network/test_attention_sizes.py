"""Every family that reads its hidden size and its attention heads from the config refuses a
hidden size that is not a multiple of the heads, and a config that lacks either, naming the
config field it read (:func:`~neuromfa_native.network.architectures.base.hidden_and_heads`); and
the other size refusals of the families (key/value heads, OLMo-1's block groups and SwiGLU size,
a fused part outside its tensor) say what they refuse."""
from __future__ import annotations

import re

import pytest

from model_factory import tiny_config, tiny_state_dict
from neuromfa_native.network.architectures.registry import FAMILIES

#: family -> (the hidden-size field it names, the heads field it names)
FIELDS = {
    "gpt2": ("n_embd", "n_head"),
    "gptj": ("n_embd", "n_head"),
    "opt": ("hidden_size", "num_attention_heads"),
    "bert": ("hidden_size", "num_attention_heads"),
    "bloom": ("hidden_size", "n_head"),
    "falcon": ("hidden_size", "num_attention_heads"),
    "hf_olmo": ("d_model", "n_heads"),
}


#: the other spellings of those fields, dropped so that the named one is the one read
ALIASES = ("hidden_size", "n_embd", "n_embed", "d_model", "num_attention_heads", "n_head", "n_heads")


def _build(family: str, sizes: dict):
    """Build ``family``'s layout from its tiny checkpoint's tensors and config, with the hidden
    size and heads fields replaced by ``sizes``."""
    config = {k: v for k, v in tiny_config(family).items() if k not in ALIASES} | sizes
    sd = tiny_state_dict(family)
    return FAMILIES[family].build(config, set(sd), lambda name: tuple(sd[name].shape), "default")


@pytest.mark.parametrize("family", sorted(FIELDS))
def test_tiny_checkpoint_builds(family: str) -> None:
    hidden, heads = FIELDS[family]
    cfg = tiny_config(family)
    assert _build(family, {hidden: cfg.get(hidden), heads: cfg.get(heads)}).n_nodes > 0


@pytest.mark.parametrize("family", sorted(FIELDS))
def test_hidden_size_not_a_multiple_of_the_heads(family: str) -> None:
    hidden, heads = FIELDS[family]
    with pytest.raises(ValueError, match=f"^{hidden} 10 is not a multiple of {heads} 4$"):
        _build(family, {hidden: 10, heads: 4})


@pytest.mark.parametrize("family", sorted(FIELDS))
@pytest.mark.parametrize("missing", [0, 1])
def test_missing_size_names_its_field(family: str, missing: int) -> None:
    fields = FIELDS[family]
    config = {fields[1 - missing]: 4}
    with pytest.raises(ValueError, match=re.escape(f"the {family} layout 'default' needs config[{fields[missing]!r}]")):
        _build(family, config)


# ------------------------------------------------------------------------- the other size refusals
def _build_with(family: str, changes: dict):
    config = tiny_config(family) | changes
    sd = tiny_state_dict(family)
    return FAMILIES[family].build(config, set(sd), lambda name: tuple(sd[name].shape), "default")


def test_query_heads_not_a_multiple_of_the_key_value_heads() -> None:
    with pytest.raises(ValueError, match="^num_attention_heads 4 is not a multiple of num_key_value_heads 3$"):
        _build_with("llama", {"num_attention_heads": 4, "num_key_value_heads": 3})


def test_falcon_heads_not_a_multiple_of_its_key_value_heads() -> None:
    with pytest.raises(ValueError, match="^num_attention_heads 4 is not a multiple of num_kv_heads 3$"):
        _build_with("falcon", {"num_attention_heads": 4, "new_decoder_architecture": True, "num_kv_heads": 3})


def test_olmo1_block_groups_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^OLMo block groups \(block_group_size=2\) are not supported; unshard"):
        _build_with("hf_olmo", {"block_group_size": 2})


def test_olmo1_swiglu_needs_an_even_hidden_size() -> None:
    with pytest.raises(ValueError, match="^the SwiGLU MLP needs an even mlp hidden size, got 33$"):
        _build_with("hf_olmo", {"mlp_hidden_size": 33, "activation_type": "swiglu"})


def test_a_part_outside_its_fused_tensor_is_refused() -> None:
    """check_layout re-checks a builder's row arithmetic on the real shape: a part whose last row
    lies past the stored tensor's rows is an error, not a read past the tensor."""
    from neuromfa_native.network.architectures.base import Layout, MatrixSpec, NodeLayer, row_part
    from neuromfa_native.network.architectures.registry import check_layout

    fused = "w.qkv"
    nls = (NodeLayer("in", 3, "in", 3), NodeLayer("q", 4, "q", 4))
    ok = Layout("test", "default", nls, (MatrixSpec("w.qkv[q]", 0, 1, "torch", part=row_part(fused, (6, 3), "q", 0, 4)),))
    check_layout(ok, {fused}, lambda name: (6, 3))
    bad = Layout("test", "default", nls, (MatrixSpec("w.qkv[q]", 0, 1, "torch", part=row_part(fused, (6, 3), "q", 3, 4)),))
    with pytest.raises(ValueError, match=re.escape("layout test/default: matrix 'w.qkv[q]' (4 x 3) does not fit in its "
                                                   "fused tensor 'w.qkv' of shape (6, 3)")):
        check_layout(bad, {fused}, lambda name: (6, 3))
