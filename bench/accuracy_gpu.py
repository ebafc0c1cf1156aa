"""Accuracy with lm-eval on the lent GPU (vLLM 0.26), through the playground's own core, in two parts:

  PART=check+dummy  does vLLM 0.26's /v1/completions return what lm-eval's loglikelihood needs (echo
                    with prompt logprobs; /tokenize and /tokenizer_info), then 1,000 loglikelihood
                    requests per engine (the shipped task's 200 items x 4 choices, items repeated to 250)
                    on the 7B-shaped pair with dummy weights (fp16 against AWQ awq_marlin): seconds and
                    items/s (target: 60 s or less per engine). The accuracy of random weights means nothing.
  PART=tiny         the tiny model's real weights under GPU kernels: bf16 against AWQ (awq_marlin), GPTQ
                    (gptq_marlin) and FP8 (online), the shipped task's 200 items each.

Each part stops its engines and writes $OUT/accuracy-gpu-<part>.tar.gz (results.json, lm-eval and engine
logs) before DEADLINE_S (default 500 s). Needs the device README's /tmp/site with vLLM 0.26 and the
app's wheels plus lm-eval: `../shared/device/pack-wheels "lm-eval[api]==0.4.13"`. Usage on the machine:

    export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 PLAYGROUND_EVAL_PYTHON=python3
    PART=check+dummy python3 bench/accuracy_gpu.py; PART=tiny python3 bench/accuracy_gpu.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from playground.arena.accuracy import PAIR
from playground.arena.core import Arena
from playground.engines.monitor import device_info
from playground.lmeval.tasks import ASSETS, SHIPPED
from playground.measure.specs import parse_spec

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(os.environ.get("OUT", "/tmp/out"))
DATA = Path(os.environ.get("PLAYGROUND_DATA", "/tmp/pgacc"))
DEADLINE_S = float(os.environ.get("DEADLINE_S", "500"))
DUMMY = "max_model_len=2048,enforce_eager=true,util=0.4,extra_args=--load-format dummy"
TINY = "max_model_len=512,enforce_eager=true,util=0.2"


def check_endpoint(arena: Arena, name: str) -> dict[str, Any]:
    """What lm-eval's loglikelihood needs from the engine: prompt logprobs under echo, /tokenize, /tokenizer_info."""
    engine = arena.slot(name).engine
    assert engine is not None
    body = {"model": engine.model_id, "prompt": "Return the hash value of the object", "max_tokens": 1,
            "echo": True, "logprobs": 1, "temperature": 0}  # fmt: skip
    with httpx.Client(timeout=60) as http:
        done = http.post(f"{engine.base_url}/v1/completions", json=body,
                         headers={"Authorization": f"Bearer {engine.api_key}"}).json()  # fmt: skip
        logprobs = done["choices"][0]["logprobs"]
        tok = http.post(f"{engine.base_url}/tokenize", json={"prompt": body["prompt"], "add_special_tokens": False})
        info = http.get(f"{engine.base_url}/tokenizer_info")
    return {
        "echo_tokens": len(logprobs["tokens"]),
        "token_logprobs_head": logprobs["token_logprobs"][:3],
        "top_logprobs_head": logprobs["top_logprobs"][:3],
        "tokenize_status": tok.status_code,
        "tokenize_tokens": len(tok.json().get("tokens", [])),
        "tokenizer_info_status": info.status_code,
    }


def evaluate(arena: Arena, task: str, limit: int | None) -> dict[str, Any]:
    """The Evaluator's report for A and B as JSON, or its error."""
    final = list(arena.accuracy.run(task, limit=limit, engines=PAIR))[-1]
    if final.report is None:
        return {"error": final.error}
    out = final.report.as_dict()
    out["disagreements"] = len(out["disagreements"])
    return out


def part_dummy(result: dict[str, Any]) -> None:
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_dummy_llama.py"), "/tmp/l7"], check=True)
    a = parse_spec(f"/tmp/l7/fp16,label=7B fp16,{DUMMY}")
    b = parse_spec(f"/tmp/l7/awq,label=7B AWQ,quantization=awq_marlin,{DUMMY}")
    arena = Arena((a, b), data_dir=DATA, device=device_info(), sample_interval_s=3600)
    try:
        result["start"] = {k: getattr(v, "startup_s", v) for k, v in arena.start_all().items()}
        result["check"] = {n: check_endpoint(arena, n) for n in "AB"}
        items = (ASSETS / f"{SHIPPED}.jsonl").read_text().splitlines()
        repeated = DATA / "repeated" / "stdlib_docstrings_x1000.jsonl"  # 250 items x 4 choices = 1,000 requests
        repeated.parent.mkdir(parents=True, exist_ok=True)
        repeated.write_text("\n".join((items * 2)[:250]) + "\n")
        result["dummy_7b"] = evaluate(arena, str(repeated), None)
    finally:
        arena.shutdown()


def part_tiny(result: dict[str, Any]) -> None:
    from playground.tiny import build_tiny

    built = build_tiny(Path("/tmp/tinygpu"))
    base = parse_spec(f"{built['bf16']},label=tiny bf16,{TINY}")
    others = {
        "awq_marlin": parse_spec(f"{built['awq']},label=tiny AWQ,quantization=awq_marlin,{TINY}"),
        "gptq_marlin": parse_spec(f"{built['gptq']},label=tiny GPTQ,quantization=gptq_marlin,{TINY}"),
        "fp8": parse_spec(f"{built['bf16']},label=tiny FP8,quantization=fp8,{TINY}"),
    }
    first = next(iter(others.values()))
    arena = Arena((base, first), data_dir=DATA, device=device_info(), sample_interval_s=3600)
    try:
        arena.start("A")
        result["tiny"] = {}
        for method, spec in others.items():
            try:
                arena.start("B", spec)
                kernel = arena.slot("B").engine.log_report().kernel  # type: ignore[union-attr]
                result["tiny"][method] = {"kernel": kernel, **evaluate(arena, SHIPPED, None)}
            except Exception as exc:  # one method failing must not cost the others: recorded, not hidden
                result["tiny"][method] = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps({method: result["tiny"][method]})[:600], file=sys.stderr, flush=True)
    finally:
        arena.shutdown()


def main() -> None:
    part = os.environ.get("PART", "check+dummy")
    result: dict[str, Any] = {"part": part, "device": device_info().name}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the finally blocks stop the engines and write the tar
    timer = threading.Timer(DEADLINE_S, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()
    started = time.perf_counter()
    try:
        (part_tiny if part == "tiny" else part_dummy)(result)
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        result["wall_s"] = round(time.perf_counter() - started, 1)
        OUT.mkdir(parents=True, exist_ok=True)
        work = Path(f"/tmp/accuracy-gpu-{part}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        (work / "results.json").write_text(json.dumps(result, indent=2))
        for sub in ("logs", "evals"):
            if (DATA / sub).exists():
                shutil.copytree(DATA / sub, work / sub, ignore=shutil.ignore_patterns("*.jsonl"))
        with tarfile.open(OUT / f"accuracy-gpu-{part}.tar.gz", "w:gz") as tar:
            tar.add(work, arcname=f"accuracy-gpu-{part}")
        print(json.dumps(result, indent=2)[:4000])


if __name__ == "__main__":
    main()
