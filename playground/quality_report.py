"""One quality measurement of engine B against engine A: greedy divergence, KL per position
(free-running and teacher-forced), and perplexity on a reference text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground.quality import Divergence, compare_tokens, kl_topk, perplexity
from playground.scoring import Endpoint, GreedyAnswer, greedy_answer, position_logprobs, text_logprobs

TOP_K = 5


@dataclass(frozen=True)
class PerplexityResult:
    """Perplexity of both engines on the same text, scored on the same token ids."""

    a: float | None
    b: float | None
    tokens_scored: int
    window: int
    stride: int


@dataclass(frozen=True)
class QualityReport:
    """How B's answer departs from A's, and by how much."""

    prompt: str
    answer_a: GreedyAnswer
    answer_b: GreedyAnswer
    divergence: Divergence
    kl_free: list[float]  # per position, while both answers still share the same context
    kl_forced: list[float]  # per position of A's answer, B teacher-forced on A's tokens
    top_k: int
    perplexity: PerplexityResult | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def kl_mean(self) -> float | None:
        """Mean teacher-forced KL(A‖B) per token in nats (a lower bound: see quality.kl_topk)."""
        return sum(self.kl_forced) / len(self.kl_forced) if self.kl_forced else None

    def as_dict(self) -> dict[str, Any]:
        """The CLI's JSON shape."""
        ppl = self.perplexity
        return {
            "agreement": self.divergence.agreement,
            "first_divergence": self.divergence.first_divergence,
            "kl_mean": self.kl_mean,
            "tokens_compared": self.divergence.tokens_compared,
            "perplexity": None
            if ppl is None
            else {
                "a": ppl.a,
                "b": ppl.b,
                "tokens_scored": ppl.tokens_scored,
                "window": ppl.window,
                "stride": ppl.stride,
            },
            "kl_free": self.kl_free,
            "kl_forced": self.kl_forced,
            "top_k": self.top_k,
            "text_a": self.answer_a.text,
            "text_b": self.answer_b.text,
            "notes": self.notes,
        }


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
