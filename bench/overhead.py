"""Does the playground distort what it measures? A benchmark, not a test.

Against one running vLLM server, the same prompt at concurrency 1, alternating A B A B:
  A = the playground's streaming path (playground.engines.client.stream_generation)
  B = a plain OpenAI client (the `openai` package) timing chunk arrivals the same way
and then the memory sampler on against off. Prints medians and ratios as JSON.

Usage: PYTHONPATH=. python bench/overhead.py [ROUNDS] [MAX_TOKENS] [SPEC]
SPEC is an engine spec as the CLI takes it (default: the tiny bf16 model). On a known GPU the
output adds the batch-1 decode as a share of the memory-bandwidth ceiling (bandwidth / weights).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from openai import OpenAI

from playground.arena.core import Arena
from playground.arena.defaults import TINY_BF16, neutral_spec, use_storage
from playground.engines.client import stream_generation
from playground.engines.monitor import device_info
from playground.measure.generation import GenerationParams
from playground.measure.metrics import TokenChunk, median, request_timing
from playground.measure.planner import gpu_named
from playground.measure.specs import parse_spec

PROMPT = "The default value is"


def plain_openai(client: OpenAI, model: str, max_tokens: int) -> tuple[float | None, float | None]:
    """TTFT (ms) and decode tok/s through the openai package, timed per chunk like the playground."""
    sent = time.perf_counter()
    stream = client.completions.create(
        model=model,
        prompt=PROMPT,
        max_tokens=max_tokens,
        temperature=0.0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks, used = [], None
    for c in stream:
        now = time.perf_counter()
        if c.usage:
            used = c.usage.completion_tokens
        # Every chunk with a choice is a token, text or not: dummy weights emit ids that the small
        # tokenizer decodes to "", and the playground counts those tokens too (usage per chunk).
        if c.choices:
            chunks.append(TokenChunk(now, c.choices[0].text or "", 1))
    t = request_timing(sent, chunks, time.perf_counter(), output_tokens=used)
    return t.ttft_ms, t.decode_tok_s


def playground_path(base: str, key: str, model: str, max_tokens: int) -> tuple[float | None, float | None]:
    """TTFT (ms) and decode tok/s through the playground's own streaming client."""
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, chat=False)
    out = stream_generation(base, key, model, PROMPT, params)
    t = request_timing(out.sent_at, out.chunks, out.finished_at, output_tokens=out.output_tokens)
    return t.ttft_ms, t.decode_tok_s


def end_to_end_rate(base: str, key: str, model: str, max_tokens: int) -> float:
    """Output tokens over the whole request time: unlike first-to-last-chunk decode, bursts cannot inflate it."""
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0, chat=False)
    out = stream_generation(base, key, model, PROMPT, params)
    return (out.output_tokens or 0) / (out.finished_at - out.sent_at)


def main(rounds: int = 20, max_tokens: int = 64, spec_text: str = "") -> dict[str, object]:
    """Start one engine (tiny bf16 unless SPEC), alternate the two paths, then sampler on/off."""
    device = device_info()
    spec = parse_spec(spec_text, base=neutral_spec(device)) if spec_text else TINY_BF16
    arena = Arena((spec, spec), data_dir=use_storage().data, device=device)
    arena.sampler.interval_s = 1.0
    try:
        arena.start("A")
        engine = arena.slot("A").engine
        assert engine is not None
        arena.sampler.stop()  # off for the A/B of clients
        client = OpenAI(base_url=engine.base_url + "/v1", api_key=engine.api_key)
        # Same prompt, greedy: both paths get the same answer of the same length.
        results: dict[str, list[tuple[float | None, float | None]]] = {"playground": [], "openai": []}
        for _ in range(rounds):
            results["playground"].append(playground_path(engine.base_url, engine.api_key, engine.model_id, max_tokens))
            results["openai"].append(plain_openai(client, engine.model_id, max_tokens))
        sampler: dict[str, list[float]] = {"off": [], "on": []}
        for state in ("off", "on") * (rounds // 2):
            if state == "on":
                arena.sampler.start()
            else:
                arena.sampler.stop()
            sampler[state].append(end_to_end_rate(engine.base_url, engine.api_key, engine.model_id, max_tokens))
        arena.sampler.stop()

        def med(values: list[float | None]) -> float | None:
            kept = [v for v in values if v is not None]
            return median(kept)

        pg_ttft, pg_tps = med([r[0] for r in results["playground"]]), med([r[1] for r in results["playground"]])
        oa_ttft, oa_tps = med([r[0] for r in results["openai"]]), med([r[1] for r in results["openai"]])
        on, off = median(sampler["on"]), median(sampler["off"])
        gib, source = arena.insights.weights("A")
        gpu = gpu_named(device.name, device.total_bytes) if device.kind == "cuda" else None
        ceiling = gpu.bandwidth_gb_s * 1e9 / (gib * 2**30) if gpu and gib else None
        return {
            "weights_gib": gib,
            "weights_source": source,
            "gpu_bandwidth_gb_s": gpu.bandwidth_gb_s if gpu else None,
            "batch1_ceiling_tok_s": ceiling,
            "decode_share_of_ceiling": None if not (ceiling and pg_tps) else pg_tps / ceiling,
            "device": device.name,
            "rounds": rounds,
            "max_tokens": max_tokens,
            "engine": engine.spec.model,
            "playground": {"ttft_ms": pg_ttft, "decode_tok_s": pg_tps},
            "openai": {"ttft_ms": oa_ttft, "decode_tok_s": oa_tps},
            "decode_ratio_playground_over_openai": None if not (pg_tps and oa_tps) else pg_tps / oa_tps,
            "ttft_overhead_ms": None if pg_ttft is None or oa_ttft is None else pg_ttft - oa_ttft,
            "sampler_end_to_end": {
                "on_tok_s": on,
                "off_tok_s": off,
                "ratio_on_over_off": None if not (on and off) else on / off,
            },
        }
    finally:
        arena.shutdown()


if __name__ == "__main__":
    Path("data").mkdir(exist_ok=True)
    args = sys.argv[1:]
    rounds = int(args[0]) if args else 20
    tokens = int(args[1]) if len(args) > 1 else 64
    print(json.dumps(main(rounds, tokens, args[2] if len(args) > 2 else ""), indent=2))
