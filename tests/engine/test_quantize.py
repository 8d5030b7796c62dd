"""int8 (`dtype="int8"`): the rounding, the matmul paths (W8A8 with our kernel, or fbgemm at 8- and
7-bit activations, weight-only without), rows computed alike at every width, and a quantized engine that
stays close to the float one and keeps self-speculation lossless on its own weights."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import engine
from engine.errors import NemodiffError
from engine.evaluation.lossless import parted_at_tie
from engine.loading import int8_cache
from engine.loading.checkpoint import load_model
from engine.model import quantize
from engine.model.quantize import KERNEL_ROWS, Int8Linear, activation_levels, quantize_rows
from tests.engine.util import run

FBGEMM = activation_levels() is not None
OWN = quantize.w8a8_gemm(activation_levels(), []) is not None  # kernels/int8_gemm_cpu.py runs here
# The matmul paths and the steps either side of zero their activations are rounded to.
LEVELS = {"own": 127, "fbgemm 8-bit": 127, "fbgemm 7-bit": 63, "weight-only": None}
PATHS = [
    pytest.param("own", marks=pytest.mark.skipif(not OWN, reason="no AVX512-VNNI or C compiler")),
    *(
        pytest.param(p, marks=pytest.mark.skipif(not FBGEMM, reason="no fbgemm"))
        for p in LEVELS
        if "fbgemm" in p
    ),
    "weight-only",
]


@pytest.fixture(scope="module")
def int8_engine(tiny_checkpoint: Path):
    """Weight-only: the tiny model is under W8A8_MIN_BYTES, which holds where fbgemm serves."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quantize, "own_gemm", lambda: None)
        return engine.load(str(tiny_checkpoint), device="cpu", dtype="int8")


@pytest.fixture(scope="module")
def w8a8_engine(tiny_checkpoint: Path):
    """W8A8 on our kernel where it runs (the tiny model's shapes fit it), else on fbgemm."""
    if not FBGEMM:
        pytest.skip("no fbgemm")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quantize, "W8A8_MIN_BYTES", 0)
        return engine.load(str(tiny_checkpoint), device="cpu", dtype="int8")


@pytest.fixture(scope="module")
def fbgemm_engine(tiny_checkpoint: Path):
    if not FBGEMM or not OWN:  # without our kernel, w8a8_engine is this one
        pytest.skip("no fbgemm, or w8a8_engine runs on it")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quantize, "W8A8_MIN_BYTES", 0)
        patch.setattr(quantize, "own_gemm", lambda: None)
        return engine.load(str(tiny_checkpoint), device="cpu", dtype="int8")


@pytest.fixture(params=["weight-only", "w8a8", "fbgemm"])
def any_int8_engine(request):
    return request.getfixturevalue(
        {"weight-only": "int8_engine"}.get(request.param, request.param + "_engine")
    )


def _linear(monkeypatch, path: str, out: int, width: int, dtype: torch.dtype) -> Int8Linear:
    """A random `Int8Linear` on `path` (fbgemm's packed in parts: the engine's small weights are in one)."""
    monkeypatch.setattr(quantize, "activation_levels", lambda: LEVELS[path])
    monkeypatch.setattr(quantize, "PACK_ROWS", 64)
    if path != "own":
        monkeypatch.setattr(quantize, "own_gemm", lambda: None)
    return Int8Linear.quantize(torch.randn(out, width), dtype)


@pytest.mark.parametrize("path", PATHS)
def test_rounding_is_per_output_channel_within_half_a_step(monkeypatch, path):
    w = torch.randn(64, 64) * torch.logspace(-3, 1, 64)[:, None]  # rows of very different scales
    q, scale = quantize_rows(w)
    assert q.dtype == torch.int8 and q.abs().max() == 127
    assert ((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-6).all()
    monkeypatch.setattr(quantize, "PACK_ROWS", 32)
    lin = Int8Linear(q, scale, torch.float32, LEVELS[path], quantize.own_gemm() if path == "own" else None)
    assert torch.equal(lin.int8_weight(), q)  # packing or interleaving keeps the int8 values as they are
    assert torch.equal(lin.dequantized(), q.float() * scale[:, None])
    assert torch.equal(lin.rows(40, 64).dequantized(), lin.dequantized()[40:])


def test_rounding_in_chunks_on_worker_threads_is_the_whole_weight_rounding():
    from concurrent.futures import ThreadPoolExecutor

    w = (torch.randn(1000, 64) * torch.logspace(-3, 1, 1000)[:, None]).to(torch.bfloat16)  # several chunks
    amax = w.abs().amax(dim=1).float()
    whole = torch.round(w.float() * (127 / amax)[:, None]).to(torch.int8), amax / 127
    with ThreadPoolExecutor(2) as workers:
        for got in (quantize_rows(w), quantize_rows(w, workers=workers)):
            assert torch.equal(got[0], whole[0]) and torch.equal(got[1], whole[1])


def _rounded_rows(x: torch.Tensor, levels: int | None) -> torch.Tensor:
    """`x` as the W8A8 kernel sees it: each row rounded to `levels` steps of its absmax."""
    if levels is None:
        return x.float()
    s = x.float().abs().amax(-1, keepdim=True)
    return torch.round(x.float() / s * levels) * s / levels


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("rows", [1, 72, KERNEL_ROWS + 1])  # weight-only: the kernel (bf16), then dequantized
@pytest.mark.parametrize("width", [64, 42])  # 42: not a multiple the weight-only kernel nor ours takes
def test_each_path_multiplies_its_rounded_input_by_the_dequantized_weight(
    monkeypatch, path, dtype, rows, width
):
    torch.manual_seed(0)
    lin = _linear(monkeypatch, path, 96, width, dtype)
    assert (lin.gemm is not None) == (path == "own" and width == 64)  # else fbgemm
    levels = lin.levels
    x = torch.randn(2, rows, width, dtype=dtype) * torch.logspace(-2, 2, rows)[:, None]
    w = lin.dequantized().float()
    want = _rounded_rows(x, levels) @ w.T
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    scale = want.abs().amax(-1, keepdim=True)  # per row: rows of very different sizes
    assert ((lin(x).float() - want).abs() <= tol * scale).all()
    if levels is not None:  # the activations' rounding: within a step's worth of the float product
        exact = x.float() @ w.T
        assert ((lin(x).float() - exact).abs() <= (16 / levels + tol) * scale).all()


@pytest.mark.parametrize("path", PATHS)
def test_a_row_computes_alike_alone_or_in_a_pass_of_any_width(monkeypatch, path):
    """Self-speculation's verify pass (B rows), its quadratic pass (B(B+1)) and prompt chunks must
    compute each row as AR's one-row steps do: W8A8 bit for bit (the per-row activation scale and
    the kernel's fixed qparams make each row's integer sums its own). Weight-only only within two
    bf16 steps (sums that cancel to almost zero aside): its kernel sums a one-row pass, a wider one
    and (beyond KERNEL_ROWS) the dequantized product in different orders."""
    torch.manual_seed(0)
    lin = _linear(monkeypatch, path, 224, 128, torch.bfloat16)
    x = (
        torch.randn(KERNEL_ROWS + 44, 128, dtype=torch.bfloat16)
        * torch.logspace(-3, 3, KERNEL_ROWS + 44)[:, None]
    )
    alone = torch.cat([lin(row[None]) for row in x])
    for width in (3, 8, 16, 72, KERNEL_ROWS, len(x)):
        passes = torch.cat([lin(part) for part in x.split(width)])
        if lin.levels is not None:
            assert torch.equal(passes, alone), width
        else:
            step = torch.exp2(torch.floor(torch.log2(alone.float().abs().clamp(min=1e-30))) - 7)  # bf16's
            near_zero = alone.float().abs().amax(dim=-1, keepdim=True) * 2**-16
            assert ((passes.float() - alone.float()).abs() <= 2 * step + near_zero).all(), width


@pytest.mark.skipif(not FBGEMM, reason="no fbgemm")
def test_activations_take_7_bits_where_fbgemm_would_saturate_8():
    """fbgemm's AVX2 kernel adds pairs of u8 x s8 products in int16: 8-bit activations saturate
    (the probe finds it), 7-bit ones fit. FBGEMM_ENABLE_INSTRUCTIONS makes fbgemm run AVX2 here."""
    code = "from engine.model.quantize import activation_levels; print(activation_levels())"
    env = dict(os.environ, FBGEMM_ENABLE_INSTRUCTIONS="AVX2")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "63"
    assert activation_levels() == (127 if torch.cpu.get_capabilities().get("avx512_vnni") else 63)


def test_no_float_projection_weight_survives(any_int8_engine):
    for layer in any_int8_engine.model.encoder.layers:
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
            assert isinstance(part, (Int8Linear, quantize.Int8Rows))
        assert attn.q_proj.fused is attn.qkv and mlp.up_proj.fused is mlp.gate_up  # views, not copies
    assert isinstance(any_int8_engine.model.diffusion_head, Int8Linear)
    assert any_int8_engine.runner.step is None  # one-token passes run eagerly (engine/model/decode_step.py)


def test_one_path_per_model_chosen_by_its_size(int8_engine, w8a8_engine):
    for eng, levels in ((int8_engine, None), (w8a8_engine, activation_levels())):
        assert {m.levels for m in eng.model.modules() if isinstance(m, Int8Linear)} == {levels}
    assert quantize.int8_path(int8_engine.model) == "weight-only"
    assert quantize.int8_path(w8a8_engine.model) == ("own" if OWN else "fbgemm")


def test_our_gemm_serves_small_models_too(tiny_checkpoint):
    """fbgemm's extra ops make W8A8 slower than weight-only for a model in the CPU's caches; ours
    has none, so it runs every model whose shapes it takes."""
    small = engine.load(str(tiny_checkpoint), device="cpu", dtype="int8")
    assert quantize.int8_path(small.model) == ("own" if OWN else "weight-only")


def test_our_kernel_computes_fbgemm_s_logits_bit_for_bit(w8a8_engine, fbgemm_engine):
    prompt = [1] + list(range(20, 60))
    assert torch.equal(_logits(w8a8_engine, prompt), _logits(fbgemm_engine, prompt))


def test_int8_logits_stay_close_to_the_float_model(tiny_checkpoint, tiny_engine, any_int8_engine):
    prompt = [1] + list(range(20, 60))
    logits = {}
    for name, eng in (("float", tiny_engine), ("int8", any_int8_engine)):
        eng.runner.crop(0)
        logits[name] = eng.runner.extend(prompt)
        eng.runner.crop(0)
    f, q = logits["float"], logits["int8"]
    assert (q - f).abs().max() < 0.05 * (f.max() - f.min())
    assert torch.topk(q, 5).indices[0] in torch.topk(f, 5).indices


@pytest.mark.parametrize("speculation", ["linear", "quadratic"])
def test_self_spec_is_lossless_on_the_int8_weights(any_int8_engine, speculation):
    prompt = "def fib(n):\n"
    _, ar = run(any_int8_engine, prompt=prompt, mode="ar", max_new_tokens=24)
    _, spec = run(
        any_int8_engine, prompt=prompt, mode="self-spec", speculation=speculation, max_new_tokens=24
    )
    assert parted_at_tie(any_int8_engine, ar.prompt_token_ids, ar.token_ids, spec.token_ids)  # bf16 attention


def test_int8_refuses_models_it_cannot_serve(llama_checkpoint):
    with pytest.raises(NemodiffError, match="int8 is for NLD checkpoints"):
        load_model(str(llama_checkpoint), dtype="int8")


def test_a_prompt_computes_the_same_in_one_wide_pass_or_after_a_cached_prefix(any_int8_engine):
    runner, ids = any_int8_engine.runner, [1] + [20 + i % 40 for i in range(KERNEL_ROWS + 40)]
    runner.crop(0)
    whole = runner.extend(ids)
    runner.crop(0)
    runner.extend(ids[:-4])
    assert torch.equal(runner.extend(ids[-4:]).argmax(-1), whole.argmax(-1))
    runner.crop(0)


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
    from kernels.int8_gemm_cpu import deinterleave

    model = NLDModel(preset("tiny"))
    for layer in model.encoder.layers:
        o = layer.self_attn.o_proj
        layer.self_attn.o_lora = LoRA(o.in_features, o.out_features, 2, 1.0)
    weights = {name: p.detach().to(torch.bfloat16) for name, p in model.named_parameters()}
    reads = Counter()

    def read(name: str) -> torch.Tensor:
        reads[name] += 1
        return weights[name]

    tensors = {}
    for name, q, scale in int8_weights(model, read):
        tensors |= {f"{name}.qweight": q, f"{name}.scale": scale}
    assert "encoder.layers.1.self_attn.o_draft.qweight" in tensors
    assert [(n, t.dtype, tuple(t.shape)) for n, t in tensors.items()] == int8_layout(model)
    assert set(reads.values()) == {1}, reads
    # Kept in our GEMM's layout (the tiny model's shapes fit it), written there row by row.
    assert all(t.dim() == 4 for n, t in tensors.items() if n.endswith(".qweight"))
    tensors = {n: deinterleave(t) if n.endswith(".qweight") else t for n, t in tensors.items()}
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


def test_a_model_whose_shapes_our_gemm_cannot_take_keeps_plain_weights_and_runs_on_another_path():
    import dataclasses

    from engine.model.config import preset
    from engine.model.network import NLDModel
    from engine.model.quantize import int8_layout, int8_weights, stored_modules

    model = NLDModel(dataclasses.replace(preset("tiny"), hidden_size=90))  # o_proj: 90 rows, not 32k
    weights = {name: p.detach().to(torch.bfloat16) for name, p in model.named_parameters()}
    made = list(int8_weights(model, weights.__getitem__))
    assert [(n, tuple(q.shape)) for n, q, _ in made] == [
        (n.removesuffix(".qweight"), shape) for n, _, shape in int8_layout(model) if n.endswith(".qweight")
    ]
    assert all(q.dim() == 2 for _, q, _ in made)
    tensors = {k: v for name, q, scale in made for k, v in ((f"{name}.qweight", q), (f"{name}.scale", scale))}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quantize, "W8A8_MIN_BYTES", 0)
        quantize.install_int8(model, stored_modules(tensors), torch.float32)
    assert quantize.int8_path(model) == ("fbgemm" if FBGEMM else "weight-only")


def test_an_interrupted_cache_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    from engine.loading import int8_cache

    def interrupted(path, *_, **__):
        path.write_bytes(b"half a copy")
        raise KeyboardInterrupt

    monkeypatch.setattr(int8_cache, "write_safetensors", interrupted)
    file = tmp_path / "int8" / "key.safetensors"
    with pytest.raises(KeyboardInterrupt):
        int8_cache.write(file, [("w.qweight", torch.int8, (2, 2))], {"w.qweight": torch.zeros(2, 2)}.pop)
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
    layout = [("w.qweight", torch.int8, (2, 2))]
    int8_cache.write(folder / "c.safetensors", layout, {"w.qweight": torch.ones(2, 2)}.pop)
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


def test_quantizing_leaves_the_thread_count_of_later_threads_as_it_was():
    """The workers run torch on one thread each; that must not become the count of threads started
    later (it did: after a first int8 load, packing and the model ran on one thread)."""
    from concurrent.futures import ThreadPoolExecutor

    from engine.model.config import preset
    from engine.model.network import NLDModel

    model = NLDModel(preset("tiny"))
    weights = dict(model.named_parameters())
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for _ in quantize.int8_weights(model, lambda name: weights[name].detach()):
            pass
        with ThreadPoolExecutor(1) as fresh:
            assert fresh.submit(torch.get_num_threads).result() == 2 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def test_the_cache_file_written_around_the_page_cache_is_byte_for_byte_a_plain_one(tmp_path, monkeypatch):
    """O_DIRECT writes whole aligned blocks: the padded tail is cut off, and where a filesystem
    refuses O_DIRECT the file is written plainly."""
    from safetensors.torch import load_file

    from engine.loading import direct_file
    from engine.loading.safetensors_file import write_safetensors

    tensors = {
        "w.qweight": torch.randint(-127, 128, (1000, 3001), dtype=torch.int8),  # > the buffer: several writes
        "w.scale": torch.rand(1000),
        "x": torch.randn(5, 3).bfloat16(),
    }
    entries = [(name, t.dtype, tuple(t.shape)) for name, t in tensors.items()]
    monkeypatch.setattr(direct_file, "BUFFER", 1 << 20)
    write_safetensors(tmp_path / "plain", entries, lambda i: iter([tensors[entries[i][0]]]))
    write_safetensors(tmp_path / "direct", entries, lambda i: iter([tensors[entries[i][0]]]), direct=True)
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, flags, *a: _refuse_direct(real_open, path, flags, *a))
    write_safetensors(tmp_path / "fallback", entries, lambda i: iter([tensors[entries[i][0]]]), direct=True)
    plain = (tmp_path / "plain").read_bytes()
    assert plain == (tmp_path / "direct").read_bytes() == (tmp_path / "fallback").read_bytes()
    assert all(torch.equal(load_file(tmp_path / "direct")[name], t) for name, t in tensors.items())


def _refuse_direct(real_open, path, flags, *args):
    if flags & getattr(os, "O_DIRECT", 0):
        raise OSError(22, "Invalid argument")
    return real_open(path, flags, *args)


def test_a_load_that_fails_while_quantizing_leaves_no_copy_and_no_waiting_writer(
    tiny_checkpoint, tmp_path, monkeypatch
):
    """The writer takes each tensor as the load makes it; when the load fails half-way, the writer
    stops instead of waiting for the rest, and no copy (nor a temporary file) is left."""
    import threading

    monkeypatch.setenv("NEMODIFF_CACHE_DIR", str(tmp_path))
    real, calls = quantize.quantize_rows, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("out of memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(quantize, "quantize_rows", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        load_model(str(tiny_checkpoint), device="cpu", dtype="int8")
    ended = threading.Thread(target=int8_cache.wait_for_writes, daemon=True)
    ended.start()
    ended.join(timeout=30)
    assert not ended.is_alive() and list((tmp_path / "int8").iterdir()) == []


def test_once_the_writer_stops_the_load_holds_nothing_for_it(tmp_path):
    """An unwritable cache ends the writer at once: the weights a load quantizes afterwards must
    not pile up for it (they would double a first load's memory)."""
    import weakref

    (tmp_path / "int8").write_text("a file where the cache folder should be")
    layout = [("w.qweight", torch.int8, (2, 2)), ("w.scale", torch.float32, (2,))]
    handover = int8_cache.write_in_background(tmp_path / "int8" / "key.safetensors", layout)
    int8_cache.wait_for_writes()
    q = torch.zeros(2, 2, dtype=torch.int8)
    gone = weakref.ref(q)
    for _ in handover.passing(iter([("w", q, torch.ones(2))])):
        pass
    del q, _
    assert gone() is None
