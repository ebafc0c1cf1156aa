"""Every GPU memory figure vLLM printed in this repository's runs: its "Model loading took" weights
and its "GPU KV cache size" tokens, with the settings of each run and where the figure is written.

All runs: one or two NVIDIA H200 (NVML 143,771 MiB), vLLM 0.26.0, dummy or tiny weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playground.measure.planner import PRESETS

# The checkpoints issue 11 quantized on the GPU (docs/gpu-runs/issue11-*.tgz, config-FP8_DYNAMIC.json).
SMALL_LLAMA: dict[str, Any] = {
    "hidden_size": 1024,
    "intermediate_size": 2816,
    "num_hidden_layers": 8,
    "num_attention_heads": 16,
    "num_key_value_heads": 4,
    "head_dim": 64,
    "vocab_size": 2048,
    "tie_word_embeddings": False,
}
# assets/tiny/bf16/config.json
TINY: dict[str, Any] = {
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "vocab_size": 2048,
    "tie_word_embeddings": False,
}
L7B = PRESETS["meta-llama/Llama-2-7b-hf"]
L70B = PRESETS["meta-llama/Llama-2-70b-hf"]


@dataclass(frozen=True)
class VllmFigure:
    """One engine start as vLLM logged it."""

    source: str
    config: dict[str, Any]
    method: str  # the planner's method name
    utilization: float
    context: int
    eager: bool
    offline: bool  # vLLM's LLM(...) class (max_num_batched_tokens 16,384 on an H200) or the server (8,192)
    sleep_mode: bool  # --enable-sleep-mode: the app's way on a GPU since issue 12
    weights_gib: float  # "Model loading took X GiB", per GPU
    kv_tokens: int  # "GPU KV cache size: N tokens"
    tp: int = 1
    nvml_gib: float | None = None  # NVML's figure for the engine's process tree, per GPU, where recorded

    @property
    def size(self) -> str:
        """The size class the tolerance is set by."""
        return "70B" if self.config is L70B else "7B" if self.config is L7B else "small"


README = "shared/device/README.md reference table (LLM class: its overhead matches 16,384 batched tokens)"
GPU_MD = "docs/gpu.md l7b (bench/gpu_check.sh, the CLI's servers, before sleep mode)"
ISSUE13 = "docs/gpu-runs/issue13-*-h200*.tgz engine logs (six starts, all identical)"
ISSUE12 = "docs/gpu-runs/issue12-h200.json, docs/gpu.md issue 12 ladder"
ISSUE14 = "docs/gpu-runs/issue14-2xh200.json, docs/gpu.md issue 14"
ISSUE11 = "docs/gpu-runs/issue11-*-h200.tgz vllm-*.log (bench/gpu_quantize.sh, LLM class)"
TINY_MD = "docs/gpu.md tiny model table (the CLI's servers, before sleep mode)"

FIGURES: tuple[VllmFigure, ...] = (
    VllmFigure(README, L7B, "bf16", 0.4, 4096, False, True, False, 12.55, 85_328),
    VllmFigure(README, L7B, "awq-4bit", 0.4, 4096, False, True, False, 3.74, 103_440),
    VllmFigure(README + "; FP8 online", L7B, "fp8", 0.4, 4096, False, True, False, 6.74, 97_328),
    VllmFigure(GPU_MD, L7B, "bf16", 0.4, 4096, False, False, False, 12.55, 86_752, nvml_gib=58_544 / 1024),
    VllmFigure(GPU_MD, L7B, "awq-4bit", 0.4, 4096, False, False, False, 3.74, 104_848, nvml_gib=58_814 / 1024),
    VllmFigure(ISSUE13, L7B, "bf16", 0.4, 4096, False, False, True, 12.55, 86_784),
    VllmFigure(ISSUE13, L7B, "awq-4bit", 0.4, 4096, False, False, True, 3.74, 108_384),
    VllmFigure(ISSUE12, L7B, "bf16", 0.45, 4096, True, False, True, 12.55, 101_232, nvml_gib=63.70),
    VllmFigure(ISSUE12, L7B, "awq-4bit", 0.45, 4096, True, False, True, 3.74, 122_816, nvml_gib=65.55),
    VllmFigure(ISSUE12 + "; FP8 online", L7B, "fp8", 0.45, 4096, True, False, True, 6.74, 113_792),
    VllmFigure(ISSUE14 + " (first try, util 0.6)", L70B, "bf16", 0.6, 4096, True, False, True, 64.24, 121_440, 2),
    VllmFigure(ISSUE14, L70B, "bf16", 0.55, 4096, True, False, True, 64.24, 75_632, 2, nvml_gib=79.33),
    VllmFigure(ISSUE14, L70B, "awq-4bit", 0.35, 4096, True, False, True, 34.91, 63_184, nvml_gib=57.35),
    VllmFigure(ISSUE11 + "; FP8_DYNAMIC", SMALL_LLAMA, "fp8", 0.4, 1024, False, True, False, 0.13, 7_235_600),
    VllmFigure(ISSUE11 + "; W4A16 checkpoint", SMALL_LLAMA, "gptq-4bit", 0.4, 1024, True, True, False, 0.05, 7_247_104),
    VllmFigure(TINY_MD, TINY, "bf16", 0.3, 1024, True, False, False, 0.01, 21_825_856, nvml_gib=43_512 / 1024),
    VllmFigure(TINY_MD, TINY, "awq-4bit", 0.3, 1024, True, False, False, 0.0, 21_844_496, nvml_gib=43_548 / 1024),
)
