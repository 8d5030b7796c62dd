"""Loading a checkpoint: a local directory, the bundled demo model or a Hugging Face repo id.

NLD checkpoints load natively: the model is built on the meta device, every tensor's name and
shape is checked from the safetensors headers before any data is read, then the tensors are read,
converted and assigned one at a time, so peak memory is the model plus one tensor. Any other
causal LM that transformers knows loads through `AutoModelForCausalLM` as an AR-only fallback.
Every failure is a one-line `CheckpointError` naming the file and, where there is one, the tensor.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from engine.errors import CheckpointError, NemodiffError, first_line, kernels_clash_explained
from engine.loading import int8_cache
from engine.model.config import MODEL_TYPE, ModelConfig
from engine.model.network import LoRA, NLDModel
from engine.model.quantize import install_int8, int8_layout, int8_weights, is_matmul_weight, stored_modules
from engine.prompts.tokenizer import TokenizerFiles

Progress = Callable[[int, int, str], None]

DEMO_DIR = Path(__file__).parents[1] / "demo_model"
LORA_DIR = "linear_spec_lora"
# Only what the engine reads: Mistral-family repos also ship consolidated.safetensors, a second copy.
HUB_PATTERNS = [
    "config.json",
    "generation_config.json",
    "model*.safetensors",
    "model.safetensors.index.json",
    "tokenizer*",
    "special_tokens_map.json",
    "chat_template*",
    "vocab*",
    "merges.txt",
    f"{LORA_DIR}/*",
]
_DTYPES = {
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
    "fp32": torch.float32,
    "float32": torch.float32,
}


@dataclass
class LoadedModel:
    model: Any  # NLDModel, or a transformers PreTrainedModel for the AR fallback
    tokenizer: Any  # the checkpoint's transformers tokenizer, or TokenizerFiles (tokenizers only, for NLD checkpoints)
    config: ModelConfig | None  # None for the fallback
    native: bool
    name: str
    path: Path
    device: torch.device
    dtype: torch.dtype  # of the weights, or of the activations when `int8`
    lora_loaded: bool
    int8: bool = False  # weight-only int8 projections, already fused (engine/model/quantize.py)
    weight_files: list[Path] = field(default_factory=list)  # native: what the user cache keys entries by


@kernels_clash_explained()
def load_model(
    model: str,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype | None = None,
    progress: Progress | None = None,
) -> LoadedModel:
    """Load `model` for inference (eval mode, no gradients) on `device` ("auto": CUDA if present).

    dtype defaults to bf16 on CUDA and on CPUs with native bf16, else fp32; "int8" (NLD checkpoints
    on a CPU) loads the matmul weights as int8, fused and quantized while they stream from disk or
    read from the int8 cache (engine/model/quantize.py, engine/loading/int8_cache.py), the rest as bf16.
    `progress(done, total, tensor_name)` is called as native tensors load.
    """
    dev = resolve_device(device)
    int8 = dtype == "int8"
    if int8 and dev.type != "cpu":
        raise NemodiffError("dtype int8 is for CPUs (its kernel has no GPU version): use bf16 on a GPU")
    dt = torch.bfloat16 if int8 else resolve_dtype(dtype, dev)  # both before a possibly long download
    path = resolve_path(model)
    raw = _read_config(path)
    model_type = raw.get("model_type")
    tokenizer = _load_tokenizer(path, native=model_type == MODEL_TYPE)
    common = dict(tokenizer=tokenizer, name=model, path=path, device=dev, dtype=dt)
    if model_type == MODEL_TYPE:
        cfg = ModelConfig.from_dict(raw)
        if (problem := cfg.problem()) is not None:
            raise CheckpointError(f"{path / 'config.json'}: {problem}")
        if cfg.fim_order not in ("psm", "spm"):
            raise CheckpointError(
                f"{path / 'config.json'}: fim_order must be 'psm' or 'spm', not {cfg.fim_order!r}"
            )
        nld, files, lora = _load_native(path, cfg, dev, dt, progress, int8)
        return LoadedModel(
            model=nld, config=cfg, native=True, lora_loaded=lora, int8=int8, weight_files=files, **common
        )
    if int8:
        raise NemodiffError(
            f"dtype int8 is for NLD checkpoints; {model} loads through transformers: use bf16 or fp32"
        )
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return LoadedModel(
            model=_load_fallback(path, dev, dt), config=None, native=False, lora_loaded=False, **common
        )
    raise CheckpointError(
        f"{path / 'config.json'}: model_type {model_type!r} is neither {MODEL_TYPE!r} "
        "nor a causal LM that transformers knows"
    )


def resolve_device(device: str | torch.device) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise NemodiffError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise NemodiffError(f"device {device!r} requested but CUDA is not available here")
    return dev


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX). There bf16 beats fp32 in
    every mode, and the parallel modes gain most: an 8-row matmul costs about 1.5x a 1-row one in
    bf16 and 3-4x in fp32 (docs/BENCHMARKS.md). Elsewhere bf16 is emulated and slow."""
    probes = (
        getattr(torch.cpu, "_is_avx512_bf16_supported", None),
        getattr(torch.cpu, "_is_amx_tile_supported", None),
    )
    return any(probe() for probe in probes if probe is not None)


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        native_bf16 = device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())
        return torch.bfloat16 if native_bf16 else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise NemodiffError(f"unknown dtype {dtype!r}: choose one of {', '.join(_DTYPES)}, int8")
    return _DTYPES[dtype]


# --- where the checkpoint lives ------------------------------------------------------------------


def resolve_path(model: str) -> Path:
    """The bundled model for "demo" (`./demo` names a local directory), a local directory as is,
    and anything shaped like a repo id ("owner/name") downloaded from the Hub."""
    if model == "demo":
        if not DEMO_DIR.is_dir():
            raise CheckpointError(f"the bundled demo model is not installed (expected at {DEMO_DIR})")
        return DEMO_DIR
    local = Path(model).expanduser()
    if local.exists():
        if not local.is_dir():
            raise CheckpointError(f"{local}: not a directory (pass the checkpoint's directory)")
        return local
    if _is_repo_id(model):
        return _download(model)
    raise CheckpointError(f"{model}: no such directory")


def _is_repo_id(model: str) -> bool:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if model.startswith((".", "~", "/")) or model.count("/") != 1:
        return False
    try:
        validate_repo_id(model)
    except HFValidationError:
        return False
    return True


def _offline() -> bool:
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in {
        "1",
        "ON",
        "YES",
        "TRUE",
    }


def _download(repo_id: str) -> Path:
    """Fetch (or reuse from the cache) only the files the engine needs; never hang when offline.

    The Hub client has no timeout of its own, so one metadata call with a short timeout decides
    whether the Hub is reachable; if not, only the local cache is used.
    """
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    offline, revision = _offline(), None
    why = "offline: HF_HUB_OFFLINE is set"
    if not offline:
        try:
            revision = HfApi().model_info(repo_id, timeout=constants.HF_HUB_ETAG_TIMEOUT).sha
        except GatedRepoError:
            raise CheckpointError(
                f"{repo_id} is gated: accept its licence on huggingface.co, then `hf auth login`"
            ) from None
        except RepositoryNotFoundError:
            raise CheckpointError(
                f"{repo_id}: not a local directory, and no such model on the Hugging Face Hub (or it is private)"
            ) from None
        except Exception as e:  # unreachable or failing Hub (DNS, timeout, proxy, 5xx): use the cache
            offline, why = True, f"the Hugging Face Hub did not answer: {first_line(e)}"
    try:
        return Path(
            snapshot_download(
                repo_id,
                revision=revision,
                allow_patterns=HUB_PATTERNS,
                local_files_only=offline,
                etag_timeout=constants.HF_HUB_ETAG_TIMEOUT,
            )
        )
    except LocalEntryNotFoundError:
        raise CheckpointError(
            f"{repo_id}: not a local directory, not in the local cache, and not downloadable ({why})"
        ) from None
    except Exception as e:
        raise CheckpointError(f"{repo_id}: download failed: {first_line(e)}") from None


def _read_config(path: Path) -> dict[str, Any]:
    file = path / "config.json"
    if not file.is_file():
        raise CheckpointError(f"{path}: no config.json (not a model checkpoint directory)")
    try:
        raw = json.loads(file.read_text())
    except (ValueError, OSError) as e:
        raise CheckpointError(f"{file}: unreadable: {first_line(e)}") from None
    if not isinstance(raw, dict) or "model_type" not in raw:
        raise CheckpointError(f"{file}: no model_type")
    return raw


def _load_tokenizer(path: Path, native: bool):
    if native and (plain := TokenizerFiles.load(path)) is not None:
        return plain
    from transformers import AutoTokenizer, PreTrainedConfig

    # transformers does not know NLD's model_type; a blank config stops AutoTokenizer parsing config.json.
    extra = {"config": PreTrainedConfig()} if native else {}
    try:
        return AutoTokenizer.from_pretrained(path, **extra)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:  # also JSON of the wrong shape
        raise CheckpointError(f"{path}: no usable tokenizer: {type(e).__name__}: {first_line(e)}") from None


def _load_fallback(path: Path, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    try:
        # Loaded on the CPU, then moved: `device_map` would need `accelerate`, which we do not require.
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    except (OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: {first_line(e)}") from None
    model.eval().requires_grad_(False)
    return model


# --- native NLD weights ----------------------------------------------------------------------------

# model name -> (file, name stored in the file, shape)
Index = dict[str, tuple[Path, str, tuple[int, ...]]]


def _load_native(
    path: Path,
    cfg: ModelConfig,
    device: torch.device,
    dtype: torch.dtype,
    progress: Progress | None,
    int8: bool,
) -> tuple[NLDModel, list[Path], bool]:
    with torch.device("meta"):
        model = NLDModel(cfg)
    files, where = _weight_files(path)
    index = _index(files, _nld_name)
    expected = {n: tuple(p.shape) for n, p in model.named_parameters()}
    _check(index, expected, where)
    lora_dir = path / LORA_DIR
    if lora_dir.is_dir():
        _attach_lora(model, lora_dir)
        lora_file = lora_dir / "adapter_model.safetensors"
        if not lora_file.is_file():
            raise CheckpointError(f"{lora_dir}: no adapter_model.safetensors")
        lora_index = _index([lora_file], lora_name)
        _check(
            lora_index,
            {n: tuple(p.shape) for n, p in model.named_parameters() if ".o_lora." in n},
            lora_file.name,
        )
        index |= lora_index
        files.append(lora_file)
    if int8:
        _load_int8(model, index, files, dtype, progress)
    else:
        _assign_all(model, index, device, dtype, progress)
    return model.eval(), files, lora_dir.is_dir()


def _weight_files(path: Path) -> tuple[list[Path], str]:
    """The safetensors files holding the weights, and the name to blame for missing tensors."""
    index_file = path / "model.safetensors.index.json"
    if index_file.is_file():
        try:
            weight_map = json.loads(index_file.read_text())["weight_map"]
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{index_file}: unreadable index: {first_line(e)}") from None
        files = [path / name for name in sorted(set(weight_map.values()))]
        for file in files:
            if not file.is_file():
                raise CheckpointError(f"{index_file.name}: shard {file.name} is missing")
        return files, index_file.name
    single = path / "model.safetensors"
    if not single.is_file():
        raise CheckpointError(f"{path}: no model.safetensors or model.safetensors.index.json")
    return [single], single.name


def _nld_name(name: str) -> str:
    """NLD names as they are; HF Ministral3 names (`model.*`, `lm_head`) mapped onto them."""
    if name == "lm_head.weight":
        return "diffusion_head.weight"
    return "encoder." + name.removeprefix("model.") if name.startswith("model.") else name


def hf_name(name: str) -> str:
    """NLD tensor name -> Ministral-3 tensor name (the inverse of `_nld_name`)."""
    return name.replace("encoder.", "model.", 1).replace("diffusion_head.", "lm_head.", 1)


def lora_name(name: str) -> str:
    """PEFT's `base_model.model.<layer path>.o_proj.lora_A.weight` -> our `...o_lora.lora_A.weight`."""
    return _nld_name(name.removeprefix("base_model.model.")).replace(".o_proj.lora_", ".o_lora.lora_")


def _index(files: list[Path], rename: Callable[[str], str]) -> Index:
    """Read only the headers: every tensor's model name, file, stored name and shape."""
    index: Index = {}
    for file in files:
        try:
            with safe_open(file, framework="pt") as f:
                for stored in f.keys():
                    name = rename(stored)
                    if name in index:
                        other, other_name = index[name][0].name, index[name][1]
                        raise CheckpointError(f"{file.name}: {stored} duplicates {other_name} in {other}")
                    index[name] = (file, stored, tuple(f.get_slice(stored).get_shape()))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{file}: not a valid safetensors file ({first_line(e)})") from None
    return index


def _check(index: Index, expected: dict[str, tuple[int, ...]], where: str) -> None:
    missing = [n for n in expected if n not in index]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(f"{where}: missing tensor {missing[0]}{more}")
    for name, (file, stored, shape) in index.items():
        if name not in expected:
            raise CheckpointError(f"{file.name}: unexpected tensor {stored}")
        if shape != expected[name]:
            raise CheckpointError(f"{file.name}: {stored} has shape {shape}, expected {expected[name]}")


def _attach_lora(model: NLDModel, lora_dir: Path) -> None:
    """Put a (meta) `LoRA` on every layer's o_proj, sized from PEFT's adapter_config.json."""
    file = lora_dir / "adapter_config.json"
    try:
        spec = json.loads(file.read_text())
        rank, alpha, targets = int(spec["r"]), float(spec["lora_alpha"]), spec["target_modules"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{file}: unreadable adapter config: {first_line(e)}") from None
    if "o_proj" not in targets:
        raise CheckpointError(f"{file}: target_modules {targets!r} lacks o_proj (the only adapter NLD uses)")
    scale = alpha / rank**0.5 if spec.get("use_rslora") else alpha / rank
    with torch.device("meta"):
        for layer in model.encoder.layers:
            o = layer.self_attn.o_proj
            layer.self_attn.o_lora = LoRA(o.in_features, o.out_features, rank, scale)


def _read(index: Index, name: str, device: torch.device) -> torch.Tensor:
    """One tensor as stored. Each read opens the file anew: safetensors maps the whole file while a
    handle is open, and every page read stays counted in the process's memory until it closes (a
    3B int8 load that kept its handle open peaked at 10.3 GB)."""
    file, stored, _ = index[name]
    try:
        with safe_open(file, framework="pt", device=str(device)) as f:
            return f.get_tensor(stored)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{file}: cannot read {stored} ({first_line(e)})") from None


def _assign_all(
    model: nn.Module, index: Index, device: torch.device, dtype: torch.dtype, progress: Progress | None
) -> None:
    """Replace every meta parameter by its tensor, read and converted one at a time."""
    for done, name in enumerate(index, 1):
        module_name, _, leaf = name.rpartition(".")
        tensor = _read(index, name, device).to(dtype)
        setattr(model.get_submodule(module_name), leaf, nn.Parameter(tensor, requires_grad=False))
        if progress is not None:
            progress(done, len(index), name)


def _load_int8(
    model: NLDModel, index: Index, files: list[Path], dtype: torch.dtype, progress: Progress | None
) -> None:
    """The float tensors (embedding, norms, adapter) as `dtype`, then the matmul weights as int8:
    from the cache, or quantized one at a time as they stream from the checkpoint (never the
    whole bf16 model in memory), each installed and cached (in the background) as it is made."""
    floats = {name: entry for name, entry in index.items() if not is_matmul_weight(name)}
    cpu = torch.device("cpu")

    def step(done: int, name: str) -> None:
        if progress is not None:
            progress(done, len(index), name)

    _assign_all(model, floats, cpu, dtype, lambda done, _, name: step(done, name))
    file = int8_cache.cache_file(files)
    cached = int8_cache.read(file)
    if cached is not None:
        try:
            install_int8(model, stored_modules(cached), dtype)
            step(len(index), f"int8 weights from {file}")
            return
        except ValueError as e:
            int8_cache.log.warning(
                "int8 cache %s does not fit this checkpoint (%s): quantizing again", file, e
            )
    done = len(floats)

    def read(name: str) -> torch.Tensor:
        nonlocal done
        done += 1
        step(done, name)
        return _read(index, name, cpu)

    handover = int8_cache.write_in_background(file, int8_layout(model))
    try:  # each module installed and written as soon as it is quantized
        install_int8(model, handover.passing(int8_weights(model, read)), dtype)
    except BaseException:
        handover.end()
        raise
