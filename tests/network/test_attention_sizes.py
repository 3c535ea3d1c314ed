"""Every family that reads its hidden size and its attention heads from the config refuses a
hidden size that is not a multiple of the heads, and a config that lacks either, naming the
config field it read (:func:`~neuromfa_native.network.architectures.base.hidden_and_heads`)."""
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
