"""Shared fixtures of the whole suite, and where the support modules are.

The support modules (model_factory, tiny_series, range_server, reference_impl, ...) live in
tests/ beside this file; tests in the subfolders (one per subpackage of the library) import
them by name, as this folder is put on ``sys.path`` here.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from model_factory import write_bin_model, write_model  # noqa: E402  (a support module of this folder)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Factory fixture: ``tiny_model(arch, dtype="float32", fmt="safetensors") -> folder``."""
    cache: dict[tuple[str, str, str], Path] = {}

    def get(arch: str, dtype: str = "float32", fmt: str = "safetensors") -> Path:
        key = (arch, dtype, fmt)
        if key not in cache:
            folder = tmp_path_factory.mktemp(f"{arch}_{dtype}_{fmt}")
            if fmt == "safetensors":
                write_model(arch, folder, dtype=dtype)
            elif fmt == "bin":
                pytest.importorskip("torch", reason="pytorch_model.bin is written and read with torch")
                write_bin_model(arch, folder, dtype=dtype)
            else:
                raise ValueError(f"fmt must be 'safetensors' or 'bin', got {fmt!r}")
            cache[key] = folder
        return cache[key]

    return get


def _reset_hub_sessions() -> None:
    """huggingface_hub < 1.0 mounts its offline adapter on a cached requests session when the
    session is made; drop the cached session so the next request sees the current mode."""
    http = sys.modules.get("huggingface_hub.utils._http")
    reset = getattr(http, "reset_sessions", None)
    if callable(reset):
        reset()


@pytest.fixture
def hub_mode(monkeypatch: pytest.MonkeyPatch):
    """``hub_mode(offline)``: this process's hub mode for one test, in the environment *and* in
    huggingface_hub, which reads ``HF_HUB_OFFLINE`` once, when it is first imported (by whichever
    test comes first). Without this a test's mode would depend on the tests run before it."""
    hc = pytest.importorskip("huggingface_hub.constants", reason="huggingface_hub is optional; it resolves hub ids")

    def set_mode(offline: bool) -> None:
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        if offline:
            monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        else:
            monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(hc, "HF_HUB_OFFLINE", offline)
        _reset_hub_sessions()

    yield set_mode
    monkeypatch.undo()
    _reset_hub_sessions()
