"""Quality measurements against running engines: greedy answers with top-k logprobs, teacher-forced
scoring of one token sequence, and windowed perplexity, all through vLLM's OpenAI API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.client import post_json, tokenize
from playground.quality import windows


@dataclass(frozen=True)
class Endpoint:
    """Where an engine answers."""

    base_url: str
    api_key: str
    model: str


@dataclass(frozen=True)
class GreedyAnswer:
    """A temperature-0 answer with the engine's own token ids and per-position top-k logprobs."""

    text: str
    prompt_ids: list[int]
    token_ids: list[int]
    pieces: list[str]  # each output token as text, for highlighting
    top: list[dict[str, float]]  # per output position: token text -> logprob (the k most likely)


def greedy_answer(ep: Endpoint, prompt: str, *, max_tokens: int, k: int) -> GreedyAnswer:
    """Generate greedily (plain completion) and return tokens with their top-k logprobs."""
    body = {
        "model": ep.model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "seed": 0,
        "logprobs": k,
        "return_token_ids": True,
    }
    choice = post_json(ep.base_url, ep.api_key, "/v1/completions", body)["choices"][0]
    logprobs = choice.get("logprobs") or {}
    top = [dict(d or {}) for d in logprobs.get("top_logprobs") or []]
    return GreedyAnswer(
        text=choice.get("text", ""),
        prompt_ids=[int(t) for t in choice.get("prompt_token_ids") or []],
        token_ids=[int(t) for t in choice.get("token_ids") or []],
        pieces=list(logprobs.get("tokens") or []),
        top=top,
    )


def _position_dicts(raw: list[Any]) -> list[dict[int, float] | None]:
    return [None if d is None else {int(tok): float(v["logprob"]) for tok, v in d.items()} for d in raw]


def position_logprobs(ep: Endpoint, ids: list[int], k: int) -> list[dict[int, float] | None]:
    """For each position of `ids`, the engine's top-k logprobs (plus the actual token's) given the
    tokens before it: vLLM's prompt_logprobs, so the engine is teacher-forced on `ids`."""
    body = {"model": ep.model, "prompt": ids, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": k}
    choice = post_json(ep.base_url, ep.api_key, "/v1/completions", body)["choices"][0]
    return _position_dicts(choice.get("prompt_logprobs") or [])


@dataclass(frozen=True)
class TextScore:
    """Log-likelihoods of a text's tokens, scored in windows."""

    logprobs: list[float]
    n_tokens: int
    window: int
    stride: int


def text_logprobs(ep: Endpoint, text: str, *, window: int, stride: int) -> TextScore:
    """Log-probability of every token of `text` after the first, in sliding windows."""
    ids = tokenize(ep.base_url, ep.api_key, ep.model, text)
    scores: list[float] = []
    for start, end, first in windows(len(ids), window, stride):
        per_pos = position_logprobs(ep, ids[start:end], 0)
        for j in range(first, end):
            d = per_pos[j - start]
            if d is None or ids[j] not in d:
                raise ValueError(f"the engine returned no logprob for token {j}")
            scores.append(d[ids[j]])
    return TextScore(scores, len(ids), window, stride)
