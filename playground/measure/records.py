"""Value objects the core keeps and the shells render: memory samples, answers, request history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground.measure.metrics import RequestTiming


@dataclass(frozen=True)
class MemorySample:
    """Memory at one moment: per engine (summed over its process tree) and for the whole device."""

    t: float  # time.time()
    engines: dict[str, float | None]  # slot -> bytes; None when the engine's processes are unseen
    device_used: float
    device_total: float
    source: str  # "NVML (GPU memory)" or "RSS (host memory, psutil)"
    by_gpu: dict[str, dict[int, float]] = field(default_factory=dict)  # slot -> GPU index -> bytes (NVML)
    gpus_used: dict[int, float] = field(default_factory=dict)  # GPU index -> bytes used on it (NVML)


@dataclass(frozen=True)
class EngineAnswer:
    """One engine's answer to one prompt, with its figures, or the reason it has none."""

    slot: str  # "A" or "B"
    label: str
    model: str
    quantization: str
    text: str
    timing: RequestTiming | None
    error: str = ""
    memory_mb: float | None = None
    finish_reason: str | None = None
    engine_notes: tuple[str, ...] = ()
    vllm_serve: str = ""  # the engine as a `vllm serve` line (playground's host, port and key left out)
    python: str = ""  # the same engine as `vllm.LLM(...)` Python
    llmcompressor: str = ""  # the llm-compressor script that made the model, when it was made here
    # How many other requests shared the engine with this one at most while it streamed (the arena's
    # own count, or vLLM's num_requests_running where that saw more); None: not recorded (older runs).
    shared_with: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The CLI's JSON shape for one engine."""
        t = self.timing
        return {
            "label": self.label,
            "model": self.model,
            "quantization": self.quantization,
            "text": self.text,
            "ttft_ms": t.ttft_ms if t else None,
            "decode_tok_s": t.decode_tok_s if t else None,
            "itl_p50_ms": t.itl_p50_ms if t else None,
            "itl_p95_ms": t.itl_p95_ms if t else None,
            "e2e_ms": t.e2e_ms if t else None,
            "prompt_tokens": t.prompt_tokens if t else None,
            "output_tokens": t.output_tokens if t else None,
            "memory_mb": self.memory_mb,
            "bursty": t.bursty if t else None,
            "finish_reason": self.finish_reason,
            "engine_notes": list(self.engine_notes),
            "error": self.error or None,
            "vllm_serve": self.vllm_serve,
            "python": self.python,
            "llmcompressor": self.llmcompressor or None,
            "shared_with": self.shared_with,
        }


@dataclass(frozen=True)
class RequestRecord:
    """One request in the running history."""

    request_no: int
    at: float  # time.time() when it finished
    slot: str
    label: str
    mode: str
    prompt: str
    timing: RequestTiming
    error: str = ""
    shared_with: int | None = None  # other requests on the engine at most while it streamed

    @property
    def alone(self) -> bool:
        """True when nothing else ran on its engine: its speed is the engine's own."""
        return self.shared_with == 0


@dataclass(frozen=True)
class EngineStatus:
    """A snapshot of one engine for the UI."""

    state: str  # stopped | starting | ready | failed
    phase: str
    elapsed_s: float
    message: str = ""
    pid: int | None = None
    base_url: str = ""
    log_path: str = ""
    weights_gib: float | None = None
    startup_s: float | None = None
    notes: tuple[str, ...] = ()  # where what loaded differs from what was asked
    compile_cache: str | None = None  # "warm" or "cold": vLLM's torch.compile cache at this start


@dataclass(frozen=True)
class CompareRun:
    """One stored compare: the prompt, its settings and both engines' answers with their figures."""

    id: int
    session_id: str
    number: int  # the compare's number within its session, as the charts show it
    started_at: float  # time.time()
    finished_at: float
    prompt: str
    mode: str
    params: dict[str, Any]  # GenerationParams as a dict
    answers: tuple[EngineAnswer, ...]


@dataclass(frozen=True)
class SessionInfo:
    """One app session in the history: when it began, on what device, with which engines."""

    id: str
    started_at: float
    device: str
    specs: dict[str, str]  # slot -> engine description
    runs: int = 0
