"""How a vLLM engine runs on the CPU: its share of the cores, its KV-cache space, and whether its
4-bit weights need the playground's fallback kernel (CPUs without AVX-512; docs/NOTES.md)."""

from __future__ import annotations

import os

from playground.engines.cpu_fallback import with_cpu_shim
from playground.engines.model_config import load_config
from playground.measure.anatomy import method_of
from playground.measure.specs import DeviceInfo, EngineSpec


def cpu_engine_env(slot_index: int, device: DeviceInfo, cores: int | None = None) -> dict[str, str]:
    """Environment for a CPU engine: its own half of the cores, a 1 GiB KV cache unless set, and on
    CPUs without AVX-512 the 4-bit fallback kernel (the engine log and card say when it is used)."""
    cores = cores or os.cpu_count() or 1
    half = max(cores // 2, 1)
    lo = 0 if cores < 2 else slot_index * half
    hi = lo + half - 1
    env = {"VLLM_CPU_OMP_THREADS_BIND": str(lo) if lo == hi else f"{lo}-{hi}"}
    env["VLLM_CPU_KVCACHE_SPACE"] = os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")
    # The shim supplies the 4-bit kernel where AVX-512 is missing, and requests AMX tile state where
    # the CPU has AMX (vllm-cpu's AMX attention dies with SIGILL without it: docs/NOTES.md).
    if not device.native_4bit_on_cpu or "amx_tile" in device.cpu_flags:
        env["PYTHONPATH"] = with_cpu_shim()["PYTHONPATH"]
    return env


def uses_cpu_fallback(spec: EngineSpec, device: DeviceInfo) -> bool:
    """True when a CPU without AVX-512 will run this engine's 4-bit weights on the fallback kernel."""
    if device.kind != "cpu" or device.native_4bit_on_cpu or spec.attached:
        return False
    if spec.quantization in ("awq", "gptq"):
        return True
    try:
        return method_of(load_config(spec.model, download=False)).endswith("4bit")
    except (OSError, ValueError, KeyError, TypeError):
        return False
