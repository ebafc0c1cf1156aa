"""Watching the slots' engines: a memory sample of both (NVML or RSS, summed over each engine's
process tree) on the sampler's beat, and each ready engine's /metrics (KV cache, vLLM's running
batch). A part the `Arena` holds, given the slots, their status, the room it tells vLLM's batch to,
and where samples are saved."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from playground.arena.room import Room
from playground.arena.slot import Slot
from playground.engines import monitor
from playground.engines.client import fetch_metrics
from playground.measure.records import EngineStatus, MemorySample


class EngineWatch:
    """The memory series and the KV-cache series, one sample per call of `sample_once`."""

    def __init__(
        self,
        slots: dict[str, Slot],
        status: Callable[[str], EngineStatus],
        room: Room,
        save: Callable[[MemorySample], None],
        *,
        cpu: bool,
        max_samples: int,
    ):
        self.slots = slots
        self._status = status
        self.room = room
        self._save = save
        self.samples: deque[MemorySample] = deque(maxlen=max_samples)
        self.kv_usage: deque[tuple[float, dict[str, float | None]]] = deque(maxlen=max_samples)
        # vLLM's CPU build serves /metrics from the API process in 0.2-0.4 s of a shared core:
        # read it every 5 s there (every sample on a GPU), so measuring costs the engine little.
        self.metrics_interval_s = 5.0 if cpu else 0.0

    def sample_once(self) -> None:
        """Take one memory sample for both engines and read each ready engine's /metrics."""
        pids = {n: s.engine.pids() for n, s in self.slots.items() if s.engine and not s.spec.attached}
        sample = monitor.sample_memory(pids)
        self.samples.append(sample)
        self._save(sample)
        usage: dict[str, float | None] = {}
        now = time.monotonic()
        for slot in self.slots.values():
            due = now - slot.metrics_at >= self.metrics_interval_s
            if slot.engine and due and self._status(slot.name).state == "ready":
                slot.metrics_at = now
                try:
                    slot.metrics = fetch_metrics(slot.engine.base_url)
                    slot.metrics_error = ""
                    self.room.engine_running(slot.name, slot.metrics.requests_running, now)
                    usage[slot.name] = slot.metrics.kv_cache_usage
                except Exception as exc:  # shown beside the slot's status
                    slot.metrics_error = f"/metrics: {type(exc).__name__}: {exc}"
        if usage:
            self.kv_usage.append((time.time(), usage))

    def memory_mb(self, name: str) -> float | None:
        """The slot's latest sampled memory in MB (10^6 bytes)."""
        for sample in reversed(self.samples):
            if name in sample.engines:
                value = sample.engines[name]
                return None if value is None else value / 1e6
        return None
