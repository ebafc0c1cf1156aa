"""What vLLM holds on a GPU besides weights and KV cache, modelled on its own memory profile.

vLLM (v1 `gpu_worker.determine_available_memory`, 0.26 and later) budgets
`gpu_memory_utilization x CUDA total` and gives the KV cache what is left after three figures it
logs ("Actual usage is W GiB for weight, A GiB for peak activation, N GiB for non-torch memory, and
G GiB for CUDAGraph memory"): weights W, the peak activation A of one profiling forward pass over
`max_num_batched_tokens` tokens plus the sampler over `max_num_seqs` rows, and non-torch memory N.
CUDA graphs G are captured after the KV cache is sized: in 0.26 they are not taken from the KV
cache but come on top of the budget (the log suggests `--kv-cache-memory` to fit them)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from playground.measure.gpus import GIB, MIB, Gpu
from playground.measure.memory_math import Method, ModelShape

BLOCK_TOKENS = 16  # vLLM's KV block: the cache holds a whole number of blocks
# Per token of the profiling batch, in 16-bit values: the MLP's gate/up output and its activation
# (3 x intermediate, split over tensor-parallel ranks) and about 3.25 hidden-size vectors (residual,
# norm output, attention output). Fitted to vLLM's logged peak activation: 0.37 GiB (hidden 1,024,
# intermediate 2,816, 16,384 tokens) and 0.78 GiB (Llama-2-7B, 8,192 tokens); it then gives
# 1.07 GiB for Llama-2-70B over two GPUs, where vLLM logged 1.06.
MLP_VALUES_PER_INTERMEDIATE = 3.0
HIDDEN_VECTORS = 3.25
SAMPLER_FLOAT32_COPIES = 0.5  # the sampler's logits for max_num_seqs rows (Llama-2-7B: 0.06 GiB)
NON_TORCH_BYTES = int(0.21 * GIB)  # vLLM logged 0.21-0.22 GiB for every one-GPU engine here
CUDA_GRAPH_BYTES_PER_LAYER = 24 * MIB  # 0.73-0.78 GiB for 32 layers, 0.19 GiB for 8 (51 sizes)
CUDA_CONTEXT_BYTES = int(0.52 * GIB)  # NVML per engine minus budget minus graphs (7B fp16, H200)
# NCCL buffers and the custom all-reduce of a tensor-parallel engine, per GPU, also outside the
# budget: measured once (Llama-2-70B over two H200s, 79.33 GiB per GPU at util 0.55).
TP_COMM_BYTES = int(1.7 * GIB)


@dataclass(frozen=True)
class VllmSettings:
    """The engine settings that move vLLM's overhead; defaults are vLLM's for an OpenAI server."""

    eager: bool = False  # --enforce-eager: no torch.compile, no CUDA graphs
    max_num_batched_tokens: int | None = None  # None: vLLM's default for this GPU
    max_num_seqs: int | None = None
    offline: bool = False  # vLLM's LLM(...) class, which has larger defaults than the server

    def batch(self, gpu: Gpu) -> tuple[int, int]:
        """(max_num_batched_tokens, max_num_seqs) vLLM picks: larger on GPUs of 70 GiB or more
        other than the A100 (vLLM's `EngineArgs` defaults by usage context)."""
        big = gpu.cuda_total_bytes >= 70 * GIB and "A100" not in gpu.name.upper()
        tokens = (16384 if self.offline else 8192) if big else (8192 if self.offline else 2048)
        seqs = 1024 if big else 256
        return self.max_num_batched_tokens or tokens, self.max_num_seqs or seqs


@dataclass(frozen=True)
class Overhead:
    """vLLM's non-KV memory per GPU, as its log names the parts (bytes)."""

    activation_peak: int
    non_torch: int
    cuda_graphs: int  # on top of the budget in vLLM 0.26, not taken from the KV cache
    cuda_context: int  # CUDA context (and NCCL when tensor-parallel): outside the budget; NVML sees it

    @property
    def in_budget(self) -> int:
        """What vLLM subtracts from the budget besides weights."""
        return self.activation_peak + self.non_torch


def overhead(shape: ModelShape, gpu: Gpu, settings: VllmSettings, tp: int = 1) -> Overhead:
    """The overhead vLLM will log for `shape` on one of `tp` GPUs."""
    tokens, seqs = settings.batch(gpu)
    per_token = 2 * (MLP_VALUES_PER_INTERMEDIATE * shape.intermediate / tp + HIDDEN_VECTORS * shape.hidden)
    sampler = seqs * shape.vocab * 4 * SAMPLER_FLOAT32_COPIES
    graphs = 0 if settings.eager else CUDA_GRAPH_BYTES_PER_LAYER * shape.layers
    outside = CUDA_CONTEXT_BYTES + (TP_COMM_BYTES if tp > 1 else 0)
    return Overhead(int(tokens * per_token + sampler), NON_TORCH_BYTES, graphs, outside)


def kv_cache_tokens(kv_bytes: float, per_token_bytes: float) -> int:
    """Tokens a KV cache of `kv_bytes` holds, in whole blocks as vLLM allocates them."""
    if kv_bytes <= 0:
        return 0
    return int(kv_bytes // (per_token_bytes * BLOCK_TOKENS)) * BLOCK_TOKENS


def as_loaded(method: Method, gpu: Gpu) -> Method:
    """The method's weights as vLLM holds them on `gpu`: on Hopper (compute capability 9.x) vLLM 0.26
    runs AWQ through the Machete kernel, which keeps each group's zero point as a 16-bit value
    (scale x zero) instead of 4 bits; 7B AWQ then loads 3.74 GiB, not the checkpoint's 3.62."""
    if method.name.startswith("awq") and gpu.compute_capability[0] == 9:
        return replace(method, group_overhead_bytes=4.0)
    return method
