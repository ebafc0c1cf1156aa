"""The default pair for a GPU: the largest ungated 16-bit model that fits beside its 4-bit AWQ sibling
on one GPU with a useful KV cache each, by the planner's arithmetic (pure)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from playground.measure.gpus import Gpu
from playground.measure.memory_math import METHODS, ModelShape, weight_bytes
from playground.measure.vllm_memory import VllmSettings, as_loaded, kv_cache_tokens, overhead

USEFUL_KV_TOKENS = 8 * 2048  # at least 8 concurrent 2k-token requests in each engine
SHARED_UTILIZATION = 0.85  # both engines' budgets; the rest holds CUDA graphs, contexts and slack
UTIL_STEP = 0.01


def _qwen(hidden: int, inter: int, layers: int, heads: int, kv: int, vocab: int, tied: bool) -> dict[str, Any]:
    return {
        "hidden_size": hidden,
        "intermediate_size": inter,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "vocab_size": vocab,
        "tie_word_embeddings": tied,
    }


# Qwen2.5 Instruct and the Qwen team's own AWQ checkpoints: ungated, one family from 0.5B to 32B.
# Shapes from each model's config.json on the hub.
CANDIDATES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("Qwen/Qwen2.5-32B-Instruct", _qwen(5120, 27648, 64, 40, 8, 152064, False)),
    ("Qwen/Qwen2.5-14B-Instruct", _qwen(5120, 13824, 48, 40, 8, 152064, False)),
    ("Qwen/Qwen2.5-7B-Instruct", _qwen(3584, 18944, 28, 28, 4, 152064, False)),
    ("Qwen/Qwen2.5-3B-Instruct", _qwen(2048, 11008, 36, 16, 2, 151936, True)),
    ("Qwen/Qwen2.5-1.5B-Instruct", _qwen(1536, 8960, 28, 12, 2, 151936, True)),
    ("Qwen/Qwen2.5-0.5B-Instruct", _qwen(896, 4864, 24, 14, 2, 151936, True)),
)


@dataclass(frozen=True)
class PairChoice:
    """The pair picked for one GPU, with the figures that explain it."""

    model: str  # the 16-bit model; the 4-bit one is model + "-AWQ"
    dtype: str  # bfloat16, or float16 below compute capability 8.0
    utilization_16bit: float
    utilization_4bit: float
    kv_tokens_16bit: int
    kv_tokens_4bit: int

    @property
    def awq_model(self) -> str:
        """The 4-bit sibling's hub id."""
        return f"{self.model}-AWQ"

    def explain(self, gpu_name: str) -> str:
        """One sentence for the engine card."""
        return (
            f"Chosen for this {gpu_name}: the largest Qwen2.5 that fits beside its AWQ sibling with KV room for "
            f"8 requests of 2k tokens each (predicted {self.kv_tokens_16bit:,} and {self.kv_tokens_4bit:,} "
            f"tokens at utilization {self.utilization_16bit:.2f} and {self.utilization_4bit:.2f})."
        )


def _needed_utilization(shape: ModelShape, method: str, gpu: Gpu) -> float:
    """The smallest utilization (in steps of 0.01) whose budget holds the weights, vLLM's overhead
    and USEFUL_KV_TOKENS of KV cache."""
    weights = weight_bytes(shape, as_loaded(METHODS[method], gpu))
    need = weights + overhead(shape, gpu, VllmSettings()).in_budget
    need += (USEFUL_KV_TOKENS + 16) * shape.kv_bytes_per_token()  # one block of rounding
    return math.ceil(need / gpu.cuda_total_bytes / UTIL_STEP) * UTIL_STEP


def choose_pair(gpu: Gpu) -> PairChoice | None:
    """The largest candidate whose 16-bit and AWQ engines both fit on `gpu` with a useful KV cache;
    what is left of the shared budget is split evenly. None when not even the smallest fits."""
    settings = VllmSettings()
    for model, config in CANDIDATES:
        shape = ModelShape.from_config(config)
        need16, need4 = _needed_utilization(shape, "bf16", gpu), _needed_utilization(shape, "awq-4bit", gpu)
        if need16 + need4 > SHARED_UTILIZATION:
            continue
        spare = math.floor((SHARED_UTILIZATION - need16 - need4) / 2 / UTIL_STEP) * UTIL_STEP
        utils = (round(need16 + spare, 2), round(need4 + spare, 2))
        tokens = []
        for method, util in zip(("bf16", "awq-4bit"), utils, strict=True):
            weights = weight_bytes(shape, as_loaded(METHODS[method], gpu))
            free = gpu.cuda_total_bytes * util - weights - overhead(shape, gpu, settings).in_budget
            tokens.append(kv_cache_tokens(free, shape.kv_bytes_per_token()))
        dtype = "bfloat16" if gpu.compute_capability >= (8, 0) else "float16"
        return PairChoice(model, dtype, utils[0], utils[1], tokens[0], tokens[1])
    return None
