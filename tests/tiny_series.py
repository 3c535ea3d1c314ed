"""Tiny generated GPT-NeoX checkpoint series for the series/CLI/resume/Dask tests.

``make_series_dirs(root, steps)`` writes ``root/step{t}/`` (config.json + model.safetensors,
float32, hidden 32, 2 blocks) whose weights drift with the step: ``W_t = W_0 * s_t + D * u_t``
with a fixed random ``W_0`` and ``D`` (seeded), so alpha0 and the width change along the series.
``identical`` lists extra step names that get byte-identical copies of another step's files.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from neuromfa_native.io.safetensors import write_safetensors

H, LAYERS = 32, 2
PER_LAYER = 12


def config() -> dict:
    return dict(model_type="gpt_neox", architectures=["GPTNeoXForCausalLM"], hidden_size=H,
                num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=4 * H, vocab_size=64)


def weights(step: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    drift = np.random.default_rng(seed + 1)
    u = np.log1p(step) / np.log1p(1000)
    out = {}
    shapes = {"attention.query_key_value.weight": (3 * H, H), "attention.dense.weight": (H, H),
              "mlp.dense_h_to_4h.weight": (4 * H, H), "mlp.dense_4h_to_h.weight": (H, 4 * H)}
    for b in range(LAYERS):
        for name, shp in shapes.items():
            w0 = rng.normal(0, 0.02, shp)
            d = drift.standard_t(3, shp) * 0.03
            out[f"gpt_neox.layers.{b}.{name}"] = (w0 * (1 + u) + d * u).astype(np.float32)
    return out


def make_series_dirs(root, steps=(0, 10, 100, 1000), identical=None) -> list:
    """Write the checkpoints; returns their directories in step order (then the copies)."""
    root = Path(root)
    dirs = []
    for t in steps:
        d = root / f"step{t}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(config()))
        write_safetensors(d / "model.safetensors", weights(t))
        dirs.append(d)
    for name, of in (identical or {}).items():
        d = root / name
        shutil.copytree(root / of, d)
        dirs.append(d)
    return dirs
