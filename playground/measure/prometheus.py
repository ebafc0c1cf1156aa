"""Reading vLLM's Prometheus `/metrics` text: KV-cache size and use, request queues (pure)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    """One line of the exposition format."""

    name: str
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class EngineMetrics:
    """The figures the playground reads from one engine's /metrics."""

    kv_cache_usage: float | None = None  # fraction 0..1 of the KV cache in use
    requests_running: float | None = None
    requests_waiting: float | None = None
    kv_cache_bytes: int | None = None
    kv_cache_tokens: int | None = None
    kv_cache_max_concurrency: float | None = None
    num_blocks: int | None = None
    block_size: int | None = None


def parse_samples(text: str) -> list[Sample]:
    """All samples in a Prometheus text exposition, comments skipped."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            value = float(m["value"])
        except ValueError:
            continue
        labels = {lm["key"]: lm["value"] for lm in _LABEL.finditer(m["labels"] or "")}
        samples.append(Sample(m["name"], labels, value))
    return samples


def _total(samples: list[Sample], name: str) -> float | None:
    values = [s.value for s in samples if s.name == name]
    return sum(values) if values else None


def _label_number(labels: dict[str, str], *keys: str) -> float | None:
    for key in keys:
        raw = labels.get(key)
        if raw is None or raw in ("", "None"):
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        if math.isfinite(value):
            return value
    return None


def engine_metrics(text: str) -> EngineMetrics:
    """Extract the KV-cache and queue figures from vLLM's /metrics text."""
    samples = parse_samples(text)
    info = next((s.labels for s in samples if s.name == "vllm:cache_config_info"), {})

    def as_int(value: float | None) -> int | None:
        return None if value is None else int(value)

    usage = _total(samples, "vllm:kv_cache_usage_perc")
    if usage is None:
        usage = _total(samples, "vllm:gpu_cache_usage_perc")  # name before vLLM 0.10
    return EngineMetrics(
        kv_cache_usage=usage,
        requests_running=_total(samples, "vllm:num_requests_running"),
        requests_waiting=_total(samples, "vllm:num_requests_waiting"),
        kv_cache_bytes=as_int(_label_number(info, "kv_cache_memory_bytes")),
        kv_cache_tokens=as_int(_label_number(info, "kv_cache_size_tokens")),
        kv_cache_max_concurrency=_label_number(info, "kv_cache_max_concurrency"),
        num_blocks=as_int(_label_number(info, "num_gpu_blocks", "num_cpu_blocks")),
        block_size=as_int(_label_number(info, "block_size")),
    )
