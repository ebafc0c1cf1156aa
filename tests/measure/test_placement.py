"""Which GPUs each engine uses: spec parsing, per-device checks, default placement, the fairness it
implies, per-GPU memory on the chart, and the 16-bit label (pure; devices are hand-made values)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from playground.measure.anatomy import check_weights
from playground.measure.records import MemorySample
from playground.measure.specs import (
    DeviceInfo,
    EngineSpec,
    SpecError,
    check_pair,
    check_spec,
    default_devices,
    parse_spec,
    placement_env,
    server_args,
    shared_gpus,
)
from playground.views.charts import memory_figure

TWO = DeviceInfo("cuda", "NVIDIA H200", 150 * 10**9, 90, count=2)
ONE = replace(TWO, count=1)
CPU = DeviceInfo("cpu", "CPU (2 cores)", 24 * 10**9)
M = EngineSpec(model="m", gpu_memory_utilization=0.6)


def test_devices_in_a_spec() -> None:
    assert parse_spec("m,devices=0,1").devices == (0, 1)  # the list's commas
    assert parse_spec("m,devices=0,1,util=0.6").gpu_memory_utilization == 0.6
    assert parse_spec("m,devices=0+1").devices == (0, 1)
    assert parse_spec("m,devices=1").devices == (1,)
    with pytest.raises(SpecError, match="give GPU indices"):
        parse_spec("m,devices=first")


def test_tensor_parallel_follows_the_devices() -> None:
    two = replace(M, devices=(0, 1))
    assert two.tp == 2 and two.gpus() == (0, 1)
    assert server_args(two, port=1)[-2:] == ["--tensor-parallel-size", "2"]
    assert placement_env(two) == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": "0,1"}
    assert placement_env(M) == {} and M.gpus() == (0,)
    assert check_spec(two, TWO) == []
    assert check_spec(replace(two, tensor_parallel_size=2), TWO) == []
    (mismatch,) = check_spec(replace(two, tensor_parallel_size=4), TWO)
    assert "tensor_parallel_size 4 does not match devices=0,1 (2 GPUs)" in mismatch


def test_devices_the_host_does_not_have() -> None:
    (missing,) = check_spec(replace(M, devices=(2,)), TWO)
    assert missing == "GPU 2 does not exist: this machine has 2 GPU(s), numbered 0 to 1"
    (twice,) = check_spec(replace(M, devices=(1, 1)), TWO)
    assert "names a GPU twice" in twice
    (cpu,) = check_spec(replace(M, devices=(0,)), CPU)
    assert cpu == "devices=0: the CPU build has no GPUs; remove devices"
    (tp,) = check_spec(replace(M, tensor_parallel_size=2), ONE)
    assert tp == "tensor_parallel_size 2 needs that many GPUs; this machine has 1"


def test_utilization_is_checked_per_gpu() -> None:
    fp16 = replace(M, devices=(0, 1))  # 70B fp16 over both GPUs at 0.6
    awq = replace(M, gpu_memory_utilization=0.35, devices=(1,))  # 4-bit on GPU 1 beside it
    assert check_pair(fp16, awq, TWO) == []  # 0.6 + 0.35 = 0.95 on GPU 1
    (over,) = check_pair(fp16, replace(awq, gpu_memory_utilization=0.5), TWO)
    assert over == "the two engines share GPU 1: gpu_memory_utilization 0.6 + 0.5 = 1.10 is over 0.95"
    assert check_pair(replace(M, devices=(0,)), replace(M, devices=(1,)), TWO) == []  # 0.6 each, apart
    (one,) = check_pair(M, M, ONE)
    assert "share GPU 0" in one


def test_default_placement_and_fairness() -> None:
    a, b = (default_devices(M, i, TWO) for i in (0, 1))
    assert (a.devices, b.devices) == ((0,), (1,)) and shared_gpus(a, b) == set()
    assert default_devices(M, 1, ONE) == M  # one GPU: nothing to choose
    assert default_devices(replace(M, devices=(0, 1)), 1, TWO).devices == (0, 1)  # set by the user: kept
    assert default_devices(replace(M, tensor_parallel_size=2), 1, TWO).devices == ()  # tp 2 takes 0,1
    assert shared_gpus(replace(M, devices=(0, 1)), replace(M, devices=(1,))) == {1}
    assert shared_gpus(M, replace(M, endpoint="http://elsewhere")) == set()  # not on this host


def test_memory_chart_draws_each_gpu() -> None:
    gib = 2**30
    samples = [
        MemorySample(
            1.0,
            {"A": 80.0 * gib, "B": 40.0 * gib},
            120.0 * gib,
            280.0 * gib,
            "NVML (GPU memory)",
            by_gpu={"A": {0: 40.0 * gib, 1: 40.0 * gib}, "B": {1: 40.0 * gib}},
            gpus_used={0: 40.0 * gib, 1: 80.0 * gib},
        ),
    ]
    fig = memory_figure(samples, {"A": "A: fp16", "B": "B: AWQ"})
    lines = {t.name: t.y[0] for t in fig.data}
    assert lines["A: fp16"] == 80 and lines["A: fp16 on GPU 0"] == 40 and lines["A: fp16 on GPU 1"] == 40
    assert lines["B: AWQ on GPU 1"] == 40 and "B: AWQ on GPU 0" not in lines
    assert lines["GPU 0 used"] == 40 and lines["GPU 1 used"] == 80 and lines["all GPUs used"] == 120


def test_16_bit_checkpoints_are_named_by_their_dtype() -> None:
    config = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": 256,
        "tie_word_embeddings": False,
    }
    assert check_weights({**config, "torch_dtype": "float16"}, None).named == "fp16"
    assert check_weights({**config, "torch_dtype": "bfloat16"}, None).named == "bf16"
    assert check_weights(config, None).named == "16-bit"
