"""Where the tests find things, whatever folder a test lives in: the repository root, the
tests' own folder (support modules, kill_driver.py) and the fixtures in tests/data."""
from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DATA = TESTS / "data"
