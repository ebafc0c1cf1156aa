"""Quality figures on real engines: identical engines agree exactly; bf16 vs AWQ 4-bit differ."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from playground.arena.core import Arena
from playground.measure.generation import GenerationParams
from playground.measure.specs import EngineSpec
from tests.conftest import SPEC_A

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "assets" / "reference.txt").read_text()
PROMPT = "The function returns"


@pytest.fixture(scope="module")
def twin(arena: Arena, data_dir: Path) -> Iterator[Arena]:
    """A second bf16 engine of the same checkpoint beside the session's bf16 engine (attached)."""
    engine_a = arena.slot("A").engine
    assert engine_a is not None
    attached = EngineSpec(model="tiny/bf16", endpoint=engine_a.base_url, api_key=engine_a.api_key)
    core = Arena((attached, SPEC_A), data_dir=data_dir / "twin", device=arena.device)
    for name in ("A", "B"):
        core.start(name)
    yield core
    core.shutdown()


def test_same_checkpoint_same_settings_agree_exactly(twin: Arena) -> None:
    report = twin.insights.quality(PROMPT, max_tokens=32, text=TEXT)
    assert report.divergence.agreement == 1.0 and report.divergence.first_divergence is None
    assert report.divergence.tokens_compared > 0
    assert report.kl_mean is not None and report.kl_mean < 1e-6
    assert max(report.kl_free) < 1e-6
    ppl = report.perplexity
    assert ppl is not None and ppl.a is not None and ppl.b is not None
    assert ppl.tokens_scored > 100
    assert math.isclose(ppl.a, ppl.b, rel_tol=1e-6)


def test_bf16_against_quantized_differs_measurably(arena: Arena) -> None:
    report = arena.insights.quality(PROMPT, max_tokens=32, text=TEXT)
    assert report.kl_mean is not None and report.kl_mean > 1e-4, "quantized weights move the distributions"
    ppl = report.perplexity
    assert ppl is not None and ppl.a is not None and ppl.b is not None
    assert abs(ppl.b - ppl.a) / ppl.a > 1e-4
    assert len(report.kl_forced) == len(report.answer_a.token_ids)


def test_quality_cli_json(arena: Arena, data_dir: Path) -> None:
    a, b = (arena.slot(n).engine for n in ("A", "B"))
    assert a is not None and b is not None
    env = {**os.environ, "PLAYGROUND_DATA": str(data_dir), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "playground",
            "quality",
            "--a",
            f"tiny/bf16,endpoint={a.base_url},api_key={a.api_key}",
            "--b",
            f"{b.spec.model},endpoint={b.base_url},api_key={b.api_key}",
            "--prompt",
            PROMPT,
            "--max-tokens",
            "16",
            "--text",
            str(ROOT / "assets" / "reference.txt"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert {"agreement", "first_divergence", "kl_mean", "tokens_compared", "perplexity"} <= set(result)
    assert 0 <= result["agreement"] <= 1 and result["tokens_compared"] > 0
    assert result["perplexity"]["a"] > 1 and result["perplexity"]["b"] > 1


def test_session_summary_after_compares_and_quality(arena: Arena) -> None:
    arena.compare_once("The default value is", GenerationParams(max_tokens=16, chat=False))
    arena.insights.quality(PROMPT, max_tokens=16, text=TEXT)
    arena.watch.sample_once()
    a, b = arena.insights.summary()
    for row in (a, b):
        assert row.weights_gib is not None and row.weights_gib > 0 and row.weights_source
        assert row.kv_tokens and row.kv_tokens > 0
        assert row.decode_tok_s is not None and row.requests >= 1
        assert row.agreement is not None and row.perplexity is not None
    assert b.weights_gib < a.weights_gib, "the 4-bit checkpoint is smaller than bf16"
