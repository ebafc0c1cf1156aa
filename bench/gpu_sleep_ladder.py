"""The ladder with sleep mode on a lent GPU (issue 12): three Llama-2-7B-shaped variants (fp16, AWQ
4-bit, FP8 online) with dummy weights, whose reservations do not all fit awake (3 x util 0.45),
prepared with vLLM's sleep mode, swapped into the panes, a dead sleeper woken, and the ladder run.
Everything goes through the playground's own core (`Arena`), as the app and the CLI use it.

Usage (after bench/make_dummy_llama.py /tmp/l7b): python3 bench/gpu_sleep_ladder.py OUT.json"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from playground.arena.core import Arena
from playground.engines.monitor import device_info, sample_memory
from playground.engines.server import EngineError
from playground.measure.specs import SpecError, parse_spec

COMMON = "util=0.45,max_model_len=4096,enforce_eager=true,extra_args=--load-format dummy"
SPECS = {
    "fp16": f"/tmp/l7b/fp16,label=fp16,{COMMON}",
    "AWQ": f"/tmp/l7b/awq,label=AWQ,quantization=awq_marlin,{COMMON}",
    "FP8 online": f"/tmp/l7b/fp16,label=FP8 online,quantization=fp8,{COMMON}",
}
REFERENCE = Path(__file__).resolve().parent.parent / "assets" / "reference.txt"


def gpu_used_gib() -> float | None:
    """The whole device's used memory (NVML), for before/after figures."""
    import pynvml

    pynvml.nvmlInit()
    return pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(0)).used / 2**30


def snapshot(arena: Arena, what: str, log: list[dict[str, Any]]) -> None:
    pids = {n: s.engine.pids() for n, s in arena.slots.items() if s.engine}
    pids.update({f"asleep: {label}": e.pids() for label, e in arena.variants.asleep.items()})
    sample = sample_memory(pids)
    row = {
        "what": what,
        "t": time.time(),
        "gpu_used_gib": gpu_used_gib(),
        "host_available_gib": psutil.virtual_memory().available / 2**30,
        "per_engine_gib": {k: (v or 0) / 2**30 for k, v in sample.engines.items()},
        "host_rss_gib": {
            k: sum(psutil.Process(p).memory_info().rss for p in ps if psutil.pid_exists(p)) / 2**30
            for k, ps in pids.items()
        },
        "states": {label: arena.variants.state(label) for label in arena.variants.specs},
    }
    log.append(row)
    print(json.dumps(row), file=sys.stderr, flush=True)


def main(out: Path) -> None:
    device = device_info()
    specs = {k: parse_spec(v) for k, v in SPECS.items()}
    arena = Arena(
        (specs["fp16"], specs["AWQ"]),
        data_dir=Path(os.environ.get("PLAYGROUND_DATA", "/tmp/pgdata")),
        device=device,
        sample_interval_s=1.0,
    )
    result: dict[str, Any] = {"device": asdict(device) | {"cpu_flags": []}, "swap_method": arena.variants.swap_method}
    log: list[dict[str, Any]] = []
    swaps: list[dict[str, Any]] = []
    try:
        arena.variants.add(specs["FP8 online"])
        snapshot(arena, "before any engine", log)
        for pane in ("A", "B"):
            status = arena.start(pane)
            result[f"start_{pane}_s"] = status.startup_s
        snapshot(arena, "fp16 in A, AWQ in B, both awake", log)
        started = time.perf_counter()
        result["prepare"] = arena.variants.prepare(lambda m: print(m, file=sys.stderr, flush=True))
        result["prepare_s"] = time.perf_counter() - started
        snapshot(arena, "prepared: FP8 asleep", log)
        for pane, label in (
            ("B", "FP8 online"),
            ("B", "AWQ"),
            ("A", "FP8 online"),
            ("A", "fp16"),
            ("B", "FP8 online"),
            ("B", "AWQ"),
        ):
            rec = arena.variants.show(pane, label)
            swaps.append({"pane": pane, **asdict(rec)})
            snapshot(arena, f"{label} shown in {pane}", log)
        rows = []
        for step in arena.ladder.run("fp16", text=REFERENCE.read_text(), max_tokens=32, timing_requests=5):
            print(step.message, file=sys.stderr, flush=True)
            rows = step.rows
        result["ladder"] = [r.as_dict() for r in rows]
        snapshot(arena, "after the ladder", log)
        # A sleeper whose process died: waking it must say so, not hang or answer from nothing.
        label, engine = next(iter(arena.variants.asleep.items()))
        os.killpg(os.getpgid(engine.pids()[0]), signal.SIGKILL)
        time.sleep(2)
        try:
            arena.variants.show("B", label)
            result["dead_sleeper"] = "no error (unexpected)"
        except (SpecError, EngineError) as exc:
            result["dead_sleeper"] = str(exc)
    finally:
        result["swaps"], result["memory"] = swaps, log
        out.write_text(json.dumps(result, indent=2, default=str))
        arena.shutdown()
        time.sleep(3)
        result["gpu_used_after_stop_gib"] = gpu_used_gib()
        out.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
