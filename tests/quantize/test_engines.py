"""Models quantized here, served by real vLLM CPU engines beside their base: answers, the kernel vLLM
picked, KL against bf16, the weights against the prediction, and the "Run this yourself" line
against the engine's own command line. The load button is driven through the real Gradio server."""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from playground.arena.core import SLOT_NAMES, Arena
from playground.engines.server import LAUNCHER_NAME
from playground.measure.generation import GenerationParams
from playground.quantize.runner import QuantOutcome
from tests.conftest import lend_shared
from tests.quantize.conftest import serve_argv, vllm_engine_args

pytestmark = pytest.mark.engine
GREEDY = GenerationParams(max_tokens=16, temperature=0.0, chat=False)


@pytest.fixture(scope="module")
def qarena(arena: Arena, quantized: dict[str, QuantOutcome]) -> Iterator[Arena]:
    """The session's engines (A: tiny bf16, B: its AWQ build). B serves the models quantized here
    while this module runs (loaded by the UI's button): two more engines beside the session's would not
    fit a small CI machine, so the shared pair is lent. B gets its own settings back before the next test
    that uses the pair (tests/conftest.py), or never, when no test after this module needs it."""
    with lend_shared(arena, "B serves the models quantized here; two more engines would not fit CI's memory"):
        yield arena


@pytest.fixture(scope="module")
def qclient(qarena: Arena, client: Client) -> Client:
    """The session's app, served for real over those engines."""
    return client


def wait_ready(arena: Arena, name: str, model: str, timeout_s: float = 600) -> None:
    """Until the slot's engine (not only its settings: the old engine answers until the restart) runs `model`."""
    deadline = time.monotonic() + timeout_s

    def running() -> str:
        engine = arena.slot(name).engine
        return engine.spec.model if engine is not None else ""

    while not (running() == model and arena.status(name).state == "ready"):
        status = arena.status(name)
        assert status.state != "failed" or running() != model, status.message
        assert time.monotonic() < deadline, f"{name} not ready: {status}"
        time.sleep(1)


@pytest.mark.parametrize("scheme", ["FP8_DYNAMIC", "W4A16", "W8A8"])
def test_a_quantized_model_serves_beside_its_base(
    qarena: Arena, qclient: Client, quantized: dict[str, QuantOutcome], scheme: str
) -> None:
    made = quantized[scheme]
    if qarena.slot("B").spec.model != str(made.out):  # the "Compare with the base" button, for real
        message = qclient.predict(str(made.out), "tiny/bf16", "B", api_name="/load_quantized")
        assert message.startswith("◐ starting"), message
        wait_ready(qarena, "B", str(made.out))
    base_engine = qarena.slot("A").engine
    assert qarena.slot("A").spec.model == "tiny/bf16" and qarena.status("A").state == "ready"
    a, b = qarena.compare_once("The default value is", GREEDY, "fair")
    assert not a.error and not b.error and b.text.strip(), (a.error, b.error)
    assert b.vllm_serve.startswith("VLLM_CPU_KVCACHE_SPACE=1 vllm serve ") and str(made.out) in b.vllm_serve
    assert b.llmcompressor == made.code and f"model={str(made.out)!r}" in b.python
    assert a.llmcompressor == ""
    engine = qarena.slot("B").engine
    assert engine is not None
    report = engine.log_report()
    assert report.kernel and report.kernel.endswith("Kernel"), report
    card = qclient.predict(api_name="/refresh")[1]
    assert f"kernel **{report.kernel}**" in card and "Run this yourself" in card
    assert "Made here with llm-compressor" in card
    quality = qarena.insights.quality("The default value is", max_tokens=16)
    assert quality.kl_mean is not None and quality.kl_mean > 0, "the quantization changed the logprobs"
    _, check = qarena.insights.anatomy("B")
    assert check is not None and check.method.startswith(f"compressed-tensors {scheme}")
    assert check.error is not None and abs(check.error) < 0.01, check  # weights on disk vs config.json
    assert qarena.slot("A").engine is base_engine, "the base kept running: only B was restarted"
    print(f"{scheme}: {report.kernel}, KL {quality.kl_mean:.4f}, weights error {check.error:+.4f}")


def test_the_serve_line_parses_to_what_each_engine_ran(qarena: Arena) -> None:
    """The user's `vllm serve` line and the command the playground started the engine with (the first
    line of its log) are the same engine settings in vLLM's own parsers."""
    commands: list[tuple[str, list[str]]] = []
    for name in SLOT_NAMES:
        engine = qarena.slot(name).engine
        assert engine is not None and engine.log_path is not None
        launched = shlex.split(engine.log_path.read_text().splitlines()[0].removeprefix("$ "))
        argv = launched[launched.index(LAUNCHER_NAME) + 1 :]
        commands += [("serve", serve_argv(qarena.insights.run_yourself(name).vllm_serve)), ("api_server", argv)]
    parsed = vllm_engine_args(commands)
    for served, ran in zip(parsed[::2], parsed[1::2], strict=True):
        assert {k for k in served if served[k] != ran[k]} == {"served_model_name"}
        assert served["model"] == ran["model"] and served["max_model_len"] == ran["max_model_len"]


def test_the_plan_check_and_a_bad_load_through_the_ui(qclient: Client, tmp_path: Path) -> None:
    refused = qclient.predict("tiny/bf16", "W4A16", None, 4, 128, 96, "", api_name="/check_quantize")
    assert refused.startswith("✕ group size 96 does not divide the input width 256 of q_proj"), refused
    fine = qclient.predict("tiny/bf16", "FP8_DYNAMIC", None, 4, 128, 0, "", api_name="/check_quantize")
    assert "**FP8_DYNAMIC**" in fine and "predicted" in fine and "fits" in fine, fine
    nothing = qclient.predict(str(tmp_path), "tiny/bf16", "B", api_name="/load_quantized")
    assert nothing.startswith("✕") and "not a finished checkpoint" in nothing
