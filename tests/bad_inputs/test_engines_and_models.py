"""Engines and models that cannot run: bad forms, paths, endpoints, keys, unknown models, KV caches
that do not fit, engines that never get ready."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from playground.arena.core import Arena
from playground.measure.phases import explain_exit, read_log
from playground.measure.specs import EngineSpec, SpecError, check_spec
from playground.tiny.build import MARKER
from tests.bad_inputs.conftest import (
    FEW,
    attached,
    cli,
    failed_start,
)
from tests.conftest import DEVICE, SPEC_A, SPEC_B, alive

MODEL_NOT_FOUND = (
    "engine stopped (exit code 1): the model could not be found: check the Hugging Face id or local path "
    "(and network access for hub models) — "
)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (["../../../../etc/passwd"], "B: model path ../../../../etc/passwd is a file: give the folder that holds"),
        ([""], "B: model is empty: give a Hugging Face id or a local path"),
        (["tiny/bf16", "fp8"], "B: quantization fp8 does not run on vLLM's CPU build"),
        (["tiny/bf16", "auto", "auto", 0.99], "Value 0.99 is greater than maximum value 0.95."),  # the slider
        (["tiny/bf16", "auto", "auto", 0.25, 4], "B: max_model_len 4 is too small (at least 16)"),
        (["tiny/bf16", "auto", "auto", 0.25, 512, "fp8"], "B: kv_cache_dtype fp8 needs a GPU; use auto on the CPU"),
        (
            ["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 2],
            "B: tensor_parallel_size 2 needs that many GPUs; this machine has 0",
        ),
        (
            ["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 1, "--api-key mine --port=80"],
            "B: extra arguments --api-key, --port are set by the playground itself; remove them",
        ),
        (["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 1, "--seed '1"], "extra engine arguments: No closing"),
        (
            ["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 1, "", "file:///etc/passwd"],
            "B: endpoint 'file:///etc/passwd' must start with http:// or https://",
        ),
        (
            ["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 1, "", "", "", "1"],
            "B: devices=1: the CPU build has no GPUs; remove devices",
        ),
        (
            ["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 1, "", "", "", "the fast one"],
            "devices='the fast one': give GPU indices such as devices=0 or devices=0,1",
        ),
    ],
)
def test_engine_form_refused_before_launch(idle: tuple[str, Arena], form: list[Any], message: str) -> None:
    url, arena = idle
    defaults = ["tiny/bf16", "auto", "auto", 0.25, 512, "auto", True, 1, "", "", "", ""]
    try:
        card = Client(url, verbose=False).predict(*form, *defaults[len(form) :], api_name="/start_b")
        assert f"✕ **Not started:** {message}" in card
    except AppError as exc:  # Gradio's own component checks run before the app's
        assert str(exc) == message
    assert arena.slot("B").engine is None, "nothing was launched"


def test_path_traversal_in_the_tiny_alias(tmp_path: Path) -> None:
    arena = Arena((SPEC_A, SPEC_B), data_dir=tmp_path, device=DEVICE)
    try:
        for model in ("tiny/../../etc", "tiny/../bf16", "tiny/"):
            with pytest.raises(SpecError, match="unknown tiny model .*; choose one of: tiny/awq, tiny/bf16, tiny/gptq"):
                arena.start("A", replace(SPEC_A, model=model))
            assert arena.slot("A").engine is None
    finally:
        arena.shutdown()
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == [MARKER, "awq", "bf16", "gptq"]


def test_model_path_checks() -> None:
    for passwd in ("/etc/passwd", "~/../../etc/passwd"):
        (message,) = check_spec(EngineSpec(model=passwd), DEVICE)
        assert message == f"model path {passwd} is a file: give the folder that holds config.json"
    assert check_spec(EngineSpec(model="/etc"), DEVICE) == [], "a folder is left to vLLM (it names what is missing)"


def test_endpoint_that_never_answers(tmp_path: Path) -> None:
    """An attached endpoint that accepts connections and never replies (a local socket nobody serves)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        spec = EngineSpec(model="m", endpoint=f"http://127.0.0.1:{silent.getsockname()[1]}")
        message, seconds, _ = failed_start(spec, tmp_path, timeout_s=3)
    assert message == f"{spec.endpoint} did not answer /health within 3 s"
    assert seconds < 30


@pytest.mark.engine
def test_over_committed_memory_refused_next_to_a_running_engine(open_app: str, arena: Arena) -> None:
    form = ["tiny/bf16", "auto", "auto", 0.9, 512, "auto", True, 1, "", "", "", ""]
    card = Client(open_app, verbose=False).predict(*form, api_name="/start_b")
    assert "✕ **Not started:** the two engines share one device: gpu_memory_utilization 0.25 + 0.9 = 1.15" in card
    assert arena.status("B").state == "ready", "B was left running"


@pytest.mark.engine
def test_wrong_api_key_for_an_attached_endpoint(arena: Arena, tmp_path: Path) -> None:
    core = Arena(attached(arena, api_key="not-the-key"), data_dir=tmp_path, device=DEVICE)
    try:
        for name in ("A", "B"):
            assert core.start(name).state == "ready", "/health is open; /v1 wants the key"
        answers = core.compare_once("The value", FEW)
        assert [a.error for a in answers] == ["the engine refused the request (HTTP 401): Unauthorized"] * 2
    finally:
        core.shutdown()


@pytest.mark.engine
def test_launched_engine_that_never_becomes_ready(tmp_path: Path, arena: Arena) -> None:
    """A real vLLM launch given 1 s: stopped, its whole process tree gone. The session's pair has started, so
    this process's warm launcher has imported vLLM, as an app's has after its first engine: the engine is forked
    at once and is mid-start at 1 s (ready in 4-5 s here; 13-60 s cold). Stopped before it is ready, it gets
    SIGKILL after a short grace (vLLM ignores SIGTERM until it serves)."""
    message, seconds, seen = failed_start(SPEC_A, tmp_path, timeout_s=1)
    assert message.startswith("engine was not ready after 1 s; see ") and message.endswith(".log")
    assert seen and seconds < 30
    time.sleep(1)
    assert alive(seen) == []


@pytest.mark.engine
def test_unknown_hub_model_without_network(tmp_path: Path) -> None:
    message, seconds, seen = failed_start(replace(SPEC_A, model="nobody-here/no-such-model-xyz"), tmp_path)
    assert message.startswith(MODEL_NOT_FOUND)
    assert "couldn't connect to 'https://huggingface.co'" in message or "Repository Not Found" in message
    print(f"unknown hub model: failed after {seconds:.0f} s")
    assert alive(seen) == []


@pytest.mark.engine
def test_folder_without_a_model(tmp_path: Path) -> None:
    message, _, _ = failed_start(replace(SPEC_A, model="/etc"), tmp_path)
    assert message.startswith(MODEL_NOT_FOUND)
    assert "Invalid repository ID or local directory specified: '/etc'" in message


@pytest.mark.engine
def test_kv_cache_bigger_than_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory over-committed for real: the operator's VLLM_CPU_KVCACHE_SPACE asks for 1000 GiB. vLLM
    checks it against free memory before allocating, so nothing is actually taken from the machine."""
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1000")
    message, _, seen = failed_start(SPEC_A, tmp_path)
    assert message.startswith(
        "engine stopped (exit code 1): not enough free host memory for the KV cache the engine was given "
        "(VLLM_CPU_KVCACHE_SPACE): lower it, or stop what else uses the memory — "
    )
    assert "is less than requested memory for kv (1000.0 GiB)" in message
    assert alive(seen) == []


def test_kv_cache_failure_names_the_cause_not_the_wrapper() -> None:
    log = [
        "(Worker pid=7) ERROR 11-27 06:57:27 [multiproc_executor.py:1063] ValueError: Available memory on node 0 "
        "(17.85/19.84 GiB) on kv cache allocation is less than requested memory for kv (1000.0 GiB).",
        "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
    ]
    message = explain_exit(read_log(log), 1)
    assert "not enough free host memory" in message
    assert message.endswith("less than requested memory for kv (1000.0 GiB).")
    assert "See root cause above" not in message


def test_cli_refuses_a_spec_this_host_cannot_run_before_any_engine_starts(tmp_path: Path) -> None:
    # B is fine; A names GPU 7 (none on the CPU build, and none on a host of fewer GPUs).
    out = cli("compare", "--a", "tiny/bf16,devices=7", "--b", "tiny/awq", "--prompt", "hi", data=tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: A: devices=7: ")
    assert "starting" not in out.stderr  # neither engine was started, not even the good one
    assert not list(tmp_path.rglob("engine-*.log"))
