"""Dependencies point one way: the pure modules import no gradio, vllm, pynvml or HTTP client."""

from __future__ import annotations

import json
import subprocess
import sys

PURE = [
    "metrics",
    "prometheus",
    "phases",
    "specs",
    "generation",
    "records",
    "charts",
    "views",
    "quality",
    "memory_math",
    "planner",
    "summary",
    "anatomy",
    "settings",
    "store",
    "report",
    "sweep",
    "sweep_charts",
]
FORBIDDEN = ["gradio", "vllm", "pynvml", "httpx", "torch"]


def test_pure_modules_import_nothing_heavy() -> None:
    code = (
        "import json, sys\n"
        + "".join(f"import playground.{m}\n" for m in PURE)
        + f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_importing_the_ui_builds_nothing() -> None:
    code = "import playground.ui, gradio; print(gradio.context.Context.root_block is None)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
