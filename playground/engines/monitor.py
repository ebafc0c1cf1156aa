"""Memory sampling: NVML on NVIDIA GPUs, process RSS (psutil) elsewhere; one sample in one
function, the periodic loop in another (the only place that talks to NVML)."""

from __future__ import annotations

import platform
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psutil

from playground.engines.build import vllm_build
from playground.measure.records import MemorySample
from playground.measure.specs import DeviceInfo

_NVML: list[Any] = []  # the pynvml module once initialised; empty when there is no NVIDIA driver
_NVML_LOCK = threading.Lock()


def _nvml() -> Any | None:
    with _NVML_LOCK:
        if not _NVML:
            try:
                import pynvml

                pynvml.nvmlInit()
                _NVML.append(pynvml)
            except Exception:  # no driver, no library, no device: the CPU path is the answer
                _NVML.append(None)
        return _NVML[0]


def _cpu_info() -> tuple[str, frozenset[str]]:
    name, flags = "", frozenset[str]()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and not name:
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return name or platform.processor() or "CPU", flags


def device_info() -> DeviceInfo:
    """The first NVIDIA GPU as NVML reports it, or the CPU with host memory and the engines' vLLM build."""
    nv = _nvml()
    if nv is not None:
        count = nv.nvmlDeviceGetCount()
        if count:
            handle = nv.nvmlDeviceGetHandleByIndex(0)
            name = nv.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else str(name)
            major, minor = nv.nvmlDeviceGetCudaComputeCapability(handle)
            total = int(nv.nvmlDeviceGetMemoryInfo(handle).total)
            return DeviceInfo("cuda", name, total, major * 10 + minor, count)
    cores = psutil.cpu_count(logical=True) or 1
    name, flags = _cpu_info()
    # Without a GPU the build matters: vLLM's CUDA build (its Docker image) cannot run there at all.
    memory = int(psutil.virtual_memory().total)
    return DeviceInfo("cpu", f"{name} ({cores} cores)", memory, cpu_flags=flags, vllm_build=vllm_build())


def free_memory() -> tuple[int, int | None]:
    """Host memory available now (psutil), and the first GPU's free memory (NVML; None without one)."""
    ram = int(psutil.virtual_memory().available)
    nv = _nvml()
    if nv is not None and nv.nvmlDeviceGetCount():
        return ram, int(nv.nvmlDeviceGetMemoryInfo(nv.nvmlDeviceGetHandleByIndex(0)).free)
    return ram, None


def sample_memory(engine_pids: Mapping[str, Sequence[int]]) -> MemorySample:
    """One sample: each engine's memory summed over its processes, and the device total. `engine_pids` holds
    each engine's whole tree as `Engine.pids()` gives it (its API server's engine core and worker included)."""
    now = time.time()
    nv = _nvml()
    if nv is not None and nv.nvmlDeviceGetCount():
        per_pid: dict[int, dict[int, float]] = {}  # pid -> GPU index -> bytes
        gpus_used: dict[int, float] = {}
        used = total = 0.0
        for i in range(nv.nvmlDeviceGetCount()):
            handle = nv.nvmlDeviceGetHandleByIndex(i)
            info = nv.nvmlDeviceGetMemoryInfo(handle)
            used, total = used + info.used, total + info.total
            gpus_used[i] = float(info.used)
            for proc in nv.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.usedGpuMemory is not None:  # None where the driver hides it
                    on = per_pid.setdefault(proc.pid, {})
                    on[i] = on.get(i, 0.0) + float(proc.usedGpuMemory)
        engines: dict[str, float | None] = {}
        by_gpu: dict[str, dict[int, float]] = {}
        for label, tree in engine_pids.items():
            seen = [per_pid[p] for p in tree if p in per_pid]
            # None, not 0, when NVML lists none of the tree (e.g. a container's PID namespace).
            engines[label] = sum(sum(d.values()) for d in seen) if seen else (None if tree else 0.0)
            split: dict[int, float] = {}
            for d in seen:
                for i, b in d.items():
                    split[i] = split.get(i, 0.0) + b
            by_gpu[label] = split
        return MemorySample(now, engines, used, total, "NVML (GPU memory)", by_gpu, gpus_used)
    vm = psutil.virtual_memory()
    engines = {}
    for label, tree in engine_pids.items():
        rss = 0.0
        for pid in tree:
            try:
                rss += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
        engines[label] = rss
    return MemorySample(now, engines, float(vm.total - vm.available), float(vm.total), "RSS (host memory, psutil)")


class Sampler:
    """Calls `sample()` every `interval_s` in a daemon thread; errors are kept for the user to see."""

    def __init__(self, sample: Callable[[], None], interval_s: float = 1.0):
        self._sample = sample
        self.interval_s = interval_s
        self.last_error: str = ""
        self.errors = 0
        self._stop = threading.Event()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the loop (idempotent, and safe from two engine starts at once)."""
        with self._starting:
            if self._thread and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the loop and wait for it."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._sample()
                self.last_error = ""
            except Exception as exc:  # shown in the UI's status line, never swallowed silently
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
