"""What an engine's log says: its startup phase, what it loaded, and why it failed (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Ordered: a later phase overrides an earlier one. Patterns are vLLM's own log lines (v0.26-0.32).
PHASES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("loading weights", re.compile(r"Starting to load model|Loading weights|Loading safetensors|Loading model from")),
    # Not bare "torch.compile": an eager engine warns "disabling torch.compile" before loading.
    (
        "compiling",
        re.compile(r"torch\.compile take|torch\.compile took|Compiling a graph|Warming up model|Dynamo bytecode"),
    ),
    ("profiling memory", re.compile(r"Available KV cache memory|KV cache size:|Memory profiling")),
    ("capturing graphs", re.compile(r"Capturing CUDA graph|Graph capturing")),
    ("starting server", re.compile(r"init engine .* took|Starting vLLM (API )?server|Route: ")),
)
_WEIGHTS = re.compile(r"Model loading took ([0-9.]+) GiB")
# vLLM's torch.compile cache (vllm/compilation: backends.py, decorators.py; 0.26 and 0.32 alike):
# a warm start loads what an earlier start saved; a cold one compiles and saves it.
_CACHE_WARM = re.compile(r"Directly load (?:AOT compilation|the compiled graph)")
_CACHE_COLD = re.compile(r"Compiling a graph for compile range|saved AOT compiled function")
_TP_RANK = re.compile(r"(?:^|[^A-Za-z])TP(\d+)\b")  # "(Worker_TP1 pid=...)": one log line per tensor-parallel rank
_KV_TOKENS = re.compile(r"KV cache size: ([0-9,]+) tokens")
_QUANTIZED_LAYERS = re.compile(r"Quantizing (\d+) layers")
_KERNEL = re.compile(r"(?:Using|Selected) (\w*Kernel\w*) for ")  # "Selected" in vLLM 0.32
_ENGINE_QUANT = re.compile(r"with config: .*?quantization=([\w-]+)")
_GRAPHS = re.compile(r"Graph capturing finished in [0-9.]+ secs?, took ([0-9.]+) GiB")
FALLBACK_KERNEL_MARK = "[playground cpu_shim]"
# vLLM's own prefix on a log line: "(Worker pid=7) ERROR 11-27 06:57:27 [file.py:1063] ".
_LOG_PREFIX = re.compile(r"^\(\w+ pid=\d+\)\s+(?:[A-Z]+\s+[\d-]+\s+[\d:]+\s+\[[^\]]*\]\s+)?")
_EXCEPTION = re.compile(r"^\s*(?:\w+\.)*(\w*(?:Error|Exception)): (.+)$")

# Known failures, first match wins: (pattern in the log, message for the user).
KNOWN_FAILURES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"has no attribute 'cpu_gemm_wna16'"),
        "vLLM's CPU build has no 4-bit kernel for this CPU (it needs AVX-512) and the playground's "
        "fallback kernel was not loaded: start the engine from the playground, or use a GPU",
    ),
    (
        re.compile(r"Address already in use|error while attempting to bind"),
        "the engine's port is already in use by another program",
    ),
    (
        re.compile(
            r"is not a local folder and is not a valid model identifier|Repository Not Found|Repo id must be"
            r"|Invalid repository ID|does not appear to have a file named config\.json"
            r"|Can't load the configuration|No such file or directory.*config\.json"
            r"|We couldn't connect to|offline mode is enabled|LocalEntryNotFoundError"
        ),
        "the model could not be found: check the Hugging Face id or local path (and network access for hub models)",
    ),
    (
        re.compile(r"Unknown quantization method|Invalid quantization method|argument --quantization"),
        "vLLM does not know this quantization method",
    ),
    (
        re.compile(
            r"Quantization method specified in the model config \(\w+\) does not match"
            r"|does not match the quantization method specified"
        ),
        "the chosen quantization does not match the checkpoint's own quantization_config",
    ),
    (
        re.compile(r"is not supported for the current GPU|not supported on (the )?CPU|is not supported by"),
        "this quantization method is not supported on this device",
    ),
    (
        re.compile(r"No available memory for the cache blocks|CUDA out of memory|OutOfMemoryError"),
        "not enough device memory for the weights and KV cache: lower max_model_len or raise gpu_memory_utilization",
    ),
    (
        re.compile(r"less than requested memory for kv"),
        "not enough free host memory for the KV cache the engine was given (VLLM_CPU_KVCACHE_SPACE): "
        "lower it, or stop what else uses the memory",
    ),
    (
        re.compile(r"larger than the maximum number of tokens that can be stored in KV cache"),
        "max_model_len does not fit in the KV cache: lower it or give the engine more memory",
    ),
)


@dataclass(frozen=True)
class LogReport:
    """What the playground learned from an engine's log so far."""

    phase: str = "starting"
    weights_gib: float | None = None  # all GPUs together (the sum over tensor-parallel ranks)
    weights_per_gpu: tuple[float, ...] = ()  # by tensor-parallel rank, when there are several
    kv_cache_tokens: int | None = None
    quantized_layers: int | None = None  # what online quantization reported it converted
    kernel: str | None = None  # the linear kernel vLLM chose, e.g. MacheteLinearKernel
    loaded_quantization: str | None = None  # the method in vLLM's engine config, e.g. auto_awq
    graphs_gib: float | None = None  # "Graph capturing finished ... took X GiB"
    compile_cache: str | None = None  # "warm" (compiled graphs loaded from VLLM_CACHE_ROOT) or "cold"
    fallback_kernel: bool = False  # the playground's PyTorch 4-bit kernel ran (CPU without AVX-512)
    failure: str | None = None  # the user-facing reason, when the log shows a fatal error
    detail: str | None = None  # the raw error line behind it


def read_log(lines: Iterable[str]) -> LogReport:
    """Scan log lines once and report phase, loaded weight size, KV tokens and any failure."""
    phase, kv_tokens, quantized, fallback = "starting", None, None, False
    weights: dict[int, float] = {}
    kernel: str | None = None
    loaded: str | None = None
    graphs: float | None = None
    cache: str | None = None
    known: str | None = None
    cause: re.Pattern[str] | None = None
    last_exception: str | None = None
    order = {name: i for i, (name, _) in enumerate(PHASES)}
    for line in lines:
        for name, pattern in PHASES:
            if pattern.search(line) and (phase not in order or order[name] > order[phase]):
                phase = name
        if m := _WEIGHTS.search(line):
            rank = _TP_RANK.search(line)
            weights[int(rank[1]) if rank else 0] = float(m[1])
        if m := _KV_TOKENS.search(line):
            kv_tokens = int(m[1].replace(",", ""))
        if m := _QUANTIZED_LAYERS.search(line):
            quantized = int(m[1])
        fallback = fallback or FALLBACK_KERNEL_MARK in line
        if m := _KERNEL.search(line):
            kernel = m[1]
        if m := _ENGINE_QUANT.search(line):
            loaded = m[1]
        if m := _GRAPHS.search(line):
            graphs = float(m[1])
        if cache != "cold" and _CACHE_COLD.search(line):
            cache = "cold"  # any graph compiled afresh makes the start a cold one
        elif cache is None and _CACHE_WARM.search(line):
            cache = "warm"
        if known is None:
            found = next(((pat, msg) for pat, msg in KNOWN_FAILURES if pat.search(line)), None)
            if found:
                cause, known = found
                last_exception = _LOG_PREFIX.sub("", line.strip())
        # After a known failure only its own lines are kept: later tracebacks such as "Engine core
        # initialization failed. See root cause above." say nothing about the cause.
        if (m := _EXCEPTION.match(line)) and (cause is None or cause.search(line)):
            last_exception = f"{m[1]}: {m[2]}".strip()
    failure = known
    return LogReport(
        phase=phase,
        weights_gib=sum(weights.values()) if weights else None,
        weights_per_gpu=tuple(weights[r] for r in sorted(weights)) if len(weights) > 1 else (),
        kv_cache_tokens=kv_tokens,
        quantized_layers=quantized,
        fallback_kernel=fallback,
        kernel=kernel,
        loaded_quantization=loaded,
        graphs_gib=graphs,
        compile_cache=cache,
        failure=failure,
        detail=last_exception,
    )


def explain_exit(report: LogReport, returncode: int | None) -> str:
    """One clear sentence for an engine process that exited or failed to start."""
    code = "" if returncode is None else f" (exit code {returncode})"
    if returncode is not None and returncode < 0:
        code = f" (killed by signal {-returncode})"
    if report.failure:
        detail = f" — {report.detail}" if report.detail else ""
        return f"engine stopped{code}: {report.failure}{detail}"
    if report.detail:
        return f"engine stopped{code}: {report.detail}"
    return f"engine stopped{code}; see its log for details"
