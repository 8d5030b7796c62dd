"""Checkpoint loading: native NLD (both naming schemes, shards, LoRA, dtypes), the AR fallback,
and a one-line CheckpointError naming the file and tensor for every kind of bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.decoding.engine import Engine
from engine.errors import CheckpointError, NemodiffError
from engine.loading import checkpoint as loading
from engine.loading.checkpoint import load_model
from engine.request import GenerationConfig, Request

Tensors = dict[str, torch.Tensor]


def _copy(src: Path, dst: Path, edit: Callable[[Tensors], Tensors] = lambda t: t) -> Path:
    """A copy of a checkpoint directory with its weights passed through `edit`."""
    shutil.copytree(src, dst)
    save_file(edit(load_file(dst / "model.safetensors")), dst / "model.safetensors")
    return dst


def _ministral_names(tensors: Tensors) -> Tensors:
    return {
        k.replace("encoder.", "model.").replace("diffusion_head", "lm_head"): v for k, v in tensors.items()
    }


def _state(model: torch.nn.Module) -> Tensors:
    return dict(model.state_dict())


def test_tiny_loads_natively(tiny_checkpoint: Path) -> None:
    calls: list[tuple[int, int, str]] = []
    lm = load_model(str(tiny_checkpoint), progress=lambda *a: calls.append(a))
    assert lm.native and not lm.lora_loaded and lm.config is not None
    assert lm.device == torch.device("cpu") and lm.dtype == torch.float32
    assert lm.path == tiny_checkpoint and lm.name == str(tiny_checkpoint)
    assert lm.config.vocab_size == 512 and lm.config.mask_token_id == lm.tokenizer.mask_token_id == 4
    params = list(lm.model.parameters())
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 and not p.requires_grad for p in params)
    assert not lm.model.training
    assert calls[-1][:2] == (len(params), len(params)) and len(calls) == len(params)
    expected = load_file(tiny_checkpoint / "model.safetensors")
    assert all(torch.equal(v, expected[k].float()) for k, v in _state(lm.model).items())


def test_loading_an_nld_checkpoint_imports_neither_torch_dynamo_nor_transformers(
    tiny_checkpoint: Path,
) -> None:
    """Each is about a second of every start-up (in a fresh interpreter, as a user's): building
    the model on the meta device must not initialise its embedding there (that imports
    torch._dynamo), and a plain tokenizer.json loads without transformers."""
    code = (
        f"import sys, engine; engine.load({str(tiny_checkpoint)!r}); "
        "print([m for m in ('torch._dynamo', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_ministral_names_load_the_same(tiny_checkpoint: Path, tmp_path: Path) -> None:
    renamed = _copy(tiny_checkpoint, tmp_path / "m", _ministral_names)
    a, b = _state(load_model(str(tiny_checkpoint)).model), _state(load_model(str(renamed)).model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_causal_logits_match_transformers_ministral3(tiny_checkpoint: Path) -> None:
    from transformers import Ministral3ForCausalLM

    from engine.evaluation.hf_reference import ministral3_config

    lm = load_model(str(tiny_checkpoint), dtype="fp32")
    cfg = lm.config
    hf_cfg = ministral3_config(cfg)
    hf = Ministral3ForCausalLM(hf_cfg).eval()
    weights = _ministral_names(load_file(tiny_checkpoint / "model.safetensors"))
    hf.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    gen = torch.Generator().manual_seed(0)
    for start in (0, 16370, 40000):  # below, across and past YaRN's original length (query scale > 1)
        tokens = torch.randint(0, cfg.vocab_size, (24,), generator=gen)
        positions = torch.arange(start, start + 24)
        with torch.no_grad():
            ours = lm.model.diffusion_head(lm.model(tokens[None], positions))
            ref = hf(input_ids=tokens[None], position_ids=positions[None]).logits
        assert (ours - ref).abs().max().item() < 1e-4, start


def test_sharded_checkpoint_loads(tiny_checkpoint: Path, tmp_path: Path) -> None:
    sharded = shutil.copytree(
        tiny_checkpoint, tmp_path / "s", ignore=shutil.ignore_patterns("model.safetensors")
    )
    tensors = load_file(tiny_checkpoint / "model.safetensors")
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, sharded / file)
    weight_map = {k: file for file, keys in shards.items() for k in keys}
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    a, b = _state(load_model(str(tiny_checkpoint)).model), _state(load_model(str(sharded)).model)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cpu_default_dtype_is_bf16_only_where_it_is_native(tiny_checkpoint: Path, monkeypatch) -> None:
    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr("engine.loading.checkpoint.cpu_has_bf16", lambda: native)
        assert load_model(str(tiny_checkpoint), device="cpu").dtype == expected


def test_dtype_override(tiny_checkpoint: Path) -> None:
    for dtype, expected in (
        ("bf16", torch.bfloat16),
        ("float16", torch.float16),
        (torch.bfloat16, torch.bfloat16),
    ):
        lm = load_model(str(tiny_checkpoint), device="cpu", dtype=dtype)
        assert lm.dtype == expected and {p.dtype for p in lm.model.parameters()} == {expected}
    with pytest.raises(NemodiffError, match="unknown dtype 'int4'"):
        load_model(str(tiny_checkpoint), dtype="int4")
    int8 = load_model(str(tiny_checkpoint), device="cpu", dtype="int8")  # quantized by the Engine
    assert int8.int8 and int8.dtype == torch.bfloat16


def _write_lora(ckpt: Path, rank: int = 4, alpha: float = 8.0, prefix: str = "encoder") -> None:
    """A random PEFT adapter on o_proj, as NLD's instruct repos ship in linear_spec_lora/."""
    cfg = json.loads((ckpt / "config.json").read_text())
    inner, hidden = cfg["num_attention_heads"] * cfg["head_dim"], cfg["hidden_size"]
    lora = ckpt / "linear_spec_lora"
    lora.mkdir()
    spec = {"peft_type": "LORA", "r": rank, "lora_alpha": alpha, "target_modules": ["o_proj"]}
    (lora / "adapter_config.json").write_text(json.dumps(spec))
    gen = torch.Generator().manual_seed(1)
    tensors = {}
    for i in range(cfg["num_hidden_layers"]):
        base = f"base_model.model.{prefix}.layers.{i}.self_attn.o_proj"
        tensors[f"{base}.lora_A.weight"] = torch.randn(rank, inner, generator=gen)
        tensors[f"{base}.lora_B.weight"] = torch.randn(hidden, rank, generator=gen)
    save_file(tensors, lora / "adapter_model.safetensors")


@pytest.mark.parametrize("prefix", ["encoder", "model"])
def test_lora_adapter_loads_and_acts_only_when_enabled(
    tiny_checkpoint: Path, tmp_path: Path, prefix: str
) -> None:
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "l")
    _write_lora(ckpt, prefix=prefix)
    base, lm = load_model(str(tiny_checkpoint)).model, load_model(str(ckpt))
    assert lm.lora_loaded
    attn = lm.model.encoder.layers[1].self_attn
    assert attn.o_lora.scale == 2.0 and attn.o_lora.lora_A.weight.shape == (4, 64)
    adapter = load_file(ckpt / "linear_spec_lora" / "adapter_model.safetensors")
    stored = adapter[f"base_model.model.{prefix}.layers.1.self_attn.o_proj.lora_B.weight"]
    assert torch.equal(attn.o_lora.lora_B.weight, stored)
    tokens, positions = torch.arange(5, 21)[None], torch.arange(16)
    with torch.no_grad():
        plain = base(tokens, positions)
        assert torch.equal(lm.model(tokens, positions, lora=False), plain)
        assert not torch.allclose(lm.model(tokens, positions, lora=True), plain, atol=1e-3)


def test_a_merged_draft_adapter_drafts_as_the_separate_one(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "l")
    _write_lora(ckpt)
    model = load_model(str(ckpt)).model
    tokens, positions = torch.arange(5, 21)[None], torch.arange(16)
    with torch.no_grad():
        separate, plain = model(tokens, positions, lora=True), model(tokens, positions)
        model.fuse_projections()
        assert model.encoder.layers[0].self_attn.o_draft is not None
        torch.testing.assert_close(model(tokens, positions, lora=True), separate, rtol=1e-4, atol=1e-4)
        assert torch.equal(model(tokens, positions), plain)  # verify passes never see it
        per_token = torch.arange(16) % 2 == 0  # the quadratic layout's mask keeps the separate adapter
        torch.testing.assert_close(
            model(tokens, positions, lora=per_token)[0, 0], separate[0, 0], rtol=1e-4, atol=1e-4
        )


def test_ar_fallback_loads_a_transformers_causal_lm(llama_checkpoint: Path) -> None:
    from transformers import LlamaForCausalLM

    lm = load_model(str(llama_checkpoint), dtype="bf16")
    assert not lm.native and lm.config is None and not lm.lora_loaded
    assert isinstance(lm.model, LlamaForCausalLM) and not lm.model.training
    assert {p.dtype for p in lm.model.parameters()} == {torch.bfloat16}
    assert lm.tokenizer.eos_token_id == 2


def test_demo_resolves_to_the_bundled_directory(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "DEMO_DIR", tmp_path / "demo_model")
    with pytest.raises(CheckpointError, match="the bundled demo model is not installed"):
        load_model("demo")
    monkeypatch.setattr(loading, "DEMO_DIR", tiny_checkpoint)
    assert load_model("demo").path == tiny_checkpoint


# --- errors ----------------------------------------------------------------------------------------


def _fails(path: Path | str, match: str) -> str:
    with pytest.raises(CheckpointError, match=match) as info:
        load_model(str(path))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_path_and_config(tmp_path: Path) -> None:
    _fails(tmp_path / "nowhere", "nowhere: no such directory")
    _fails(tmp_path, "no config.json")
    (tmp_path / "file").write_text("x")
    _fails(tmp_path / "file", "not a directory")


def test_wrong_model_type(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "w")
    (ckpt / "config.json").write_text(json.dumps({"model_type": "not_a_model"}))
    _fails(ckpt, r"config.json: model_type 'not_a_model' is neither")


def test_unknown_fim_order(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "f")
    config = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps(config | {"fim_order": "middle-first"}))
    _fails(ckpt, r"config.json: fim_order must be 'psm' or 'spm', not 'middle-first'")


@pytest.mark.parametrize(
    "field, value, why",
    [
        ("hidden_size", "big", "hidden_size must be a positive integer, not 'big'"),
        ("hidden_size", -64, "hidden_size must be a positive integer"),
        ("num_hidden_layers", True, "num_hidden_layers must be a positive integer"),
        ("mask_token_id", 99999, "mask_token_id must be a token id below vocab_size"),
        ("block_size", 0, "block_size must be an integer of at least 2"),
        ("threshold", 2, "threshold must be a number in \\[0, 1\\]"),
        ("rms_norm_eps", "x", "rms_norm_eps must be a positive number"),
        ("rope_parameters", None, "rope_parameters must be an object"),
    ],
)
def test_config_values_of_the_wrong_type_or_range(
    tiny_checkpoint: Path, tmp_path: Path, field, value, why
) -> None:
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "c")
    config = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps(config | {field: value}))
    _fails(ckpt, f"config.json: {why}")


@pytest.mark.parametrize("name, text", [("tokenizer.json", '{"a": 1}'), ("tokenizer_config.json", "[]")])
def test_tokenizer_files_of_the_wrong_shape(tiny_checkpoint: Path, tmp_path: Path, name, text) -> None:
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "t")
    (ckpt / name).write_text(text)
    _fails(ckpt, "no usable tokenizer")


def test_rope_settings(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """Older configs may say `rope_scaling: null` (plain RoPE); a yarn entry without its factor is refused."""
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "r")
    config = json.loads((ckpt / "config.json").read_text())
    del config["rope_parameters"]
    (ckpt / "config.json").write_text(json.dumps(config | {"rope_scaling": None, "rope_theta": 1e4}))
    loaded = load_model(str(ckpt))
    assert loaded.config.rope_parameters == {"rope_type": "default", "rope_theta": 1e4}
    assert (
        Engine(loaded)
        .complete(Request(prompt="x", config=GenerationConfig(mode="ar", max_new_tokens=2)))
        .n_tokens
        == 2
    )
    (ckpt / "config.json").write_text(json.dumps(config | {"rope_scaling": {"type": "yarn"}}))
    _fails(ckpt, "config.json: yarn RoPE needs factor and original_max_position_embeddings")


def test_shape_mismatch_names_file_and_tensor(tiny_checkpoint: Path, tmp_path: Path) -> None:
    name = "encoder.layers.1.mlp.up_proj.weight"
    ckpt = _copy(tiny_checkpoint, tmp_path / "s", lambda t: t | {name: t[name].T.contiguous()})
    _fails(ckpt, rf"model.safetensors: {name} has shape \(64, 128\), expected \(128, 64\)")


def test_missing_and_unexpected_tensors(tiny_checkpoint: Path, tmp_path: Path) -> None:
    name = "encoder.layers.0.self_attn.k_proj.weight"
    missing = _copy(tiny_checkpoint, tmp_path / "m", lambda t: {k: v for k, v in t.items() if k != name})
    _fails(missing, f"model.safetensors: missing tensor {name}")
    extra_name = "encoder.layers.2.mlp.up_proj.weight"  # the tiny model has layers 0 and 1
    extra = _copy(tiny_checkpoint, tmp_path / "x", lambda t: t | {extra_name: t[name].clone()})
    _fails(extra, f"model.safetensors: unexpected tensor {extra_name}")


def test_truncated_or_garbage_safetensors(tiny_checkpoint: Path, tmp_path: Path) -> None:
    truncated = shutil.copytree(tiny_checkpoint, tmp_path / "t")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    _fails(truncated, r"t/model.safetensors: not a valid safetensors file")
    garbage = shutil.copytree(tiny_checkpoint, tmp_path / "g")
    (garbage / "model.safetensors").write_bytes(b"\x13\x37" * 500)
    _fails(garbage, r"g/model.safetensors: not a valid safetensors file")


def test_broken_lora_adapter_names_its_file(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "l")
    _write_lora(ckpt)
    adapter = ckpt / "linear_spec_lora" / "adapter_model.safetensors"
    save_file({k: v for k, v in load_file(adapter).items() if "layers.1." not in k}, adapter)
    lora_a = "encoder.layers.1.self_attn.o_lora.lora_A.weight"
    _fails(ckpt, rf"adapter_model.safetensors: missing tensor {lora_a} \(and 1 more\)")


@pytest.mark.parametrize("offline", ["0", "1"])
def test_unknown_repo_fails_fast_offline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, offline: str
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    repo = "nobody-nemodiff/no-such-model"
    message = _fails(repo, rf"{repo}: not a local directory.*(not downloadable|no such model)")
    assert time.perf_counter() - start < 15
    if offline == "1":
        assert message.endswith("(offline: HF_HUB_OFFLINE is set)")


def test_a_failing_hub_is_named_as_such(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An answer other than 'no such model' (a 5xx, a proxy) says what the Hub answered, not 'offline'."""
    import huggingface_hub

    def refuse(*args, **kwargs):
        raise OSError("503 Service Unavailable\nmore lines")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", refuse)
    monkeypatch.chdir(tmp_path)
    _fails(
        "nobody-nemodiff/no-such-model",
        r"not in the local cache, and not downloadable \(the Hugging Face Hub did not answer: 503 Service Unavailable\)$",
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without CUDA")
def test_cuda_without_cuda_is_a_clear_error(tiny_checkpoint: Path) -> None:
    with pytest.raises(NemodiffError, match="CUDA is not available"):
        load_model(str(tiny_checkpoint), device="cuda")


def test_hugging_faces_kernels_package_gets_one_clear_line(llama_checkpoint: Path, tmp_path: Path) -> None:
    """Hugging Face's `kernels` distribution has our kernels/ package's name; a transformers that
    finds it installed imports ours instead and fails deep inside. Simulated with its metadata."""
    dist = tmp_path / "kernels-0.18.5.dist-info"  # in the range transformers < 5.25 accepts
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: kernels\nVersion: 0.18.5\n")
    code = (
        "import sys; from engine.loading.checkpoint import load_model; from engine.errors import NemodiffError\n"
        f"try: load_model({str(llama_checkpoint)!r}, dtype='fp32')\n"
        "except NemodiffError as e: sys.exit(str(e))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 1 and "shadows nemodiff's kernels/ package" in done.stderr, done.stderr[-2000:]
    assert "\n" not in done.stderr.strip()
