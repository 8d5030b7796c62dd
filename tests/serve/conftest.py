"""Serving fixtures: real uvicorn servers on free loopback ports, in background threads."""

from __future__ import annotations

import pytest

import engine


@pytest.fixture(scope="session")
def serve_engine(tiny_checkpoint):
    """The engine behind every test server (they take turns through its lock)."""
    return engine.load(str(tiny_checkpoint), device="cpu")


@pytest.fixture(scope="module")
def server(serve_engine):
    """URL of a server in AR mode, open (no API key)."""
    from engine.serve.app import create_app
    from tests.serve.util import serving

    with serving(create_app(serve_engine, mode="ar")) as url:
        yield url
