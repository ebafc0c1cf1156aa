"""The core: two engine slots, their engines' lifecycle, the memory monitor, the request history and
the gate that orders compares against swaps. The UI and the CLI are thin shells over `Arena`.

What the core does not do itself it holds as parts, each given only the services it uses: `variants`
(the variant list and swaps), `ladder`, `insights`, `saved` (SQLite history, exports), `quantizer` and
`quantized`, `accuracy` (lm-eval), `watch` (memory and /metrics samples), `door` (visitor limits) and
`room` (who shares the instance now). Any number of compares run at once and vLLM batches them; a swap,
a ladder step or a restart waits for them through `gate`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from playground.arena.accuracy import Evaluator
from playground.arena.defaults import resolve_tiny
from playground.arena.door import Door
from playground.arena.gate import GateTimeout, PaneGate
from playground.arena.history import SavedRuns
from playground.arena.insights import Insights
from playground.arena.ladder import Ladder
from playground.arena.loadgen import Sweeps
from playground.arena.quantizer import QuantizedLoader, Quantizer
from playground.arena.room import Room
from playground.arena.settings import VisitorLimits
from playground.arena.slot import SLOT_NAMES, Slot
from playground.arena.variants import PANE_WAIT_S, Variants
from playground.arena.watch import EngineWatch
from playground.engines import monitor
from playground.engines.client import StreamOutcome, stream_generation
from playground.engines.cpu import cpu_engine_env, uses_cpu_fallback
from playground.engines.server import READY_TIMEOUT_S, Engine, EngineError
from playground.measure.generation import GenerationParams
from playground.measure.metrics import request_timing
from playground.measure.phases import explain_exit
from playground.measure.prometheus import EngineMetrics
from playground.measure.records import EngineAnswer, EngineStatus, RequestRecord
from playground.measure.specs import (
    DeviceInfo,
    EngineSpec,
    SpecError,
    check_pair,
    check_spec,
    default_devices,
    placement_env,
    shared_gpus,
)
from playground.store.sqlite import HistoryStore

UI_UPDATE_S = 0.05  # one visitor's shell sees at most 20 updates a second; timestamps are taken per token
# Updates the shells get a second over every running compare together: with 40 compares streaming,
# each visitor's pane updates 5 times a second rather than 20 (docs/performance.md, section 7).
UI_UPDATES_PER_S = 200.0


@dataclass(frozen=True)
class CompareProgress:
    """A snapshot while a compare runs: text so far per slot, final answers as they complete."""

    texts: dict[str, str]
    answers: dict[str, EngineAnswer]
    done: bool = False
    run_id: int | None = None  # the saved run, once both answers are in


class Arena:
    """Owns both engines, samples their memory and keeps every request's figures."""

    def __init__(
        self,
        specs: Sequence[EngineSpec],
        *,
        data_dir: Path,
        device: DeviceInfo | None = None,
        sample_interval_s: float = 1.0,
        max_samples: int = 3600,
        limits: VisitorLimits | None = None,
    ):
        self.device = device or monitor.device_info()
        self.data_dir = data_dir
        self.slots = {
            n: Slot(n, default_devices(spec, i, self.device))
            for i, (n, spec) in enumerate(zip(SLOT_NAMES, specs, strict=True))
        }
        self.gate = PaneGate()  # compares share it; a swap, a ladder step or a restart has it alone
        self.room = Room(SLOT_NAMES)
        self.history: list[RequestRecord] = []
        self._compares = 0
        self._lock = threading.Lock()
        # GPU engines start one after the other (vLLM's memory profiling counts what another engine
        # allocates meanwhile); CPU engines have a fixed KV cache and a core each, so they start side by side.
        self.starts_overlap = self.device.kind == "cpu"
        shared = threading.Lock()
        self._start_locks = {n: threading.Lock() if self.starts_overlap else shared for n in SLOT_NAMES}
        self._starter = ThreadPoolExecutor(
            max_workers=2 if self.starts_overlap else 1, thread_name_prefix="engine-start"
        )
        self.limits = limits or VisitorLimits()
        self.door = Door(self.limits, self.slots)
        self.variants = Variants(self.device, self.slots, self.gate, self.start, self.status)
        self.ladder = Ladder(self.variants, self.status, lambda n: self.insights.weights(n))
        # Every compare and memory sample goes to SQLite as it happens (data/history.sqlite).
        store = HistoryStore(data_dir / "history.sqlite")
        specs_text = {n: s.spec.display_name for n, s in self.slots.items()}
        session_id = store.open_session(f"{self.device.kind}: {self.device.name}", specs_text)
        self.saved = SavedRuns(store, session_id, data_dir, self.ladder)
        cpu = self.device.kind == "cpu"
        save = self.saved.save_sample
        self.watch = EngineWatch(self.slots, self.status, self.room, save, cpu=cpu, max_samples=max_samples)
        self.samples, self.kv_usage = self.watch.samples, self.watch.kv_usage  # the series the charts draw
        self.insights = Insights(
            self.device, data_dir, self.slots, self.status, self.samples, self.history, self.door.admit, self.limits
        )
        self.sampler = monitor.Sampler(self.watch.sample_once, sample_interval_s)
        self.quantizer = Quantizer(data_dir, self.device)
        self.quantized = QuantizedLoader(self.device, self.slots, self.status, self.start_in_background)
        self.sweeps = Sweeps(self.slots, self.status)  # each engine at rising concurrency
        self.accuracy = Evaluator(data_dir, self.slots, self.status, self.variants, self.ladder)

    # -- engines -----------------------------------------------------------------------------
    def separate_gpus(self) -> bool:
        """True when A and B run on GPUs they do not share: then simultaneous mode is fair."""
        a, b = (default_devices(self.slot(n).spec, i, self.device) for i, n in enumerate(SLOT_NAMES))
        return self.device.kind == "cuda" and not (a.attached or b.attached) and not shared_gpus(a, b)

    def slot(self, name: str) -> Slot:
        """The slot called `name` ("A" or "B")."""
        if name not in self.slots:
            raise SpecError(f"no slot {name!r}; the slots are A and B")
        return self.slots[name]

    def problems(self, name: str, spec: EngineSpec) -> list[str]:
        """What stops `spec` from running in slot `name` next to the other slot's engine."""
        other = next(s for n, s in self.slots.items() if n != name)
        if other.engine is not None and self.status(other.name).state in ("starting", "ready"):
            pair = (spec, other.spec) if name == "A" else (other.spec, spec)
            return check_pair(*pair, self.device)
        return [f"{name}: {p}" for p in check_spec(spec, self.device)]

    def start(
        self,
        name: str,
        spec: EngineSpec | None = None,
        *,
        timeout_s: float | None = None,
        on_progress: Callable[[EngineStatus], None] | None = None,
    ) -> EngineStatus:
        """Start (or restart) one slot and wait until it is ready; raises SpecError or EngineError."""
        slot = self.slot(name)
        spec = default_devices(spec or slot.spec, SLOT_NAMES.index(name), self.device)
        slot.start_error = ""
        try:
            if problems := self.problems(name, spec):
                raise SpecError("; ".join(problems))
            engine_spec = self.variants.launch_spec(resolve_tiny(spec, self.data_dir))
        except (SpecError, ValueError, OSError) as exc:
            slot.start_error = str(exc)
            raise SpecError(str(exc)) from exc
        with self._start_locks[name]:
            self.stop(name)  # waits for the compares running on the panes
            slot.spec = spec
            self.variants.specs[spec.display_name] = spec  # a spec started from the form joins the variants
            env = cpu_engine_env(SLOT_NAMES.index(name), self.device) if self.device.kind == "cpu" else {}
            env.update(placement_env(engine_spec))  # the engine's GPUs: CUDA_VISIBLE_DEVICES
            for attempt in range(2):
                slot.engine = Engine(
                    engine_spec,
                    name=name,
                    log_dir=self.data_dir / "logs",
                    env=env,
                    fallback_kernel=uses_cpu_fallback(engine_spec, self.device),
                )
                slot.engine.launch()
                self.sampler.start()
                try:
                    limit = READY_TIMEOUT_S if timeout_s is None else timeout_s
                    return slot.engine.wait_ready(timeout_s=limit, on_progress=on_progress)
                except EngineError as exc:
                    if "port is already in use" not in str(exc) or attempt:
                        raise
            raise AssertionError("unreachable")

    def start_in_background(self, name: str, spec: EngineSpec | None = None) -> Future[EngineStatus]:
        """Queue a start in a worker thread (the UI polls `status`); starts overlap only where `starts_overlap`."""
        slot = self.slot(name)
        spec = spec or slot.spec
        if problems := self.problems(name, spec):
            raise SpecError("; ".join(problems))
        slot.spec = spec
        return self._starter.submit(self.start, name, spec)

    def start_all(
        self, on_progress: Callable[[str], Callable[[EngineStatus], None] | None] = lambda _name: None
    ) -> dict[str, EngineStatus | str]:
        """Start both slots (side by side where `starts_overlap`, else A then B) and wait for them; a
        failure in one is reported as its message and the other still starts."""
        out: dict[str, EngineStatus | str] = {}

        def one(name: str) -> None:
            try:
                out[name] = self.start(name, on_progress=on_progress(name))
            except (SpecError, EngineError) as exc:
                out[name] = str(exc)
            except Exception as exc:  # noqa: BLE001 - reported for this slot; the other still starts
                out[name] = f"{type(exc).__name__}: {exc}"

        a, b = (self.slots[n].spec for n in SLOT_NAMES)  # a pair that does not fit together starts A, then B
        overlap = self.starts_overlap and not check_pair(a, b, self.device)
        threads = [threading.Thread(target=one, args=(n,), name=f"start-{n}") for n in SLOT_NAMES]
        for t in threads:
            t.start()
            if not overlap:
                t.join()  # one after the other
        for t in threads:
            t.join()
        return {n: out[n] for n in SLOT_NAMES}

    def stop(self, name: str) -> None:
        """Stop one slot's engine and free its memory, once the running compares are done; the other
        slot is untouched. Raises SpecError when the compares outlast PANE_WAIT_S."""
        try:
            with self.gate.exclusive(PANE_WAIT_S, f"stopping {name}"):
                self._stop_now(name)
        except GateTimeout as exc:
            raise SpecError(str(exc)) from exc

    def _stop_now(self, name: str) -> None:
        slot = self.slot(name)
        if slot.engine is not None:
            slot.engine.stop()
        slot.metrics = EngineMetrics()
        slot.metrics_at = float("-inf")  # a restarted engine's figures are read at the next sample

    def status(self, name: str) -> EngineStatus:
        """The slot's engine status, `stopped` when none was started."""
        slot = self.slot(name)
        if slot.engine is not None:
            return slot.engine.status()
        if slot.start_error:
            return EngineStatus("failed", "not started", 0.0, message=slot.start_error)
        return EngineStatus("stopped", "not started", 0.0)

    def shutdown(self) -> None:
        """Stop sampling and every engine; safe to call twice."""
        self.sampler.stop()
        self._starter.shutdown(wait=False, cancel_futures=True)
        for name in SLOT_NAMES:
            self._stop_now(name)  # no waiting at shutdown: the streams end with their engines
        for engine in self.variants.asleep.values():
            engine.stop()
        self.saved.store.close()

    # -- comparing ---------------------------------------------------------------------------
    def compare(
        self, prompt: str, params: GenerationParams, mode: str = "fair", *, visitor: str | None = None
    ) -> Iterator[CompareProgress]:
        """Send one prompt to both engines; yield progress while it streams, the last one done.

        "fair" runs A then B so neither slows the other on a shared device; "simultaneous" runs
        both at once. Other visitors' compares run at the same time and vLLM batches them: each
        answer records how many requests it shared its engine with. Closing the iterator early (a
        visitor who left) cancels the requests at the engines. Raises SpecError for a bad prompt or
        settings before anything is sent, and RateLimited when `visitor` is over the per-minute limit.
        """
        if problems := self.door.problems(prompt, params, mode):
            raise SpecError("; ".join(problems))
        self.door.admit(visitor)
        self.room.seen(visitor)
        with self._lock:
            self._compares += 1
            number = self._compares
        live: dict[str, StreamOutcome | None] = dict.fromkeys(SLOT_NAMES)
        answers: dict[str, EngineAnswer] = {}
        saved: list[int] = []
        left = threading.Event()  # the visitor went away: stop streaming, save nothing
        started_at = time.time()

        def run(name: str) -> None:
            answers[name] = self._answer(name, prompt, params, mode, number, live, left)

        def run_both() -> None:
            if mode == "fair":
                for name in SLOT_NAMES:
                    if not left.is_set():
                        run(name)
                return
            threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in SLOT_NAMES]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        def run_all() -> None:
            with self.gate.shared(), self.room.compare():  # a swap waits for this; this waits for a swap
                run_both()
            if left.is_set():
                return
            # Saved here, in the worker, so a run is on disk even if nobody reads the last update.
            both = [answers[n] for n in SLOT_NAMES if n in answers]
            if stored := self.saved.save_run(number, prompt, mode, params, both, started_at, visitor):
                saved.append(stored.id)

        worker = threading.Thread(target=run_all, name=f"compare-{number}", daemon=True)
        worker.start()
        shown: tuple[dict[str, str], int] = ({}, 0)
        last = time.monotonic()
        try:
            while worker.is_alive():
                # The room's share of the update budget, once the visitor sees text; the first token at once.
                worker.join(
                    max(UI_UPDATE_S, self.room.compares / UI_UPDATES_PER_S) if any(shown[0].values()) else UI_UPDATE_S
                )
                texts = {n: answers[n].text if n in answers else (o.text if (o := live[n]) else "") for n in SLOT_NAMES}
                # An update costs a thread hop and a message; one a second at least, so a visitor who left is noticed.
                if (texts, len(answers)) != shown or time.monotonic() - last >= 1.0:
                    shown, last = (texts, len(answers)), time.monotonic()
                    yield CompareProgress(texts, dict(answers))  # done only below, with the saved run id
        finally:
            if worker.is_alive():  # the consumer closed us mid-stream
                left.set()
        yield CompareProgress(
            {n: a.text for n, a in answers.items()}, dict(answers), done=True, run_id=saved[0] if saved else None
        )

    def compare_once(self, prompt: str, params: GenerationParams, mode: str = "fair") -> list[EngineAnswer]:
        """Run a compare to the end and return both answers (the CLI's path)."""
        progress = list(self.compare(prompt, params, mode))
        return [progress[-1].answers[n] for n in SLOT_NAMES]

    def _answer(
        self,
        name: str,
        prompt: str,
        params: GenerationParams,
        mode: str,
        number: int,
        live: dict[str, StreamOutcome | None],
        left: threading.Event,
    ) -> EngineAnswer:
        slot = self.slot(name)
        spec, engine = slot.spec, slot.engine
        blank = EngineAnswer(name, slot.label, spec.model, spec.quantization, text="", timing=None)
        status = self.status(name)
        if engine is None or status.state != "ready":
            why = status.message or status.phase
            return replace(blank, error=f"engine {name} is not ready ({why})")

        def on_chunk(outcome: StreamOutcome) -> None:
            live[name] = outcome
            self.room.served(name, outcome.chunks[-1].tokens if outcome.chunks else 0)

        with self.room.streaming(name) as request:
            outcome = stream_generation(
                engine.base_url,
                engine.api_key,
                engine.model_id,
                prompt,
                params,
                on_chunk=on_chunk,
                should_stop=left.is_set,
            )
        error = outcome.error
        if error and engine.returncode() is not None:
            error = f"{error}; {explain_exit(engine.log_report(), engine.returncode())}"
        elif error and (reason := engine.log_report().failure):
            error = f"{error} — the engine's log says: {reason}"
        timing = request_timing(
            outcome.sent_at,
            outcome.chunks,
            outcome.finished_at,
            prompt_tokens=outcome.prompt_tokens,
            output_tokens=outcome.output_tokens,
        )
        answer = replace(
            blank,
            text=outcome.text,
            timing=timing,
            error=error,
            memory_mb=self.watch.memory_mb(name),
            engine_notes=engine.status().notes,
            **self.insights.run_yourself(name).as_dict(),
            finish_reason=outcome.finish_reason,
            shared_with=request.shared_with,
        )
        record = RequestRecord(number, time.time(), name, slot.label, mode, prompt, timing, error, request.shared_with)
        with self._lock:
            self.history.append(record)
        return answer

    def labels(self) -> dict[str, str]:
        """Each slot's display label, A first."""
        return {n: self.slots[n].label for n in SLOT_NAMES}

    def with_spec(self, name: str, **changes: object) -> EngineSpec:
        """The slot's spec with some settings changed (for the shells' forms)."""
        return replace(self.slot(name).spec, **changes)  # type: ignore[arg-type]
