"""Planning a quantization from config.json alone: schemes, shape checks, sizes and peak memory (hand-computed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.measure.memory_math import ModelShape
from playground.measure.quant_plan import (
    SCHEMES,
    QuantError,
    QuantRequest,
    cpu_kernel_problems,
    default_out_name,
    group_problems,
    parse_scheme,
    plan_quantization,
    predict_peak,
    resolve_group,
    scheme_of_config,
    tensor_bytes,
)

TINY = json.loads((Path(__file__).resolve().parents[2] / "assets/tiny/bf16/config.json").read_text())
SHAPE = ModelShape.from_config(TINY)  # hidden 256, intermediate 768, 4 layers, 4 heads of 64, 2 kv heads
PLENTY = 100e9


def test_schemes_by_name_and_a_clear_refusal() -> None:
    assert parse_scheme("w4a16") is SCHEMES["W4A16"]
    assert not SCHEMES["FP8_DYNAMIC"].calibrated and SCHEMES["W8A8"].calibrated
    with pytest.raises(QuantError, match=r"unknown scheme 'INT3'; choose one of: FP8_DYNAMIC, W4A16, W8A8"):
        parse_scheme("INT3")


def test_a_group_size_must_divide_every_input_width_and_the_message_names_it() -> None:
    assert group_problems(SHAPE, 128) == []
    problems = group_problems(SHAPE, 96)
    assert problems == [
        "group size 96 does not divide the input width 256 of q_proj/k_proj/v_proj/gate_proj/up_proj (hidden_size)",
        "group size 96 does not divide the input width 256 of o_proj (heads x head_dim)",
    ]  # 768 = 8 x 96 divides
    with pytest.raises(QuantError, match="input width 256 of q_proj"):
        plan_quantization(QuantRequest("tiny", "W4A16", group_size=96), TINY, ram_available=PLENTY)


def test_group_128_where_the_widths_allow_else_the_next() -> None:
    assert resolve_group(SHAPE, 0) == 128
    odd = ModelShape(
        hidden=320, intermediate=960, layers=2, heads=5, kv_heads=5, head_dim=64, vocab=100, tied_embeddings=False
    )
    assert resolve_group(odd, 0) == 64  # 320 = 2.5 x 128 = 5 x 64
    plan = plan_quantization(
        QuantRequest("m", "W4A16"),
        {**TINY, "hidden_size": 320, "intermediate_size": 960, "num_attention_heads": 5, "num_key_value_heads": 5},
        ram_available=PLENTY,
    )
    assert plan.group_size == 64 and "using group size 64" in plan.notes[0]
    assert resolve_group(SHAPE, None) is None  # per output channel when asked
    assert cpu_kernel_problems(SHAPE, 128) == []
    assert cpu_kernel_problems(odd, 33) == ["group size 33 is odd"]


def test_checkpoint_bytes_by_hand() -> None:
    # per layer: linears 2x256x256 + 2x256x128 + 3x256x768 = 786,432 weights; outputs 2,560
    # other: 2 x 2048 x 256 embeddings/lm_head + 9 x 256 norms = 1,050,880 values, bf16
    other = 1_050_880 * 2
    assert tensor_bytes(SHAPE, SCHEMES["FP8_DYNAMIC"], None) == other + 4 * (786_432 + 2_560 * 2)
    assert tensor_bytes(SHAPE, SCHEMES["W8A8"], None) == other + 4 * (786_432 + 2_560 * 2)
    # W4A16 group 128: half a byte a weight; scales per group: q,o 256x2, k,v 128x2, gate,up 768x2,
    # down 256x6 = 6,144 bf16; plus an int64 shape pair per linear
    assert tensor_bytes(SHAPE, SCHEMES["W4A16"], 128) == other + 4 * (786_432 / 2 + 6_144 * 2 + 7 * 16)


def test_peak_memory_refusal_says_how_much_and_what_there_is() -> None:
    with pytest.raises(QuantError, match=r"needs about 0\.6 GB of host memory .* and 0\.1 GB is available"):
        plan_quantization(QuantRequest("tiny", "FP8_DYNAMIC"), TINY, ram_available=0.1e9)
    peak = predict_peak(SHAPE, SCHEMES["W4A16"], samples=4, seq_len=128, gpu=True)
    assert peak.vram_bytes is not None and peak.vram_bytes > 0.5e9  # a CUDA context at least


def test_host_peak_on_a_gpu_adds_cuda_and_leaves_hessians_on_the_device() -> None:
    cpu = predict_peak(SHAPE, SCHEMES["W4A16"], samples=4, seq_len=128)
    gpu = predict_peak(SHAPE, SCHEMES["W4A16"], samples=4, seq_len=128, gpu=True)
    # one layer's Hessians: q, k, v, o, gate, up take 256 inputs, down 768; fp32
    hessians = 4 * (6 * 256**2 + 768**2)
    assert gpu.ram_bytes == pytest.approx(cpu.ram_bytes - hessians + 1.0e9)


def test_host_peak_on_a_gpu_covers_what_the_h200_measured() -> None:
    # docs/gpu.md: a random Llama of 8 layers, hidden 1024, intermediate 2816 (94.4 M parameters, bf16)
    # peaked at 1.55 GB (FP8_DYNAMIC) and 2.20 GB (W4A16, 11 samples of 512) of host memory.
    config = {
        **TINY,
        "num_hidden_layers": 8,
        "hidden_size": 1024,
        "intermediate_size": 2816,
        "num_attention_heads": 16,
        "num_key_value_heads": 4,
        "head_dim": 64,
    }
    shape = ModelShape.from_config(config)
    assert shape.params() == 94_389_248
    assert predict_peak(shape, SCHEMES["FP8_DYNAMIC"], samples=11, seq_len=512, gpu=True).ram_bytes >= 1.55e9
    assert predict_peak(shape, SCHEMES["W4A16"], samples=11, seq_len=512, gpu=True).ram_bytes >= 2.20e9


def test_calibration_settings_out_of_range() -> None:
    with pytest.raises(QuantError, match="longer than the model's context"):
        plan_quantization(QuantRequest("tiny", "W8A8", seq_len=4096), TINY, ram_available=PLENTY)
    with pytest.raises(QuantError, match="samples 0 must be at least 1"):
        plan_quantization(QuantRequest("tiny", "W8A8", samples=0), TINY, ram_available=PLENTY)
    with pytest.raises(QuantError, match="lacks 'hidden_size'"):
        plan_quantization(QuantRequest("x", "W8A8"), {"model_type": "bert"}, ram_available=PLENTY)


def test_a_compressed_tensors_config_names_its_scheme() -> None:
    weights = {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 64}
    config = {
        "quantization_config": {"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": weights}}}
    }
    assert scheme_of_config(config) == (SCHEMES["W4A16"], 64)
    assert scheme_of_config({"quantization_config": {"quant_method": "awq"}}) is None
    assert default_out_name("tiny/bf16", "W4A16", 128) == "tiny-bf16-W4A16-G128"
    assert default_out_name("Qwen/Qwen2.5-0.5B", "FP8_DYNAMIC", None) == "Qwen2.5-0.5B-FP8_DYNAMIC"
