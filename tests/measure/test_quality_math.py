"""Quality arithmetic against hand-computed numbers."""

from __future__ import annotations

import math

import pytest

from playground.measure.quality import compare_tokens, kl_topk, perplexity, windows


def test_compare_tokens() -> None:
    same = compare_tokens([1, 2, 3], [1, 2, 3])
    assert same.first_divergence is None and same.agreement == 1.0 and same.tokens_compared == 3
    d = compare_tokens([1, 2, 3, 4], [1, 2, 9, 4])
    assert d.first_divergence == 2 and d.agreement == pytest.approx(0.75)
    shorter = compare_tokens([1, 2, 3, 4], [1, 2])
    assert shorter.first_divergence == 2 and shorter.agreement == pytest.approx(0.5)
    assert compare_tokens([], []).agreement == 1.0
    assert compare_tokens([5], []).first_divergence == 0


def test_kl_identical_is_zero() -> None:
    p = {1: math.log(0.5), 2: math.log(0.3)}
    assert kl_topk(p, dict(p)) == pytest.approx(0.0, abs=1e-12)


def test_kl_full_coverage_is_exact() -> None:
    # P = (0.5, 0.5), Q = (0.9, 0.1): KL = 0.5 ln(0.5/0.9) + 0.5 ln(0.5/0.1)
    p = {1: math.log(0.5), 2: math.log(0.5)}
    q = {1: math.log(0.9), 2: math.log(0.1)}
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert kl_topk(p, q) == pytest.approx(expected)


def test_kl_pools_tokens_outside_both_lists() -> None:
    # shared token 1: p=0.6, q=0.3; P's token 2 (0.3) is not in Q's list; Q's token 3 (0.5) not in P's.
    # rest buckets: P 0.4, Q 0.7 -> KL = 0.6 ln(0.6/0.3) + 0.4 ln(0.4/0.7)
    p = {1: math.log(0.6), 2: math.log(0.3)}
    q = {1: math.log(0.3), 3: math.log(0.5)}
    expected = 0.6 * math.log(2) + 0.4 * math.log(0.4 / 0.7)
    assert kl_topk(p, q) == pytest.approx(expected)


def test_perplexity_by_hand() -> None:
    assert perplexity([math.log(0.5), math.log(0.25)]) == pytest.approx(math.sqrt(8))  # exp(mean NLL)
    assert perplexity([0.0]) == 1.0
    assert perplexity([]) is None


def test_windows_score_every_token_once() -> None:
    assert windows(10, 4, 2) == [(0, 4, 1), (2, 6, 4), (4, 8, 6), (6, 10, 8)]
    assert windows(3, 8, 4) == [(0, 3, 1)]
    assert windows(1, 8, 4) == []
    for n, w, s in [(100, 16, 5), (37, 8, 8), (512, 512, 256)]:
        scored = [t for _, end, first in windows(n, w, s) for t in range(first, end)]
        assert scored == list(range(1, n))
        assert all(end - start <= w for start, end, _ in windows(n, w, s))
    with pytest.raises(ValueError):
        windows(10, 4, 0)
