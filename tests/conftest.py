"""Fixtures shared by every test package.

Triton kernels run under the CPU interpreter at tiny shapes (tests/kernels, the GPU benchmark's
smoke run). `TRITON_INTERPRET` is read when a kernel is decorated, so it is set here, before any
test module imports a `kernels.*` Triton module, whichever test directory runs first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["TRITON_INTERPRET"] = "1"

from engine.loading.random_checkpoint import write_random_checkpoint


@pytest.fixture(autouse=True)
def private_settings(tmp_path_factory, monkeypatch):
    """No test reads the developer's own ~/.config/nemodiff/config.toml."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg_config")))


@pytest.fixture(scope="session", autouse=True)
def fp32_on_every_cpu():
    """The default dtype on CPU depends on the CPU (bf16 where it is native): tests get fp32 on every
    machine, so exact comparisons hold; the tests of bf16 ask for it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("engine.loading.checkpoint.cpu_has_bf16", lambda: False)
        yield


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory of a random `tiny` NLD checkpoint (config, bf16 weights, tokenizer); shared, so read-only."""
    return write_random_checkpoint(tmp_path_factory.mktemp("tiny_checkpoint"), "tiny", seed=0)
