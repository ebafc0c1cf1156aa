"""Headless command line on the same core: `python -m playground compare|quality|sweep|plan|tiny|quantize|eval ...`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from playground.arena.defaults import default_pair, neutral_spec, use_storage
from playground.cli_eval import add_eval_command
from playground.engines.client import GenerationError
from playground.engines.server import EngineError
from playground.measure.generation import MODES, GenerationParams
from playground.measure.records import EngineStatus
from playground.measure.specs import SpecError, parse_spec
from playground.measure.sweep import (
    COLUMNS,
    SweepResult,
    SweepSettings,
    as_json,
    crossover,
    default_settings,
    level_rows,
    parse_levels,
)
from playground.store.sqlite import StoreError

if TYPE_CHECKING:
    from playground.arena.core import Arena
    from playground.measure.quant_log import QuantProgress


def _progress(name: str):  # type: ignore[no-untyped-def]
    last = [""]

    def show(status: EngineStatus) -> None:
        line = f"[{name}] {status.phase} ({status.elapsed_s:.0f} s)"
        if line.split(" (")[0] != last[0]:
            print(line, file=sys.stderr, flush=True)
            last[0] = line.split(" (")[0]

    return show


def _arena(args: argparse.Namespace) -> Arena:
    """The arena for --a/--b (defaults: the default pair); raises SpecError for a bad spec."""
    from playground.arena.core import Arena
    from playground.engines.monitor import device_info

    device = device_info()
    a, b = default_pair(device)
    # An explicit spec starts from the device's neutral settings, not from the default pair's.
    a = parse_spec(args.a, base=neutral_spec(device)) if args.a else a
    b = parse_spec(args.b, base=neutral_spec(device)) if args.b else b
    data = use_storage().data  # a persistent volume, when the Docker image has one mounted
    return Arena((a, b), data_dir=data, device=device, sample_interval_s=0.5)


def _start_both(arena: Arena) -> bool:
    """Start A then B with progress on stderr; True when both are ready."""
    ok = True
    for name in ("A", "B"):
        slot = arena.slot(name)
        print(f"[{name}] starting {slot.spec.model} (quantization {slot.spec.quantization})", file=sys.stderr)
        try:
            status = arena.start(name, on_progress=_progress(name))
            print(f"[{name}] ready in {status.startup_s or 0:.0f} s", file=sys.stderr)
        except (SpecError, EngineError) as exc:
            print(f"error: engine {name}: {exc}", file=sys.stderr)
            ok = False
    return ok


def cmd_compare(args: argparse.Namespace) -> int:
    """Start both engines, send one prompt, print the figures as JSON, stop the engines."""
    params = GenerationParams(
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        chat=not args.completion,
    )
    try:
        arena = _arena(args)
        if problems := arena.request_problems(args.prompt, params, args.mode):
            raise SpecError("; ".join(problems))
    except (SpecError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        failed = not _start_both(arena)
        answers = arena.compare_once(args.prompt, params, args.mode)
        arena.sample_once()
        for ans in answers:
            if ans.error:
                print(f"error: engine {ans.slot}: {ans.error}", file=sys.stderr)
                failed = True
        if args.json:
            print(json.dumps({"mode": args.mode, "engines": [a.as_dict() for a in answers]}, indent=2))
        else:
            for ans in answers:
                print(f"--- {ans.label}\n{ans.text}\n")
        return 1 if failed else 0
    finally:
        arena.shutdown()


def cmd_quality(args: argparse.Namespace) -> int:
    """Greedy answers with logprobs from both engines: divergence, KL, perplexity as JSON."""
    text = None
    try:
        if args.text:
            text = Path(args.text).read_text(encoding="utf-8", errors="replace")
        arena = _arena(args)
    except (SpecError, StoreError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        if not _start_both(arena):
            return 1
        try:
            report = arena.quality(args.prompt, max_tokens=args.max_tokens, text=text)
        except (SpecError, EngineError, GenerationError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        out = report.as_dict()
        print(json.dumps(out if args.json else {k: out[k] for k in list(out)[:5]}, indent=2))
        return 0
    finally:
        arena.shutdown()


def _sweep_settings(args: argparse.Namespace, device_kind: str) -> SweepSettings:
    """The sweep's settings from the options, the device's defaults where none is given."""
    d = default_settings(device_kind)
    return SweepSettings(
        levels=parse_levels(args.levels) if args.levels is not None else d.levels,
        requests_per_level=args.requests,
        input_tokens=d.input_tokens if args.input_tokens is None else args.input_tokens,
        output_tokens=d.output_tokens if args.output_tokens is None else args.output_tokens,
    )


def _sweep_progress():  # type: ignore[no-untyped-def]
    last = [""]

    def show(fraction: float, text: str) -> None:
        if text != last[0]:
            print(f"[sweep] {fraction:4.0%} {text}", file=sys.stderr, flush=True)
            last[0] = text

    return show


def _print_sweep(result: SweepResult) -> None:
    rows = [[str(c) for c in row] for row in level_rows(result)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(COLUMNS)]
    print("  ".join(h.rjust(w) for h, w in zip(COLUMNS, widths, strict=True)))
    for row in rows:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    if len(result.engines) == 2:
        print("\n" + crossover(*result.engines))


def cmd_sweep(args: argparse.Namespace) -> int:
    """Start both engines, sweep each in turn over the concurrency levels, print the figures."""
    try:
        arena = _arena(args)
        settings = _sweep_settings(args, arena.device.kind)
        if problems := arena.sweep_problems(settings):
            raise SpecError("; ".join(problems))
    except (SpecError, StoreError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        failed = not _start_both(arena)
        result = arena.sweep(settings, on_progress=_sweep_progress())
        for engine in result.engines:
            if engine.error:
                print(f"error: engine {engine.slot}: {engine.error}", file=sys.stderr)
                failed = True
            for note in engine.notes:
                print(f"note: engine {engine.slot}: {note}", file=sys.stderr)
        if args.json:
            print(json.dumps(as_json(result), indent=2))
        else:
            _print_sweep(result)
        return 1 if failed else 0
    finally:
        arena.shutdown()


def cmd_plan(args: argparse.Namespace) -> int:
    """Predict each method's weights, KV tokens, concurrency and decode ceiling on one or more GPUs."""
    from playground.engines.model_config import load_config
    from playground.measure.memory_math import ModelShape
    from playground.measure.planner import PRESETS, plan, plan_gpus, resolve_gpu

    try:
        gpu, note = resolve_gpu(args.gpu)
        if args.gpus is not None and not 1 <= args.gpus <= 8:
            raise ValueError(f"--gpus {args.gpus}: give 1 to 8 (GPUs of one host)")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if note:
        print(f"note: {note}", file=sys.stderr)
    try:
        shape = ModelShape.from_config(load_config(args.model))
    except Exception as exc:  # a missing file, no network, a config without these fields
        print(
            f"error: could not read the model's config ({type(exc).__name__}: {exc}); presets: {', '.join(PRESETS)}",
            file=sys.stderr,
        )
        return 2
    result: dict[str, object] = {"model": args.model, "gpu": gpu.name, "context_len": args.context}
    if args.gpus is None:
        rows = plan(shape, gpu, context_len=args.context, utilization=args.utilization)
        result["methods"] = [r.as_dict() for r in rows]
        lines = [
            f"{r.method:10} {r.weights_gb:8.2f} GB  {'fits' if r.fits else 'does not fit':13} "
            f"KV {r.kv_tokens:>10,} tokens  x{r.max_concurrency:6.1f}  ceiling {r.decode_ceiling_tok_s:8.1f} tok/s"
            for r in rows
        ]
    else:
        multi = plan_gpus(shape, gpu, max_gpus=args.gpus, context_len=args.context, utilization=args.utilization)
        result["max_gpus"] = args.gpus
        result["methods"] = [r.as_dict() for r in multi]
        lines = [
            f"{r.method:10} {'on ' + str(r.gpus) + ' GPU' + ('s' if r.gpus > 1 else ''):9} "
            f"{r.weights_per_gpu_gb:7.2f} GB/GPU  {'fits' if r.fits else 'does not fit':13} "
            f"KV {r.kv_tokens:>10,} tokens  ceiling {r.decode_ceiling_tok_s:8.1f} tok/s"
            for r in multi
        ]
    print(json.dumps(result, indent=2) if args.json else "\n".join(lines))
    return 0


def cmd_tiny(args: argparse.Namespace) -> int:
    """Build the tiny model's bf16, AWQ and GPTQ checkpoints into a folder."""
    from playground.tiny import build_tiny

    try:
        built = build_tiny(Path(args.out))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in sorted(built.items()):
        print(f"{name}: {path}")
    return 0


def cmd_ladder(args: argparse.Namespace) -> int:
    """Every variant measured the same way: the baseline in A, each other in B in turn; JSON rows."""
    from playground.arena.core import Arena
    from playground.arena.defaults import ASSETS
    from playground.engines.monitor import device_info

    device = device_info()
    try:
        specs = [parse_spec(v, base=neutral_spec(device)) for v in args.variant]
        if len(specs) < 2:
            raise SpecError("give at least two --variant specs")
        arena = Arena(specs[:2], data_dir=use_storage().data, device=device, sample_interval_s=0.5)
    except (SpecError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        for spec in specs[2:]:
            arena.add_variant(spec)
        baseline = args.baseline or next(iter(arena.variants))
        text = (ASSETS / "reference.txt").read_text() if not args.no_perplexity else None
        rows = []
        for step in arena.ladder(baseline, text=text, max_tokens=args.max_tokens, timing_requests=args.requests):
            print(f"[ladder] {step.message}", file=sys.stderr, flush=True)
            rows = step.rows
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        arena.shutdown()
    failed = [r for r in rows if r.error]
    for r in failed:
        print(f"error: {r.label}: {r.error}", file=sys.stderr)
    if args.json:
        print(json.dumps({"baseline": baseline, "variants": [r.as_dict() for r in rows]}, indent=2))
    else:
        for r in rows:
            print(f"{r.label}: weights {r.weights_gb} GB, decode {r.decode_tok_s} tok/s, KL {r.kl_mean}")
    return 1 if failed or len(rows) < len(arena.variants) else 0


def cmd_quantize(args: argparse.Namespace) -> int:
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
        cpu=device.kind == "cpu",
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


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments."""
    parser = argparse.ArgumentParser(prog="python -m playground", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cmp = sub.add_parser("compare", help="send one prompt to two engines and report the figures")
    cmp.add_argument("--a", help="engine A: MODEL[,key=value...] (default: the default pair's A)")
    cmp.add_argument("--b", help="engine B: MODEL[,key=value...]")
    cmp.add_argument("--prompt", required=True)
    cmp.add_argument("--mode", choices=MODES, default="fair")
    cmp.add_argument("--max-tokens", type=int, default=64)
    cmp.add_argument("--temperature", type=float, default=0.0)
    cmp.add_argument("--top-p", type=float, default=1.0)
    cmp.add_argument("--seed", type=int, default=0)
    cmp.add_argument("--completion", action="store_true", help="plain completion instead of chat")
    cmp.add_argument("--json", action="store_true", help="print one JSON object")
    cmp.set_defaults(func=cmd_compare)
    qual = sub.add_parser("quality", help="where B's greedy answer departs from A's, KL and perplexity")
    qual.add_argument("--a", help="engine A: MODEL[,key=value...]")
    qual.add_argument("--b", help="engine B: MODEL[,key=value...]")
    qual.add_argument("--prompt", required=True)
    qual.add_argument("--text", help="a text file both engines score for perplexity")
    qual.add_argument("--max-tokens", type=int, default=64)
    qual.add_argument("--json", action="store_true", help="print the full JSON (per-position KL included)")
    qual.set_defaults(func=cmd_quality)
    sw = sub.add_parser("sweep", help="each engine in turn at rising concurrency: throughput and latency")
    sw.add_argument("--a", help="engine A: MODEL[,key=value...]")
    sw.add_argument("--b", help="engine B: MODEL[,key=value...]")
    sw.add_argument("--levels", help="concurrency levels, e.g. 1,2,4,8 (default: 1..64 on a GPU, 1,2,4 on the CPU)")
    sw.add_argument(
        "--requests",
        type=int,
        default=0,
        help="requests per level, never fewer than the level (default 0: 2 x level, at least 8)",
    )
    sw.add_argument("--input-tokens", type=int, help="prompt tokens per request (default: 256 GPU, 32 CPU)")
    sw.add_argument("--output-tokens", type=int, help="output tokens per request (default: 256 GPU, 16 CPU)")
    sw.add_argument("--json", action="store_true", help="print one JSON object")
    sw.set_defaults(func=cmd_sweep)
    pl = sub.add_parser("plan", help="what fits where: weights, KV cache and decode ceiling per method")
    pl.add_argument("--model", required=True, help="preset name, local path, or hub id (config.json only)")
    pl.add_argument(
        "--gpu", required=True, help="T4, L4, A10G, A100-40GB, A100-80GB, H100-80GB (or H100), H200; any case"
    )
    pl.add_argument(
        "--gpus", type=int, help="up to this many GPUs of that kind: the smallest count each method fits on"
    )
    pl.add_argument("--context", type=int, default=4096)
    pl.add_argument("--utilization", type=float, default=0.9)
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_plan)
    lad = sub.add_parser("ladder", help="several variants of one model measured the same way, one row each")
    lad.add_argument(
        "--variant", action="append", required=True, help="MODEL[,key=value...] (2 to 6; label=... names it)"
    )
    lad.add_argument("--baseline", help="label of the variant the others are held against (default: the first)")
    lad.add_argument("--max-tokens", type=int, default=24, help="greedy tokens per prompt for agreement and KL")
    lad.add_argument("--requests", type=int, default=3, help="timed requests per variant (the median is kept)")
    lad.add_argument("--no-perplexity", action="store_true", help="skip perplexity on the reference text")
    lad.add_argument("--json", action="store_true", help="print one JSON object")
    lad.set_defaults(func=cmd_ladder)
    tiny = sub.add_parser("tiny", help="build the tiny bf16/AWQ/GPTQ checkpoints (no network)")
    tiny.add_argument("--out", required=True, help="folder to write DIR/bf16, DIR/awq, DIR/gptq")
    tiny.set_defaults(func=cmd_tiny)
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
    qz.set_defaults(func=cmd_quantize)
    add_eval_command(sub, _arena, _start_both)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs atexit: engines are stopped
    return int(args.func(args))
