"""run.json's ``created`` is the first run's time: kept by a resumed run and by every ``begin``
of one store (the monitor calls it once per new checkpoint), without reading run.json back."""
from __future__ import annotations

import json

from neuromfa_native.run.checkpoints import Checkpoint
from neuromfa_native.run.store import RunStore

CFG = dict(per_layer=4, box="edge", threshold=150.0, q=[-1.0, 0.0, 1.0])
AGG = dict(samples=[0], filter="none", baseline="step0", n_bootstrap=10, ci=0.9, seed=0)


def _created(out) -> float:
    return json.loads((out / "run.json").read_text())["created"]


def test_created_is_kept_across_begins_and_resumes(tmp_path):
    out = tmp_path / "r"
    cps = [Checkpoint(source="a/step0", revision=None, label="step0", step=0)]
    with RunStore(out, CFG) as st:
        first = _created(out)
        st.begin(cps, ["f0"], AGG)
        assert _created(out) == first
        st.begin(cps + [Checkpoint(source="a/step9", revision=None, label="step9", step=9)], ["f0", "f1"], AGG)
        assert _created(out) == first
    info = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps(dict(info, created=1.0)))  # a run started long ago
    with RunStore(out, CFG) as st:  # the same configuration: a resumed run
        st.begin(cps, ["f0"], AGG)
        st.begin(cps + [Checkpoint(source="a/step9", revision=None, label="step9", step=9)], ["f0", "f1"], AGG)
        assert _created(out) == 1.0
    with RunStore(out, dict(CFG, per_layer=8), overwrite=True) as st:  # another configuration: a new run
        now = _created(out)
        st.begin(cps, ["f0"], AGG)
        assert _created(out) == now >= first
