"""How an instance is run: locked for the public or open, the limits visitors cannot exceed, and the
Gradio queue. From environment variables (PLAYGROUND_*) over an optional TOML file (pure)."""

from __future__ import annotations

import math
import os
import threading
import time
import tomllib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path

from playground.measure.generation import MAX_PROMPT_CHARS

PREFIX = "PLAYGROUND_"


class SettingsError(ValueError):
    """A setting the operator gave cannot be used; the message names it."""


@dataclass(frozen=True)
class VisitorLimits:
    """What one visitor may ask for. None means the app sets no limit of its own."""

    max_prompt_chars: int = MAX_PROMPT_CHARS
    max_tokens: int | None = None
    requests_per_minute: int | None = None


@dataclass(frozen=True)
class AppSettings:
    """An instance's configuration: engines, locked mode, visitor limits and the request queue."""

    a: str = ""  # engine specs; empty: the default pair
    b: str = ""
    locked: bool = False
    max_prompt_chars: int | None = None  # None: 2,000 when locked, 32,000 otherwise
    max_tokens: int | None = None  # None: 256 when locked, no limit otherwise
    requests_per_minute: int | None = None  # None: 10 per visitor session when locked, none otherwise
    # A class of 40 with open pages, each sending a compare at once, runs together with nothing refused
    # (README, "Deploying"): vLLM batches the compares; the page refresh runs outside the queue.
    concurrency: int = 64  # compares served at once (vLLM batches them); the rest wait in the queue
    queue_size: int = 256  # waiting events beyond this get "busy, retry"
    max_threads: int = 256  # Gradio's worker threads for every event type together (its default: 40)

    @property
    def limits(self) -> VisitorLimits:
        """The limits in force, defaults filled in by mode."""
        if self.locked:
            return VisitorLimits(self.max_prompt_chars or 2_000, self.max_tokens or 256, self.requests_per_minute or 10)
        return VisitorLimits(self.max_prompt_chars or MAX_PROMPT_CHARS, self.max_tokens, self.requests_per_minute)


_BOOL = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
    "": False,
}


def _convert(name: str, value: object, kind: type) -> object:
    if kind is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in _BOOL:
            raise SettingsError(f"{name} must be 1/0, true/false, yes/no or on/off (got {value!r})")
        return _BOOL[text]
    if kind is int:
        try:
            number = int(str(value).strip())
        except ValueError as exc:
            raise SettingsError(f"{name} must be a whole number (got {value!r})") from exc
        if number < 1:
            raise SettingsError(f"{name} must be at least 1 (got {number})")
        return number
    return str(value).strip()


_KINDS = {"a": str, "b": str, "locked": bool, "concurrency": int, "queue_size": int, "max_threads": int}


def load_settings(env: Mapping[str, str] | None = None) -> AppSettings:
    """Settings from PLAYGROUND_CONFIG (a TOML file, lowercase keys) overridden by PLAYGROUND_* variables."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    if path := env.get(PREFIX + "CONFIG", "").strip():
        try:
            values.update(tomllib.loads(Path(path).read_text()))
        except OSError as exc:
            raise SettingsError(f"{PREFIX}CONFIG: cannot read {path}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{PREFIX}CONFIG: {path} is not valid TOML: {exc}") from exc
    known = {f.name for f in fields(AppSettings)}
    if unknown := sorted(set(values) - known):
        raise SettingsError(
            f"{PREFIX}CONFIG: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    for name in known:
        if (text := env.get(PREFIX + name.upper())) is not None and text.strip():
            values[name] = text
    settings = AppSettings()
    changes = {n: _convert(f"{PREFIX}{n.upper()}", v, _KINDS.get(n, int)) for n, v in values.items()}
    return replace(settings, **changes)  # type: ignore[arg-type]


class RateLimiter:
    """At most `per_minute` events per key in any 60-second window (thread-safe, in memory)."""

    def __init__(self, per_minute: int | None, window_s: float = 60.0):
        self.per_minute = per_minute
        self.window_s = window_s
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: str, now: float | None = None) -> float:
        """Record an event for `key` and return 0, or refuse it and return the seconds to wait."""
        if self.per_minute is None:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            events = self._events.setdefault(key, deque())
            while events and events[0] <= now - self.window_s:
                events.popleft()
            if len(events) >= self.per_minute:
                return max(events[0] + self.window_s - now, 0.0) or math.ulp(1.0)
            events.append(now)
            if len(self._events) > 10_000:  # forget idle visitors so memory stays bounded
                for k in [k for k, q in self._events.items() if not q or q[-1] <= now - self.window_s]:
                    del self._events[k]
            return 0.0
