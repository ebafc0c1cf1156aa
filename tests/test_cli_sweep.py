"""`python -m playground sweep --json` as a user runs it, the JSON shape exactly. It sweeps the session's
engines through attached specs (endpoint=, api_key=): the CLI starting and stopping its own engines is
tests/test_cli.py's subject, and two more starts here would only repeat it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.arena.core import Arena
from tests.test_cli import run_cli

pytestmark = pytest.mark.engine
LEVEL_KEYS = [
    "concurrency",
    "output_tok_s",
    "requests_s",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "itl_p50_ms",
    "itl_p95_ms",
    "e2e_p50_ms",
    "e2e_p95_ms",
    "kv_cache_peak",
    "memory_peak_mb",
    "requests",
    "errors",
    "output_tokens",
    "prompt_tokens",
    "duration_s",
]


def attached_pair(arena: Arena) -> list[str]:
    """--a and --b that attach the CLI to the session's two engines (nothing starts)."""
    args = []
    for name in ("A", "B"):
        engine = arena.slot(name).engine
        assert engine is not None
        spec = f"{engine.spec.model},endpoint={engine.base_url},api_key={engine.api_key}"
        args += [f"--{name.lower()}", spec]
    return args


def test_sweep_json(arena: Arena, data_dir: Path) -> None:
    args = ["--levels", "2,1", "--requests", "2", "--input-tokens", "16", "--output-tokens", "6", "--json"]
    out = run_cli("sweep", *attached_pair(arena), *args, data=data_dir)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "[sweep]" in out.stderr and "A: concurrency 2 (2/2)" in out.stderr, "progress goes to stderr"
    result = json.loads(out.stdout)
    assert list(result) == ["cancelled", "settings", "crossover", "engines"]
    assert result["cancelled"] is False
    assert result["settings"] == {"levels": [1, 2], "requests_per_level": 2, "input_tokens": 16, "output_tokens": 6}
    assert isinstance(result["crossover"], str) and result["crossover"]
    assert [e["slot"] for e in result["engines"]] == ["A", "B"]
    for engine in result["engines"]:
        assert list(engine) == ["slot", "label", "error", "notes", "levels"]
        assert engine["label"].startswith(engine["slot"] + ": ") and engine["error"] == ""
        assert [lv["concurrency"] for lv in engine["levels"]] == [1, 2]
        for level in engine["levels"]:
            assert list(level) == LEVEL_KEYS
            counts = [level[k] for k in ("requests", "errors", "output_tokens", "prompt_tokens")]
            assert counts == [2, 0, 2 * 6, 2 * 16], "ignore_eos and prompts of exactly 16 tokens"
            assert all(level[k] is not None for k in LEVEL_KEYS[:7])


def test_sweep_bad_levels_is_a_usage_error(data_dir: Path) -> None:
    out = run_cli("sweep", "--levels", "0,x", "--json", data=data_dir)
    assert out.returncode == 2 and "not '0', 'x'" in out.stderr and out.stdout == ""
