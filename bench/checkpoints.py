"""Random fp16 (or bf16) GPT-NeoX checkpoints of Pythia shapes, written tensor by tensor (low memory).

    python bench/checkpoints.py 160m            # -> $NEUROMFA_BENCH_DIR/pythia-160m-shaped/
    python bench/checkpoints.py 160m --bf16     # -> $NEUROMFA_BENCH_DIR/pythia-160m-shaped-bf16/

Weights are N(0, 0.02) float16 (the Pythia initialiser scale), or the same float32 draws
rounded to nearest-even bfloat16, seeded per tensor, so a rerun writes the same bytes.  Only
what the NIN uses plus the embeddings (for a realistic file size) is written; LayerNorms and
biases are omitted.
"""
import json
import os
import struct
import sys

import numpy as np

# name: (blocks, hidden) of the Pythia suite; vocabulary 50304, intermediate 4*hidden
SHAPES = {"14m": (6, 128), "70m": (6, 512), "160m": (12, 768), "410m": (24, 1024), "1b": (16, 2048),
          "1.4b": (24, 2048), "2.8b": (32, 2560)}
VOCAB = 50304
ROOT = os.environ.get("NEUROMFA_BENCH_DIR", "/tmp/neuromfa-bench")


def tensor_specs(blocks, h):
    specs = [("gpt_neox.embed_in.weight", (VOCAB, h))]
    for b in range(blocks):
        p = f"gpt_neox.layers.{b}."
        specs += [(p + "attention.query_key_value.weight", (3 * h, h)), (p + "attention.dense.weight", (h, h)),
                  (p + "mlp.dense_h_to_4h.weight", (4 * h, h)), (p + "mlp.dense_4h_to_h.weight", (h, 4 * h))]
    specs.append(("embed_out.weight", (VOCAB, h)))
    return specs


def _to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounded to nearest even (finite inputs)."""
    u = x.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def make(shape: str, dtype: str = "float16") -> str:
    if dtype not in ("float16", "bfloat16"):
        raise ValueError(f"dtype must be float16 or bfloat16, got {dtype!r}")
    blocks, h = SHAPES[shape]
    bf16 = dtype == "bfloat16"
    folder = os.path.join(ROOT, f"pythia-{shape}-shaped" + ("-bf16" if bf16 else ""))
    path = os.path.join(folder, "model.safetensors")
    if os.path.exists(path):
        return folder
    os.makedirs(folder, exist_ok=True)
    specs = tensor_specs(blocks, h)
    header, off = {}, 0
    for name, shp in specs:
        n = int(np.prod(shp)) * 2
        header[name] = {"dtype": "BF16" if bf16 else "F16", "shape": list(shp), "data_offsets": [off, off + n]}
        off += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for i, (_name, shp) in enumerate(specs):
            rng = np.random.default_rng(i)
            rows_per_chunk = max(1, (1 << 24) // shp[1])
            for r0 in range(0, shp[0], rows_per_chunk):
                r = min(rows_per_chunk, shp[0] - r0)
                x = rng.standard_normal((r, shp[1]), dtype=np.float32) * 0.02
                fh.write((_to_bf16_bits(x) if bf16 else x.astype(np.float16)).tobytes())
    os.replace(tmp, path)
    config = dict(architectures=["GPTNeoXForCausalLM"], model_type="gpt_neox", hidden_size=h,
                  num_hidden_layers=blocks, num_attention_heads=max(1, h // 64), intermediate_size=4 * h,
                  vocab_size=VOCAB, torch_dtype=dtype, use_parallel_residual=True)
    with open(os.path.join(folder, "config.json"), "w") as fh:
        json.dump(config, fh, indent=1)
    return folder


if __name__ == "__main__":
    args = sys.argv[1:]
    dtype = "bfloat16" if "--bf16" in args else "float16"
    for s in [a for a in args if a != "--bf16"] or ["160m"]:
        print(make(s, dtype))
