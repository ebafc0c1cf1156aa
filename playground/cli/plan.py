"""`plan`: what fits where; each method's weights, KV tokens, concurrency and decode ceiling on one or more GPUs."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `plan` subcommand and its options."""
    pl = sub.add_parser("plan", help="what fits where: weights, KV cache and decode ceiling per method")
    pl.add_argument("--model", required=True, help="preset name, local path, or hub id (config.json only)")
    pl.add_argument(
        "--gpu", required=True, help="T4, L4, A10G, L40S, A100-40GB, A100-80GB, H100-80GB (or H100), H200; any case"
    )
    pl.add_argument(
        "--gpus", type=int, help="up to this many GPUs of that kind: the smallest count each method fits on"
    )
    pl.add_argument("--context", type=int, default=4096)
    pl.add_argument("--utilization", type=float, default=0.9)
    pl.add_argument("--eager", action="store_true", help="as with --enforce-eager: no CUDA graphs (default: graphs)")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Predict each method's weights, KV tokens, concurrency and decode ceiling on one or more GPUs."""
    from playground.engines.model_config import load_config
    from playground.measure.memory_math import ModelShape
    from playground.measure.planner import PRESETS, VllmSettings, plan, plan_gpus, resolve_gpu

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
    result["cuda_graphs"] = not args.eager
    settings = VllmSettings(eager=args.eager)
    if args.gpus is None:
        rows = plan(shape, gpu, context_len=args.context, utilization=args.utilization, settings=settings)
        result["methods"] = [r.as_dict() for r in rows]
        lines = [
            f"{r.method:10} {r.weights_gb:8.2f} GB  {'fits' if r.fits else 'does not fit':13} "
            f"KV {r.kv_tokens:>10,} tokens  x{r.max_concurrency:6.1f}  ceiling {r.decode_ceiling_tok_s:8.1f} tok/s"
            for r in rows
        ]
    else:
        multi = plan_gpus(
            shape, gpu, max_gpus=args.gpus, context_len=args.context, utilization=args.utilization, settings=settings
        )
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
