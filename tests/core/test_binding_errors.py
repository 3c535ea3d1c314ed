"""The errors the bindings (cpp/bindings.cpp) raise on bad arguments, each on a case with a known
answer: the exception type and the sentence a caller reads."""
import numpy as np
import pytest

from neuromfa_native import _core


def test_half_stats_without_fit_refuses_the_fit_and_the_counts():
    h = _core.HalfStats("f16", 150.0, False)
    h.add(np.array([0.5, 0.25], np.float16).view(np.uint16), 1)
    assert h.finish()["n"] == 2
    with pytest.raises(ValueError, match=r"^HalfStats was built with fit=False$"):
        h.pooled_fit()
    with pytest.raises(ValueError, match=r"^HalfStats was built with fit=False: it keeps no pooled counts$"):
        h.pooled_counts()


@pytest.mark.parametrize("kind", ["f32", "f64", "F16", ""])
def test_half_stats_takes_only_16_bit_kinds(kind):
    with pytest.raises(ValueError, match=rf"^weight_kind must be 'f16' or 'bf16', got '{kind}'$"):
        _core.HalfStats(kind, 150.0, True)


@pytest.mark.parametrize("threshold", [1.0, 0.5, -3.0, float("nan")])
def test_half_stats_threshold_must_exceed_one(threshold):
    with pytest.raises(ValueError, match=r"^threshold must be > 1$"):
        _core.HalfStats("bf16", threshold, True)


def test_weibull_fit_checks_its_arrays_and_iterations():
    x, c = np.array([1.0, 2.0, 3.0]), np.ones(3)
    with pytest.raises(ValueError, match=r"^x and c must be 1-d float64 arrays of the same length$"):
        _core.weibull_fit(x, np.ones(2))
    with pytest.raises(ValueError, match=r"^x and c must be 1-d float64 arrays of the same length$"):
        _core.weibull_fit(x.reshape(3, 1), c.reshape(3, 1))
    with pytest.raises(ValueError, match=r"^weibull_fit: max_iter must be >= 1$"):
        _core.weibull_fit(x, c, 0)
    assert _core.weibull_fit(x, c, 1)["iterations"] == 1


def test_dense_table_must_have_the_filters_columns():
    _, nb = _core.key_range(150.0, 0)
    with pytest.raises(ValueError, match=rf"^table must have shape \(n_nodes, {nb}\)$"):
        _core.table_histogram(np.zeros((3, nb + 1), np.uint32), 150.0, 0, 1, 1)
    with pytest.raises(ValueError, match=rf"^table must have shape \(n_nodes, {nb}\)$"):
        _core.table_log_partition(np.zeros(nb, np.uint32), 150.0, 0, 1, [0.0, 1.0], 1)


def test_count_nonfinite_takes_a_flat_byte_array():
    with pytest.raises(ValueError, match=r"^data must be a 1-d uint8 array$"):
        _core.count_nonfinite(np.zeros((2, 4), np.uint8), "float32", 1)
