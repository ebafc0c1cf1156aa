"""The multi-GPU planner and GPU names, on hand-computed figures (pure)."""

from __future__ import annotations

import pytest

from playground.measure.memory_math import METHODS, ModelShape, weight_bytes
from playground.measure.planner import GPUS, PRESETS, plan_gpus, resolve_gpu

L70 = ModelShape.from_config(PRESETS["meta-llama/Llama-2-70b-hf"])


def test_gpu_names_people_use() -> None:
    assert resolve_gpu("H100-80GB") == (GPUS["H100-80GB"], "")
    assert resolve_gpu("h200") == (GPUS["H200"], "")  # case does not matter
    gpu, note = resolve_gpu("H100")
    assert gpu == GPUS["H100-80GB"] and note == "H100 read as H100-80GB (81,559 MiB)"
    with pytest.raises(ValueError, match="A100 comes as A100-40GB and A100-80GB: which one?"):
        resolve_gpu("A100")
    with pytest.raises(ValueError, match="unknown GPU 'Z80'"):
        resolve_gpu("Z80")


def test_70b_fp16_needs_two_h100s_and_awq_one() -> None:
    rows = {r.method: r for r in plan_gpus(L70, GPUS["H100-80GB"], max_gpus=8, context_len=4096, utilization=0.9)}
    fp16, awq = rows["bf16"], rows["awq-4bit"]
    w = weight_bytes(L70, METHODS["bf16"])  # 137,953,296,384 bytes (tested by hand in test_memory_math)
    # One GPU: 0.9 x CUDA's 81,009 MiB < 138e9 weights. Two: each holds half the weights and 4 of 8
    # KV heads; vLLM's profile pass (8,192 tokens, 1,024 sampler rows) and 0.21 GiB non-torch on each.
    per_token_per_gpu = 2 * 80 * 8 * 128 * 2 * 4 / 8  # 163,840 bytes
    budget = 0.9 * (81559 - 550) * 2**20
    activation = 8192 * 2 * (3 * 28672 / 2 + 3.25 * 8192) + 1024 * 32000 * 4 * 0.5
    free = budget - w / 2 - int(activation) - int(0.21 * 2**30)
    assert fp16.gpus == 2 and fp16.fits
    assert fp16.kv_tokens == int(free // (per_token_per_gpu * 16)) * 16 == 36864
    assert fp16.weights_per_gpu_gb == pytest.approx(w / 2 / 1e9)
    assert fp16.decode_ceiling_tok_s == pytest.approx(2 * 3350e9 / w)  # two GPUs' bandwidth
    # 36.61 GB as the checkpoint holds it; 37.42 GB as Machete holds it on Hopper (16-bit zero points)
    assert awq.gpus == 1 and awq.fits and awq.weights_gb == pytest.approx(37.42, abs=0.01)


def test_nowhere_to_fit_reports_the_largest_count_tried() -> None:
    rows = {r.method: r for r in plan_gpus(L70, GPUS["T4"], max_gpus=2, context_len=4096, utilization=0.9)}
    assert rows["bf16"].gpus == 2 and not rows["bf16"].fits and rows["bf16"].kv_tokens == 0


def test_kv_heads_are_replicated_beyond_one_per_gpu() -> None:
    # 8 KV heads on 8 GPUs: one head each; the per-token KV share is 1/8 of the whole.
    shape = ModelShape(
        hidden=8192,
        intermediate=28672,
        layers=80,
        heads=64,
        kv_heads=2,
        head_dim=128,
        vocab=32000,
        tied_embeddings=False,
    )
    eight = plan_gpus(shape, GPUS["H200"], max_gpus=8, context_len=10**9, utilization=0.9)[0]
    assert eight.gpus == 8 and not eight.fits  # never fits 10^9 tokens: the largest count is reported
    w = weight_bytes(shape, METHODS["bf16"])
    per_gpu_token = 2 * 80 * 2 * 128 * 2 * 1 / 2  # 2 KV heads over 8 GPUs: one head each (replicated)
    activation = 8192 * 2 * (3 * 28672 / 8 + 3.25 * 8192) + 1024 * 32000 * 4 * 0.5
    free = 0.9 * (143771 - 614) * 2**20 - w / 8 - int(activation) - int(0.21 * 2**30)
    assert eight.kv_tokens == int(free // (per_gpu_token * 16)) * 16
