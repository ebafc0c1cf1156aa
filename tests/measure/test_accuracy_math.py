"""Accuracy, its standard error, recovery, the paired interval and disagreements, against hand computations."""

from __future__ import annotations

import math

import pytest

from playground.measure.accuracy import (
    AccuracyReport,
    EngineAccuracy,
    ItemResult,
    chance_level,
    disagreements,
    item_from_sample,
    mean_and_stderr,
    paired_difference_ci95,
    recovery,
    request_progress,
)


def items(picks: list[int], gold: list[int]) -> tuple[ItemResult, ...]:
    pairs = enumerate(zip(picks, gold, strict=True))
    return tuple(ItemResult(i, f"q{i}", ("a", "b", "c", "d"), g, p) for i, (p, g) in pairs)


GOLD = [0, 1, 2, 3, 0]
BASE = EngineAccuracy("bf16", items([0, 1, 2, 0, 1], GOLD), seconds=2.0, command="lm_eval A", locked_command="L A")
QUANT = EngineAccuracy("awq", items([0, 1, 3, 3, 1], GOLD), seconds=4.0, command="lm_eval B", locked_command="L B")


def test_accuracy_and_stderr_by_hand() -> None:
    # bf16 right on 3 of 5: mean 0.6, sample variance (3 * 0.16 + 2 * 0.36) / 4 = 0.3, stderr sqrt(0.3 / 5)
    assert BASE.accuracy == pytest.approx(0.6)
    assert BASE.stderr == pytest.approx(math.sqrt(0.3 / 5))
    assert BASE.items_per_s == pytest.approx(2.5)


def test_edges_empty_and_one() -> None:
    assert mean_and_stderr([]) == (0.0, 0.0)
    assert mean_and_stderr([True]) == (1.0, 0.0)
    assert recovery(0.0, 0.5) is None
    assert EngineAccuracy("x", (), seconds=0.0).items_per_s == 0.0
    assert chance_level([]) == 0.0
    assert disagreements([BASE]) == []


def test_recovery_and_paired_interval_by_hand() -> None:
    # awq right on items 0, 1, 3: also 3 of 5 -> recovery 100 %; per item differences 0, 0, -1, +1, 0
    assert recovery(BASE.accuracy, QUANT.accuracy) == pytest.approx(100.0)
    diff, low, high = paired_difference_ci95(BASE.items, QUANT.items)
    se = math.sqrt((2 * 1.0) / 4 / 5)  # sample variance of (0, 0, -1, 1, 0) is 2 / 4
    assert diff == pytest.approx(0.0)
    assert (low, high) == pytest.approx((-1.959963984540054 * se, 1.959963984540054 * se))


def test_paired_interval_uses_only_items_both_answered() -> None:
    other = items([0, 1], GOLD[:2])
    assert paired_difference_ci95(BASE.items, other) == pytest.approx((0.0, 0.0, 0.0))


def test_disagreements_and_the_json() -> None:
    report = AccuracyReport("t", 5, 0, (BASE, QUANT), chance_level(BASE.items))
    found = report.disagreements()
    assert [(d.doc_id, d.picks) for d in found] == [(2, {"bf16": 2, "awq": 3}), (3, {"bf16": 0, "awq": 3})]
    out = report.as_dict()
    assert out["chance"] == pytest.approx(0.25)
    assert out["recovery"] == pytest.approx(100.0)
    assert [e["items"] for e in out["engines"]] == [5, 5]
    assert out["disagreements"][0] == {"doc_id": 2, "prompt": "q2", "choices": ["a", "b", "c", "d"], "gold": 2,
                                       "picks": {"bf16": 2, "awq": 3}}  # fmt: skip
    assert out["lm_eval_command"] == {"bf16": "lm_eval A", "awq": "lm_eval B"}
    assert report.as_dict(locked=True)["lm_eval_command"] == {"bf16": "L A", "awq": "L B"}


def test_three_engines_give_one_figure_per_variant() -> None:
    third = EngineAccuracy("gptq", items([1, 1, 1, 1, 1], GOLD), seconds=1.0)
    out = AccuracyReport("t", None, 0, (BASE, QUANT, third), 0.25).as_dict()
    assert out["recovery"] == pytest.approx({"awq": 100.0, "gptq": 100 * 0.2 / 0.6})
    assert set(out["difference_ci95"]) == {"awq", "gptq"}


def test_one_logged_sample_as_lm_eval_writes_it() -> None:
    row = {
        "doc_id": 7,
        "target": "1",
        "arguments": {
            "gen_args_0": {"arg_0": "Return the", "arg_1": " value"},
            "gen_args_1": {"arg_0": "Return the", "arg_1": " file"},
        },
        "filtered_resps": [["-3.5", "False"], ["-1.25", "True"]],
        "acc": 1.0,
    }
    item = item_from_sample(row)
    assert item == ItemResult(7, "Return the", ("value", "file"), 1, 1)
    assert item.correct
    tie = {**row, "filtered_resps": [["-2.0", "False"], ["-2.0", "False"]]}
    assert item_from_sample(tie).pick == 0  # the first of equal maxima, as numpy's argmax in lm-eval


def test_progress_from_lm_eval_bar() -> None:
    chunk = "Requesting API:  12%|█▎        | 10/80 [00:00<00:03, 19.78it/s]Requesting API:  25%|██▌  | 20/80 [00:01]"
    assert request_progress(chunk) == (20, 80)
    assert request_progress("Tokenizing inputs: 100%|██████████| 80/80") is None
