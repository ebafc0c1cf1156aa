"""Answer-quality arithmetic: where two token sequences part, how far two next-token distributions
are apart (from top-k logprobs), and perplexity (pure)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

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
