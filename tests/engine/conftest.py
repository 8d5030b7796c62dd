"""Engine fixtures: the tiny random checkpoint loaded once for the package."""

from __future__ import annotations

import pytest

import engine


@pytest.fixture(scope="session")
def tiny_engine(tiny_checkpoint):
    return engine.load(str(tiny_checkpoint), device="cpu")

