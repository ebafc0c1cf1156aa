"""Which engines run when the user names none: a real pair on a GPU with network, the project's
own tiny model otherwise. Environment variables override both."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from pathlib import Path

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
        return Storage(data=Path(volume) / "playground", hf_home=Path(volume) / "huggingface", volume=volume)
    return Storage(data=Path(env.get("PLAYGROUND_DATA", "data")).resolve(), hf_home=None, volume=volume)


def use_storage(env: MutableMapping[str, str] = os.environ) -> Storage:
    """Decide the storage once at start and point PLAYGROUND_DATA and HF_HOME (engines inherit it) there."""
    chosen = storage(env)
    if chosen.hf_home is not None:
        env["PLAYGROUND_DATA"], env["HF_HOME"] = str(chosen.data), str(chosen.hf_home)
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


def default_pair(device: DeviceInfo, *, online: bool | None = None) -> tuple[EngineSpec, EngineSpec]:
    """The two engines to show first: env PLAYGROUND_A/PLAYGROUND_B, else by device and network."""
    use_gpu_pair = device.kind == "cuda" and (hub_reachable() if online is None else online)
    base = GPU_PAIR if use_gpu_pair else tiny_pair(device)
    if use_gpu_pair and (device.compute_capability or 80) < 80:  # T4, V100: no bfloat16
        base = (replace(GPU_PAIR[0], dtype="float16", label="fp16"), GPU_PAIR[1])
    out = []
    for name, spec in zip(("A", "B"), base, strict=True):
        text = os.environ.get(f"PLAYGROUND_{name}", "").strip()
        out.append(parse_spec(text, base=neutral_spec(device)) if text else spec)
    return out[0], out[1]
