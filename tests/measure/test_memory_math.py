"""Predicted weight memory against hand-worked configs and the real tiny checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from playground.measure.memory_math import METHODS, ModelShape, weight_bytes
from playground.measure.planner import GPUS, PRESETS, plan
from playground.tiny import build_tiny

SMALL = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "tie_word_embeddings": True,
}


def test_parameter_count_by_hand() -> None:
    s = ModelShape.from_config(SMALL)
    assert s.head_dim == 64
    # per layer: q 256x256, k,v 256x128 each, o 256x256, gate/up 256x512, down 512x256
    per_layer = 65536 + 2 * 32768 + 65536 + 3 * 131072
    assert s.linear_params() == 2 * per_layer
    assert s.other_params() == 1000 * 256 + 2 * 2 * 256 + 256  # tied embedding once, 5 norms
    assert s.kv_bytes_per_token() == 2 * 2 * 2 * 64 * 2


def test_awq_bytes_by_hand() -> None:
    s = ModelShape.from_config(SMALL)
    awq = METHODS["awq-4bit"]
    # a 256x512 linear: 256*512/2 packed bytes + 2 groups * 512 columns * (2 B scale + 0.5 B zero)
    assert awq.linear_bytes(256, 512) == 65536 + 2 * 512 * 2.5
    assert weight_bytes(s, METHODS["bf16"]) == 2 * s.params()


def test_seed_case_70b() -> None:
    s = ModelShape.from_config(PRESETS["meta-llama/Llama-2-70b-hf"])
    assert 135e9 < weight_bytes(s, METHODS["bf16"]) < 142e9, "about 140 GB in fp16"
    assert 35e9 <= weight_bytes(s, METHODS["awq-4bit"]) <= 40e9, "about 35-40 GB at 4 bits"
    rows = {r.method: r for r in plan(s, GPUS["H100-80GB"], context_len=4096)}
    assert not rows["bf16"].fits and rows["awq-4bit"].fits
    # On Hopper vLLM runs AWQ through Machete, which keeps each group's zero point in 16 bits (2 B, not
    # 0.5 B): the loaded weights are the checkpoint's plus 1.5 B per (group of 128 inputs, output).
    groups = s.linear_params() / 128
    loaded = weight_bytes(s, METHODS["awq-4bit"]) + 1.5 * groups
    assert rows["awq-4bit"].weights_gb == pytest.approx(loaded / 1e9)
    assert rows["awq-4bit"].kv_tokens > 0 and rows["awq-4bit"].decode_ceiling_tok_s == pytest.approx(3350e9 / loaded)


@pytest.mark.parametrize(("folder", "method"), [("bf16", "bf16"), ("awq", "awq-4bit"), ("gptq", "gptq-4bit")])
def test_predicted_matches_tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory, folder: str, method: str) -> None:
    built = build_tiny(tmp_path_factory.getbasetemp() / "tiny-math")
    shape = ModelShape.from_config(json.loads((built["bf16"] / "config.json").read_text()))
    real = 0
    with safe_open(str(built[folder] / "model.safetensors"), framework="pt") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open is not a dict
            t = f.get_tensor(key)
            real += t.numel() * t.element_size()
    predicted = weight_bytes(shape, METHODS[method])
    assert abs(predicted - real) / real < 0.02, (predicted, real)


def test_plan_cli_json() -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "playground",
            "plan",
            "--model",
            "meta-llama/Llama-2-70b-hf",
            "--gpu",
            "H100-80GB",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    result = json.loads(out.stdout)
    assert (result["gpu"], result["context_len"]) == ("H100-80GB", 4096)
    rows = {m["method"]: m for m in result["methods"]}
    assert set(rows["bf16"]) == {
        "method",
        "bits",
        "weights_gb",
        "fits",
        "kv_tokens",
        "max_concurrency",
        "decode_ceiling_tok_s",
        "overhead_gb",
        "engine_gb",
    }
    assert result["cuda_graphs"] is True  # vLLM's default; --eager models --enforce-eager
    assert rows["bf16"]["fits"] is False and rows["awq-4bit"]["fits"] is True
    assert 135 < rows["bf16"]["weights_gb"] < 142 and 35 <= rows["awq-4bit"]["weights_gb"] <= 40
    bad = subprocess.run(
        [sys.executable, "-m", "playground", "plan", "--model", "x", "--gpu", "Z80"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert bad.returncode == 2 and "unknown GPU" in bad.stderr


def test_gpu_named_from_nvml_names() -> None:
    from playground.measure.planner import gpu_named

    assert gpu_named("NVIDIA H100 80GB HBM3", 85e9) == GPUS["H100-80GB"]
    assert gpu_named("NVIDIA H200", 150e9) == GPUS["H200"]
    assert gpu_named("NVIDIA A100-SXM4-40GB", 42.5e9) == GPUS["A100-40GB"]
    assert gpu_named("NVIDIA A100-SXM4-80GB", 85e9) == GPUS["A100-80GB"]
    assert gpu_named("AMD EPYC", 25e9) is None
