"""The 'read X of Y' line neuromfa analyze prints from run.json's ``reading``: its units on
known counts, and nothing (not a failed command) for a hostile shape."""
from __future__ import annotations

import json

import pytest

from neuromfa_native.cli.analyze import _reading_line


def _line(tmp_path, reading) -> str:
    (tmp_path / "run.json").write_text(json.dumps({"reading": reading}))
    return _reading_line(tmp_path)


@pytest.mark.parametrize("got, size, line", [
    (31_000_000, 2_900_000_000, "read 31 MB of 2.9 GB"),
    (512, 1500, "read 512 B of 2 kB"),
    (9_500_000, 12_000_000_000_000, "read 9.5 MB of 12 TB"),
    (0, 5_000_000_000_000_000, "read 0 B of 5000 TB"),
])
def test_known_counts(tmp_path, got, size, line) -> None:
    assert _line(tmp_path, {"n_known": 2, "bytes_read": got, "size": size}) == line


@pytest.mark.parametrize("reading", [
    {"n_known": 1},
    {"n_known": 1, "bytes_read": "x", "size": 1},
    {"n_known": 1, "bytes_read": 1, "size": None},
    {"n_known": 1, "bytes_read": 10 ** 400, "size": 1},
    {"n_known": 1, "bytes_read": -5, "size": 1},
    {"n_known": 1, "bytes_read": True, "size": 1},
    {"n_known": 0, "bytes_read": 1, "size": 1},
])
def test_hostile_or_unknown_reading_prints_nothing(tmp_path, reading) -> None:
    assert _line(tmp_path, reading) == ""
