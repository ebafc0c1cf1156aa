"""Quantize your own model: plan a request against the model's config and this machine's memory, run
one quantization at a time (playground/quantize), and load a result beside its base model; every
engine as code to run yourself."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from playground.arena.defaults import ASSETS, TINY_ALIAS, neutral_spec, resolve_tiny
from playground.arena.slot import SLOT_NAMES
from playground.engines import monitor
from playground.engines.model_config import load_config
from playground.measure.quant_log import QuantProgress
from playground.measure.quant_plan import (
    QuantError,
    QuantPlan,
    QuantRequest,
    default_out_name,
    parse_scheme,
    plan_quantization,
)
from playground.measure.records import EngineStatus
from playground.measure.specs import DeviceInfo, EngineSpec, SpecError, placement_env
from playground.quantize.runner import QuantEnvError, QuantJob, QuantOutcome, check_calibration, check_env, quant_python
from playground.views.model_card import code_from_card
from playground.views.run_yourself import RunYourself, run_yourself

if TYPE_CHECKING:
    from playground.arena.slot import Slot

BUNDLED_CALIBRATION = ASSETS / "calibration.txt"
BUNDLED_LABEL = "the playground's bundled text (assets/calibration.txt, written for the project, CC0)"


class QuantBusy(QuantError):
    """Another quantization runs in this app; one at a time (each loads a whole model)."""


@dataclass(frozen=True)
class PreparedRun:
    """A checked request: its plan, and the paths the worker will use."""

    plan: QuantPlan
    model_path: str  # what the worker loads (a tiny alias resolved to its folder)
    out: Path
    calib: Path | None
    calib_label: str


class Quantizer:
    """Quantizations for one app: at most one runs; the last outcome is kept for the shells."""

    def __init__(self, data_dir: Path, device: DeviceInfo):
        self.data_dir = data_dir
        self.device = device
        self.job: QuantJob | None = None
        self.last: QuantOutcome | None = None
        self._lock = threading.Lock()

    def model_path(self, model: str) -> str:
        """The folder or hub id the worker loads (`tiny/bf16` is built on first use)."""
        model = model.strip()
        if not model:
            raise QuantError("model is empty: give a Hugging Face id or a local folder")
        if model.startswith(TINY_ALIAS):
            try:
                return resolve_tiny(EngineSpec(model=model), self.data_dir).model
            except (ValueError, OSError) as exc:
                raise QuantError(str(exc)) from exc
        return model

    def prepare(self, request: QuantRequest) -> PreparedRun:
        """Check everything that can be checked before the quantizer starts; QuantError says what is wrong."""
        scheme = parse_scheme(request.scheme)
        model_path = self.model_path(request.model)
        try:
            config = load_config(model_path)
        except Exception as exc:  # a missing folder, no network, a gated repo: one sentence, not a trace
            raise QuantError(f"could not read the model's config.json ({type(exc).__name__}: {exc})") from exc
        calib = None
        label = ""
        if scheme.calibrated:
            calib = Path(request.calib).expanduser() if request.calib else BUNDLED_CALIBRATION
            check_calibration(calib)
            label = str(calib) if request.calib else BUNDLED_LABEL
        ram, vram = monitor.free_memory()
        plan = plan_quantization(request, config, ram_available=ram, vram_available=vram)
        name = default_out_name(request.model, scheme.name, plan.group_size)
        out = Path(request.out).expanduser() if request.out else self.data_dir / "quantized" / name
        if not request.out:  # the default name again: the next free one, never over an earlier result
            n = 2
            while out.exists():
                out, n = out.with_name(f"{name}-{n}"), n + 1
        if out.exists():
            raise QuantError(f"{out} already exists: choose another output folder or delete it")
        return PreparedRun(plan, model_path, out.resolve(), calib, label)

    def start(self, request: QuantRequest) -> QuantJob:
        """Check the request and the quantizer's environment, then launch; returns the running job."""
        prepared = self.prepare(request)
        python, named = quant_python()
        install_first = False
        try:
            check_env(python)
        except QuantEnvError:
            if named or python.exists():
                raise  # the user's interpreter, or a broken environment: say so, do not overwrite it
            install_first = True  # first use: create .venv-quant as the run's first step
        with self._lock:
            if self.job is not None and self.job.returncode() is None and self.job.pids():
                raise QuantBusy("a quantization is already running; wait for it or cancel it")
            job = QuantJob(
                prepared.plan,
                model_path=prepared.model_path,
                out=prepared.out,
                log_dir=self.data_dir / "logs",
                python=python,
                calib=prepared.calib,
                calib_label=prepared.calib_label,
                install_first=install_first,
            )
            job.start()
            self.job = job
        return job

    def run(
        self, request: QuantRequest, on_progress: Callable[[QuantProgress, float], None] | None = None
    ) -> QuantOutcome:
        """Quantize to the end (the CLI's path and the tab's worker thread)."""
        job = self.start(request)
        outcome = job.wait(on_progress)
        self.last = outcome
        return outcome

    def cancel(self) -> bool:
        """Cancel the running quantization (its whole process tree); False when none runs."""
        job = self.job
        if job is None or job.returncode() is not None:
            return False
        job.cancel()
        return True


class ArenaQuantize:
    """The arena's side of quantizing: compare a result with its base, and engines as code."""

    device: DeviceInfo
    data_dir: Path
    quantizer: Quantizer

    def slot(self, name: str) -> Slot:  # pragma: no cover - Arena defines it
        raise NotImplementedError

    def status(self, name: str) -> EngineStatus:  # pragma: no cover - Arena defines it
        raise NotImplementedError

    def start_in_background(
        self, name: str, spec: EngineSpec | None = None
    ) -> Future[EngineStatus]:  # pragma: no cover - Arena defines it
        raise NotImplementedError

    def compare_with_base(self, out: str, base: str, *, slot: str = "B") -> list[Future[EngineStatus]]:
        """Load a quantized folder into `slot` and its base model into the other slot (kept when it
        already runs the base); both start in the background, one after the other."""
        if slot not in SLOT_NAMES:
            raise SpecError(f"no slot {slot!r}; the slots are A and B")
        folder = Path(out)
        if not (folder / "config.json").is_file():
            raise SpecError(f"{out} is not a finished checkpoint (no config.json): quantize first")
        other = next(n for n in SLOT_NAMES if n != slot)
        neutral = neutral_spec(self.device)
        current = self.slot(other).spec
        base_spec = current if current.model == base else replace(neutral, model=base, label="base")
        quantized = replace(neutral, model=str(folder), label=f"{folder.name} (quantized here)")
        futures = []
        if not (current.model == base and self.status(other).state in ("ready", "starting")):
            futures.append(self.start_in_background(other, base_spec))
        futures.append(self.start_in_background(slot, quantized))
        return futures

    def run_yourself(self, name: str) -> RunYourself:
        """The slot's engine as a `vllm serve` line, `LLM(...)` Python, and the recipe if made here."""
        slot = self.slot(name)
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
