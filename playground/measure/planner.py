"""What fits where: for a model and a GPU, each method's weights, KV-cache tokens left, concurrent
requests and the batch-1 decode ceiling (pure arithmetic; every figure is a prediction)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from playground.measure.gpus import GPUS, MIB, Gpu, gpu_named
from playground.measure.memory_math import METHODS, ModelShape, weight_bytes
from playground.measure.vllm_memory import VllmSettings, as_loaded, kv_cache_tokens, overhead

VLLM_DEFAULTS = VllmSettings()  # an OpenAI server with CUDA graphs, as `vllm serve` starts

__all__ = ["GPUS", "PRESETS", "Gpu", "VllmSettings", "gpu_named", "plan", "plan_gpus", "resolve_gpu"]


_LLAMA = {"tie_word_embeddings": False}
PRESETS: dict[str, dict[str, Any]] = {
    "meta-llama/Llama-2-7b-hf": {
        **_LLAMA,
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
    },
    "meta-llama/Llama-2-13b-hf": {
        **_LLAMA,
        "hidden_size": 5120,
        "intermediate_size": 13824,
        "num_hidden_layers": 40,
        "num_attention_heads": 40,
        "num_key_value_heads": 40,
        "vocab_size": 32000,
    },
    "meta-llama/Llama-2-70b-hf": {
        **_LLAMA,
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
    },
    "meta-llama/Llama-3.1-8B": {
        **_LLAMA,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
    },
    "meta-llama/Llama-3.1-70B": {
        **_LLAMA,
        "hidden_size": 8192,
        "intermediate_size": 28672,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "vocab_size": 128256,
    },
    "Qwen/Qwen2.5-0.5B": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    },
    "Qwen/Qwen2.5-7B": {
        **_LLAMA,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
    },
    "Qwen/Qwen2.5-72B": {
        **_LLAMA,
        "hidden_size": 8192,
        "intermediate_size": 29568,
        "num_hidden_layers": 80,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "vocab_size": 152064,
    },
    "mistralai/Mistral-7B-v0.1": {
        **_LLAMA,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "vocab_size": 32000,
    },
}


@dataclass(frozen=True)
class MethodPlan:
    """One method's prediction on one GPU."""

    method: str
    bits: int
    weights_gb: float
    fits: bool
    kv_tokens: int
    max_concurrency: float
    decode_ceiling_tok_s: float
    overhead_gb: float  # activation peak + non-torch memory, what vLLM takes from the budget
    engine_gb: float  # what NVML will show for the engine: budget + CUDA graphs + CUDA context

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def plan(
    shape: ModelShape,
    gpu: Gpu,
    *,
    context_len: int = 4096,
    utilization: float = 0.9,
    kv_dtype_bytes: float = 2,
    settings: VllmSettings = VLLM_DEFAULTS,
) -> list[MethodPlan]:
    """Each method's fit on `gpu`: what vLLM's budget (utilization x CUDA's total) leaves for the KV
    cache after weights, peak activation and non-torch memory."""
    budget = gpu.cuda_total_bytes * utilization
    per_token = shape.kv_bytes_per_token(kv_dtype_bytes)
    extra = overhead(shape, gpu, settings)
    engine = (budget + extra.cuda_graphs + extra.cuda_context) / 1e9
    out = []
    for method in METHODS.values():
        weights = weight_bytes(shape, as_loaded(method, gpu))
        kv_tokens = kv_cache_tokens(budget - weights - extra.in_budget, per_token)
        # Batch 1 reads every weight once per token; the KV read is left out (small at short contexts).
        ceiling = gpu.bandwidth_gb_s * 1e9 / weights
        out.append(
            MethodPlan(
                method.name,
                method.bits,
                weights / 1e9,
                kv_tokens >= context_len,
                kv_tokens,
                kv_tokens / context_len,
                ceiling,
                extra.in_budget / 1e9,
                engine,
            )
        )
    return out


# Names people use for the data-sheet entries; a bare A100 is ambiguous and gets a question.
GPU_ALIASES: dict[str, str] = {"H100": "H100-80GB", "H100-SXM": "H100-80GB", "H200-141GB": "H200"}
AMBIGUOUS: dict[str, tuple[str, ...]] = {"A100": ("A100-40GB", "A100-80GB")}
TP_SIZES = (1, 2, 4, 8)  # tensor-parallel sizes vLLM users run on one host


def resolve_gpu(name: str) -> tuple[Gpu, str]:
    """The data-sheet GPU for a name in any case, and a note when an alias was read
    (`H100` means `H100-80GB`); raises ValueError for an unknown or ambiguous name."""
    key = name.strip().upper()
    for known, gpu in GPUS.items():
        if known.upper() == key:
            return gpu, ""
    if key in AMBIGUOUS:
        raise ValueError(f"{name} comes as {' and '.join(AMBIGUOUS[key])}: which one?")
    if key in GPU_ALIASES:
        gpu = GPUS[GPU_ALIASES[key]]
        return gpu, f"{name} read as {gpu.name} ({gpu.nvml_total_bytes // MIB:,} MiB)"
    raise ValueError(f"unknown GPU {name!r}; choose one of: {', '.join(GPUS)} (case does not matter)")


@dataclass(frozen=True)
class GpuCountPlan:
    """One method on the smallest number of GPUs of one kind where it fits (tensor parallel)."""

    method: str
    bits: int
    gpus: int  # the tensor-parallel size; the largest tried when it fits nowhere
    fits: bool
    weights_gb: float  # the whole model
    weights_per_gpu_gb: float
    kv_tokens: int  # tokens the KV cache holds across all GPUs (each token's KV is split over them)
    max_concurrency: float
    decode_ceiling_tok_s: float  # batch 1, ideal tensor parallelism: n x bandwidth / weights
    overhead_gb: float  # per GPU: activation peak + non-torch memory, what vLLM takes from the budget
    engine_gb: float  # per GPU, what NVML will show: budget + CUDA graphs + CUDA context

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


def plan_gpus(
    shape: ModelShape,
    gpu: Gpu,
    *,
    max_gpus: int = 8,
    context_len: int = 4096,
    utilization: float = 0.9,
    kv_dtype_bytes: float = 2,
    settings: VllmSettings = VLLM_DEFAULTS,
) -> list[GpuCountPlan]:
    """For each method, the smallest tensor-parallel size (1, 2, 4, 8; at most `max_gpus`, dividing
    the attention heads) at which the model fits with one request at `context_len`.

    Per GPU: weights / n, vLLM's overhead on that rank, and the KV heads it holds (kv_heads / n, at
    least one: vLLM replicates KV heads when there are fewer than GPUs)."""
    sizes = [n for n in TP_SIZES if n <= max_gpus and shape.heads % n == 0] or [1]
    budget = gpu.cuda_total_bytes * utilization
    out = []
    for method in METHODS.values():
        weights = weight_bytes(shape, as_loaded(method, gpu))
        best: GpuCountPlan | None = None
        for n in sizes:
            kv_heads_here = -(-shape.kv_heads // n)  # ceil: replicated below one head per GPU
            per_token = shape.kv_bytes_per_token(kv_dtype_bytes) * kv_heads_here / shape.kv_heads
            extra = overhead(shape, gpu, settings, n)
            kv_tokens = kv_cache_tokens(budget - weights / n - extra.in_budget, per_token)
            best = GpuCountPlan(
                method.name,
                method.bits,
                n,
                kv_tokens >= context_len,
                weights / 1e9,
                weights / n / 1e9,
                kv_tokens,
                kv_tokens / context_len,
                n * gpu.bandwidth_gb_s * 1e9 / weights,
                extra.in_budget / 1e9,
                (budget + extra.cuda_graphs + extra.cuda_context) / 1e9,
            )
            if best.fits:
                break
        assert best is not None
        out.append(best)
    return out
