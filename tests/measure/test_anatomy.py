"""Memory anatomy: hand-worked parts, and the real engines' parts adding up to the measured total."""

from __future__ import annotations

import pytest

from playground.arena.core import Arena
from playground.measure.anatomy import breakdown, check_weights, method_of
from playground.measure.planner import PRESETS

GIB = 2**30


def test_parts_add_up_and_the_rest_is_inferred() -> None:
    parts = breakdown(10 * GIB, 3 * GIB, 5 * GIB, 0.5 * GIB, total_source="NVML", weights_source="vLLM log")
    assert [p.name for p in parts] == ["weights", "KV cache", "CUDA graphs", "runtime and rest"]
    assert sum(p.bytes for p in parts) == 10 * GIB
    rest = parts[-1]
    assert rest.inferred and rest.bytes == 1.5 * GIB and "NVML" in rest.source
    assert breakdown(None, GIB, None, None, total_source="", weights_source="x")[-1].name == "weights"


def test_a_4bit_config_with_16bit_sized_weights_is_flagged() -> None:
    cfg = {**PRESETS["meta-llama/Llama-2-7b-hf"], "quantization_config": {"quant_method": "gptq", "bits": 4}}
    assert method_of(cfg) == "gptq-4bit" and method_of(PRESETS["meta-llama/Llama-2-7b-hf"]) == "bf16"
    # docs/gpu.md: a GPTQ config with dummy weights loaded 12.55 GiB, the fp16 size
    check = check_weights(cfg, 12.55 * GIB)
    assert "not quantized" in check.warning
    ok = check_weights({**cfg, "quantization_config": {"quant_method": "awq"}}, 3.74 * GIB)
    assert ok.warning == "" and ok.error is not None and abs(ok.error) < 0.05, "AWQ 7B: 3.74 GiB measured on an H200"


@pytest.mark.engine
def test_real_engines_parts_sum_to_the_measured_total(arena: Arena) -> None:
    arena.watch.sample_once()
    for name in ("A", "B"):
        parts, check = arena.insights.anatomy(name)
        total = arena.samples[-1].engines[name]
        assert total is not None and parts and parts[-1].inferred
        assert sum(p.bytes for p in parts) == pytest.approx(total)
        assert {p.name for p in parts} >= {"weights", "KV cache", "runtime and rest"}
        assert check is not None and check.error is not None
        assert abs(check.error) < 0.02, "predicted weights within 2 % of the checkpoint on disk"
