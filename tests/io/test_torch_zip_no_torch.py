"""The torch-free ``.bin`` path with no torch anywhere: checkpoints in torch's zip format written
by hand (zipfile + pickle opcodes), so these run on the CI legs without torch.

test_torch_zip.py compares the reader with ``torch.load`` and needs torch; here the benign file is
checked against the values it was written from (and, where torch is installed, against
``torch.load`` of the same file, which shows the hand-written format is torch's), and pickles
that would run code are refused before anything runs.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from neuromfa_native.io.sources import resolve_source
from neuromfa_native.io.torch_zip import open_torch_zip
from pickle_ops import glob as _glob, state_dict as _state_dict, tensor as _tensor, text as _str, tup as _tuple
from pickle_ops import write_bin as _write_bin


def test_hand_written_bin_reads_its_values(tmp_path) -> None:
    w = np.arange(12, dtype=np.float16).reshape(3, 4) / 8
    v = np.linspace(-1, 1, 5).astype(np.float32)
    pkl = _state_dict({"w": _tensor("0", "HalfStorage", 12, (3, 4), (4, 1)),
                       "wt": _tensor("0", "HalfStorage", 12, (4, 3), (1, 4)),  # a transposed view
                       "v": _tensor("1", "FloatStorage", 5, (5,), (1,))})
    p = _write_bin(tmp_path / "pytorch_model.bin", pkl, {"0": w.tobytes(), "1": v.tobytes()})
    src = resolve_source(p)
    np.testing.assert_array_equal(src.get("w"), w)
    np.testing.assert_array_equal(src.get("wt"), w.T)
    np.testing.assert_array_equal(src.get("v"), v)
    np.testing.assert_array_equal(src.get_slice("w", np.array([2, 0])), w[[2, 0]])
    assert open_torch_zip(p).info("wt").strides == (1, 4)
    try:  # where torch is installed, it reads the same file the same way
        import torch
    except ImportError:
        return
    sd = torch.load(p, weights_only=True)
    for name in ("w", "wt", "v"):
        np.testing.assert_array_equal(sd[name].numpy(), src.get(name))


@pytest.mark.parametrize(("payload", "want"), [
    ("os.system", "posix.system"),
    ("builtins.eval", "builtins.eval"),
    ("subprocess.Popen", "subprocess.Popen"),
])
@pytest.mark.slow
def test_code_is_refused_before_it_runs_without_torch(tmp_path, payload, want) -> None:
    marker = tmp_path / "PWNED"
    module, name = want.rsplit(".", 1)
    if payload == "builtins.eval":
        call = _tuple(_str(f"open({str(marker)!r}, 'w')"))
    elif payload == "subprocess.Popen":
        call = _tuple(_tuple(_str("touch"), _str(str(marker))))
    else:
        call = _tuple(_str(f"touch {marker}"))
    evil = _glob(module, name) + call + pickle.REDUCE
    pkl = _state_dict({"w": _tensor("0", "HalfStorage", 4, (2, 2), (2, 1)), "x": evil})
    p = _write_bin(tmp_path / "pytorch_model.bin", pkl, {"0": np.ones(4, np.float16).tobytes()})
    with pytest.raises(ValueError, match=rf"refused, as torch.load\(weights_only=True\) would: "
                                         rf"refused global '{want}'"):
        resolve_source(p)
    assert not marker.exists(), "reading the checkpoint executed code from its pickle"
    # the same in a process where torch cannot be imported at all (on the CI legs without torch
    # it is not installed; here it is also made unimportable where it is)
    code = ("import sys; sys.modules['torch'] = None\n"
            "from neuromfa_native.io.sources import resolve_source\n"
            f"try:\n    resolve_source({str(p)!r})\nexcept ValueError as e:\n    print('REFUSED', e)\n")
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "REFUSED" in out.stdout and f"refused global '{want}'" in out.stdout
    assert not marker.exists(), "reading the checkpoint executed code from its pickle"


def test_unknown_persistent_id_and_storage_type_are_refused(tmp_path) -> None:
    bad_type = _state_dict({"w": _tensor("0", "UntypedStorage", 4, (2, 2), (2, 1))})
    p = _write_bin(tmp_path / "a.bin", bad_type, {"0": bytes(8)})
    with pytest.raises(ValueError, match=r"refused global 'torch.UntypedStorage'"):
        resolve_source(p)
    odd_pid = _state_dict({"w": _tuple(_str("module"), _str("x")) + pickle.BINPERSID})
    q = _write_bin(tmp_path / "b.bin", odd_pid, {})
    with pytest.raises(ValueError, match=r"refused persistent id \('module', 'x'\)"):
        resolve_source(q)
