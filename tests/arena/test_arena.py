"""The core against two real vLLM CPU servers: compare, live figures, faults, restart."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from playground.arena.core import UI_UPDATE_S, Arena
from playground.engines.cpu import cpu_engine_env
from playground.engines.server import START_LOG_ENV, Engine, EngineError
from playground.measure.generation import GenerationParams
from playground.measure.specs import EngineSpec, SpecError
from tests.conftest import DEVICE, SPEC_B
from tests.engine_starts import read_starts

pytestmark = pytest.mark.engine
GREEDY = GenerationParams(max_tokens=24, temperature=0.0, chat=False)


def test_fair_compare_streams_both_answers(arena: Arena) -> None:
    progress = list(arena.compare("The function returns", GREEDY, "fair"))
    assert progress[-1].done and len(progress) >= 2
    # fair mode: B starts only after A's answer is whole, so no snapshot shows B's text beside a partial
    # A. (Not "some snapshot shows A alone": on a loaded machine A's tokens can land in one burst
    # just before B's first token, inside one 50 ms update.)
    final_a = progress[-1].texts["A"]
    assert final_a and all(p.texts["A"] == final_a for p in progress if p.texts["B"])
    for answer in progress[-1].answers.values():
        assert answer.error == "", answer.error
        assert answer.text.strip()
        t = answer.timing
        assert t is not None and t.prompt_tokens and t.prompt_tokens > 0
        assert 0 < t.output_tokens <= GREEDY.max_tokens
        assert t.ttft_ms is not None and 0 < t.ttft_ms < t.e2e_ms
    records = [r for r in arena.history if r.request_no == arena.history[-1].request_no]
    assert sorted(r.slot for r in records) == ["A", "B"]


def test_ui_updates_are_bounded_while_figures_use_every_token(arena: Arena) -> None:
    params = GenerationParams(max_tokens=64, temperature=0.0, chat=False, ignore_eos=True)
    started = time.perf_counter()
    stamps = [(time.perf_counter(), p) for p in arena.compare("The function returns", params, "simultaneous")]
    elapsed = time.perf_counter() - started
    tokens = sum(a.timing.output_tokens for a in stamps[-1][1].answers.values() if a.timing)
    # At most one snapshot per UI_UPDATE_S (50 ms) while streaming, plus the final one.
    assert len(stamps) <= elapsed / UI_UPDATE_S + 2
    gaps = [b[0] - a[0] for a, b in zip(stamps[:-3], stamps[1:-2], strict=True)]
    assert all(g >= UI_UPDATE_S * 0.9 for g in gaps), gaps
    assert len(stamps) < tokens, "the shells saw fewer updates than there were tokens"
    for answer in stamps[-1][1].answers.values():
        t = answer.timing
        assert t is not None and t.output_tokens == 64, "every token counted, from the per-chunk usage"


def test_simultaneous_compare(arena: Arena) -> None:
    a, b = arena.compare_once("Return a list of", GREEDY, "simultaneous")
    assert not a.error and not b.error
    assert a.text and b.text


def test_live_figures_come_from_the_engines(arena: Arena) -> None:
    arena.watch.sample_once()
    for name in ("A", "B"):
        m = arena.slot(name).metrics
        assert m.kv_cache_tokens and m.kv_cache_tokens > 0, "vllm:cache_config_info read from /metrics"
        assert m.kv_cache_usage is not None and 0 <= m.kv_cache_usage <= 1
        mem = arena.watch.memory_mb(name)
        assert mem is not None and mem > 100, "an engine's process tree holds at least 100 MB"
    assert "RSS" in arena.samples[-1].source or "NVML" in arena.samples[-1].source


def test_bad_requests_get_clear_messages(arena: Arena) -> None:
    with pytest.raises(SpecError, match="empty"):
        list(arena.compare("  ", GREEDY))
    with pytest.raises(SpecError, match="context"):
        list(arena.compare("hi", GenerationParams(max_tokens=5000)))
    # passes the pre-check, but the prompt alone is longer than the 512-token context: vLLM refuses it
    # (vLLM 0.32 shortens max_tokens itself when only prompt + max_tokens overflow)
    long_prompt = "word " * 700
    a, b = arena.compare_once(long_prompt, GenerationParams(max_tokens=16, chat=False))
    for answer in (a, b):
        assert "refused" in answer.error and "HTTP 400" in answer.error


@pytest.fixture
def own_b(arena: Arena, data_dir: Path) -> Iterator[Arena]:
    """A pair whose B is this test's own engine (it is killed and restarted) and whose A attaches to the
    session's A, which it only asks (nothing starts for A, and stopping an attached slot leaves it running)."""
    a = arena.slot("A").engine
    assert a is not None
    spec_a = EngineSpec(model="unused", endpoint=a.base_url, api_key=a.api_key)
    core = Arena((spec_a, SPEC_B), data_dir=data_dir / "own-b", device=arena.device)
    try:
        for name in ("A", "B"):
            assert core.start(name).state == "ready"
        yield core
    finally:
        core.shutdown()


def test_killed_engine_mid_stream_leaves_the_other_working(own_b: Arena) -> None:
    arena = own_b
    params = GenerationParams(max_tokens=400, temperature=0.8, seed=1, chat=False)
    engine_b = arena.slot("B").engine
    assert engine_b is not None
    tree = engine_b.pids()
    killed = False
    for progress in arena.compare("Once upon a time", params, "simultaneous"):
        if not killed and progress.texts.get("B"):
            os.killpg(tree[0], signal.SIGKILL)
            killed = True
    assert killed, "B streamed at least one chunk before the kill"
    a, b = progress.answers["A"], progress.answers["B"]
    assert a.error == "" and a.text
    assert b.error, "B's answer reports the failure"
    assert arena.status("B").state == "failed"
    assert "signal 9" in arena.status("B").message
    arena.stop("B")
    time.sleep(1)
    assert not [p for p in tree if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    # the killed slot restarts and answers again; A was never touched
    assert arena.start("B").state == "ready"
    assert not arena.compare_once("The", GREEDY)[1].error


def test_each_start_of_the_shared_pair_is_counted(arena: Arena) -> None:
    """Engine appends each start to the run's log (scripts/test prints the bill): the pair's are there."""
    starts = read_starts(Path(os.environ[START_LOG_ENV]))
    for name in ("A", "B"):
        took = arena.status(name).startup_s
        assert took is not None
        mine = [s for s in starts if s.name == name and s.outcome == "ready" and abs(s.seconds - took) < 1.0]
        assert mine and all(s.forked == (DEVICE.kind == "cpu") for s in mine), "CPU engines fork from the launcher"


def test_engines_are_private_to_the_app(arena: Arena) -> None:
    engine = arena.slot("A").engine
    assert engine is not None
    assert engine.base_url.startswith("http://127.0.0.1:")
    denied = httpx.post(f"{engine.base_url}/v1/completions", json={"model": engine.model_id, "prompt": "x"})
    assert denied.status_code == 401, "no key, no answer"
    for pid in engine.pids():
        assert engine.api_key not in " ".join(psutil.Process(pid).cmdline()), "the key is not on any command line"


def test_attach_to_existing_endpoints(arena: Arena, data_dir: Path) -> None:
    """A slot can point at a vLLM server the playground did not start (here: the session's own)."""
    a, b = (arena.slot(n).engine for n in ("A", "B"))
    assert a is not None and b is not None
    specs = [EngineSpec(model="unused", endpoint=e.base_url, api_key=e.api_key) for e in (a, b)]
    attached = Arena(specs, data_dir=data_dir / "attached", device=arena.device)
    try:
        for name in ("A", "B"):
            assert attached.start(name).state == "ready"
        answers = attached.compare_once("The function returns", GREEDY)
        assert [x.error for x in answers] == ["", ""] and all(x.text for x in answers)
        attached.watch.sample_once()
        assert attached.samples[-1].engines == {}, "no process of ours to measure for an attached endpoint"
    finally:
        attached.shutdown()
    assert arena.status("A").state == "ready", "stopping an attached slot leaves the server running"


def test_port_in_use_is_reported(arena: Arena, data_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        spec = EngineSpec(
            model=str(data_dir / "tiny" / "bf16"),
            max_model_len=512,
            enforce_eager=True,
            gpu_memory_utilization=0.25,
            extra_args=("--port", str(port)),
        )
        env = cpu_engine_env(0, DEVICE) if DEVICE.kind == "cpu" else {}  # as the arena launches one
        engine = Engine(spec, name="P", log_dir=data_dir / "logs", env=env)
        engine.launch()
        try:
            with pytest.raises(EngineError, match="port is already in use"):
                engine.wait_ready(timeout_s=300)
        finally:
            engine.stop()
