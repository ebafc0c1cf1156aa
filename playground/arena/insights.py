"""What the arena explains beyond one answer: the quality comparison, where each engine's memory
goes, decode speed against the GPU's ceiling, the session summary, and each engine as code to run
yourself. A part the `Arena` holds, given the device, the slots and their status, the memory samples,
the request history, the visitor limits and the admission check it applies."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from playground.arena.defaults import resolve_tiny
from playground.arena.settings import VisitorLimits
from playground.arena.slot import SLOT_NAMES, Slot
from playground.engines.model_config import checkpoint_tensor_bytes, load_config
from playground.engines.scoring import Endpoint, measure_quality
from playground.engines.server import EngineError
from playground.measure.anatomy import (
    LOG_SOURCE,
    ROUNDED_GIB,
    MemoryPart,
    WeightsCheck,
    breakdown,
    check_weights,
    readable_weights,
)
from playground.measure.generation import GenerationParams, check_generation, not_text
from playground.measure.metrics import median
from playground.measure.planner import gpu_named
from playground.measure.quality import QualityReport
from playground.measure.records import EngineStatus, MemorySample, RequestRecord
from playground.measure.specs import DeviceInfo, SpecError, placement_env
from playground.measure.summary import EngineSummary, decode_speeds, summarize
from playground.views.model_card import code_from_card
from playground.views.run_yourself import RunYourself, run_yourself


class Insights:
    """Quality, memory anatomy, summary and run-yourself over the arena's engines and history."""

    def __init__(
        self,
        device: DeviceInfo,
        data_dir: Path,
        slots: dict[str, Slot],
        status: Callable[[str], EngineStatus],
        samples: deque[MemorySample],
        history: list[RequestRecord],
        admit: Callable[[str | None], None],
        limits: VisitorLimits,
    ):
        self.device = device
        self.data_dir = data_dir
        self.slots = slots
        self._status = status
        self.samples = samples
        self.history = history
        self._admit = admit
        self.limits = limits
        self.quality_runs: list[QualityReport] = []
        self._lock = threading.Lock()

    def quality(
        self, prompt: str, *, max_tokens: int = 64, text: str | None = None, visitor: str | None = None
    ) -> QualityReport:
        """Greedy answers of both engines with top-k logprobs: where B departs from A, KL, perplexity."""
        limits = self.limits
        problems = check_generation(
            prompt,
            GenerationParams(max_tokens=max_tokens),
            max_model_len=None,
            max_prompt_chars=limits.max_prompt_chars,
            max_tokens_limit=limits.max_tokens,
        )
        if text and len(text) > limits.max_prompt_chars:
            problems.append(
                f"the perplexity text has {len(text):,} characters; the limit here is {limits.max_prompt_chars:,}"
            )
        if text and (bad := not_text(text, "the perplexity text")):
            problems.append(bad)
        if problems:
            raise SpecError("; ".join(problems))
        self._admit(visitor)
        endpoints = []
        for name in SLOT_NAMES:
            engine, status = self.slots[name].engine, self._status(name)
            if engine is None or status.state != "ready":
                raise EngineError(f"engine {name} is not ready ({status.message or status.phase})")
            endpoints.append(Endpoint(engine.base_url, engine.api_key, engine.model_id))
        context = min((s.spec.max_model_len or 2048 for s in self.slots.values()), default=2048)
        window = max(16, min(1024, context - 8))
        report = measure_quality(
            endpoints[0], endpoints[1], prompt, max_tokens=max_tokens, text=text, window=window, stride=window // 2
        )
        with self._lock:
            self.quality_runs.append(report)
        return report

    def weights(self, name: str) -> tuple[float | None, str]:
        """The slot's weight memory in GiB and where the figure comes from: vLLM's own log line, or
        the checkpoint's tensor bytes where the log rounds to 0.00-0.02 GiB or logs none (the CPU build)."""
        engine = self.slots[name].engine
        if engine is None:
            return None, ""
        logged = engine.status().weights_gib
        if logged is not None and logged > ROUNDED_GIB:
            return logged, LOG_SOURCE
        return readable_weights(logged, checkpoint_tensor_bytes(engine.spec.model))

    def anatomy(self, name: str) -> tuple[list[MemoryPart], WeightsCheck | None]:
        """The slot's memory split into sourced parts, and its config's predicted weights vs measured."""
        slot = self.slots[name]
        engine = slot.engine
        if engine is None or self._status(name).state != "ready":
            return [], None
        gib, source = self.weights(name)
        weights = None if gib is None else gib * 2**30
        graphs = engine.log_report().graphs_gib
        sample = self.samples[-1] if self.samples else None
        total = sample.engines.get(name) if sample else None
        parts = breakdown(
            total,
            weights,
            slot.metrics.kv_cache_bytes,
            None if graphs is None else graphs * 2**30,
            total_source=sample.source if sample else "",
            weights_source=source,
        )
        check = None
        try:
            check = check_weights(load_config(engine.spec.model, download=False), weights, source)
        except (OSError, ValueError, KeyError, TypeError):
            check = None  # no config on disk, or not a Llama-style one: no prediction rather than a wrong one
        return parts, check

    def decode_share(self, name: str) -> tuple[float, float] | None:
        """(median decode tok/s, batch-1 ceiling tok/s) on a known GPU: bandwidth / measured weights."""
        gib, _ = self.weights(name)
        gpu = gpu_named(self.device.name, self.device.total_bytes) if self.device.kind == "cuda" else None
        speeds = decode_speeds(self.history, name)
        if gpu is None or not gib or not speeds:
            return None
        return median(speeds) or 0.0, gpu.bandwidth_gb_s * 1e9 / (gib * 2**30)

    def summary(self) -> list[EngineSummary]:
        """The session's memory vs speed vs quality rows, one per engine."""
        return summarize(
            {n: self.slots[n].label for n in SLOT_NAMES},
            {n: self.weights(n) for n in SLOT_NAMES},
            {n: s.metrics.kv_cache_tokens for n, s in self.slots.items()},
            list(self.history),
            list(self.quality_runs),
        )

    def run_yourself(self, name: str) -> RunYourself:
        """The slot's engine as a `vllm serve` line, `LLM(...)` Python, and the recipe if made here."""
        slot = self.slots[name]
        if slot.engine is not None:
            spec, env = slot.engine.spec, slot.engine.extra_env
        else:
            try:
                spec = resolve_tiny(slot.spec, self.data_dir)
            except (ValueError, OSError):
                spec = slot.spec
            env = placement_env(spec)
        if self.device.cpu_build:
            env = {"VLLM_CPU_KVCACHE_SPACE": env.get("VLLM_CPU_KVCACHE_SPACE", "1"), **env}
        recipe = ""
        card = Path(spec.model) / "README.md"
        if not spec.attached and card.is_file():
            recipe = code_from_card(card.read_text(encoding="utf-8", errors="replace"))
        return run_yourself(spec, env, cpu=self.device.cpu_build, recipe=recipe)
