"""Placement over two GPUs of a lent host (issue 14): Llama-2-70B shapes with dummy weights, A = fp16 with tensor
parallelism over GPUs 0,1 (util 0.55; 0.6 + 0.35 on GPU 1 ran out of memory, docs/gpu.md), B = AWQ
4-bit on GPU 1 (util 0.35), through the playground's own core (`Arena`, as app.py and the CLI use
it). Records weights per GPU from vLLM's log, NVML memory per engine per GPU, KV tokens, TTFT and
decode for each, start times, the planner's prediction, and memory back to baseline after stop.

Usage (after bench/make_dummy_llama.py /tmp/l70 assets/tiny/bf16 --shape 70b):
    python3 bench/gpu_placement.py OUT.json"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from playground.arena.core import Arena
from playground.engines.monitor import device_info
from playground.measure.generation import GenerationParams
from playground.measure.memory_math import ModelShape
from playground.measure.planner import PRESETS, plan_gpus, resolve_gpu
from playground.measure.specs import parse_spec

COMMON = "max_model_len=4096,enforce_eager=true,extra_args=--load-format dummy"
A = f"/tmp/l70/fp16,label=70B fp16 (TP 2),devices=0,1,util=0.55,{COMMON}"
B = f"/tmp/l70/awq,label=70B AWQ,quantization=awq_marlin,devices=1,util=0.35,{COMMON}"
PARAMS = GenerationParams(max_tokens=64, temperature=0.0, chat=False, ignore_eos=True)


def gib(x: float | None) -> float | None:
    return None if x is None else round(x / 2**30, 2)


def memory(arena: Arena) -> dict[str, Any]:
    arena.watch.sample_once()
    s = arena.samples[-1]
    return {
        "engines_gib": {k: gib(v) for k, v in s.engines.items()},
        "by_gpu_gib": {k: {g: gib(b) for g, b in v.items()} for k, v in s.by_gpu.items()},
        "gpus_used_gib": {g: gib(b) for g, b in s.gpus_used.items()},
    }


def main(out: Path) -> None:
    device = device_info()
    result: dict[str, Any] = {
        "device": {"name": device.name, "count": device.count, "total_gib": gib(device.total_bytes)}
    }
    arena = Arena(
        (parse_spec(A), parse_spec(B)),
        data_dir=Path(os.environ.get("PLAYGROUND_DATA", "/tmp/pgdata")),
        device=device,
        sample_interval_s=3600,
    )
    try:
        result["baseline_memory"] = memory(arena)
        for name in ("A", "B"):
            started = time.perf_counter()
            status = arena.start(name, on_progress=lambda s: None)
            report = arena.slot(name).engine.log_report()  # type: ignore[union-attr]
            result[name] = {
                "spec": arena.slot(name).spec.display_name,
                "devices": arena.slot(name).spec.devices,
                "startup_s": status.startup_s,
                "wall_s": time.perf_counter() - started,
                "weights_gib_total": report.weights_gib,
                "weights_gib_per_gpu": report.weights_per_gpu,
                "kv_tokens": report.kv_cache_tokens,
                "kernel": report.kernel,
            }
            print(json.dumps(result[name]), file=sys.stderr, flush=True)
        result["memory_both_ready"] = memory(arena)
        result["separate_gpus"] = arena.separate_gpus()
        runs = []
        for mode in ("fair", "fair", "fair", "simultaneous"):
            answers = arena.compare_once("The history of the Roman Empire", PARAMS, mode)
            runs.append(
                {
                    "mode": mode,
                    "answers": [
                        {
                            "slot": a.slot,
                            "ttft_ms": a.timing.ttft_ms if a.timing else None,
                            "decode_tok_s": a.timing.decode_tok_s if a.timing else None,
                            "output_tokens": a.timing.output_tokens if a.timing else None,
                            "error": a.error,
                        }
                        for a in answers
                    ],
                }
            )
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        result["compares"] = runs
        result["memory_after_compares"] = memory(arena)
        for name in ("A", "B"):
            result[name]["metrics_kv_tokens"] = arena.slot(name).metrics.kv_cache_tokens
    finally:
        arena.shutdown()
        time.sleep(5)
        after = Arena((parse_spec(A), parse_spec(B)), data_dir=Path("/tmp/pgdata-after"), device=device)
        result["memory_after_stop"] = memory(after)
        after.shutdown()
        shape = ModelShape.from_config(PRESETS["meta-llama/Llama-2-70b-hf"])
        gpu, _ = resolve_gpu("H200")
        result["planner"] = {
            "fp16_util_0.55_2gpus": [
                asdict(r) for r in plan_gpus(shape, gpu, max_gpus=2, utilization=0.55) if r.method == "bf16"
            ],
            "awq_util_0.35_1gpu": [
                asdict(r) for r in plan_gpus(shape, gpu, max_gpus=1, utilization=0.35) if r.method == "awq-4bit"
            ],
        }
        out.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
