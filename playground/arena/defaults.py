"""Which engines run when the user names none: a real pair on a GPU with network, the project's
own tiny model otherwise. Environment variables override both."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path

from playground.measure.gpu_pairs import choose_pair
from playground.measure.gpus import present_gpu
from playground.measure.specs import DeviceInfo, EngineSpec, parse_spec

GPU_PAIR = (
    EngineSpec(
        model="Qwen/Qwen2.5-0.5B-Instruct",
        label="bf16",
        dtype="bfloat16",
        gpu_memory_utilization=0.40,
        max_model_len=4096,
    ),
    EngineSpec(
        model="Qwen/Qwen2.5-0.5B-Instruct-AWQ", label="AWQ 4-bit", gpu_memory_utilization=0.40, max_model_len=4096
    ),
)
TINY_ALIAS = "tiny/"
ASSETS = Path(__file__).resolve().parents[2] / "assets"  # Markdown and texts the UI shows
# The CPU build needs eager mode to start in ~30 s; 0.25 of host memory per engine (FACTS.md).
TINY_BF16 = EngineSpec(
    model="tiny/bf16", label="tiny bf16", gpu_memory_utilization=0.25, max_model_len=512, enforce_eager=True
)
TINY_AWQ = replace(TINY_BF16, model="tiny/awq", label="tiny AWQ 4-bit", quantization="awq")


def neutral_spec(device: DeviceInfo) -> EngineSpec:
    """Settings a spec written on the command line starts from: the device's sensible defaults only."""
    base = EngineSpec(model="")
    return replace(TINY_BF16, model="", label="") if device.kind == "cpu" else base


def tiny_pair(device: DeviceInfo) -> tuple[EngineSpec, EngineSpec]:
    """The tiny model in bf16 against its AWQ 4-bit checkpoint (on AVX2 CPUs through the fallback kernel)."""
    return TINY_BF16, TINY_AWQ


@dataclass(frozen=True)
class Storage:
    """Where the history and the model cache live, and whether they outlast a restart."""

    data: Path  # the data folder: history, logs, exports, the built tiny model
    hf_home: Path | None  # the model cache on the volume; None: HF_HOME as the environment has it
    volume: str = ""  # PLAYGROUND_VOLUME: where persistent storage was expected ("" when none is)
    # vLLM's cache root on the volume (torch.compile output, the FlashInfer autotune cache): warm restarts
    compile_cache: Path | None = None

    @property
    def on_volume(self) -> bool:
        """True when the data folder is on the persistent volume."""
        return self.hf_home is not None

    @property
    def lost_on_restart(self) -> bool:
        """A volume was expected (the Docker image) but none is mounted: history goes with the container."""
        return bool(self.volume) and not self.on_volume


def writable_mount(path: str) -> bool:
    """True when `path` is a mount point this process may write in (a Space mounts its storage at /data)."""
    return os.path.ismount(path) and os.access(path, os.W_OK | os.X_OK)


def storage(env: Mapping[str, str], is_volume: Callable[[str], bool] = writable_mount) -> Storage:
    """The data folder and model cache: on PLAYGROUND_VOLUME when a volume is mounted there, else PLAYGROUND_DATA."""
    volume = env.get("PLAYGROUND_VOLUME", "").strip()
    if volume and is_volume(volume):
        root = Path(volume)
        return Storage(root / "playground", root / "huggingface", volume, compile_cache=root / "vllm-cache")
    return Storage(data=Path(env.get("PLAYGROUND_DATA", "data")).resolve(), hf_home=None, volume=volume)


def use_storage(env: MutableMapping[str, str] = os.environ) -> Storage:
    """Decide the storage once at start and point PLAYGROUND_DATA, HF_HOME and vLLM's cache root (engines
    inherit them) there. VLLM_CACHE_ROOT (vLLM 0.26 and 0.32: `vllm/envs.py`) holds torch.compile's
    output and the FlashInfer autotune cache; TRITON_CACHE_DIR Triton's kernels. One the operator set
    is kept."""
    chosen = storage(env)
    if chosen.hf_home is not None:
        env["PLAYGROUND_DATA"], env["HF_HOME"] = str(chosen.data), str(chosen.hf_home)
    if chosen.compile_cache is not None:
        env.setdefault("VLLM_CACHE_ROOT", str(chosen.compile_cache))
        env.setdefault("TRITON_CACHE_DIR", str(chosen.compile_cache / "triton"))
    return chosen


def hub_reachable(timeout_s: float = 1.5) -> bool:
    """True when the Hugging Face hub answers and offline mode is not forced."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false") or os.environ.get("PLAYGROUND_OFFLINE"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def resolve_tiny(spec: EngineSpec, root: Path) -> EngineSpec:
    """Turn `tiny/bf16|awq|gptq` into the local checkpoint, building it on first use (seconds)."""
    if not spec.model.startswith(TINY_ALIAS) or spec.attached:
        return spec
    from playground.tiny import build_tiny  # local: only needed when a tiny model is asked for

    variant = spec.model[len(TINY_ALIAS) :]
    built = build_tiny(root / "tiny")
    if variant not in built:
        raise ValueError(
            f"unknown tiny model {spec.model!r}; choose one of: " + ", ".join(TINY_ALIAS + k for k in sorted(built))
        )
    return replace(spec, model=str(built[variant]), served_name=spec.model, label=spec.label or spec.model)


def gpu_pair(device: DeviceInfo) -> tuple[EngineSpec, EngineSpec]:
    """The pair that fits this GPU (NVML memory, compute capability): the largest Qwen2.5 beside its
    AWQ sibling with room for 8 requests of 2k tokens each; the 0.5B pair when nothing larger fits."""
    cc = device.compute_capability or 80
    gpu = present_gpu(device.name, device.total_bytes, (cc // 10, cc % 10))
    choice = choose_pair(gpu)
    if choice is None:
        a, b = GPU_PAIR
    else:
        why = choice.explain(device.name)
        a = replace(GPU_PAIR[0], model=choice.model, gpu_memory_utilization=choice.utilization_16bit, note=why)
        b = replace(GPU_PAIR[1], model=choice.awq_model, gpu_memory_utilization=choice.utilization_4bit, note=why)
    if cc < 80:  # T4, V100: no bfloat16
        a = replace(a, dtype="float16", label="fp16")
    return a, b


def default_pair(device: DeviceInfo, *, online: bool | None = None) -> tuple[EngineSpec, EngineSpec]:
    """The two engines to show first: env PLAYGROUND_A/PLAYGROUND_B, else by device and network."""
    use_gpu_pair = device.kind == "cuda" and (hub_reachable() if online is None else online)
    base = gpu_pair(device) if use_gpu_pair else tiny_pair(device)
    out = []
    for name, spec in zip(("A", "B"), base, strict=True):
        text = os.environ.get(f"PLAYGROUND_{name}", "").strip()
        out.append(parse_spec(text, base=neutral_spec(device)) if text else spec)
    return out[0], out[1]
