"""The GPU benchmark (`nemodiff bench --kernels-bench`): its CPU smoke mode keeps it in step with the code."""

from __future__ import annotations

import json

import pytest

from engine.evaluation import gpu_bench
from kernels import bench, dispatch


def test_cpu_smoke_run_writes_tables_and_json(tmp_path, capsys, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(dispatch, "_backend", "torch")  # a user's --kernels choice
    out = tmp_path / "bench.json"
    assert gpu_bench.main(["--device", "cpu", "--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        "| attention quadratic | T=12 cache=40 mask |" in printed
        and "| AR step | 1 | 8 | triton |" in printed
    )
    result = json.loads(out.read_text())
    kernels = {r["kernel"] for r in result["kernels"]}
    assert {
        "attention decode",
        "rmsnorm+residual",
        "rope (in place)",
        "swiglu",
        "argmax+confidence",
    } <= kernels
    assert all(r["max_err"] < 1e-4 for r in result["kernels"])  # the bench's own correctness check
    assert {(r["backend"], r["case"]) for r in result["model"]} >= {
        ("triton", "quadratic"),
        ("torch", "AR step"),
    }
    assert dispatch._backend == "torch"  # the model part compared both backends and put the choice back


def test_markdown_table_formats_cells():
    table = bench.markdown_table(["a", "b", "c"], [["x", 1.23456, None], ["y", 2e-6, 12345.0]])
    assert table.splitlines() == [
        "| a | b | c |",
        "|---|---|---|",
        "| x | 1.235 | - |",
        "| y | 2e-06 | 1.23e+04 |",
    ]
