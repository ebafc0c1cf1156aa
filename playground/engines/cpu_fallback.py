"""Environment for vLLM CPU servers so AWQ/GPTQ models run on CPUs without AVX512."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

# Folder holding sitecustomize.py, which adds a PyTorch `_C::cpu_gemm_wna16` when vLLM lacks it.
SHIM_DIR = Path(__file__).resolve().parent / "cpu_shim"


def cpu_has_avx512(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU reports avx512f, i.e. vLLM loads its AVX512 library with the real kernel."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and " avx512f" in line for line in text.splitlines())


def with_cpu_shim(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Copy of `env` (default os.environ) with the shim folder first on PYTHONPATH."""
    result = dict(os.environ if env is None else env)
    parts = [p for p in result.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(SHIM_DIR)]
    result["PYTHONPATH"] = os.pathsep.join([str(SHIM_DIR), *parts])
    return result
