"""Answer-quality arithmetic: where two token sequences part, how far two next-token distributions
are apart (from top-k logprobs), and perplexity (pure)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

K = TypeVar("K", bound=Hashable)  # a token: its id, or its text


@dataclass(frozen=True)
class Divergence:
    """How two greedy answers compare token by token."""

    first_divergence: int | None  # index of the first differing output token; None if they agree
    agreement: float  # matching positions / the longer answer's length (1.0 for two empty answers)
    tokens_compared: int


def compare_tokens(a: Sequence[int], b: Sequence[int]) -> Divergence:
    """First differing position and positional agreement of two token sequences."""
    longest = max(len(a), len(b))
    if longest == 0:
        return Divergence(None, 1.0, 0)
    first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if first is None and len(a) != len(b):
        first = min(len(a), len(b))  # one answer stopped earlier: that is where they part
    matches = sum(x == y for x, y in zip(a, b, strict=False))
    return Divergence(first, matches / longest, longest)


def kl_topk(p: Mapping[K, float], q: Mapping[K, float]) -> float:
    """KL(P‖Q) in nats from two top-k lists, as a lower bound on the true KL.

    The vocabulary is coarsened into the tokens present in both lists, each on its own, plus one
    "rest" bucket holding all other probability mass (1 minus the shared tokens' mass, for each
    distribution). KL on a coarsening never exceeds the full KL (data-processing inequality), so
    the figure is a lower bound; it is exact when both lists cover all the mass.
    """
    shared = set(p) & set(q)
    total = 0.0
    for tok in shared:
        pp, qq = math.exp(p[tok]), math.exp(q[tok])
        if pp > 0:
            total += pp * (math.log(pp) - math.log(qq))
    p_rest = max(0.0, 1.0 - sum(math.exp(p[t]) for t in shared))
    q_rest = max(0.0, 1.0 - sum(math.exp(q[t]) for t in shared))
    if p_rest > 1e-12:
        total += p_rest * (math.log(p_rest) - math.log(max(q_rest, 1e-12)))
    return max(total, 0.0)


def perplexity(logprobs: Sequence[float]) -> float | None:
    """exp of the mean negative log-likelihood of the scored tokens; None when none were scored."""
    if not logprobs:
        return None
    return math.exp(-sum(logprobs) / len(logprobs))


def windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int, int]]:
    """Sliding windows for scoring a long text: (start, end, first_scored) with each token scored once.

    Token 0 has no context and is never scored. A window covers [start, end); it scores tokens
    [first_scored, end), and every window after the first keeps `window - stride` tokens of context.
    """
    if window < 2 or not 0 < stride <= window:
        raise ValueError(f"window {window} and stride {stride}: need window >= 2 and 0 < stride <= window")
    out: list[tuple[int, int, int]] = []
    scored_to = 1
    start = 0
    while scored_to < n_tokens:
        end = min(start + window, n_tokens)
        out.append((start, end, scored_to))
        scored_to = end
        start = end - (window - stride) if end < n_tokens else end
    return out


@dataclass(frozen=True)
class GreedyAnswer:
    """A temperature-0 answer with the engine's own token ids and per-position top-k logprobs."""

    text: str
    prompt_ids: list[int]
    token_ids: list[int]
    pieces: list[str]  # each output token as text, for highlighting
    top: list[dict[str, float]]  # per output position: token text -> logprob (the k most likely)


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
