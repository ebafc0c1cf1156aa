"""Quality measurements against running engines: greedy answers with top-k logprobs, teacher-forced
scoring of one token sequence, windowed perplexity, and the report that combines them, all through
vLLM's OpenAI API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.engines.client import post_json, tokenize
from playground.measure.quality import (
    GreedyAnswer,
    PerplexityResult,
    QualityReport,
    compare_tokens,
    kl_topk,
    perplexity,
    windows,
)


@dataclass(frozen=True)
class Endpoint:
    """Where an engine answers."""

    base_url: str
    api_key: str
    model: str


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


TOP_K = 5


def measure_quality(
    a: Endpoint,
    b: Endpoint,
    prompt: str,
    *,
    max_tokens: int = 64,
    k: int = TOP_K,
    text: str | None = None,
    window: int = 256,
    stride: int = 128,
) -> QualityReport:
    """Greedy answers from both, where they part, KL per position, and perplexity if `text` is given."""
    ans_a = greedy_answer(a, prompt, max_tokens=max_tokens, k=k)
    ans_b = greedy_answer(b, prompt, max_tokens=max_tokens, k=k)
    notes = []
    if ans_a.prompt_ids != ans_b.prompt_ids:
        notes.append("the engines tokenize the prompt differently: token-level figures compare different vocabularies")
    div = compare_tokens(ans_a.token_ids, ans_b.token_ids)
    # Free-running: contexts are identical up to and including the first differing position.
    shared = len(ans_a.top) if div.first_divergence is None else div.first_divergence + 1
    kl_free = [kl_topk(p, q) for p, q in zip(ans_a.top[:shared], ans_b.top[:shared], strict=False)]
    seq = ans_a.prompt_ids + ans_a.token_ids
    kl_forced: list[float] = []
    if ans_a.token_ids:
        start = len(ans_a.prompt_ids)
        pa, pb = position_logprobs(a, seq, k), position_logprobs(b, seq, k)
        kl_forced = [kl_topk(p, q) for p, q in zip(pa[start:], pb[start:], strict=True) if p and q]
    ppl = None
    if text and text.strip():
        sa = text_logprobs(a, text, window=window, stride=stride)
        sb = text_logprobs(b, text, window=window, stride=stride)
        if sa.n_tokens != sb.n_tokens:
            notes.append("the engines tokenize the text differently: perplexities are per their own tokens")
        ppl = PerplexityResult(perplexity(sa.logprobs), perplexity(sb.logprobs), len(sa.logprobs), window, stride)
    return QualityReport(prompt, ans_a, ans_b, div, kl_free, kl_forced, k, ppl, notes)
