"""The arena's counters of the room: visitors seen, each engine's requests in flight (and how many
each request shared its engine with), tokens served per engine. Updated as requests start, stream and
end, and read by the room panel: no request to an engine is made for it."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from playground.measure.prometheus import EngineMetrics
from playground.measure.room import EngineLoad, RoomState

RATE_WINDOW_S = 10.0
VISITOR_WINDOW_S = 60.0
MAX_VISITORS = 10_000  # forget the oldest beyond this many, so a public instance's memory stays bounded


@dataclass
class InFlight:
    """One request streaming from one engine; the peaks only grow while it runs."""

    slot: str
    started: float  # time.monotonic()
    peak_arena: int  # the most arena requests on this engine at once while this one ran, itself included
    peak_engine: int = 0  # the most vLLM reported running while this one ran (other clients' too)

    @property
    def shared_with(self) -> int:
        """How many other requests shared the engine with this one at most."""
        return max(self.peak_arena - 1, self.peak_engine - 1, 0)


class Room:
    """Thread-safe counters; every method is O(requests in flight) at most."""

    def __init__(self, slots: Iterable[str]):
        self._lock = threading.Lock()
        self._active: dict[str, list[InFlight]] = {s: [] for s in slots}
        self._tokens: dict[str, deque[tuple[float, int]]] = {s: deque() for s in self._active}
        self._visitors: dict[str, float] = {}
        self.compares = 0  # compares running now (each holds one or two InFlight)

    def seen(self, visitor: str | None, now: float | None = None) -> None:
        """A visitor's page polled or sent something."""
        if not visitor:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            self._visitors.pop(visitor, None)
            self._visitors[visitor] = now  # re-inserted: the dict stays ordered by last seen
            while len(self._visitors) > MAX_VISITORS:
                del self._visitors[next(iter(self._visitors))]

    def visitors(self, now: float | None = None) -> int:
        """Visitors seen within the last VISITOR_WINDOW_S."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return sum(1 for t in self._visitors.values() if now - t <= VISITOR_WINDOW_S)

    @contextmanager
    def compare(self) -> Iterator[None]:
        """Count one compare as running while the block runs."""
        with self._lock:
            self.compares += 1
        try:
            yield
        finally:
            with self._lock:
                self.compares -= 1

    @contextmanager
    def streaming(self, slot: str) -> Iterator[InFlight]:
        """One request on `slot` for the block's duration; every request running there sees it."""
        with self._lock:
            active = self._active[slot]
            request = InFlight(slot, time.monotonic(), len(active) + 1)
            active.append(request)
            for other in active:
                other.peak_arena = max(other.peak_arena, len(active))
        try:
            yield request
        finally:
            with self._lock:
                active.remove(request)

    def in_flight(self, slot: str) -> int:
        """The arena's requests on `slot` now."""
        with self._lock:
            return len(self._active[slot])

    def engine_running(self, slot: str, running: float | None, read_at: float) -> None:
        """vLLM reported `running` requests on `slot` in a /metrics read begun at `read_at` (monotonic):
        requests that were already streaming then shared the engine with that many, themselves included."""
        if running is None:
            return
        with self._lock:
            for request in self._active[slot]:
                if request.started <= read_at:
                    request.peak_engine = max(request.peak_engine, int(running))

    def served(self, slot: str, tokens: int, now: float | None = None) -> None:
        """`tokens` arrived from `slot`'s engine. Called for every chunk of every stream, so it takes no
        lock: deque.append is atomic, and under 40 streams the lock was a sixth of the app's CPU."""
        if tokens > 0:
            self._tokens[slot].append((time.monotonic() if now is None else now, tokens))

    def tokens_per_s(self, slot: str, now: float | None = None) -> float:
        """Tokens received from `slot` over the last RATE_WINDOW_S."""
        now = time.monotonic() if now is None else now
        with self._lock:  # one reader trims at a time; writers only append at the other end
            window = self._tokens[slot]
            while window and window[0][0] < now - RATE_WINDOW_S:
                window.popleft()
            return sum(n for t, n in list(window) if t >= now - RATE_WINDOW_S) / RATE_WINDOW_S

    def state(self, metrics: Mapping[str, EngineMetrics]) -> RoomState:
        """The room now: the arena's counters beside vLLM's last /metrics figures per engine."""
        now = time.monotonic()
        engines = {}
        for slot in self._active:
            m = metrics.get(slot, EngineMetrics())
            engines[slot] = EngineLoad(
                in_flight=self.in_flight(slot),
                tokens_per_s=self.tokens_per_s(slot, now),
                batch=None if m.requests_running is None else int(m.requests_running),
                waiting=None if m.requests_waiting is None else int(m.requests_waiting),
                kv_usage=m.kv_cache_usage,
            )
        return RoomState(self.visitors(now), self.compares, engines, RATE_WINDOW_S, VISITOR_WINDOW_S)
