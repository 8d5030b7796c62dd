"""`nemodiff serve`: its arguments, and that it hands uvicorn an app for the loaded model."""

from __future__ import annotations

import argparse
import sys

import pytest
from fastapi.testclient import TestClient

from kernels.dispatch import triton_installed
from nemodiff_tui.cli import main, serve


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    serve.register(p.add_subparsers(dest="command"))
    return p.parse_args(["serve", *argv])


def test_defaults_are_loopback_and_llama_cpps_port():
    args = parse()
    assert (args.host, args.port, args.mode, args.api_key, args.max_queue) == (
        "127.0.0.1",
        8012,
        None,
        None,
        8,
    )


def test_the_settings_file_gives_the_default_mode(monkeypatch, tiny_checkpoint, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "nemodiff").mkdir()
    (tmp_path / "nemodiff" / "config.toml").write_text('mode = "diffusion"\n')
    served = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: served.update(app=app, **kw))
    assert serve.run(parse("--model", str(tiny_checkpoint), "--device", "cpu")) == 0
    assert served["app"].state.mode == "diffusion"


def test_run_serves_the_model(monkeypatch, tiny_checkpoint, capsys):
    served = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: served.update(app=app, **kw))
    args = parse(
        "--model",
        str(tiny_checkpoint),
        "--device",
        "cpu",
        "--mode",
        "ar",
        "--api-key",
        "k",
        "--host",
        "0.0.0.0",
        "--port",
        "9999",
    )
    assert serve.run(args) == 0
    assert (served["host"], served["port"]) == ("0.0.0.0", 9999)
    assert "warning" not in capsys.readouterr().err  # exposed, but with a key
    with TestClient(served["app"]) as client:
        assert client.get("/health").json()["model"] == str(tiny_checkpoint)
        assert client.get("/v1/models").status_code == 401
        r = client.post(
            "/v1/completions", json={"prompt": "x", "max_tokens": 2}, headers={"Authorization": "Bearer k"}
        )
        assert r.status_code == 200


def test_exposed_without_a_key_warns(monkeypatch, tiny_checkpoint, capsys):
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: None)
    serve.run(parse("--model", str(tiny_checkpoint), "--device", "cpu", "--host", "0.0.0.0"))
    assert "without --api-key" in capsys.readouterr().err
    assert not serve.exposed("127.0.0.1") and not serve.exposed("::1") and not serve.exposed("localhost")


def test_bad_max_queue_is_an_error(tiny_checkpoint):
    with pytest.raises(ValueError, match="--max-queue"):
        serve.run(parse("--model", str(tiny_checkpoint), "--max-queue", "0"))


def test_serve_help_has_its_own_usage_line(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert capsys.readouterr().out.startswith("usage: nemodiff serve [-h] [--host HOST]")


def test_triton_kernels_without_triton_are_one_line_and_exit_2(monkeypatch, tiny_checkpoint, capsys):
    monkeypatch.setitem(sys.modules, "triton", None)  # as if Triton were not installed
    monkeypatch.setenv("NEMODIFF_KERNELS", "triton")
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: pytest.fail("served without Triton"))
    triton_installed.cache_clear()
    try:
        assert main(["serve", "--model", str(tiny_checkpoint), "--device", "cpu"]) == 2
    finally:
        triton_installed.cache_clear()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NEMODIFF_KERNELS=triton, but Triton is not installed" in err
