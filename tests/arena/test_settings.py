"""Instance settings from environment and TOML, visitor limits, and the per-visitor rate limiter."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.arena.settings import AppSettings, RateLimiter, SettingsError, VisitorLimits, load_settings
from playground.measure.generation import GenerationParams, check_generation


def test_defaults_are_open_and_locked_mode_has_limits() -> None:
    assert load_settings({}) == AppSettings()
    assert AppSettings().limits == VisitorLimits(32_000, None, None)
    assert load_settings({"PLAYGROUND_LOCKED": "1"}).limits == VisitorLimits(2_000, 256, 10)
    custom = load_settings({"PLAYGROUND_LOCKED": "yes", "PLAYGROUND_MAX_TOKENS": "64"})
    assert custom.limits == VisitorLimits(2_000, 64, 10)


def test_toml_file_then_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "playground.toml"
    config.write_text('a = "tiny/bf16"\nb = "tiny/awq"\nlocked = true\nrequests_per_minute = 3\nqueue_size = 16\n')
    env = {"PLAYGROUND_CONFIG": str(config), "PLAYGROUND_REQUESTS_PER_MINUTE": "5", "PLAYGROUND_B": "tiny/gptq"}
    settings = load_settings(env)
    assert (settings.a, settings.b, settings.locked, settings.queue_size) == ("tiny/bf16", "tiny/gptq", True, 16)
    assert settings.limits.requests_per_minute == 5


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PLAYGROUND_MAX_TOKENS": "lots"}, "PLAYGROUND_MAX_TOKENS must be a whole number"),
        ({"PLAYGROUND_QUEUE_SIZE": "0"}, "PLAYGROUND_QUEUE_SIZE must be at least 1"),
        ({"PLAYGROUND_LOCKED": "maybe"}, "PLAYGROUND_LOCKED must be 1/0"),
        ({"PLAYGROUND_CONFIG": "/no/such/file.toml"}, "cannot read /no/such/file.toml"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_bad_toml_and_unknown_keys_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("locked = \n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings({"PLAYGROUND_CONFIG": str(bad)})
    typo = tmp_path / "typo.toml"
    typo.write_text("max_token = 5\n")
    with pytest.raises(SettingsError, match="unknown setting.*max_token"):
        load_settings({"PLAYGROUND_CONFIG": str(typo)})


def test_rate_limiter_sliding_window() -> None:
    limiter = RateLimiter(2, window_s=60)
    assert limiter.admit("v1", now=0) == 0 and limiter.admit("v1", now=10) == 0
    assert limiter.admit("v1", now=20) == pytest.approx(40)  # the first event leaves the window at 60
    assert limiter.admit("v2", now=20) == 0, "each visitor has their own window"
    assert limiter.admit("v1", now=60.5) == 0
    assert RateLimiter(None).admit("anyone") == 0


def test_visitor_limits_in_prompt_checks() -> None:
    params = GenerationParams(max_tokens=300)
    problems = check_generation("x" * 2_001, params, max_prompt_chars=2_000, max_tokens_limit=256)
    assert problems == [
        "the prompt has 2,001 characters; the limit here is 2,000",
        "max_tokens 300 is over this instance's limit of 256",
    ]
    assert check_generation("hello", GenerationParams(max_tokens=256), max_tokens_limit=256) == []


def test_text_that_cannot_travel_as_utf8_is_named() -> None:
    from playground.measure.generation import not_text

    assert not_text("plain ü text") == ""
    assert not_text("ab\udcff", "the perplexity text").startswith(
        "the perplexity text is not valid text: character 3 is U+DCFF, a lone surrogate"
    )
