"""Tiny random-initialised models of every supported architecture, for the model-layer tests.

``make_model(arch, folder)`` builds a ``transformers`` model from a small config (hidden 32,
2 blocks, 4 heads; Llama-family models use grouped-query attention with 2 key/value heads),
saves it with ``save_pretrained`` (safetensors) and returns the model. ``fmt="bin"`` writes
``pytorch_model.bin`` with ``torch.save`` instead (transformers 5 always writes safetensors).

The session fixture ``tiny_model`` caches one saved model per (architecture, dtype, format):
``tiny_model("llama")`` -> folder. Tests that use it skip when torch/transformers are missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

ARCHS = ("gpt_neox", "gpt2", "llama", "mistral", "qwen2", "bert")


def tiny_config(arch: str) -> Any:
    """A small ``transformers`` config of ``arch``."""
    import transformers as tf

    common = dict(vocab_size=64)
    if arch == "gpt_neox":
        return tf.GPTNeoXConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=128, max_position_embeddings=64, **common)
    if arch == "gpt2":
        return tf.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=64, bos_token_id=0,
                             eos_token_id=0, **common)
    if arch in ("llama", "mistral", "qwen2"):
        cls = {"llama": tf.LlamaConfig, "mistral": tf.MistralConfig, "qwen2": tf.Qwen2Config}[arch]
        return cls(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                   num_key_value_heads=2, max_position_embeddings=64, **common)
    if arch == "bert":
        return tf.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=64, max_position_embeddings=64, **common)
    raise ValueError(f"unknown arch {arch!r}")


def make_model(arch: str, folder: Path | None = None, *, dtype: str = "float32", fmt: str = "safetensors",
               seed: int = 0) -> Any:
    """Build a random ``arch`` model (torch dtype ``dtype``); save it to ``folder`` if given."""
    import torch
    import transformers as tf

    torch.manual_seed(seed)
    cfg = tiny_config(arch)
    model = tf.BertModel(cfg) if arch == "bert" else tf.AutoModelForCausalLM.from_config(cfg)
    model = model.to(getattr(torch, dtype)).eval()
    if folder is not None:
        folder = Path(folder)
        if fmt == "safetensors":
            model.save_pretrained(folder)
        elif fmt == "bin":
            folder.mkdir(parents=True, exist_ok=True)
            cfg.save_pretrained(folder)
            torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "pytorch_model.bin")
        else:
            raise ValueError(f"fmt must be 'safetensors' or 'bin', got {fmt!r}")
    return model


def read_config(folder: Path) -> dict:
    return json.loads((Path(folder) / "config.json").read_text())


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory fixture: ``tiny_model(arch, dtype="float32", fmt="safetensors") -> folder``."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    cache: dict[tuple[str, str, str], Path] = {}

    def get(arch: str, dtype: str = "float32", fmt: str = "safetensors") -> Path:
        key = (arch, dtype, fmt)
        if key not in cache:
            folder = tmp_path_factory.mktemp(f"{arch}_{dtype}_{fmt}")
            make_model(arch, folder, dtype=dtype, fmt=fmt)
            cache[key] = folder
        return cache[key]

    return get
