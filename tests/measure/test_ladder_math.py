"""The ladder's arithmetic and rules on hand-computed inputs (pure: no engine)."""

from __future__ import annotations

import math

import pytest

from playground.measure.ladder import (
    MAX_VARIANTS,
    LadderRow,
    best_tradeoffs,
    forced_comparison,
    host_ram_problem,
    logprobs_k,
    swap_method,
    table_rows,
    variant_problems,
)

GIB = 2**30


def test_swap_method_is_sleep_on_gpus_and_restart_elsewhere() -> None:
    assert swap_method("cuda") == "sleep"
    assert swap_method("cpu") == "restart"


def test_small_vocabularies_get_every_logprob() -> None:
    assert logprobs_k(2048) == (2048, True)  # the tiny model: exact KL
    assert logprobs_k(4096) == (4096, True)
    assert logprobs_k(32000) == (64, False)  # Llama-2: a lower bound from the top 64
    assert logprobs_k(None) == (64, False)


def test_variant_rules() -> None:
    assert variant_problems(["a", "b"], "c") == []
    assert "already a variant called 'a'" in variant_problems(["a", "b"], "a")[0]
    assert "needs a label" in variant_problems(["a"], " ")[0]
    full = [str(i) for i in range(MAX_VARIANTS)]
    assert f"at most {MAX_VARIANTS} variants" in variant_problems(full, "new")[0]


def test_host_ram_for_sleeping_weights() -> None:
    weights = {"fp16": 5 * GIB, "AWQ": 3 * GIB}  # 8 GiB asleep
    assert host_ram_problem(weights, 10 * GIB) is None  # 80 % of 10 = 8: fits exactly
    message = host_ram_problem(weights, 9 * GIB)  # 80 % of 9 = 7.2 < 8
    assert message is not None
    assert "need 8.0 GiB of host RAM (fp16 5.0 GiB, AWQ 3.0 GiB)" in message
    assert "9.0 GiB available" in message
    assert host_ram_problem({}, 0) is None


def test_forced_comparison_by_hand() -> None:
    ln = math.log
    base = [{0: ln(0.6), 1: ln(0.4)}, {0: ln(0.9), 1: ln(0.1)}, None]
    other = [{0: ln(0.3), 1: ln(0.7)}, {0: ln(0.9), 1: ln(0.1)}, {0: 0.0}]
    kls, flips = forced_comparison(base, other)
    # 0.6 ln(0.6/0.3) + 0.4 ln(0.4/0.7) = 0.415888 - 0.223846
    assert kls == pytest.approx([0.192042, 0.0], abs=1e-6)
    assert flips == 0.5  # position 0's top token flips from 0 to 1; position 1 keeps it; position 2 has no base
    assert forced_comparison([], []) == ([], None)


def row(label: str, weights: float | None, kl: float | None, **kw: object) -> LadderRow:
    return LadderRow(label=label, model="m", quantization="q", weights_gb=weights, kl_mean=kl, **kw)  # type: ignore[arg-type]


def test_best_tradeoffs_is_the_pareto_front() -> None:
    rows = [
        row("bf16", 2.0, 0.0),
        row("int8", 1.0, 0.1),
        row("worse int8", 2.0, 0.2),  # beaten by bf16 (same memory, more KL) and int8
        row("3-bit", 0.5, 0.5),
        row("failed", None, None),
    ]
    assert best_tradeoffs(rows) == ["bf16", "int8", "3-bit"]
    assert best_tradeoffs([row("twin a", 1.0, 0.1), row("twin b", 1.0, 0.1)]) == ["twin a", "twin b"]


def test_table_says_exact_or_lower_bound() -> None:
    rows = [
        row("bf16", 0.02, 0.0, kl_exact=True, agreement=1.0, flip_rate=0.0),
        row("AWQ", 0.006, 0.0123456, kl_exact=False, swap_s=31.24, swap_method="restart"),
        row("broken", None, None, error="engine stopped"),
    ]
    table = table_rows(rows, "bf16")
    assert table[0][0] == "bf16 (baseline)" and table[0][8] == "0.0000 (exact)" and table[0][7] == "100.0%"
    assert table[1][8] == "0.0123 (≥, top-k)" and table[1][11] == "31.2 s restart"
    assert table[2][2] == "engine stopped" and table[2][8] == "–"
