"""Quantizing a model with llm-compressor, planned before it starts: the schemes, the checks of the
model's shapes, the checkpoint's predicted size and the quantizer's predicted peak memory (pure:
config.json numbers in, numbers and sentences out)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from playground.measure.memory_math import ModelShape


@dataclass(frozen=True)
class Scheme:
    """One of llm-compressor's preset schemes as the playground offers it."""

    name: str  # llm-compressor's preset name
    title: str
    weight_bits: int
    calibrated: bool  # needs calibration text (GPTQ, SmoothQuant); FP8_DYNAMIC does not
    grouped: bool  # one scale per group of input columns (W4A16) instead of per output channel
    modifiers: str  # llm-compressor modifiers that do the work
    runs_on: str  # where vLLM serves the checkpoint


SCHEMES: dict[str, Scheme] = {
    "FP8_DYNAMIC": Scheme(
        "FP8_DYNAMIC",
        "FP8 weights (one scale per output channel), activations quantized per token at run time",
        8,
        calibrated=False,
        grouped=False,
        modifiers="QuantizationModifier",
        runs_on="GPUs of compute capability 8.9+ (Ada, Hopper) natively, 8.0 (Ampere) as FP8 weight-only "
        "(Marlin); vLLM's CPU build loads it too",
    ),
    "W4A16": Scheme(
        "W4A16",
        "4-bit integer weights by GPTQ (one scale per group of input columns), 16-bit activations",
        4,
        calibrated=True,
        grouped=True,
        modifiers="GPTQModifier",
        runs_on="GPUs of compute capability 7.5+ (Marlin, Machete on Hopper); vLLM's CPU build with AVX-512",
    ),
    "W8A8": Scheme(
        "W8A8",
        "INT8 weights by GPTQ after SmoothQuant (per output channel), activations per token at run time",
        8,
        calibrated=True,
        grouped=False,
        modifiers="SmoothQuantModifier + GPTQModifier",
        runs_on="GPUs of compute capability 7.5+ (CUTLASS int8); vLLM's CPU build (oneDNN int8)",
    ),
}
DEFAULT_GROUP = 128
GROUP_CHOICES = (128, 64, 32)  # tried in this order when the default does not divide a width
DEFAULT_SAMPLES = 128
DEFAULT_SEQ_LEN = 512
# Measured: the quantizer process held 0.48-0.52 GB with the tiny model (torch, transformers,
# datasets and llm-compressor imported); a CUDA context adds about 0.5 GB on a GPU.
RUNTIME_BYTES = 0.6e9
# Host memory beyond the runtime, per byte of weights as loaded, fitted with margin on a random
# 139 M-parameter Llama (bf16, 279 MB) on the CPU: FP8_DYNAMIC peaked at 1.86x the weights above the
# runtime, W4A16 (GPTQ, 11 x 512 tokens) at 3.1x (docs/NOTES.md). Allocator caches and llm-compressor's
# copies while compressing make up the part not itemized below.
WEIGHT_FACTOR = {False: 2.2, True: 3.5}
CUDA_CONTEXT_BYTES = 0.5e9
# Host memory a quantizer on a GPU holds beyond the CPU fit above (torch's CUDA libraries and the
# context's host side): measured on an H200 with a random 94 M-parameter Llama, FP8_DYNAMIC peaked
# 0.53 GB and W4A16 0.92 GB above what this plan predicts without this line (docs/gpu.md); rounded up.
CUDA_HOST_BYTES = 1.0e9


class QuantError(ValueError):
    """A quantization request that cannot run; the message says why in the user's words."""


@dataclass(frozen=True)
class QuantRequest:
    """What to quantize, how, with which calibration text, and where to write it."""

    model: str
    scheme: str
    out: str = ""  # empty: a folder named after the model and scheme under the data folder
    calib: str | None = None  # a text file; None: the bundled text (schemes that calibrate)
    samples: int = DEFAULT_SAMPLES
    seq_len: int = DEFAULT_SEQ_LEN
    group_size: int | None = 0  # 0: 128 where the widths allow (else 64, 32, per channel); None: per channel


def parse_scheme(name: str) -> Scheme:
    """The scheme called `name` (case-insensitive); QuantError naming the choices otherwise."""
    found = SCHEMES.get((name or "").strip().upper())
    if found is None:
        raise QuantError(f"unknown scheme {name!r}; choose one of: {', '.join(SCHEMES)}")
    return found


def input_widths(shape: ModelShape) -> dict[str, int]:
    """Each quantized linear layer's input width (what a group of columns must divide)."""
    return {
        "q_proj/k_proj/v_proj/gate_proj/up_proj (hidden_size)": shape.hidden,
        "o_proj (heads x head_dim)": shape.heads * shape.head_dim,
        "down_proj (intermediate_size)": shape.intermediate,
    }


def group_problems(shape: ModelShape, group: int) -> list[str]:
    """Why `group` cannot be the group size: a width it does not divide, named; empty when fine."""
    if group < 1:
        return [f"group size {group} must be a positive number of input columns"]
    return [
        f"group size {group} does not divide the input width {width} of {layers}"
        for layers, width in input_widths(shape).items()
        if width % group
    ]


def resolve_group(shape: ModelShape, requested: int | None) -> int | None:
    """The group size to use: the one asked for, or for 0 the first of 128, 64, 32 that divides
    every width (None, per output channel, when none does)."""
    if requested != 0:
        return requested
    return next((g for g in GROUP_CHOICES if not group_problems(shape, g)), None)


def cpu_kernel_problems(shape: ModelShape, group: int | None) -> list[str]:
    """Why vLLM's CPU W4A16 kernel would refuse the checkpoint (it wants an even group size and
    layer sizes that are multiples of 32)."""
    problems = []
    if group is not None and group % 2:
        problems.append(f"group size {group} is odd")
    sizes = {shape.hidden, shape.intermediate, shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim}
    problems += [f"layer size {s} is not a multiple of 32" for s in sorted(sizes) if s % 32]
    return problems


def tensor_bytes(shape: ModelShape, scheme: Scheme, group: int | None, dtype_bytes: int = 2) -> float:
    """Bytes of the tensors llm-compressor writes (compressed-tensors 0.19): quantized linears with
    their scales, everything else (embeddings, lm_head, norms) in the model's dtype. Excludes the
    safetensors header (about 110 bytes a tensor)."""
    total = float(shape.other_params() * dtype_bytes)
    for in_f, out_f in shape.linears():
        if scheme.name == "W4A16":
            groups = -(-in_f // group) if group else 1
            # int32-packed weights (8 values each), a scale per group and output, the int64 shape
            layer = in_f * out_f / 2 + out_f * groups * dtype_bytes + 2 * 8
        else:  # FP8_DYNAMIC, W8A8: one byte a weight, one scale per output channel
            layer = in_f * out_f + out_f * dtype_bytes
        total += shape.layers * layer
    return total


def dtype_bytes_of(config: dict[str, Any]) -> int:
    """Bytes per parameter of the checkpoint's own dtype (llm-compressor loads with dtype="auto")."""
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "float32")
    return 4 if dtype in ("float32", "fp32") else 2


@dataclass(frozen=True)
class PeakMemory:
    """Predicted peak memory of one quantization run, with the parts it adds up from."""

    ram_bytes: float
    vram_bytes: float | None  # None on the CPU
    parts: tuple[tuple[str, float], ...]


def predict_peak(
    shape: ModelShape, scheme: Scheme, *, samples: int, seq_len: int, dtype_bytes: int = 2, gpu: bool = False
) -> PeakMemory:
    """The quantizer's peak memory from the model's shape.

    llm-compressor loads the whole model into host memory, then (schemes that calibrate) runs the
    layers one at a time over the calibration set, keeping every sample's activations between
    layers (offloaded to host memory) and, for GPTQ, one fp32 Hessian per linear layer of the
    current decoder layer; saving builds the compressed tensors beside the model. On a GPU each
    decoder layer is moved to the device in turn, so the device holds one layer, its Hessians and
    one sample's activations."""
    weights = shape.params() * dtype_bytes
    ram: list[tuple[str, float]] = [
        ("runtime (torch, transformers, llm-compressor)", RUNTIME_BYTES),
        ("model weights as loaded", weights),
        ("copies while quantizing and compressing (fitted)", weights * (WEIGHT_FACTOR[scheme.calibrated] - 1)),
    ]
    layer_weights = shape.linear_params() / max(shape.layers, 1) * dtype_bytes
    hessians = 0.0
    acts = 0.0
    if scheme.calibrated:
        hessians = sum(i * i * 4 for i, _ in shape.linears())
        # inputs and outputs of the current layer for every sample, in the model's dtype
        acts = 2 * samples * seq_len * shape.hidden * dtype_bytes
        ram.append(("calibration activations, all samples", acts))
        if not gpu:
            ram.append(("GPTQ Hessians of one layer (fp32)", hessians))
    if gpu:
        ram.append(("CUDA libraries in host memory (measured)", CUDA_HOST_BYTES))
    vram = None
    if gpu:
        one_sample = seq_len * (shape.hidden * 4 + shape.intermediate * 3 + shape.heads * seq_len) * 4
        vram = CUDA_CONTEXT_BYTES + 2 * layer_weights + hessians + one_sample
        if not scheme.calibrated:
            vram = CUDA_CONTEXT_BYTES + 2 * layer_weights
    return PeakMemory(sum(b for _, b in ram), vram, tuple(ram))


@dataclass(frozen=True)
class QuantPlan:
    """A request checked against the model's config and the machine: what will run and what it costs."""

    request: QuantRequest
    scheme: Scheme
    group_size: int | None  # W4A16's resolved group size; None elsewhere or per channel
    shape: ModelShape
    dtype_bytes: int
    before_bytes: float  # predicted tensor bytes of the model as it is
    after_bytes: float  # predicted tensor bytes of the checkpoint
    peak: PeakMemory
    notes: tuple[str, ...] = ()


def plan_quantization(
    request: QuantRequest,
    config: dict[str, Any],
    *,
    ram_available: float,
    vram_available: float | None = None,
) -> QuantPlan:
    """Check a request against the model's config and the memory there is; QuantError when it cannot
    run (unknown scheme, a group size that does not divide a width, sizes out of range, too big)."""
    scheme = parse_scheme(request.scheme)
    try:
        shape = ModelShape.from_config(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise QuantError(f"the model's config.json lacks {exc} (needed to plan the quantization)") from exc
    problems: list[str] = []
    if scheme.calibrated:
        if request.samples < 1:
            problems.append(f"samples {request.samples} must be at least 1")
        longest = int(config.get("max_position_embeddings") or 0)
        if request.seq_len < 16:
            problems.append(f"sequence length {request.seq_len} is too short (at least 16 tokens)")
        elif longest and request.seq_len > longest:
            problems.append(f"sequence length {request.seq_len} is longer than the model's context ({longest})")
    group = None
    notes: list[str] = []
    if scheme.grouped:
        group = resolve_group(shape, request.group_size)
        if group is not None:
            problems += group_problems(shape, group)
        if request.group_size == 0 and group != DEFAULT_GROUP:
            per = f"group size {group}" if group else "one scale per output channel"
            notes.append(f"group size 128 does not divide this model's widths: using {per}")
    if problems:
        raise QuantError("; ".join(problems))
    dtype_bytes = dtype_bytes_of(config)
    peak = predict_peak(
        shape,
        scheme,
        samples=request.samples,
        seq_len=request.seq_len,
        dtype_bytes=dtype_bytes,
        gpu=vram_available is not None,
    )
    if peak.ram_bytes > ram_available:
        raise QuantError(
            f"quantizing needs about {peak.ram_bytes / 1e9:,.1f} GB of host memory (predicted from config.json: "
            f"the {shape.params() / 1e9:,.2f} B-parameter model is loaded whole) and "
            f"{ram_available / 1e9:,.1f} GB is available"
        )
    if peak.vram_bytes is not None and vram_available is not None and peak.vram_bytes > vram_available:
        raise QuantError(
            f"quantizing needs about {peak.vram_bytes / 1e9:,.1f} GB of GPU memory (one decoder layer at a "
            f"time) and {vram_available / 1e9:,.1f} GB is free"
        )
    after = tensor_bytes(shape, scheme, group, dtype_bytes)
    plan = QuantPlan(
        replace(request, scheme=scheme.name),
        scheme,
        group,
        shape,
        dtype_bytes,
        shape.params() * dtype_bytes,
        after,
        peak,
        tuple(notes),
    )
    return plan


def scheme_of_config(config: dict[str, Any]) -> tuple[Scheme, int | None] | None:
    """The scheme and group size of a compressed-tensors checkpoint's config.json (None for others)."""
    q = config.get("quantization_config") or {}
    if str(q.get("quant_method", "")).lower() != "compressed-tensors":
        return None
    groups = [g for g in (q.get("config_groups") or {}).values() if isinstance(g, dict)]
    weights = groups[0].get("weights") if groups else None
    if not isinstance(weights, dict):
        return None
    bits, kind = int(weights.get("num_bits") or 0), str(weights.get("type", "int"))
    if bits == 4 and kind == "int":
        grouped = weights.get("strategy") == "group"
        return SCHEMES["W4A16"], int(weights.get("group_size") or 0) if grouped else None
    if bits == 8 and kind == "float":
        return SCHEMES["FP8_DYNAMIC"], None
    if bits == 8 and kind == "int" and groups[0].get("input_activations"):
        return SCHEMES["W8A8"], None
    return None


def default_out_name(model: str, scheme: str, group: int | None) -> str:
    """A folder name for the result: the model's last path part, the scheme and W4A16's group."""
    base = model.rstrip("/").replace("tiny/", "tiny-").split("/")[-1] or "model"
    suffix = f"-G{group}" if scheme == "W4A16" and group else ""
    return f"{base}-{scheme}{suffix}"
