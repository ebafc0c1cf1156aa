"""The room: how many people share one instance now, what runs on each engine, and what batching did
for them, in figures and one plain sentence (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class EngineLoad:
    """One engine's load right now, from the arena's own counters and vLLM's last /metrics read."""

    in_flight: int  # the arena's requests streaming from this engine now
    tokens_per_s: float  # tokens the arena received from it over the rate window
    batch: int | None = None  # vLLM's num_requests_running (every client's, not only the arena's)
    waiting: int | None = None  # vLLM's num_requests_waiting
    kv_usage: float | None = None  # fraction of vLLM's KV cache in use


@dataclass(frozen=True)
class RoomState:
    """Who is in the room and what runs where, at one moment."""

    visitors: int  # sessions that polled or sent a compare within the visitor window
    compares: int  # compares running now
    engines: Mapping[str, EngineLoad]  # slot -> its load
    window_s: float = 10.0  # the tokens/s window
    visitor_window_s: float = 60.0


def shared_note(shared_with: int | None) -> str:
    """How an answer ran: alone on its engine, or beside up to N other requests (None: not recorded)."""
    if shared_with is None:
        return "load not recorded"
    if shared_with == 0:
        return "ran alone on its engine"
    other = "request" if shared_with == 1 else "requests"
    return f"shared the engine with up to {shared_with} other {other}"


def room_sentence(state: RoomState, labels: Mapping[str, str]) -> str:
    """One plain sentence on what batching does for this room right now."""
    people = "1 visitor is" if state.visitors == 1 else f"{state.visitors} visitors are"
    busy = {n: e for n, e in state.engines.items() if e.in_flight or (e.batch or 0) > 0}
    if not busy:
        return f"{people} here in the last minute; no request is running now, so each engine is idle."
    parts = []
    for name, load in busy.items():
        batch = max(load.batch or 0, load.in_flight)
        each = load.tokens_per_s / batch if batch else 0.0
        together = f"{load.tokens_per_s:,.0f} tokens/s together, about {each:,.0f} each"
        if batch > 1:
            parts.append(f"vLLM runs {labels.get(name, name)}'s {batch} requests as one batch: {together}")
        else:
            parts.append(f"{labels.get(name, name)} serves 1 request: {load.tokens_per_s:,.0f} tokens/s")
    return f"{people} here in the last minute. " + "; ".join(parts) + "."
