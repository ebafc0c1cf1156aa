"""Where an engine's memory goes: weights, KV cache, CUDA graphs and the rest, each with its
source; and what the config predicts against what was measured (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from playground.measure.memory_math import METHODS, ModelShape, weight_bytes
from playground.measure.quant_plan import dtype_bytes_of, scheme_of_config, tensor_bytes


@dataclass(frozen=True)
class MemoryPart:
    """One slice of an engine's memory."""

    name: str
    bytes: float
    source: str
    inferred: bool = False  # the remainder: measured total minus the parts that have a source


def breakdown(
    total: float | None,
    weights: float | None,
    kv: float | None,
    graphs: float | None,
    *,
    total_source: str,
    weights_source: str,
) -> list[MemoryPart]:
    """Parts that add up to the measured total; the rest is inferred as total minus the others."""
    parts = []
    if weights is not None:
        parts.append(MemoryPart("weights", weights, weights_source))
    if kv is not None:
        parts.append(MemoryPart("KV cache", kv, "vLLM /metrics (cache_config_info)"))
    if graphs is not None:
        parts.append(MemoryPart("CUDA graphs", graphs, "vLLM log (Graph capturing finished)"))
    if total is not None:
        rest = total - sum(p.bytes for p in parts)
        parts.append(MemoryPart("runtime and rest", rest, f"{total_source} minus the parts above", True))
    return parts


def method_of(config: Mapping[str, Any]) -> str:
    """The memory_math method a checkpoint's config.json describes."""
    q = config.get("quantization_config") or {}
    kind, bits = str(q.get("quant_method", "")).lower(), int(q.get("bits", 4) or 4)
    if kind == "awq":
        return "awq-4bit"
    if kind == "gptq":
        return f"gptq-{bits}bit" if f"gptq-{bits}bit" in METHODS else "gptq-4bit"
    if kind in ("fp8", "fbgemm_fp8"):
        return "fp8"
    return "bf16"


@dataclass(frozen=True)
class WeightsCheck:
    """Predicted weight bytes from config.json against the measured figure."""

    method: str
    predicted: float
    measured: float | None
    warning: str = ""
    label: str = ""  # the method in the config's own words: "fp16", "bf16", "16-bit", "awq-4bit"
    measured_source: str = ""  # "vLLM log" or the checkpoint's tensor bytes

    @property
    def named(self) -> str:
        """What the card prints for the method."""
        return self.label or self.method

    @property
    def error(self) -> float | None:
        """(measured - predicted) / predicted."""
        return None if self.measured is None else (self.measured - self.predicted) / self.predicted


def check_weights(config: Mapping[str, Any], measured: float | None, source: str = "") -> WeightsCheck:
    """Predict from the config; warn when what loaded looks like 16-bit weights under a quantized config."""
    shape = ModelShape.from_config(config)
    method = method_of(config)
    predicted = weight_bytes(shape, METHODS[method])
    if found := scheme_of_config(dict(config)):  # made by llm-compressor (here or elsewhere)
        scheme, group = found
        predicted = tensor_bytes(shape, scheme, group, dtype_bytes_of(dict(config)))
        method = f"compressed-tensors {scheme.name}" + (f", group {group}" if group else "")
    warning = ""
    full = weight_bytes(shape, METHODS["bf16"])
    if measured is not None and method != "bf16" and measured > 0.9 * full:
        warning = (
            f"the config says {method} but {measured / 2**30:.2f} GiB loaded, the size of 16-bit "
            f"weights ({full / 2**30:.2f} GiB): the weights are not quantized"
        )
    label = _dtype_label(config) if method == "bf16" else method
    return WeightsCheck(method, predicted, measured, warning, label, source)


# vLLM logs "Model loading took X GiB" to two decimals: a small model's 0.00-0.02 GiB says nothing.
ROUNDED_GIB = 0.02
LOG_SOURCE = "vLLM log"


def readable_weights(log_gib: float | None, tensor_bytes: int | None) -> tuple[float | None, str]:
    """Weights in GiB and their source: vLLM's own figure, unless its log rounded them to 0.00-0.02
    GiB and the checkpoint's tensor bytes are known, which then read right."""
    if log_gib is not None and (log_gib > ROUNDED_GIB or not tensor_bytes):
        return log_gib, LOG_SOURCE
    if tensor_bytes:
        why = f"; vLLM's log rounds them to {log_gib:.2f} GiB" if log_gib is not None else ""
        return tensor_bytes / 2**30, f"checkpoint tensor bytes{why}"
    return None, ""


def _dtype_label(config: Mapping[str, Any]) -> str:
    """A 16-bit checkpoint's dtype as its config names it (float16 is not bf16, though both are 2 bytes)."""
    dtype = str(config.get("torch_dtype") or config.get("dtype") or "").lower()
    return {"float16": "fp16", "bfloat16": "bf16"}.get(dtype, "16-bit")
