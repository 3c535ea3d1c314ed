"""Contract tests of the private C++ module: types, shapes, errors, no silent conversion."""
import ast

import numpy as np
import pytest

from neuromfa_native import _core
from paths import ROOT

STUB = ROOT / "python" / "neuromfa_native" / "_core.pyi"


def test_stub_names_match_module():
    tree = ast.parse(STUB.read_text())
    stub = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    module = {n for n in dir(_core) if not n.startswith("_") and callable(getattr(_core, n))}
    assert stub == module
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):  # and each class's methods
        methods = {m.name for m in cls.body if isinstance(m, ast.FunctionDef) and not m.name.startswith("_")}
        real = getattr(_core, cls.name)
        assert methods == {a for a in dir(real) if not a.startswith("_") and callable(getattr(real, a))}, cls.name


def test_openmp_flags():
    assert isinstance(_core.openmp_enabled(), bool)
    assert _core.max_threads() >= 1


def test_onehop_boxes_layout():
    src = np.array([5, 5, 5, 2, 2, 9], np.int64)
    w = np.array([0.5, 0.5, 0.2, 0.1, 2.0, 0.3])
    h = _core.onehop_boxes(src, w, "f64", 150.0, 0, 1, 1)
    np.testing.assert_array_equal(h["centre"], [2, 5, 9])
    np.testing.assert_array_equal(h["indptr"], [0, 1, 3, 4])
    np.testing.assert_array_equal(h["key"], [10, 2, 5, 3])
    np.testing.assert_array_equal(h["count"], [1, 2, 1, 1])
    assert h["n_sources"] == 3 and h["n_distances"] == 5


def test_refuses_silent_conversion():
    src = np.zeros(3, np.int64)
    with pytest.raises(TypeError, match="float32"):
        _core.onehop_boxes(src, np.zeros(3, np.float64), "f32", 150.0, 0, 1, 1)
    with pytest.raises(ValueError, match="weight_kind"):
        _core.onehop_boxes(src, np.zeros(3, np.float64), "f8", 150.0, 0, 1, 1)
    with pytest.raises(ValueError, match="same length"):
        _core.onehop_boxes(src, np.zeros(4), "f64", 150.0, 0, 1, 1)


def test_core_errors_are_value_errors():
    src = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="edge 1 is NaN"):
        _core.onehop_boxes(src, np.array([0.1, np.nan, np.nan]), "f64", 150.0, 0, 1, 2)
    with pytest.raises(ValueError, match="threshold"):
        _core.onehop_boxes(src, np.zeros(3), "f64", 0.5, 0, 1, 1)
    with pytest.raises(ValueError, match="ascending"):
        _core.log_partition(np.array([0, 2]), np.array([3, 3]), np.array([1, 1]), 0, [0.0, 1.0], 1)
    with pytest.raises(ValueError, match="counts"):
        _core.log_partition(np.array([0, 1]), np.array([3]), np.array([0]), 0, [0.0, 1.0], 1)
    with pytest.raises(ValueError, match="empty"):
        _core.log_partition(np.array([0]), np.zeros(0, np.int64), np.zeros(0, np.int64), 0, [0.0, 1.0], 1)
    with pytest.raises(ValueError, match="indptr"):
        _core.log_partition(np.array([0, 5]), np.array([3]), np.array([1]), 0, [0.0, 1.0], 1)


@pytest.mark.parametrize("fn", ["log_partition", "node_fractal_dimension"])
def test_histogram_arrays_are_checked_alike(fn):
    # both bindings take a CSR histogram through one shape check: a count of shape (3, 0) has
    # shape[0] == len(key) but no values, and was once read past its end by node_fractal_dimension
    call = {"log_partition": lambda i, k, c: _core.log_partition(i, k, c, 0, [0.0, 1.0], 1),
            "node_fractal_dimension": lambda i, k, c: _core.node_fractal_dimension(i, k, c, 1)}[fn]
    indptr, key = np.array([0, 3]), np.array([1, 2, 3])
    with pytest.raises(ValueError, match="key and count must be 1-d arrays of the same length"):
        call(indptr, key, np.zeros((3, 0), np.int64))
    with pytest.raises(ValueError, match="key and count must be 1-d arrays of the same length"):
        call(indptr, key.reshape(3, 1), np.ones(3, np.int64))
    with pytest.raises(ValueError, match=r"indptr\[-1\] must equal len\(key\)"):
        call(np.array([0, 2]), key, np.ones(3, np.int64))
    with pytest.raises(ValueError, match="indptr must be a 1-d array of length >= 1"):
        call(np.zeros(0, np.int64), key, np.ones(3, np.int64))
    call(indptr, key, np.ones(3, np.int64))


def test_float16_table_matches_numpy_widening():
    bits = np.arange(65536, dtype=np.uint16)
    w16 = bits.view(np.float16)
    finite = np.isfinite(w16)
    src = np.arange(int(finite.sum()), dtype=np.int64)
    h = _core.onehop_boxes(src, np.ascontiguousarray(bits[finite]), "f16", 150.0, 0, 1, 2)
    with np.errstate(divide="ignore"):  # the two zeros give distance inf, which the filter drops
        d = 1.0 / np.abs(w16[finite].astype(np.float64))
    keep = (d > 1) & (d <= 150)
    np.testing.assert_array_equal(h["centre"], np.flatnonzero(keep))
    np.testing.assert_array_equal(h["key"], np.round(d[keep]).astype(np.int64))


def test_log_partition_shapes():
    p = _core.log_partition(np.array([0, 2, 3]), np.array([1, 4, 4]), np.array([2, 1, 3]), 0, [-1.0, 0.0, 2.0], 1)
    assert p["log_z"].shape == (3, 2)
    np.testing.assert_array_equal(p["radius"], [1.0, 4.0])
    assert p["n_centres"] == 2 and p["max_mass"] == 4
    np.testing.assert_allclose(p["log_z"][1], np.log(2.0))


@pytest.mark.parametrize("dtype,kind", [(np.float16, "f16"), (np.float32, "f32"), (np.float64, "f64")])
@pytest.mark.slow
def test_accumulate_matrix_matches_onehop_and_names_first_nan(dtype, kind):
    rng = np.random.default_rng(0)
    n_out, n_in = 70000, 130  # more rows than a 16-bit counter holds, columns over two chunks
    w = rng.normal(0, 0.03, (n_out, n_in)).astype(dtype)
    w[:, 5] = 0.01  # one column where every weight has the same key: counts beyond 65535
    _, nb = _core.key_range(150.0, 0)
    table = np.zeros((n_in + 3, nb), np.uint32)
    bits = w.view(np.uint16) if kind == "f16" else w
    assert _core.accumulate_matrix(table, bits, kind, 3, 150.0, 0, 2) == -1
    src = np.tile(np.arange(n_in, dtype=np.int64) + 3, n_out)
    flat = np.ascontiguousarray(bits.reshape(-1))
    h = _core.onehop_boxes(src, flat, kind, 150.0, 0, 1, 2)
    t = _core.table_histogram(table, 150.0, 0, 1, 2)
    for name in ("centre", "indptr", "key", "count"):
        np.testing.assert_array_equal(t[name], h[name])
    w[40000, 77] = np.nan
    w[50000, 3] = np.inf
    bits = w.view(np.uint16) if kind == "f16" else w
    assert _core.accumulate_matrix(table, bits, kind, 3, 150.0, 0, 2) == 40000 * n_in + 77


def test_arrays_are_never_silently_converted():
    _, nb = _core.key_range(150.0, 0)
    table_f = np.zeros((4, nb), np.uint32, order="F")  # a converted copy would swallow the counts
    w = np.full((2, 4), 0.1, np.float64)
    with pytest.raises(TypeError, match="C-contiguous uint32"):
        _core.accumulate_matrix(table_f, w, "f64", 0, 150.0, 0, 1)
    with pytest.raises(TypeError):
        _core.onehop_boxes(np.zeros(3, np.int32), np.zeros(3), "f64", 150.0, 0, 1, 1)


@pytest.mark.parametrize("row_offset", [-1, 3, 2**62, 2**63 - 2])
def test_accumulate_matrix_refuses_columns_outside_the_table(row_offset):
    # rows 0..4 hold the 3 columns only from offset 0 to 2; a huge offset once overflowed the
    # end (offset + n_in) to a negative number that passed the check and wrote far outside
    _, nb = _core.key_range(150.0, 0)
    table = np.zeros((5, nb), np.uint32)
    w = np.full((2, 3), 0.5, np.float32)
    with pytest.raises(IndexError, match="fall outside the table of 5 nodes"):
        _core.accumulate_matrix(table, w, "f32", row_offset, 150.0, 0, 1)
    assert not table.any()
    assert _core.accumulate_matrix(table, w, "f32", 2, 150.0, 0, 1) == -1
    assert table[2:].sum() == 6 and not table[:2].any()


def test_accumulate_matrix_bins_follow_each_calls_kind_and_filter():
    # the bins of 16-bit patterns are kept per thread between calls: a change of kind, threshold
    # or lower bound alone (same number of keys) must still bin by the call's own filter
    rng = np.random.default_rng(3)
    w = np.abs(rng.normal(0, 0.02, (50, 7))).astype(np.float32)
    w[0, :] = 1 / 149.8  # distances in (149.6, 150]: kept by T = 150, filtered by T = 149.6
    bits = {"f16": w.astype(np.float16).view(np.uint16),
            "bf16": (w.view(np.uint32) >> 16).astype(np.uint16)}  # truncated: exact bfloat16 values
    values = {"f16": bits["f16"].view(np.float16).astype(np.float64),
              "bf16": (bits["bf16"].astype(np.uint32) << 16).view(np.float32).astype(np.float64)}
    for kind, t, low in [("f16", 150.0, 1.0), ("f16", 149.6, 1.0), ("bf16", 149.6, 1.0), ("f16", 150.0, 1.0),
                         ("bf16", 150.0, 0.6), ("f16", 150.0, 1.0)]:
        kmin, nb = _core.key_range(t, 0, low)
        table = np.zeros((7, nb), np.uint32)
        assert _core.accumulate_matrix(table, bits[kind], kind, 0, t, 0, 1, low) == -1
        d = 1.0 / values[kind]
        expect = np.zeros_like(table)
        for j, i in zip(*np.nonzero((d > low) & (d <= t))):
            expect[i, int(np.rint(d[j, i])) - kmin] += 1
        np.testing.assert_array_equal(table, expect, err_msg=f"{kind} T={t} lower={low}")


def test_default_threads_follow_omp_num_threads():
    import os
    import subprocess
    import sys
    code = "import neuromfa_native._core as c; print(c.max_threads())"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "1"
