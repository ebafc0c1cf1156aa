"""Variants: the session's list of specs of one model, any two of them shown in the panes. A variant
gets into a pane by vLLM's sleep mode on GPUs (the shown ones awake, the others asleep with their
weights in host RAM) and by a restart where sleep mode does not exist (the CPU build). A part the
`Arena` holds, given the device, the slots, the gate and the slot start/status it swaps with;
`measure.ladder.swap_method` decides which path a device takes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import psutil

from playground.arena.gate import GateTimeout, PaneGate
from playground.arena.slot import SLOT_NAMES, Slot
from playground.engines.client import GenerationError, sleep_engine, wake_engine
from playground.engines.model_config import load_config
from playground.engines.server import Engine, EngineError
from playground.measure.anatomy import method_of
from playground.measure.ladder import MIN_VARIANTS, host_ram_problem, logprobs_k, swap_method, variant_problems
from playground.measure.memory_math import METHODS, ModelShape, weight_bytes
from playground.measure.records import EngineStatus
from playground.measure.specs import DeviceInfo, EngineSpec, SpecError, check_spec

# A swap waits this long for the running compares to end, then says why it gave up. It outlasts a
# compare: the longest answer a visitor may ask for streams within it even on a busy CPU engine.
PANE_WAIT_S = 600.0

StartSlot = Callable[..., EngineStatus]  # Arena.start(name, spec, *, timeout_s=..., on_progress=...)


@dataclass(frozen=True)
class SwapRecord:
    """How the last variant got into a pane."""

    label: str
    method: str  # "sleep" (woken, or started then the old one put to sleep) or "restart"
    seconds: float
    at: float  # time.time()
    woke: bool = False  # True when the variant was asleep and woke up (the ~1 s path)


class Variants:
    """The variant list, which variant each pane shows, and swapping."""

    def __init__(
        self,
        device: DeviceInfo,
        slots: dict[str, Slot],
        gate: PaneGate,
        start: StartSlot,
        status: Callable[[str], EngineStatus],
    ):
        self.device = device
        self.slots = slots
        self.gate = gate
        self._start = start
        self._status = status
        self.specs: dict[str, EngineSpec] = {}  # label -> spec, in the order they were added
        for slot in slots.values():
            label = slot.spec.display_name
            if label in self.specs:  # two panes with the same settings: keep both, told apart
                label = f"{label} ({slot.name})"
                slot.spec = replace(slot.spec, label=label)
            self.specs[label] = slot.spec
        self.asleep: dict[str, Engine] = {}
        self.swaps: dict[str, SwapRecord] = {}

    @property
    def swap_method(self) -> str:
        """ "sleep" or "restart": how this device swaps variants (see measure.ladder.swap_method)."""
        return swap_method(self.device.kind)

    # -- the list ----------------------------------------------------------------------------
    def add(self, spec: EngineSpec) -> str:
        """Add a variant (it starts when it is first shown or prepared); returns its label."""
        label = spec.display_name
        problems = variant_problems(list(self.specs), label) + check_spec(spec, self.device)
        if problems:
            raise SpecError("; ".join(problems))
        self.specs[label] = replace(spec, label=label)
        return label

    def remove(self, label: str) -> None:
        """Drop a variant that no pane shows; a sleeping engine of it is stopped."""
        self._variant(label)
        if shown := self.pane_of(label):
            raise SpecError(f"{label} is shown in pane {shown}: show another variant there first")
        if len(self.specs) <= MIN_VARIANTS:
            raise SpecError(f"a session keeps at least {MIN_VARIANTS} variants")
        if engine := self.asleep.pop(label, None):
            engine.stop()
        del self.specs[label]

    def pane_of(self, label: str) -> str | None:
        """The pane showing `label`, if any."""
        return next((n for n, s in self.slots.items() if s.spec.display_name == label), None)

    def state(self, label: str) -> str:
        """Where a variant is: "in pane A", "asleep", "not started", or its pane's engine state."""
        if pane := self.pane_of(label):
            return f"in pane {pane} ({self._status(pane).state})"
        engine = self.asleep.get(label)
        if engine is None:
            return "not started"
        return "asleep" if engine.returncode() is None else "stopped while asleep"

    def _variant(self, label: str) -> EngineSpec:
        if label not in self.specs:
            raise SpecError(f"no variant called {label!r}; the variants are: {', '.join(self.specs)}")
        return self.specs[label]

    # -- how a variant is launched -----------------------------------------------------------
    def launch_spec(self, spec: EngineSpec) -> EngineSpec:
        """The spec as launched: sleep mode where swaps use it, and enough logprobs for exact KL on
        small vocabularies (vLLM's default --max-logprobs is 20)."""
        if spec.attached:
            return spec
        args = list(spec.extra_args)
        env = dict(spec.env)
        if self.swap_method == "sleep" and "--enable-sleep-mode" not in args:
            args.append("--enable-sleep-mode")
            env["VLLM_SERVER_DEV_MODE"] = "1"  # exposes /sleep, /wake_up and /is_sleeping
        if not any(a.split("=")[0] == "--max-logprobs" for a in args):
            args += ["--max-logprobs", str(logprobs_k(_vocab_size(spec.model))[0])]
        return replace(spec, extra_args=tuple(args), env=tuple(sorted(env.items())))

    # -- swapping ----------------------------------------------------------------------------
    def show(self, name: str, label: str, *, on_progress: Callable[[EngineStatus], None] | None = None) -> SwapRecord:
        """Bring variant `label` into pane `name`: wake it (sleep mode) or restart the pane's engine.

        Waits for the running compares (up to PANE_WAIT_S, then says why it gave up); compares sent
        meanwhile wait for the swap, so no compare mixes two variants. Raises SpecError or EngineError."""
        spec = self._variant(label)
        slot = self.slots[name]
        other = next(n for n in SLOT_NAMES if n != name)
        if self.slots[other].spec.display_name == label:
            raise SpecError(f"{label} is already shown in pane {other}; pick another variant for pane {name}")
        try:
            with self.gate.exclusive(PANE_WAIT_S, f"showing {label} in pane {name}"):
                started = time.perf_counter()
                woke = self._swap(slot, spec, label, on_progress)
                record = SwapRecord(label, self.swap_method, time.perf_counter() - started, time.time(), woke)
        except GateTimeout as exc:
            raise SpecError(f"{exc}; pane {name} keeps {slot.label}") from exc
        self.swaps[name] = record
        return record

    def _swap(
        self, slot: Slot, spec: EngineSpec, label: str, on_progress: Callable[[EngineStatus], None] | None
    ) -> bool:
        if self.swap_method == "sleep":
            self._put_to_sleep(slot)
            if label in self.asleep:
                self._wake_into(slot, spec, label)
                return True
        self._start(slot.name, spec, on_progress=on_progress)
        return False

    def _put_to_sleep(self, slot: Slot) -> None:
        """Sleep the pane's engine (level 1) and keep it aside; a pane with no ready engine is left."""
        engine = slot.engine
        if engine is None or slot.spec.attached or self._status(slot.name).state != "ready":
            return
        try:
            sleep_engine(engine.base_url, engine.api_key)
        except GenerationError as exc:
            raise EngineError(f"could not put {slot.spec.display_name} to sleep: {exc}") from exc
        self.asleep[slot.spec.display_name] = engine
        slot.engine = None

    def _wake_into(self, slot: Slot, spec: EngineSpec, label: str) -> None:
        engine = self.asleep.pop(label)
        if (code := engine.returncode()) is not None:
            raise EngineError(
                f"{label}'s engine stopped while asleep (exit code {code}); show it again to start it afresh"
            )
        try:
            wake_engine(engine.base_url, engine.api_key)
        except GenerationError as exc:
            engine.stop()
            raise EngineError(f"could not wake {label}: {exc}; show it again to start it afresh") from exc
        slot.spec, slot.engine = spec, engine

    def prepare(self, on_progress: Callable[[str], None] | None = None) -> dict[str, str]:
        """Sleep mode only: start every variant no pane shows, one at a time, and put each to sleep
        before the next starts (so variants that cannot all be awake together can all be ready).
        Refuses when their weights do not fit in host RAM. Returns each label's outcome."""
        if self.swap_method != "sleep":
            return {label: "starts when shown (this device swaps by restart)" for label in self.specs}
        waiting = [lb for lb in self.specs if not self.pane_of(lb) and lb not in self.asleep]
        # Every variant counts, awake ones too: an engine that has slept once keeps its host copy
        # of the weights after waking (measured on an H200: docs/gpu.md), and any can be put to sleep.
        weights = {lb: _predicted_weights(spec) for lb, spec in self.specs.items()}
        if problem := host_ram_problem(weights, psutil.virtual_memory().available):
            raise SpecError(problem)
        out: dict[str, str] = {}
        for label in waiting:
            if on_progress:
                on_progress(f"starting {label}, then putting it to sleep")
            try:
                out[label] = self._start_asleep(label)
            except (SpecError, EngineError) as exc:
                out[label] = f"failed: {exc}"  # the others stay usable
        return out

    def _start_asleep(self, label: str) -> str:
        """Start `label` in pane B's place, sleep it, and put B's own variant back awake."""
        slot = self.slots["B"]
        shown = slot.spec.display_name
        record = self.show("B", label)
        self.show("B", shown)
        return f"asleep (started in {record.seconds:.0f} s)"


def _vocab_size(model: str) -> int | None:
    try:
        return int(load_config(model, download=False)["vocab_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _predicted_weights(spec: EngineSpec) -> float:
    """Weight bytes the variant will hold in host RAM asleep, from its config (0 when unknown)."""
    try:
        config = load_config(spec.model, download=False)
        method = spec.quantization if spec.quantization in METHODS else method_of(config)
        return float(weight_bytes(ModelShape.from_config(config), METHODS[method]))
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
