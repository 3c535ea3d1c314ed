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


# ---------------------------------------------------------------------------------------------
# series with a known verdict (docs/spec.md section 13): exact by construction


SHAPES = {"attention.query_key_value.weight": (3 * H, H), "attention.dense.weight": (H, H),
          "mlp.dense_h_to_4h.weight": (4 * H, H), "mlp.dense_4h_to_h.weight": (H, 4 * H)}


def scale_growth_weights(k: int, seed: int = 0) -> dict:
    """Gaussian weights (sd 0.02) times ``2**k``: the weights only grow in scale.  A power of two
    scales float32 values, their sums of squares and the row RMS exactly, so the ``scaled``
    control gives the baseline's network bit for bit (E_scaled = 0) and the ``gaussian`` control
    gives the baseline's draws times 2**k."""
    rng = np.random.default_rng(seed)
    return {f"gpt_neox.layers.{b}.{name}": (rng.normal(0, 0.02, shp) * 2.0 ** k).astype(np.float32)
            for b in range(LAYERS) for name, shp in SHAPES.items()}


def constant_rms_weights(fraction: float, seed: int = 0) -> dict:
    """Weights ``m / 1024`` (integer ``m``, exact in float32) in pairs along every row: each pair
    is ``(s, 8s)`` or, for a ``fraction`` of the pairs (the same ones first at every step),
    ``(4s, 7s)``, with ``s`` in 7..18 and fixed signs.  ``s^2 + 64 s^2 = 16 s^2 + 49 s^2``: every row
    keeps its sum of squares exactly while the distribution of |w| narrows, so the row RMS is
    the same bits at every step (E_gaussian = 0, the ``scaled`` factor is exactly 1) and every
    weight stays a kept distance (7 <= 1024/m <= 147)."""
    rng = np.random.default_rng(seed)
    out = {}
    for b in range(LAYERS):
        for name, (n_out, n_in) in SHAPES.items():
            s = rng.integers(7, 19, size=(n_out, n_in // 2)).astype(np.float64)
            order = rng.permutation(s.size).reshape(s.shape)  # which pairs switch first
            switched = order < round(fraction * s.size)
            a, c = np.where(switched, 4 * s, s), np.where(switched, 7 * s, 8 * s)
            m = np.stack([a, c], axis=-1).reshape(n_out, n_in)
            sign = np.where(rng.random((n_out, n_in)) < 0.5, -1.0, 1.0)
            out[f"gpt_neox.layers.{b}.{name}"] = (sign * m / 1024).astype(np.float32)
    return out


def write_checkpoints(root, weights_by_step: dict) -> list:
    """``root/step{t}/`` for every ``{t: weights}``; returns the directories in step order."""
    root = Path(root)
    dirs = []
    for t in sorted(weights_by_step):
        d = root / f"step{t}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(config()))
        write_safetensors(d / "model.safetensors", weights_by_step[t])
        dirs.append(d)
    return dirs
