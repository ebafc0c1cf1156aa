"""bench/sweep_vs_vllm_bench.py end to end on the CPU: a real tiny engine (the session's bf16 engine,
attached: the bench only sends requests), the playground's sweep and vLLM's own benchmark client (its
module, from one long-lived process) given the same work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.arena.core import Arena

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[1]


def test_both_clients_get_the_same_work(arena: Arena, data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "vs"
    engine = arena.slot("A").engine
    assert engine is not None
    attach = ["--endpoint", engine.base_url, "--api-key", engine.api_key, "--model", engine.model_id]
    work = ["--levels", "2", "--repeats", "2", "--input-tokens", "32", "--output-tokens", "8"]
    args = [*attach, "--tokenizer", engine.spec.model, *work]
    done = subprocess.run(
        [sys.executable, "bench/sweep_vs_vllm_bench.py", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PLAYGROUND_DATA": str(data_dir), "PYTHONPATH": str(ROOT)},
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| 2 |" in done.stdout.splitlines()[-1]  # the table's row for concurrency 2
    report = json.loads((out / "comparison.json").read_text())
    (level,) = report["levels"]
    assert level["concurrency"] == 2
    for who in ("sweep", "bench"):
        runs = level["runs"][who]
        assert len(runs) == 2 and level[who]["runs"] == 2
        for run in runs:
            assert "error" not in run, run
            # 8 requests (two waves, at least 8) of exactly 32 prompt tokens and 8 generated (ignore_eos)
            assert (run["requests"], run["prompt_tokens"], run["output_tokens"]) == (8, 8 * 32, 8 * 8)
            assert run["vllm"]["engine"]["prefix_cache_hits"] == 0  # no prompt shares a cached block
            assert run["first_wave_spread_ms"] is not None and run["first_wave_spread_ms"] >= 0
            assert run["output_tok_s"] > 0 and run["ttft_p50_ms"] > 0
    assert [r["order"] for r in level["runs"]["sweep"]] == [0, 1]  # the order alternates run by run
    assert set(level["agreement"]) == {"ratio", "throughput_ok", "ttft_ok"}
    # vllm bench read the very prompts the sweep's builder wrote, one file per run
    prompts = sorted(out.glob("c2-r*-bench.jsonl"))
    assert len(prompts) == 2
    lines = [json.loads(x)["prompt"] for x in prompts[0].read_text().splitlines()]
    assert len(lines) == 8 and len(set(lines)) == 8
