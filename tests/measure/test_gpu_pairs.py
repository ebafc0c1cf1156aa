"""The default pair per GPU tier, checked against the planner's own arithmetic (pure)."""

from __future__ import annotations

import pytest

from playground.arena.defaults import default_pair
from playground.measure.gpu_pairs import CANDIDATES, SHARED_UTILIZATION, USEFUL_KV_TOKENS, choose_pair
from playground.measure.gpus import GPUS, present_gpu
from playground.measure.memory_math import ModelShape
from playground.measure.planner import plan
from playground.measure.specs import DeviceInfo, check_pair

EXPECTED = {
    "T4": "Qwen/Qwen2.5-3B-Instruct",  # 16 GB: 7B bf16 alone (15.2 GB) leaves no room
    "L4": "Qwen/Qwen2.5-3B-Instruct",  # 24 GB: 7B bf16 + 7B AWQ need more than 0.85 of it
    "A10G": "Qwen/Qwen2.5-3B-Instruct",
    "L40S": "Qwen/Qwen2.5-7B-Instruct",  # 48 GB
    "A100-40GB": "Qwen/Qwen2.5-7B-Instruct",
    "A100-80GB": "Qwen/Qwen2.5-14B-Instruct",  # 80 GB: 32B bf16 (65.5 GB) leaves too little
    "H100-80GB": "Qwen/Qwen2.5-14B-Instruct",
    "H200": "Qwen/Qwen2.5-32B-Instruct",
}


def _least(shape: ModelShape, tier: str, method: str) -> float:
    """The smallest utilization (0.01 steps) at which the planner gives `method` a useful KV cache."""
    for step in range(1, 101):
        row = next(r for r in plan(shape, GPUS[tier], utilization=step / 100) if r.method == method)
        if row.kv_tokens >= USEFUL_KV_TOKENS:
            return step / 100
    return 2.0  # never


@pytest.mark.parametrize("tier", list(EXPECTED))
def test_largest_pair_that_fits_each_tier(tier: str) -> None:
    gpu = GPUS[tier]
    choice = choose_pair(gpu)
    assert choice is not None and choice.model == EXPECTED[tier]
    assert choice.utilization_16bit + choice.utilization_4bit <= SHARED_UTILIZATION + 1e-9
    config = dict(CANDIDATES)[choice.model]
    shape = ModelShape.from_config(config)
    # The planner, asked on its own at the chosen utilizations, predicts the same KV cache: >= 8 x 2k each.
    bf16 = next(r for r in plan(shape, gpu, utilization=choice.utilization_16bit) if r.method == "bf16")
    awq = next(r for r in plan(shape, gpu, utilization=choice.utilization_4bit) if r.method == "awq-4bit")
    assert (bf16.kv_tokens, awq.kv_tokens) == (choice.kv_tokens_16bit, choice.kv_tokens_4bit)
    assert min(bf16.kv_tokens, awq.kv_tokens) >= USEFUL_KV_TOKENS
    # As large as fits: the next larger candidate needs more than 0.85 of the GPU for both engines.
    names = [m for m, _ in CANDIDATES]
    if (i := names.index(choice.model)) > 0:
        bigger = ModelShape.from_config(CANDIDATES[i - 1][1])
        assert _least(bigger, tier, "bf16") + _least(bigger, tier, "awq-4bit") > SHARED_UTILIZATION
    # A T4 (compute capability 7.5) has no bfloat16: the 16-bit model runs in float16 there.
    assert choice.dtype == ("float16" if tier == "T4" else "bfloat16")


def test_the_engines_carry_the_choice_and_why() -> None:
    l4 = DeviceInfo("cuda", "NVIDIA L4", 23034 * 2**20, compute_capability=89)
    a, b = default_pair(l4, online=True)
    assert (a.model, b.model) == ("Qwen/Qwen2.5-3B-Instruct", "Qwen/Qwen2.5-3B-Instruct-AWQ")
    assert "Chosen for this NVIDIA L4" in a.note and a.note == b.note and check_pair(a, b, l4) == []
    cpu = DeviceInfo("cpu", "x86_64", 24 * 10**9)
    assert default_pair(cpu, online=True)[0].model == "tiny/bf16"  # the CPU default stays the tiny model
    tiny_gpu = present_gpu("NVIDIA T1000", 4 * 2**30, (7, 5))
    assert choose_pair(tiny_gpu) is not None and choose_pair(present_gpu("x", 2**30)) is None
