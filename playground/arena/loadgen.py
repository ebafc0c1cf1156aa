"""The load behind a concurrency sweep: fixed-size prompts, N streams at once per level, the engine's
/metrics and memory polled meanwhile (I/O; the figures are computed in playground.measure.sweep)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from playground.arena.slot import SLOT_NAMES, Slot
from playground.engines import monitor
from playground.engines.client import GenerationError, StreamOutcome, fetch_metrics, stream_generation, tokenize
from playground.engines.stream_async import run_streams
from playground.measure.generation import GenerationParams
from playground.measure.records import EngineStatus
from playground.measure.specs import SpecError
from playground.measure.sweep import (
    EngineSweep,
    SweepLevel,
    SweepResult,
    SweepSettings,
    aggregate_level,
    fixed_length_prompt,
)

POLL_S = 0.5  # /metrics and memory up to twice a second while a level runs
POLL_PAUSE_FACTOR = 20  # ...and a pause of at least 20x the last read's duration after it
Progress = Callable[[float, str], None]
_BUSY: set[int] = set()
_BUSY_LOCK = threading.Lock()


class SweepBusy(RuntimeError):
    """Another sweep is running on the same engines; the message is meant for the user."""


@contextmanager
def one_at_a_time(owner: object) -> Iterator[None]:
    """Hold `owner` (an arena) for one sweep; raise SweepBusy while another holds it."""
    with _BUSY_LOCK:
        if id(owner) in _BUSY:
            raise SweepBusy("a sweep is already running on these engines: wait for it to finish or cancel it")
        _BUSY.add(id(owner))
    try:
        yield
    finally:
        with _BUSY_LOCK:
            _BUSY.discard(id(owner))


@dataclass(frozen=True)
class SweepTarget:
    """One engine to sweep, or why it cannot be swept."""

    slot: str
    label: str
    base_url: str = ""
    api_key: str = ""
    model: str = ""
    pids: Callable[[], list[int]] | None = None  # None for an attached endpoint: memory unknown
    not_ready: str = ""
    poll: bool = True  # False: nothing reads the engine's /metrics or memory while a level runs (no peaks)


def target(slot: Slot, status: EngineStatus) -> SweepTarget:
    """What a sweep needs from an arena slot; `not_ready` set when its engine cannot answer."""
    engine = slot.engine
    if engine is None or status.state != "ready":
        why = status.message or status.phase
        return SweepTarget(slot.name, slot.label, not_ready=f"engine {slot.name} is not ready ({why})")
    pids = None if slot.spec.attached else engine.pids
    return SweepTarget(slot.name, slot.label, engine.base_url, engine.api_key, engine.model_id, pids)


class _Progress:
    """Fraction of all requests answered so far, and the current step in words."""

    def __init__(self, callback: Progress | None, total: int):
        self.callback = callback
        self.total = max(total, 1)
        self.done = 0
        self.text = ""

    def say(self, text: str) -> None:
        self.text = text
        self.report()

    def report(self, in_level: int = 0) -> None:
        if self.callback:
            self.callback(min((self.done + in_level) / self.total, 1.0), self.text)


class _PeakPoller:
    """Reads the engine's KV-cache use and memory every POLL_S in a thread; keeps the highest."""

    def __init__(self, t: SweepTarget):
        self.target = t
        self.kv_peak: float | None = None
        self.memory_peak_mb: float | None = None
        self.error = ""
        self._stop = threading.Event()
        self._last_read_s = 0.0
        self._thread = threading.Thread(target=self._run, name=f"sweep-poll-{t.slot}", daemon=True)

    def __enter__(self) -> _PeakPoller:
        if not self.target.poll:
            return self
        # The first read before any request is sent: the API server renders /metrics in the process
        # that streams the answers, and a read at the level's start delayed its first wave's TTFT.
        self._last_read_s = self._timed_sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        # /metrics is rendered by the engine's API server, the process that streams the answers: on a
        # slow CPU one read took 0.2-2.5 s, so it is read at most a twentieth of the time (it was a
        # fifth; the sweep's TTFT then rose with the poller on, docs/NOTES.md).
        while not self._stop.wait(max(POLL_S, POLL_PAUSE_FACTOR * self._last_read_s)):
            self._last_read_s = self._timed_sample()

    def _timed_sample(self) -> float:
        started = time.monotonic()
        self.sample()
        return time.monotonic() - started

    def sample(self) -> None:
        t = self.target
        try:
            usage = fetch_metrics(t.base_url).kv_cache_usage
            if usage is not None:
                self.kv_peak = max(usage, self.kv_peak or 0.0)
        except Exception as exc:  # reported in the engine's notes, the sweep goes on
            self.error = f"/metrics: {type(exc).__name__}: {exc}"
        if t.pids is None:
            return
        try:
            value = monitor.sample_memory({t.slot: t.pids()}).engines.get(t.slot)
        except Exception as exc:  # NVML or psutil trouble: reported, never fatal
            self.error = f"memory: {type(exc).__name__}: {exc}"
            return
        if value is not None:
            self.memory_peak_mb = max(value / 1e6, self.memory_peak_mb or 0.0)


def run_sweep(
    targets: Sequence[SweepTarget],
    settings: SweepSettings,
    *,
    on_progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> SweepResult:
    """Sweep each target in turn (never two at once, so neither slows the other)."""
    cancel = cancel or threading.Event()
    progress = _Progress(on_progress, settings.total_requests * len(targets))
    nonce = secrets.randbelow(10_000)  # fresh prompts per sweep: nothing cached from an earlier one
    engines = []
    for t in targets:
        if cancel.is_set():
            engines.append(EngineSweep(t.slot, t.label, notes=("not swept: the sweep was cancelled",)))
            continue
        engines.append(_sweep_engine(t, settings, nonce, progress, cancel))
        if not cancel.is_set():  # an engine that stopped early still counts as done
            progress.done = progress.total * len(engines) // len(targets)
    progress.say("cancelled" if cancel.is_set() else "done")
    return SweepResult(settings, tuple(engines), cancelled=cancel.is_set())


def _sweep_engine(
    t: SweepTarget, settings: SweepSettings, nonce: int, progress: _Progress, cancel: threading.Event
) -> EngineSweep:
    """Prompts, one warm-up request (not counted), then every level in order."""
    out = EngineSweep(t.slot, t.label, started_at=time.time())
    if t.not_ready:
        return replace(out, error=t.not_ready, finished_at=time.time())
    params = GenerationParams(max_tokens=settings.output_tokens, temperature=0.0, chat=False, ignore_eos=True)
    progress.say(f"{t.slot}: preparing {settings.total_requests} prompts of {settings.input_tokens} tokens")
    try:
        prompts = _prompts(t, settings, nonce)
    except (GenerationError, ValueError) as exc:
        return replace(out, error=f"could not build the prompts: {exc}", finished_at=time.time())
    progress.say(f"{t.slot}: warm-up request")
    warm = stream_generation(t.base_url, t.api_key, t.model, prompts.pop(0), params, should_stop=cancel.is_set)
    if warm.error and not cancel.is_set():
        return replace(out, error=f"the warm-up request failed: {warm.error}", finished_at=time.time())
    levels: list[SweepLevel] = []
    notes: list[str] = []
    error = ""
    for index, level in enumerate(settings.levels, 1):
        count = settings.requests_at(level)
        batch, prompts = prompts[:count], prompts[count:]
        if cancel.is_set():
            break
        progress.say(f"{t.slot}: concurrency {level} ({index}/{len(settings.levels)})")
        measured, outcomes, poll_error = _run_level(t, batch, level, params, progress, cancel)
        if cancel.is_set():
            break  # an interrupted level is left out: its figures would mislead
        progress.done += count
        levels.append(measured)
        if poll_error:
            notes.append(f"concurrency {level}: {poll_error}")
        if failed := [o.error for o in outcomes if o.error]:
            if not measured.requests:
                error = f"every request at concurrency {level} failed: {failed[0]}"
                break
            notes.append(f"concurrency {level}: {len(failed)} of {count} requests failed, first: {failed[0]}")
    return replace(out, levels=tuple(levels), error=error, notes=tuple(notes), finished_at=time.time())


def _prompts(t: SweepTarget, settings: SweepSettings, nonce: int) -> list[str]:
    """The warm-up prompt, then every level's prompts in order, each its own, each exactly input_tokens."""
    return fixed_prompts(t, settings.input_tokens, settings.total_requests + 1, nonce)


def fixed_prompts(t: SweepTarget, tokens: int, count: int, tag: object) -> list[str]:
    """`count` prompts of exactly `tokens` tokens by the engine's own tokenizer, the i-th starting with
    "tag-i:" so that no two share a cached prefix (bench/sweep_vs_vllm_bench.py gives vllm bench these)."""

    def size(text: str) -> int:
        return len(tokenize(t.base_url, t.api_key, t.model, text))

    return [fixed_length_prompt(size, tokens, f"{tag}-{i}:") for i in range(count)]


def _run_level(
    t: SweepTarget,
    prompts: Sequence[str],
    concurrency: int,
    params: GenerationParams,
    progress: _Progress,
    cancel: threading.Event,
) -> tuple[SweepLevel, list[StreamOutcome], str]:
    """`concurrency` streams at once until every prompt is answered; the level's figures.

    The streams run in one asyncio loop in this (the caller's) thread, which also reports progress
    (engines/stream_async.py): a thread per stream parsing every chunk under the GIL took in 35 %
    fewer tokens at an H200's rate and stamped them 14 ms late at the median (docs/performance.md).
    """
    reported = [0]

    def tick(answered: int) -> None:
        if answered != reported[0]:
            reported[0] = answered
            progress.report(answered)

    with _PeakPoller(t) as poller:
        outcomes = run_streams(
            t.base_url, t.api_key, t.model, prompts, params, concurrency, should_stop=cancel.is_set, on_tick=tick
        )
    level = aggregate_level(concurrency, outcomes, kv_cache_peak=poller.kv_peak, memory_peak_mb=poller.memory_peak_mb)
    return level, outcomes, poller.error


class Sweeps:
    """The arena's concurrency sweeps: each slot's engine in turn at every level, one sweep at a time."""

    def __init__(self, slots: Mapping[str, Slot], status: Callable[[str], EngineStatus]):
        self._slots, self._status = slots, status

    def run(
        self,
        settings: SweepSettings,
        *,
        slots: Sequence[str] = SLOT_NAMES,
        on_progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> SweepResult:
        """Raises SpecError for bad settings and SweepBusy while another sweep runs on these engines."""
        if problems := self.problems(settings, slots):
            raise SpecError("; ".join(problems))
        targets = [target(self._slots[n], self._status(n)) for n in slots]
        with one_at_a_time(self):
            return run_sweep(targets, settings, on_progress=on_progress, cancel=cancel)

    def problems(self, settings: SweepSettings, slots: Sequence[str] = SLOT_NAMES) -> list[str]:
        """What is wrong with sweep settings for these slots' context lengths (checked before any start)."""
        lens = [self._slots[n].spec.max_model_len for n in slots]
        return settings.problems(min((n for n in lens if n), default=None))
