"""The GPUs the planner knows, as vLLM sees them: NVML's total in bytes, what the driver keeps back
from CUDA, compute capability and data-sheet bandwidth, each with where the figure came from."""

from __future__ import annotations

from dataclasses import dataclass, replace

MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class Gpu:
    """One GPU kind: memory as NVML reports it, and what vLLM can budget from it."""

    name: str
    nvml_total_bytes: int  # nvmlDeviceGetMemoryInfo().total, what nvidia-smi prints as "MiB"
    bandwidth_gb_s: float  # the vendor's data sheet
    reserved_bytes: int = 0  # NVML total minus the total CUDA reports (torch.cuda.mem_get_info)
    compute_capability: tuple[int, int] = (0, 0)
    source: str = ""

    @property
    def memory_gb(self) -> float:
        """NVML's total in 10^9 bytes."""
        return self.nvml_total_bytes / 1e9

    @property
    def cuda_total_bytes(self) -> int:
        """The total vLLM multiplies by gpu_memory_utilization (CUDA's, not NVML's)."""
        return self.nvml_total_bytes - self.reserved_bytes


def _gpu(name: str, mib: int, bw: float, reserved_mib: int, cc: tuple[int, int], source: str) -> Gpu:
    return Gpu(name, mib * MIB, bw, reserved_mib * MIB, cc, source)


# Public nvidia-smi totals. Only the H200 row was measured on this project's machines; the others are
# the usual nvidia-smi figures for these cards and their torch totals from public CUDA OOM messages
# ("N GiB total capacity"), not checked here. The present GPU's own NVML figure replaces them.
GPUS: dict[str, Gpu] = {
    g.name: g
    for g in (
        _gpu("T4", 15360, 320, 256, (7, 5), "nvidia-smi 15360 MiB; torch 14.75 GiB (public; not measured here)"),
        _gpu("L4", 23034, 300, 332, (8, 9), "nvidia-smi 23034 MiB; torch 22.17 GiB (public; not measured here)"),
        _gpu("A10G", 23028, 600, 295, (8, 6), "nvidia-smi 23028 MiB; torch 22.2 GiB (public; not measured here)"),
        _gpu("L40S", 46068, 864, 470, (8, 9), "nvidia-smi 46068 MiB; torch 44.53 GiB (public; not measured here)"),
        _gpu("A100-40GB", 40960, 1555, 420, (8, 0), "nvidia-smi 40960 MiB; torch 39.59 GiB (public; not measured)"),
        _gpu("A100-80GB", 81920, 2039, 870, (8, 0), "nvidia-smi 81920 MiB; torch 79.15 GiB (public; not measured)"),
        _gpu("H100-80GB", 81559, 3350, 550, (9, 0), "nvidia-smi 81559 MiB; torch 79.11 GiB (public; not measured)"),
        # Measured 2026-11-27: nvidia-smi 143,771 MiB; vLLM 0.26 logged a total of 139.8 GiB, and NVML
        # showed 0.60 GiB used on the idle card (docs/gpu.md).
        _gpu("H200", 143771, 4800, 614, (9, 0), "measured here: NVML 143,771 MiB, vLLM 139.8 GiB (docs/gpu.md)"),
    )
}
DEFAULT_RESERVED_BYTES = 614 * MIB  # the H200's, for a GPU of no known kind


def gpu_named(device_name: str, total_bytes: float) -> Gpu | None:
    """The table entry for an NVML device name (e.g. "NVIDIA H100 80GB HBM3"), if known."""
    name = device_name.upper()
    for key, gpu in GPUS.items():
        model = key.split("-")[0]
        if model in name and (model != "A100" or abs(gpu.memory_gb - total_bytes / 1e9) < 15):
            return gpu
    return None


def present_gpu(device_name: str, total_bytes: int, compute_capability: tuple[int, int] | None = None) -> Gpu:
    """The GPU this host has: its own NVML total wins over the table; bandwidth, the driver's
    reserve and compute capability come from the closest known kind."""
    known = gpu_named(device_name, total_bytes)
    base = known or Gpu(device_name, total_bytes, float("nan"), DEFAULT_RESERVED_BYTES)
    return replace(
        base,
        name=device_name,
        nvml_total_bytes=int(total_bytes),
        compute_capability=compute_capability or base.compute_capability,
        source=f"NVML on this host ({int(total_bytes) // MIB:,} MiB)",
    )
