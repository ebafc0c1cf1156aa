"""`python -m playground compare --json` as a user runs it: its own engines, real JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.arena.core import Arena
from playground.engines.server import START_LOG_ENV
from tests.conftest import DEVICE
from tests.engine_starts import read_starts

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parent.parent
KEYS = {
    "label",
    "model",
    "quantization",
    "text",
    "ttft_ms",
    "decode_tok_s",
    "itl_p50_ms",
    "itl_p95_ms",
    "e2e_ms",
    "prompt_tokens",
    "output_tokens",
    "memory_mb",
}


def run_cli(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PLAYGROUND_DATA": str(data), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "playground", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900
    )


def test_compare_json(data_dir: Path) -> None:
    method = "gptq"
    out = run_cli(
        "compare",
        "--a",
        "tiny/bf16",
        "--b",
        "tiny/gptq,quantization=gptq",
        "--prompt",
        "The value",
        "--max-tokens",
        "12",
        "--completion",
        "--json",
        data=data_dir,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["mode"] == "fair"
    a, b = result["engines"]
    assert KEYS <= set(a) and KEYS <= set(b)
    assert b["quantization"] == method
    # On CPUs without AVX-512 the GPTQ engine runs the playground's fallback kernel, and says so.
    assert bool(b["engine_notes"]) == (not DEVICE.native_4bit_on_cpu)
    for e in (a, b):
        assert e["text"] and 0 < e["output_tokens"] <= 12 and e["prompt_tokens"] > 0 and e["memory_mb"] > 0


def test_engine_that_cannot_start_fails_clearly(arena: Arena, data_dir: Path, tmp_path: Path) -> None:
    """B cannot start; A (the session's bf16 engine, attached: the CLI's own starts are test_compare_json's
    subject) still answers."""
    (tmp_path / "empty-model").mkdir()  # passes the pre-launch checks; vLLM finds no model in it
    engine = arena.slot("A").engine
    assert engine is not None
    out = run_cli(
        "compare",
        "--a",
        f"tiny/bf16,endpoint={engine.base_url},api_key={engine.api_key}",
        "--b",
        str(tmp_path / "empty-model"),
        "--prompt",
        "Hi",
        "--max-tokens",
        "4",
        "--json",
        data=data_dir,
    )
    assert out.returncode == 1
    assert "engine B" in out.stderr and "Invalid repository ID or local directory" in out.stderr
    # the CLI's engine started in a child process; the run's engine log counts it for this test: B
    # launched (the empty folder passes the pre-launch checks) and failed; attached A started nothing
    this_test = os.environ["PYTEST_CURRENT_TEST"]
    here = [s for s in read_starts(Path(os.environ[START_LOG_ENV])) if s.test == this_test]
    assert sorted((s.name, s.outcome) for s in here) == [("B", "failed")]
    a, b = json.loads(out.stdout)["engines"]
    assert a["text"] and a["error"] is None, "A still answers"
    assert b["error"] and b["text"] == ""


def test_bad_spec_is_a_usage_error(data_dir: Path) -> None:
    out = run_cli("compare", "--a", "m,nonsense=1", "--prompt", "x", data=data_dir)
    assert out.returncode == 2 and "unknown engine setting" in out.stderr
    # A model folder that does not exist is refused before either engine starts (issue 22).
    out = run_cli("compare", "--b", "/no/such/model", "--prompt", "x", data=data_dir)
    assert out.returncode == 2 and out.stderr == "error: B: model path /no/such/model does not exist\n"
