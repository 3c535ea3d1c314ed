"""The bundled example ``examples/pythia-tiny`` is complete and consistent.

Its ``series.json``, its ``stepN/`` directories and its ``evals/stepN.json`` score files must
agree: the checkpoints of the plan of ``scripts/train_example.py`` (``CHECKPOINT_STEPS``), in
order, every one a float16 Hugging Face directory of the size recorded, every one scored. A
checkpoint added to (or dropped from) one of them but not the others fails here. Reads only JSON
and the safetensors headers (no torch).
"""
from __future__ import annotations

import json
import struct
import sys

import pytest
from paths import ROOT

ROOT = ROOT
EXAMPLE = ROOT / "examples" / "pythia-tiny"

pytestmark = pytest.mark.skipif(not (EXAMPLE / "series.json").is_file(),
                                reason="the bundled example examples/pythia-tiny is not there")


@pytest.fixture(scope="module")
def series() -> dict:
    return json.loads((EXAMPLE / "series.json").read_text())


def _plan() -> list[int]:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import train_example
    finally:
        sys.path.pop(0)
    return list(train_example.CHECKPOINT_STEPS)


def test_series_lists_every_checkpoint_of_the_plan_in_order(series):
    steps = [c["step"] for c in series["checkpoints"]]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == series["training"]["total_steps"]
    assert steps == _plan()
    dirs = sorted(p.name for p in EXAMPLE.glob("step*") if p.is_dir())
    assert dirs == sorted(c["path"] for c in series["checkpoints"])
    assert [c["path"] for c in series["checkpoints"]] == [f"step{s}" for s in steps]


def test_every_checkpoint_is_float16_and_of_the_recorded_size(series):
    for c in series["checkpoints"]:
        d = EXAMPLE / c["path"]
        assert sorted(p.name for p in d.iterdir()) == ["config.json", "generation_config.json", "model.safetensors"]
        assert sum(p.stat().st_size for p in d.iterdir()) == c["bytes"], c["path"]
        raw = (d / "model.safetensors").read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8: 8 + n])
        dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
        assert dtypes == {"F16"}, (c["path"], dtypes)
        assert json.loads((d / "config.json").read_text())["architectures"] == ["GPTNeoXForCausalLM"]


def test_every_checkpoint_has_a_score_file(series):
    files = sorted(p.name for p in (EXAMPLE / "evals").glob("*.json"))
    assert files == sorted(f"step{c['step']}.json" for c in series["checkpoints"])
    for c in series["checkpoints"]:
        doc = json.loads((EXAMPLE / "evals" / f"step{c['step']}.json").read_text())
        r = doc["results"]["heldout_next_byte"]
        assert 0 <= r["acc,none"] <= 1 and r["loss,none"] > 0
        assert doc["config"]["model_args"].startswith(f"pretrained=examples/pythia-tiny/{c['path']},")
