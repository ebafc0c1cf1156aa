"""How much does a warm start save a CPU engine? A benchmark, not a test.

By default a CPU engine's server is forked from the app's warm launcher, which imported vLLM's API server
once (playground/engines/warm.py); PLAYGROUND_WARM_START=0 starts it cold, importing vLLM, torch and
transformers itself. This starts one tiny engine ROUNDS times in each mode, alternating (cold, warm, cold,
...), in one process, and waits for each to be ready and answer one request of DECODE_TOKENS tokens. The
warm launcher is started before the first round, so what is timed is what every start after an app's first
one costs. It prints each start's seconds to ready, the CPU-seconds the whole machine spent meanwhile
(/proc/stat) and the seconds of the answer, and the medians' ratios cold / warm, as JSON.

Usage: PYTHONPATH=. python bench/warm_start.py [--rounds 3] [--model assets/tiny/bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.engines.client import post_json  # noqa: E402
from playground.engines.cpu import cpu_engine_env  # noqa: E402
from playground.engines.monitor import device_info  # noqa: E402
from playground.engines.server import WARM_MARK, Engine  # noqa: E402
from playground.engines.warm import WARM_ENV  # noqa: E402
from playground.measure.specs import EngineSpec  # noqa: E402

# One answer of this many tokens per start: a forked engine must decode as fast as a cold one (an OpenMP default
# inherited from the launcher once made it 17 times slower: docs/NOTES.md).
DECODE_TOKENS = 256


def machine_cpu_s() -> float:
    """User, nice and system seconds of every core since boot."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:4]
    return sum(int(x) for x in fields) / os.sysconf("SC_CLK_TCK")


def one_start(spec: EngineSpec, env: dict[str, str], log_dir: Path) -> dict[str, float | bool]:
    """Start, wait until ready, answer one request, stop; the seconds and CPU-seconds until ready."""
    engine = Engine(spec, name="W", log_dir=log_dir, env=env)
    cpu0 = machine_cpu_s()
    engine.launch()
    try:
        status = engine.wait_ready(timeout_s=600)
        cpu = machine_cpu_s() - cpu0
        body = {"model": engine.model_id, "prompt": "Hello", "max_tokens": DECODE_TOKENS, "ignore_eos": True}
        began = time.monotonic()
        post_json(engine.base_url, engine.api_key, "/v1/completions", body, timeout_s=600)
        decode = time.monotonic() - began
        warm = WARM_MARK in (engine.log_path.read_text(errors="replace") if engine.log_path else "")
        ready = round(status.startup_s or 0.0, 2)
        return {"ready_s": ready, "cpu_s": round(cpu, 2), "decode_s": round(decode, 2), "forked": warm}
    finally:
        engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=str(ROOT / "assets" / "tiny" / "bf16"))
    args = parser.parse_args()
    device = device_info()
    if device.kind != "cpu":
        sys.exit("warm starts are for CPU engines; this machine has a GPU")
    spec = EngineSpec(model=args.model, max_model_len=256, enforce_eager=True)
    base = cpu_engine_env(0, device)
    runs: dict[str, list[dict[str, float | bool]]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp)
        one_start(spec, base, log_dir)  # starts the warm launcher: not timed
        for _ in range(args.rounds):
            for mode in ("cold", "warm"):
                env = {**base, WARM_ENV: "0" if mode == "cold" else "1"}
                run = one_start(spec, env, log_dir)
                assert run["forked"] == (mode == "warm"), f"a {mode} start was not {mode}"
                runs[mode].append(run)
                print(mode, run, file=sys.stderr, flush=True)
    keys = ("ready_s", "cpu_s", "decode_s")
    medians = {m: {k: statistics.median(float(r[k]) for r in rs) for k in keys} for m, rs in runs.items()}
    ratio = {k: round(medians["cold"][k] / medians["warm"][k], 2) for k in keys}
    print(json.dumps({"runs": runs, "medians": medians, "ratio_cold_over_warm": ratio}, indent=1))


if __name__ == "__main__":
    main()
