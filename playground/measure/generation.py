"""Sampling settings for one compare, and the checks a prompt must pass before it is sent (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_PROMPT_CHARS = 32_000
MODES = ("fair", "simultaneous")


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings sent with every request."""

    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = 0
    chat: bool = True
    ignore_eos: bool = False  # vLLM's extra sampling parameter: always generate max_tokens tokens


def check_generation(
    prompt: str,
    params: GenerationParams,
    *,
    max_model_len: int | None = None,
    mode: str = "fair",
    max_prompt_chars: int = MAX_PROMPT_CHARS,
    max_tokens_limit: int | None = None,
) -> list[str]:
    """Problems with a prompt and its settings, each a sentence for the user; empty when fine.

    `max_prompt_chars` and `max_tokens_limit` are the instance's limits for visitors."""
    problems = []
    if not prompt.strip():
        problems.append("the prompt is empty: type something to send to both engines")
    elif len(prompt) > max_prompt_chars:
        problems.append(f"the prompt has {len(prompt):,} characters; the limit here is {max_prompt_chars:,}")
    elif bad := not_text(prompt):
        problems.append(bad)
    if params.max_tokens < 1:
        problems.append(f"max_tokens must be at least 1 (got {params.max_tokens})")
    elif max_tokens_limit is not None and params.max_tokens > max_tokens_limit:
        problems.append(f"max_tokens {params.max_tokens} is over this instance's limit of {max_tokens_limit}")
    elif max_model_len is not None and params.max_tokens >= max_model_len:
        problems.append(
            f"max_tokens {params.max_tokens} does not fit the engine's context of {max_model_len} tokens "
            "(prompt included): lower it"
        )
    if not (math.isfinite(params.temperature) and 0 <= params.temperature <= 2):
        problems.append(f"temperature must be between 0 and 2 (got {params.temperature})")
    if not (math.isfinite(params.top_p) and 0 < params.top_p <= 1):
        problems.append(f"top_p must be above 0 and at most 1 (got {params.top_p})")
    if mode not in MODES:
        problems.append(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
    return problems


def not_text(prompt: str, what: str = "the prompt") -> str:
    """Why `prompt` cannot be sent as UTF-8 JSON (a lone surrogate, e.g. from bytes that were not
    UTF-8 on a command line), or "" when it can."""
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(prompt[exc.start])
        return (
            f"{what} is not valid text: character {exc.start + 1} is U+{code:04X}, a lone surrogate "
            "(bytes that were not UTF-8?); send UTF-8 text"
        )
    return ""
