"""`quantize`: a model through llm-compressor (in .venv-quant) into a folder vLLM loads as it is."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from playground.arena.defaults import use_storage

if TYPE_CHECKING:
    from playground.measure.quant_log import QuantProgress


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `quantize` subcommand and its options."""
    qz = sub.add_parser("quantize", help="quantize a model with llm-compressor (FP8_DYNAMIC, W4A16, W8A8)")
    qz.add_argument("--model", required=True, help="hub id, local folder, or tiny/bf16")
    qz.add_argument("--scheme", required=True, help="FP8_DYNAMIC, W4A16 (GPTQ) or W8A8 (SmoothQuant + GPTQ, int8)")
    qz.add_argument("--calib", help="calibration text file (default: the bundled assets/calibration.txt)")
    qz.add_argument("--samples", type=int, default=128, help="calibration samples, at most (default 128)")
    qz.add_argument("--seq-len", type=int, default=512, help="tokens per calibration sample (default 512)")
    qz.add_argument(
        "--group-size",
        type=int,
        default=0,
        help="W4A16 group size (default: 128 where the widths allow; -1: per channel)",
    )
    qz.add_argument("--out", help="output folder (default: data/quantized/MODEL-SCHEME)")
    qz.add_argument("--json", action="store_true", help="print one JSON object")
    qz.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Quantize a model with llm-compressor (in .venv-quant) into a folder vLLM loads as it is."""
    from playground.arena.quantizer import Quantizer
    from playground.engines.monitor import device_info
    from playground.measure.quant_plan import QuantError, QuantRequest
    from playground.measure.specs import EngineSpec
    from playground.views.model_card import card_facts_dict
    from playground.views.run_yourself import run_yourself

    request = QuantRequest(
        model=args.model,
        scheme=args.scheme,
        out=args.out or "",
        calib=args.calib,
        samples=args.samples,
        seq_len=args.seq_len,
        group_size=None if args.group_size == -1 else args.group_size,
    )
    device = device_info()
    quantizer = Quantizer(use_storage().data, device)
    try:
        job = quantizer.start(request)
    except QuantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    plan = job.plan
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    print(
        f"[quantize] {plan.scheme.name} of {job.model_path} -> {job.out}; predicted peak host memory "
        f"{plan.peak.ram_bytes / 1e9:,.2f} GB, "
        f"weights {plan.before_bytes / 1e6:,.1f} -> {plan.after_bytes / 1e6:,.1f} MB",
        file=sys.stderr,
    )
    last = [""]

    def show(progress: QuantProgress, elapsed: float) -> None:
        if progress.text != last[0]:
            print(f"[quantize] {progress.fraction:4.0%} {progress.text} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
            last[0] = progress.text

    try:
        outcome = job.wait(show)
    finally:
        if job.returncode() is None:  # Ctrl-C or SIGTERM: stop the worker's tree, leave no folder
            job.cancel()
    code = run_yourself(
        replace(EngineSpec(model=str(job.out)), gpu_memory_utilization=0.9, max_model_len=None),
        cpu=device.cpu_build,
    )
    if args.json:
        out = {
            "state": outcome.state,
            "out": str(outcome.out) if outcome.state == "done" else None,
            "message": outcome.message,
            "seconds": outcome.seconds,
            "scheme": plan.scheme.name,
            "group_size": plan.group_size,
            "predicted": {
                "before_bytes": plan.before_bytes,
                "after_bytes": plan.after_bytes,
                "peak_ram_bytes": plan.peak.ram_bytes,
                "peak_vram_bytes": plan.peak.vram_bytes,
            },
            "facts": card_facts_dict(outcome.facts) if outcome.facts else None,
            "llmcompressor": outcome.code,
            "vllm_serve": code.vllm_serve if outcome.state == "done" else None,
            "python": code.python if outcome.state == "done" else None,
            "log": str(outcome.log_path),
        }
        print(json.dumps(out, indent=2))
    if outcome.state != "done":
        print(f"error: {outcome.message}", file=sys.stderr)
        return 1
    if not args.json:
        print(outcome.message)
        print(code.vllm_serve)
    return 0
