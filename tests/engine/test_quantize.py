"""Weight-only int8 (`dtype="int8"`): the rounding, both matmul paths, and a quantized engine that
stays close to the float one and keeps self-speculation lossless on its own weights."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

import engine
from engine.errors import NemodiffError
from engine.evaluation.lossless import parted_at_tie
from engine.loading import int8_cache
from engine.loading.checkpoint import load_model
from engine.model.quantize import KERNEL_ROWS, Int8Linear, quantize_rows
from tests.engine.util import run


@pytest.fixture(scope="module")
def int8_engine(tiny_checkpoint: Path):
    return engine.load(str(tiny_checkpoint), device="cpu", dtype="int8")


def test_rounding_is_per_output_channel_within_half_a_step():
    w = torch.randn(48, 64) * torch.logspace(-3, 1, 48)[:, None]  # rows of very different scales
    lin = Int8Linear.quantize(w, torch.float32)
    assert lin.qweight.dtype == torch.int8 and lin.qweight.abs().max() == 127
    err = (lin.qweight.float() * lin.scale[:, None] - w).abs()
    assert (err <= lin.scale[:, None] / 2 + 1e-6).all()


def test_rounding_in_chunks_on_worker_threads_is_the_whole_weight_rounding():
    from concurrent.futures import ThreadPoolExecutor

    w = (torch.randn(1000, 64) * torch.logspace(-3, 1, 1000)[:, None]).to(torch.bfloat16)  # several chunks
    amax = w.abs().amax(dim=1).float()
    whole = torch.round(w.float() * (127 / amax)[:, None]).to(torch.int8), amax / 127
    with ThreadPoolExecutor(2) as workers:
        for got in (quantize_rows(w), quantize_rows(w, workers=workers)):
            assert torch.equal(got[0], whole[0]) and torch.equal(got[1], whole[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 72, KERNEL_ROWS + 1])  # the int8 kernel (bf16), and the dequantized path
@pytest.mark.parametrize("width", [64, 40])  # 40: not a multiple the kernel takes, so always dequantized
def test_both_paths_multiply_by_the_dequantized_weight(dtype, rows, width):
    torch.manual_seed(0)
    lin = Int8Linear.quantize(torch.randn(96, width), dtype)
    x = torch.randn(2, rows, width, dtype=dtype)
    want = x.float() @ (lin.qweight.float() * lin.scale.float()[:, None]).T
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    torch.testing.assert_close(lin(x).float(), want, rtol=tol, atol=tol * want.abs().max().item())


def test_no_float_projection_weight_survives(int8_engine):
    for layer in int8_engine.model.encoder.layers:
        attn, mlp = layer.self_attn, layer.mlp
        for part in (
            attn.q_proj,
            attn.k_proj,
            attn.v_proj,
            attn.o_proj,
            mlp.gate_proj,
            mlp.up_proj,
            mlp.down_proj,
        ):
            assert isinstance(part, Int8Linear)
        assert (
            attn.q_proj.qweight.untyped_storage().data_ptr() == attn.qkv.qweight.untyped_storage().data_ptr()
        )
    assert isinstance(int8_engine.model.diffusion_head, Int8Linear)


def test_int8_logits_stay_close_to_the_float_model(tiny_checkpoint, tiny_engine, int8_engine):
    prompt = [1] + list(range(20, 60))
    logits = {}
    for name, eng in (("float", tiny_engine), ("int8", int8_engine)):
        eng.runner.crop(0)
        logits[name] = eng.runner.extend(prompt)
        eng.runner.crop(0)
    f, q = logits["float"], logits["int8"]
    assert (q - f).abs().max() < 0.05 * (f.max() - f.min())
    assert torch.topk(q, 5).indices[0] in torch.topk(f, 5).indices


@pytest.mark.parametrize("speculation", ["linear", "quadratic"])
def test_self_spec_is_lossless_on_the_int8_weights(int8_engine, speculation):
    prompt = "def fib(n):\n"
    _, ar = run(int8_engine, prompt=prompt, mode="ar", max_new_tokens=24)
    _, spec = run(int8_engine, prompt=prompt, mode="self-spec", speculation=speculation, max_new_tokens=24)
    assert parted_at_tie(int8_engine, ar.prompt_token_ids, ar.token_ids, spec.token_ids)  # bf16 activations


def test_int8_refuses_models_it_cannot_serve(llama_checkpoint):
    with pytest.raises(NemodiffError, match="int8 is for NLD checkpoints"):
        load_model(str(llama_checkpoint), dtype="int8")


def _bf16_step(x: torch.Tensor) -> torch.Tensor:
    """The spacing of bf16 numbers at each value of `x` (8 significant bits)."""
    return torch.exp2(torch.floor(torch.log2(x.float().abs().clamp(min=1e-30))) - 7)


def test_a_prompt_computes_the_same_in_one_wide_pass_or_after_a_cached_prefix(int8_engine):
    """Prompt chunks wider than KERNEL_ROWS take the dequantized path, other passes the int8 kernel:
    both sum in fp32 and round once, so a prompt's K/V do not depend on how much of it was cached,
    within two bf16 steps (the kernel blocks a wide pass's rows differently: about one output in
    four thousand differs by two steps, most by none, but for sums that cancel to almost zero).
    Rounding the weight to bf16 first, as the wide path once did, is off by several steps."""
    torch.manual_seed(0)
    for layer in int8_engine.model.encoder.layers:
        for lin in (layer.self_attn.qkv, layer.self_attn.o_proj, layer.mlp.gate_up, layer.mlp.down_proj):
            x = torch.randn(KERNEL_ROWS, lin.in_features, dtype=torch.bfloat16)
            short = lin(x)  # the int8 kernel
            wide = lin(torch.cat([x, x]))[:KERNEL_ROWS]  # the dequantized path, same rows
            near_zero = (
                wide.float().abs().amax(dim=-1, keepdim=True) * 2**-16
            )  # sums that cancel to almost nothing
            assert ((short.float() - wide.float()).abs() <= 2 * _bf16_step(wide) + near_zero).all()
    runner, ids = int8_engine.runner, [1] + [20 + i % 40 for i in range(KERNEL_ROWS + 40)]
    runner.crop(0)
    whole = runner.extend(ids)
    runner.crop(0)
    runner.extend(ids[:-4])
    assert torch.equal(runner.extend(ids[-4:]).argmax(-1), whole.argmax(-1))
    runner.crop(0)


def test_a_kernel_pass_computes_each_row_as_a_one_row_pass_does(int8_engine):
    """Self-speculation's verify pass (B rows) and quadratic pass (B(B+1) rows) must compute what AR's
    one-row steps compute: one kernel at every width the modes use."""
    torch.manual_seed(0)
    lin = int8_engine.model.encoder.layers[0].mlp.gate_up
    x = torch.randn(72, lin.in_features, dtype=torch.bfloat16)
    rows = torch.cat([lin(x[i : i + 1]) for i in range(len(x))])
    assert torch.equal(lin(x), rows)


def _logits(eng, prompt):
    eng.runner.crop(0)
    out = eng.runner.extend(prompt)
    eng.runner.crop(0)
    return out


def test_a_second_int8_load_reads_the_cache_and_a_damaged_cache_is_rebuilt(
    tiny_checkpoint, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("NEMODIFF_CACHE_DIR", str(tmp_path))
    prompt = [1] + list(range(20, 40))
    first = engine.load(str(tiny_checkpoint), device="cpu", dtype="int8")
    int8_cache.wait_for_writes()  # written in the background
    [cache] = (tmp_path / "int8").iterdir()
    cached = engine.load(str(tiny_checkpoint), device="cpu", dtype="int8")
    assert torch.equal(_logits(cached, prompt), _logits(first, prompt))
    del cached  # its weights map the cache file, which is replaced below (as the loader replaces it)
    for damage in (b"not a safetensors file", cache.read_bytes()[: cache.stat().st_size // 2]):
        (tmp_path / "damaged").write_bytes(damage)
        os.replace(tmp_path / "damaged", cache)
        with caplog.at_level("WARNING", logger="engine.loading.int8_cache"):
            rebuilt = engine.load(str(tiny_checkpoint), device="cpu", dtype="int8")
            int8_cache.wait_for_writes()
        assert "quantizing again" in caplog.text
        caplog.clear()
        assert torch.equal(_logits(rebuilt, prompt), _logits(first, prompt))
    assert (
        engine.load(str(tiny_checkpoint), device="cpu", dtype="int8") and not caplog.text
    )  # rebuilt copy reads


def test_an_edited_checkpoint_gets_a_new_cache(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("NEMODIFF_CACHE_DIR", str(tmp_path))
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "ckpt")
    engine.load(str(ckpt), device="cpu", dtype="int8")
    weights = ckpt / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    engine.load(str(ckpt), device="cpu", dtype="int8")
    int8_cache.wait_for_writes()
    assert len(list((tmp_path / "int8").iterdir())) == 2


def test_each_weight_is_read_once_and_quantized_straight_into_its_fused_rows():
    """o_proj feeds both the verifier's weight and the adapter-merged draft copy: one read for both;
    each part of a fused weight lands in its rows with its own per-row rounding."""
    from collections import Counter

    from engine.model.config import preset
    from engine.model.network import LoRA, NLDModel
    from engine.model.quantize import int8_layout, int8_weights

    model = NLDModel(preset("tiny"))
    for layer in model.encoder.layers:
        o = layer.self_attn.o_proj
        layer.self_attn.o_lora = LoRA(o.in_features, o.out_features, 2, 1.0)
    weights = {name: p.detach().to(torch.bfloat16) for name, p in model.named_parameters()}
    reads = Counter()

    def read(name: str) -> torch.Tensor:
        reads[name] += 1
        return weights[name]

    tensors = int8_weights(model, read)
    assert "encoder.layers.1.self_attn.o_draft.qweight" in tensors
    assert [(n, t.dtype, tuple(t.shape)) for n, t in tensors.items()] == int8_layout(model)
    assert set(reads.values()) == {1}, reads
    o_proj = model.encoder.layers[1].self_attn.o_proj.weight
    o_name = "encoder.layers.1.self_attn.o_proj"
    want_q, want_scale = quantize_rows(o_proj.to(torch.bfloat16))
    assert torch.equal(tensors[f"{o_name}.qweight"], want_q)
    assert torch.equal(tensors[f"{o_name}.scale"], want_scale)
    merged = model.encoder.layers[1].self_attn.o_lora.merged(o_proj.to(torch.bfloat16))
    assert torch.equal(tensors["encoder.layers.1.self_attn.o_draft.qweight"], quantize_rows(merged)[0])
    qkv = tensors["encoder.layers.0.self_attn.qkv.qweight"]
    k = weights["encoder.layers.0.self_attn.k_proj.weight"]
    q_rows = weights["encoder.layers.0.self_attn.q_proj.weight"].shape[0]
    assert torch.equal(qkv[q_rows : q_rows + k.shape[0]], quantize_rows(k)[0])


def test_an_interrupted_cache_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    from engine.loading import int8_cache

    def interrupted(path, *_):
        path.write_bytes(b"half a copy")
        raise KeyboardInterrupt

    monkeypatch.setattr(int8_cache, "write_safetensors", interrupted)
    file = tmp_path / "int8" / "key.safetensors"
    with pytest.raises(KeyboardInterrupt):
        int8_cache.write(file, {"w.qweight": torch.zeros(2, 2, dtype=torch.int8)})
    assert list(file.parent.iterdir()) == []


def test_a_dead_process_temporary_file_is_removed_and_a_live_one_kept(tmp_path):
    import subprocess

    from engine.loading import int8_cache

    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = tmp_path / "int8"
    folder.mkdir()
    orphan, live = folder / f".a.safetensors.{dead.pid}.tmp", folder / f".b.safetensors.{os.getpid()}.tmp"
    orphan.write_bytes(b"half"), live.write_bytes(b"half")
    int8_cache.write(folder / "c.safetensors", {"w.qweight": torch.ones(2, 2, dtype=torch.int8)})
    assert not orphan.exists() and live.exists()
    written = int8_cache.read(folder / "c.safetensors")["w.qweight"]
    assert torch.equal(written, torch.ones(2, 2, dtype=torch.int8))


def test_an_unwritable_cache_quantizes_in_memory_with_a_note(tiny_checkpoint, tmp_path, monkeypatch, caplog):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("NEMODIFF_CACHE_DIR", str(tmp_path / "file"))  # a file: no cache folder under it
    with caplog.at_level("WARNING", logger="engine.loading.int8_cache"):
        eng = engine.load(str(tiny_checkpoint), device="cpu", dtype="int8")
        int8_cache.wait_for_writes()
    assert "int8 cache not written" in caplog.text
    assert _logits(eng, [1, 20, 21]).isfinite().all()
