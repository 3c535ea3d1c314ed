"""Parquet tables built from Arrow buffers (report/tables.py): the same table as pyarrow's own
conversion, without the pandas import that conversion costs every CLI run."""
from __future__ import annotations

import io
import math
import subprocess
import sys

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="pyarrow is optional (the tables extra); it writes Parquet")
pq = pytest.importorskip("pyarrow.parquet")

ROWS = [dict(step=0, checkpoint="step0", alpha0=1.25, kept=True, notes=None, ratio=np.float64(0.5), n=np.int64(3)),
        dict(step=10, checkpoint="stép10", alpha0=float("nan"), kept=False, notes="", ratio=1, n=4),
        dict(step=None, checkpoint=None, alpha0=math.inf, kept=None, notes="x", ratio=None, n=None)]
COLUMNS = list(ROWS[0])


def test_parquet_from_buffers_equals_pyarrows_conversion() -> None:
    from neuromfa_native.report.tables import _parquet_bytes

    ours = pq.read_table(io.BytesIO(_parquet_bytes(ROWS, COLUMNS)))
    theirs = pa.table({c: [r.get(c) for r in ROWS] for c in COLUMNS})
    assert ours.schema == theirs.schema
    for c in COLUMNS:
        a, b = ours.column(c).to_pylist(), theirs.column(c).to_pylist()
        assert [("nan" if isinstance(x, float) and math.isnan(x) else x) for x in a] == \
               [("nan" if isinstance(x, float) and math.isnan(x) else x) for x in b], c


@pytest.mark.slow
def test_writing_parquet_imports_no_pandas() -> None:
    code = ("import sys; from neuromfa_native.report.tables import _parquet_bytes; "
            "_parquet_bytes([{'a': 1.5, 'b': 's', 'c': True, 'd': None, 'e': 2}], ['a', 'b', 'c', 'd', 'e']); "
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
