"""The planner held to every memory figure vLLM printed on this project's GPU runs (pure)."""

from __future__ import annotations

import pytest

from playground.measure.gpus import GIB
from playground.measure.memory_math import ModelShape
from playground.measure.planner import GPUS, GpuCountPlan, VllmSettings, plan_gpus
from tests.measure.vllm_figures import FIGURES, VllmFigure

KV_TOLERANCE = {"7B": 0.03, "70B": 0.10, "small": 0.03}
WEIGHTS_TOLERANCE = 0.03
LOG_ROUNDING_GIB = 0.005  # vLLM prints weights to two decimals of GiB
# Sleep mode (the app's way on a GPU) with weights vLLM repacks after loading (AWQ into Machete's
# layout): vLLM over-counts torch memory under its custom allocator (vllm-project/vllm#40256) and
# sizes the KV cache beyond its budget. The planner predicts the budget; NVML shows the overrun.
OVER_BUDGET = {(f.source, f.method, f.utilization) for f in FIGURES if f.sleep_mode and f.method == "awq-4bit"}
# FP8: vLLM's "Model loading took" is 3 % (7B, online) and 41 % (small checkpoint) above the tensor
# bytes; what the extra is was not found (docs/NOTES.md).
WEIGHTS_UNEXPLAINED = {"fp8"}


def _predict(figure: VllmFigure) -> GpuCountPlan:
    settings = VllmSettings(eager=figure.eager, offline=figure.offline)
    rows = plan_gpus(
        ModelShape.from_config(figure.config),
        GPUS["H200"],
        max_gpus=figure.tp,
        context_len=figure.context,
        utilization=figure.utilization,
        settings=settings,
    )
    row = next(r for r in rows if r.method == figure.method)
    assert row.gpus == figure.tp
    return row


def _id(figure: VllmFigure) -> str:
    return f"{figure.size}-{figure.method}-util{figure.utilization}-{figure.source.split(' ')[0]}"


@pytest.mark.parametrize("figure", FIGURES, ids=_id)
def test_kv_tokens_match_vllm(figure: VllmFigure) -> None:
    predicted = _predict(figure).kv_tokens
    if (figure.source, figure.method, figure.utilization) in OVER_BUDGET:
        assert predicted < figure.kv_tokens  # vLLM's figure exceeds what its budget holds
        return
    assert predicted == pytest.approx(figure.kv_tokens, rel=KV_TOLERANCE[figure.size])


@pytest.mark.parametrize("figure", [f for f in FIGURES if f.weights_gib > 0.02], ids=_id)
def test_weights_match_vllm(figure: VllmFigure) -> None:
    predicted = _predict(figure).weights_per_gpu_gb * 1e9 / GIB
    tolerance = max(WEIGHTS_TOLERANCE * figure.weights_gib, LOG_ROUNDING_GIB)
    if figure.method in WEIGHTS_UNEXPLAINED:
        assert figure.weights_gib - predicted > tolerance  # still unexplained: fix the model, then this list
        return
    assert predicted == pytest.approx(figure.weights_gib, abs=tolerance)


@pytest.mark.parametrize("figure", [f for f in FIGURES if f.nvml_gib is not None], ids=_id)
def test_engine_memory_matches_nvml(figure: VllmFigure) -> None:
    # NVML sees the budget, CUDA graphs and context, plus whatever KV vLLM allocated beyond the
    # planner's: for the over-budget points that excess is real memory, and NVML holds it.
    row = _predict(figure)
    per_token_gpu = ModelShape.from_config(figure.config).kv_bytes_per_token() / min(
        figure.tp, int(figure.config["num_key_value_heads"])
    )
    excess_kv = (figure.kv_tokens - row.kv_tokens) * per_token_gpu
    engine = row.engine_gb * 1e9 + excess_kv
    assert engine / GIB == pytest.approx(figure.nvml_gib, rel=0.02)


def test_done_when_7b_on_h200() -> None:
    # `python -m playground plan --model meta-llama/Llama-2-7b-hf --gpu H200 --utilization 0.4 --context 4096`
    shape = ModelShape.from_config(FIGURES[0].config)
    bf16 = plan_gpus(shape, GPUS["H200"], max_gpus=1, utilization=0.4)[0]
    assert bf16.kv_tokens == pytest.approx(85_328, rel=0.03)
    assert GPUS["H200"].cuda_total_bytes / GIB == pytest.approx(139.8, abs=0.005)  # vLLM's logged total
