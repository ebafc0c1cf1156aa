"""The concurrency sweep on the session's two real engines: the core, cancel, and the UI tab."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from gradio_client import Client

from playground.arena import loadgen
from playground.arena.core import Arena
from playground.arena.loadgen import SweepBusy
from playground.measure.generation import GenerationParams
from playground.measure.specs import SpecError
from playground.measure.sweep import SweepResult, SweepSettings
from tests.conftest import DEVICE, SPEC_A, SPEC_B

pytestmark = pytest.mark.engine
SMALL = SweepSettings(levels=(1, 2), requests_per_level=4, input_tokens=24, output_tokens=8)
# Long enough per request that a cancel lands in the middle of the sweep.
LONGER = SweepSettings(levels=(1, 2, 4), requests_per_level=4, input_tokens=24, output_tokens=64)


@pytest.fixture(scope="module")
def swept(arena: Arena) -> tuple[SweepResult, list[tuple[float, str]]]:
    progress: list[tuple[float, str]] = []
    result = arena.sweeps.run(SMALL, on_progress=lambda f, text: progress.append((f, text)))
    return result, progress


def assert_ready(arena: Arena) -> None:
    assert [arena.status(n).state for n in ("A", "B")] == ["ready", "ready"]
    answers = arena.compare_once("The value", GenerationParams(max_tokens=4, chat=False))
    assert all(a.text and not a.error for a in answers), "both engines still answer"


def test_every_level_does_the_same_work(swept: tuple[SweepResult, list[tuple[float, str]]]) -> None:
    result, _ = swept
    assert not result.cancelled
    assert [e.slot for e in result.engines] == ["A", "B"]
    for engine in result.engines:
        assert engine.error == "", engine.error
        assert [lv.concurrency for lv in engine.levels] == [1, 2]
        for lv in engine.levels:
            assert (lv.requests, lv.errors) == (4, 0)
            # ignore_eos: every request generates exactly output_tokens; prompts are exactly input_tokens.
            assert lv.output_tokens == 4 * SMALL.output_tokens
            assert lv.prompt_tokens == 4 * SMALL.input_tokens
            assert lv.output_tok_s and lv.output_tok_s > 0 and lv.requests_s and lv.requests_s > 0
            assert lv.ttft_p50_ms is not None and lv.ttft_p95_ms is not None
            assert 0 < lv.ttft_p50_ms <= lv.ttft_p95_ms
            assert lv.itl_p50_ms is not None and lv.itl_p95_ms is not None
            assert 0 <= lv.itl_p50_ms <= lv.itl_p95_ms
            assert lv.e2e_p50_ms is not None and lv.e2e_p95_ms is not None and lv.e2e_p50_ms <= lv.e2e_p95_ms
            assert lv.kv_cache_peak is not None and 0 <= lv.kv_cache_peak <= 1
            if DEVICE.kind == "cpu":
                assert lv.memory_peak_mb and lv.memory_peak_mb > 0
    a, b = result.engines
    assert a.started_at < a.finished_at <= b.started_at < b.finished_at, "A is swept, then B, never both at once"


def test_progress_goes_forward_level_by_level(swept: tuple[SweepResult, list[tuple[float, str]]]) -> None:
    _, progress = swept
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and progress[-1][1] == "done"
    texts = [t for _, t in progress]
    for slot in ("A", "B"):
        assert f"{slot}: concurrency 1 (1/2)" in texts and f"{slot}: concurrency 2 (2/2)" in texts


def test_cancel_stops_early_and_leaves_the_engines_ready(arena: Arena) -> None:
    cancel = threading.Event()

    def on_progress(fraction: float, text: str) -> None:
        if text.startswith("A: concurrency 2"):
            cancel.set()

    result = arena.sweeps.run(LONGER, on_progress=on_progress, cancel=cancel)
    assert result.cancelled
    a, b = result.engines
    assert [lv.concurrency for lv in a.levels] == [1], "the interrupted level is left out"
    assert b.levels == () and b.notes == ("not swept: the sweep was cancelled",)
    assert_ready(arena)


def test_one_sweep_at_a_time_and_bad_settings(arena: Arena) -> None:
    with loadgen.one_at_a_time(arena.sweeps), pytest.raises(SweepBusy, match="a sweep is already running"):
        arena.sweeps.run(SMALL)
    with pytest.raises(SpecError, match="exceed the engines' context of 512"):
        arena.sweeps.run(SweepSettings(levels=(1,), input_tokens=500, output_tokens=100))


def test_engines_not_started_are_reported_per_engine(tmp_path: Path) -> None:
    idle = Arena((SPEC_A, SPEC_B), data_dir=tmp_path, device=DEVICE)
    result = idle.sweeps.run(SMALL, slots=("B",))
    (b,) = result.engines
    assert b.levels == () and b.error == "engine B is not ready (not started)"


def test_sweep_through_the_ui(client: Client) -> None:
    message, table, throughput, latency = client.predict("1,2", 4, 24, 8, api_name="/sweep")
    assert "output throughput" in message or "within 2 %" in message, message
    assert [row[1] for row in table["data"]] == [1, 2, 1, 2]
    assert throughput is not None and latency is not None
    message, *_ = client.predict("0,x", 4, 24, 8, api_name="/sweep")
    assert "not '0', 'x'" in message
    page = " ".join(str(c.get("props", {}).get("value", "")) for c in client.config["components"])
    assert "Checked against vLLM's own benchmark client" in page and "docs/performance.md" in page


def test_ui_refuses_a_second_sweep_and_cancels(client: Client, arena: Arena) -> None:
    job = client.submit("1,2,4", 4, 24, 64, api_name="/sweep")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # the progress bar says which level runs
        units = job.status().progress_data or []
        if any("concurrency" in (u.desc or "") for u in units):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the sweep's progress never named a level")
    message, *_ = client.predict("1", 4, 24, 8, api_name="/sweep")
    assert "a sweep is already running" in message
    message, table, *_ = client.predict(api_name="/cancel_sweep")
    assert "Cancelled" in message
    assert_ready(arena)
