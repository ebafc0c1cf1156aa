"""Prompts and sampling settings that must be refused or answered clearly: huge, non-UTF-8, NaN, out of
range, NUL, odd seeds."""

from __future__ import annotations

import errno
import re
import time
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from playground.arena.core import Arena
from playground.measure.generation import GenerationParams, check_generation
from playground.measure.specs import SpecError
from tests.bad_inputs.conftest import (
    attached,
    cli,
    compare,
    raw_call,
)
from tests.conftest import DEVICE, SPEC_A, SPEC_B


def test_megabyte_prompt_through_the_ui(idle: tuple[str, Arena]) -> None:
    url, arena = idle
    started = time.monotonic()
    *_, message = compare(Client(url, verbose=False), "x" * 1_000_000)
    assert message == "✕ the prompt has 1,000,000 characters; the limit here is 32,000"
    assert time.monotonic() - started < 60 and arena.history == []


def test_non_utf8_prompt_through_the_api(idle: tuple[str, Arena]) -> None:
    url, arena = idle
    # gradio_client cannot even send a lone surrogate: it encodes its request as UTF-8
    with pytest.raises(UnicodeEncodeError):
        compare(Client(url, verbose=False), "\udcff hi")
    # a raw request can (JSON's \udcff escape); the app refuses it before any engine sees it
    event, data = raw_call(url, "compare", ["\udcff hi", "fair", False, 0.0, 1.0, 8, 0])
    assert event == "complete"
    assert data[4].startswith("✕ the prompt is not valid text: character 1 is U+DCFF, a lone surrogate")
    assert arena.history == [] and arena.saved.runs() == []


def test_non_finite_numbers_through_the_api(idle: tuple[str, Arena]) -> None:
    url, _ = idle
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        compare(Client(url, verbose=False), "hi", temperature=float("nan"))  # gradio_client refuses NaN
    # Gradio's server reads NaN and Infinity in raw JSON; the slider's bounds do not catch NaN, the core does
    event, data = raw_call(url, "compare", ["hi", "fair", False, float("nan"), 1.0, 8, 0])
    assert (event, data[4]) == ("complete", "✕ temperature must be between 0 and 2 (got nan)")
    event, data = raw_call(url, "compare", ["hi", "fair", False, 0.0, float("nan"), 8, 0])
    assert (event, data[4]) == ("complete", "✕ top_p must be above 0 and at most 1 (got nan)")
    # an infinite max_tokens stops in Gradio's Number component: an error event without details
    event, data = raw_call(url, "compare", ["hi", "fair", False, 0.0, 1.0, float("inf"), 0])
    assert (event, data) == ("error", {"error": None})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_tokens": -5}, "✕ max_tokens must be at least 1 (got -5)"),
        (
            {"max_tokens": 10**9},
            "✕ max_tokens 1000000000 does not fit the engine's context of 512 tokens (prompt included): lower it",
        ),
        ({"temperature": 5.0}, "Value 5.0 is greater than maximum value 2."),  # Gradio's slider bounds
        ({"top_p": 0.0}, "Value 0.0 is less than minimum value 0.05."),
        (
            {"mode": "fast"},
            "Value: 'fast' (type: <class 'str'>) is not in the list of choices: ['fair', 'simultaneous']",
        ),
    ],
)
def test_out_of_range_settings_through_the_ui(idle: tuple[str, Arena], changes: dict[str, Any], message: str) -> None:
    url, arena = idle
    try:
        *_, shown = compare(Client(url, verbose=False), "The value", **changes)
    except AppError as exc:  # Gradio's own component checks run before the app's
        shown = str(exc)
    assert shown == message
    assert arena.history == []


def test_core_refuses_what_the_ui_cannot_send(tmp_path: Path) -> None:
    """NaN, inf, top_p 0, an unknown mode and lone surrogates at the core, where the CLI and scripts call it."""
    arena = Arena((SPEC_A, SPEC_B), data_dir=tmp_path, device=DEVICE)
    try:
        cases = [
            ("hi", GenerationParams(temperature=float("nan")), "fair", "temperature must be between 0 and 2 (got nan)"),
            ("hi", GenerationParams(temperature=float("inf")), "fair", "temperature must be between 0 and 2 (got inf)"),
            ("hi", GenerationParams(top_p=0.0), "fair", "top_p must be above 0 and at most 1 (got 0.0)"),
            ("hi", GenerationParams(), "fast", "mode must be one of fair, simultaneous (got 'fast')"),
            ("ok \ud800", GenerationParams(), "fair", "character 4 is U+D800, a lone surrogate"),
        ]
        for prompt, params, mode, message in cases:
            with pytest.raises(SpecError, match=re.escape(message)):
                list(arena.compare(prompt, params, mode))
        assert arena.history == []
    finally:
        arena.shutdown()
    assert check_generation("emoji 🤖, é, 中文", GenerationParams()) == [], "real Unicode is fine"


def test_cli_prompt_limits(tmp_path: Path) -> None:
    # Linux caps one argument at 128 KiB: a 1 MB prompt never reaches the CLI
    with pytest.raises(OSError) as refused:
        cli("compare", "--prompt", "x" * 1_000_000, data=tmp_path)
    assert refused.value.errno == errno.E2BIG
    out = cli("compare", "--prompt", "x" * 100_000, data=tmp_path)
    assert out.returncode == 2
    assert "error: the prompt has 100,000 characters; the limit here is 32,000\n" in out.stderr


def test_cli_non_utf8_bytes_and_bad_numbers(tmp_path: Path) -> None:
    out = cli("compare", "--prompt", b"caf\xe9", data=tmp_path)  # Latin-1 bytes: argv decodes them to U+DCE9
    assert out.returncode == 2
    assert "error: the prompt is not valid text: character 4 is U+DCE9, a lone surrogate" in out.stderr
    out = cli("compare", "--prompt", "hi", "--max-tokens", "-5", "--temperature", "nan", "--top-p", "0", data=tmp_path)
    assert out.returncode == 2
    assert (
        "error: max_tokens must be at least 1 (got -5); temperature must be between 0 and 2 (got nan); "
        "top_p must be above 0 and at most 1 (got 0.0)\n"
    ) in out.stderr
    out = cli("compare", "--prompt", "hi", "--mode", "fast", data=tmp_path)
    assert out.returncode == 2 and "argument --mode: invalid choice: 'fast'" in out.stderr


@pytest.mark.engine
def test_nul_character_in_the_prompt(open_app: str, arena: Arena) -> None:
    text_a, text_b, _, _, message = compare(Client(open_app, verbose=False), "The\x00 value")
    assert text_a and text_b and message == "", "vLLM tokenizes NUL like any character"
    run = arena.saved.runs(limit=1)[0]
    assert run.prompt == "The\x00 value" and [a.error for a in run.answers] == ["", ""]
    assert "The\\u0000 value" in arena.saved.export("json", run_id=run.id).read_text()
    for fmt in ("csv", "html"):
        assert "The\x00 value" in arena.saved.export(fmt, run_id=run.id).read_text()


@pytest.mark.engine
def test_seed_out_of_range_is_the_engines_answer(open_app: str) -> None:
    *_, message = compare(Client(open_app, verbose=False), "The value", seed=2**63)
    assert message.startswith("✕ **A:** the engine refused the request (HTTP 400): 1 validation error")
    assert "Input should be less than or equal to 9223372036854775807" in message and "**B:**" in message


@pytest.mark.engine
def test_huge_max_tokens_where_the_context_is_unknown(arena: Arena, tmp_path: Path) -> None:
    """Attached without max_model_len the app cannot check; vLLM refuses max_tokens over its context."""
    core = Arena(attached(arena, max_model_len=None), data_dir=tmp_path, device=DEVICE)
    try:
        for name in ("A", "B"):
            core.start(name)
        for answer in core.compare_once("The value", GenerationParams(max_tokens=10**9, chat=False)):
            assert answer.text == ""
            assert answer.error == (
                "the engine refused the request (HTTP 400): max_tokens=1000000000 cannot be greater than "
                "max_model_len=512. Please request fewer output tokens. (parameter=max_tokens, value=1000000000)"
            )
    finally:
        core.shutdown()
