"""The ``scaled`` control's rescaling factor (:func:`~neuromfa_native.science.nulls.baseline_factor`):
its value on a case with a known answer and each refusal's message."""
from __future__ import annotations

import math

import pytest

from neuromfa_native.science.nulls import BASELINE, baseline_factor


def test_factor_is_the_baseline_rms_over_the_rows_rms() -> None:
    assert baseline_factor({"w": 3.0}, "w", 1.5) == 2.0
    assert baseline_factor(BASELINE, "w", 1.5) == 1.0  # the baseline itself


def test_a_string_other_than_baseline_is_refused() -> None:
    with pytest.raises(ValueError, match="^scale_to must be a mapping or 'baseline', got 'base'$"):
        baseline_factor("base", "w", 1.0)


def test_a_tensor_without_a_baseline_rms_is_refused() -> None:
    with pytest.raises(ValueError, match="^scale_to has no baseline RMS of tensor 'v'$"):
        baseline_factor({"w": 1.0}, "v", 1.0)


@pytest.mark.parametrize("rms, baseline", [(0.0, 1.0), (1.0, math.inf), (1.0, math.nan)])
def test_rows_that_cannot_be_rescaled_are_refused(rms: float, baseline: float) -> None:
    with pytest.raises(ValueError, match=f"^tensor 'w': the read rows have RMS {rms}; cannot rescale to the baseline$"):
        baseline_factor({"w": baseline}, "w", rms)
