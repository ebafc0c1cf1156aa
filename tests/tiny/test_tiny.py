"""Tests for the tiny model's RTN quantizer, AWQ/GPTQ packing and checkpoint build."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from playground.engines.cpu_fallback import SHIM_DIR, cpu_has_avx512, with_cpu_shim
from playground.tiny import build_tiny
from playground.tiny.build import MARKER, SOURCE_DIR
from playground.tiny.quantize import (
    AWQ_ORDER,
    GROUP_SIZE,
    dequantize,
    pack_awq,
    pack_gptq,
    pack_int4,
    quantize_rtn,
    unpack_awq,
    unpack_gptq,
    unpack_int4,
)

LINEAR_RE = re.compile(r"^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)$")
# fp16 scales are rounded before the weights are quantized; symmetric RTN may clip the +8 level,
# so the error bound is half a step plus a few fp16 ulps of the scale.
BOUND_SLACK = 1.0 + 16 * 2.0**-11


def bf16_linears() -> dict[str, torch.Tensor]:
    """Decoder linear weights [out, in] of the committed bf16 checkpoint."""
    state = load_file(str(SOURCE_DIR / "model.safetensors"))
    return {k.removesuffix(".weight"): v for k, v in state.items() if LINEAR_RE.match(k.removesuffix(".weight"))}


def grouped(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Tensors of one layer, keyed by their last name part (qweight, scales, ...)."""
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def assert_within_rtn_error(w: torch.Tensor, deq: torch.Tensor, scales: torch.Tensor) -> None:
    """Every dequantized element is within half a quantization step of the original."""
    step = scales.float()[torch.arange(w.shape[1]) // GROUP_SIZE].t()
    err = (deq - w.float()).abs()
    assert torch.all(err <= step / 2 * BOUND_SLACK + 1e-7), float((err / step).max())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One build of the tiny model shared by the tests in this module."""
    return build_tiny(tmp_path_factory.mktemp("tiny") / "build")


def test_pack_unpack_roundtrip_random_values() -> None:
    gen = torch.Generator().manual_seed(0)
    values = torch.randint(0, 16, (256, 384), generator=gen, dtype=torch.int32)
    for dim in (0, 1):
        for order in (tuple(range(8)), AWQ_ORDER):
            packed = pack_int4(values, dim=dim, order=order)
            assert packed.dtype == torch.int32
            assert packed.shape[dim] == values.shape[dim] // 8
            assert torch.equal(unpack_int4(packed, dim=dim, order=order), values)


def test_nibble_orders_match_awq_and_gptq_layouts() -> None:
    row = torch.arange(8, dtype=torch.int32).reshape(1, 8)
    # AWQ GEMM: nibble j holds column [0, 2, 4, 6, 1, 3, 5, 7][j].
    assert pack_int4(row, dim=1, order=AWQ_ORDER).item() == 0x75316420
    # GPTQ: sequential, nibble j holds input row j.
    assert pack_int4(row.t(), dim=0).item() == 0x76543210
    high = torch.full((1, 8), 15, dtype=torch.int32)
    assert pack_int4(high, dim=1).item() == -1


@pytest.mark.parametrize("sym", [False, True])
def test_quantize_pack_unpack_roundtrip_is_exact(sym: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(512, 384, generator=gen) * 0.04
    qw = quantize_rtn(w, sym=sym)
    for back in (unpack_awq(pack_awq(qw)), unpack_gptq(pack_gptq(qw))):
        assert torch.equal(back.q, qw.q)
        assert torch.equal(back.zeros, qw.zeros)
        assert torch.equal(back.scales, qw.scales)
        assert back.group_size == GROUP_SIZE
        assert torch.equal(dequantize(back), dequantize(qw))
    assert_within_rtn_error(w, dequantize(qw), qw.scales)
    if sym:
        assert torch.all(qw.zeros == 8)


def test_quantize_rejects_unaligned_shapes() -> None:
    with pytest.raises(ValueError):
        quantize_rtn(torch.zeros(64, 100))


def test_build_creates_three_checkpoints(built: dict[str, Path]) -> None:
    assert set(built) == {"bf16", "awq", "gptq"}
    for path in built.values():
        for name in (
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "generation_config.json",
        ):
            assert (path / name).is_file(), path / name
    assert (built["bf16"].parent / MARKER).is_file()
    bf16 = json.loads((built["bf16"] / "config.json").read_text())
    awq = json.loads((built["awq"] / "config.json").read_text())
    gptq = json.loads((built["gptq"] / "config.json").read_text())
    assert bf16["torch_dtype"] == "bfloat16" and "quantization_config" not in bf16
    assert awq["torch_dtype"] == "float16" and gptq["torch_dtype"] == "float16"
    assert awq["quantization_config"] == {
        "quant_method": "awq",
        "bits": 4,
        "group_size": 128,
        "zero_point": True,
        "version": "gemm",
        "modules_to_not_convert": None,
    }
    q = gptq["quantization_config"]
    assert (q["quant_method"], q["bits"], q["group_size"], q["desc_act"], q["sym"], q["checkpoint_format"]) == (
        "gptq",
        4,
        128,
        False,
        True,
        "gptq",
    )
    tok = json.loads((built["bf16"] / "tokenizer_config.json").read_text())
    assert tok["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert "chat_template" in tok and tok["bos_token"] == "<s>" and tok["eos_token"] == "</s>"


def test_build_is_idempotent(built: dict[str, Path]) -> None:
    out = built["bf16"].parent
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = build_tiny(out)
    assert again == built
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert before == after
    assert not [p for p in out.parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_build_rebuilds_after_damage_and_missing_source_raises(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    paths = build_tiny(out)
    os.remove(paths["gptq"] / "model.safetensors")
    paths = build_tiny(out)
    assert (paths["gptq"] / "model.safetensors").is_file()
    with pytest.raises(FileNotFoundError, match="missing"):
        build_tiny(tmp_path / "other", source=tmp_path / "no-such-checkpoint")
    assert not (tmp_path / "other").exists()


def test_awq_tensors_have_vllm_shapes_and_are_close_to_bf16(built: dict[str, Path]) -> None:
    tensors = load_file(str(built["awq"] / "model.safetensors"))
    linears = bf16_linears()
    assert len(linears) == 4 * 7
    for prefix, w in linears.items():
        out_f, in_f = w.shape
        layer = grouped(prefix, tensors)
        assert set(layer) == {"qweight", "qzeros", "scales"}
        assert layer["qweight"].shape == (in_f, out_f // 8) and layer["qweight"].dtype == torch.int32
        assert layer["qzeros"].shape == (in_f // 128, out_f // 8) and layer["qzeros"].dtype == torch.int32
        assert layer["scales"].shape == (in_f // 128, out_f) and layer["scales"].dtype == torch.float16
        qw = unpack_awq(layer)
        assert torch.equal(qw.q, quantize_rtn(w).q)
        assert_within_rtn_error(w, dequantize(qw), qw.scales)


def test_gptq_tensors_have_vllm_shapes_and_are_close_to_bf16(built: dict[str, Path]) -> None:
    tensors = load_file(str(built["gptq"] / "model.safetensors"))
    for prefix, w in bf16_linears().items():
        out_f, in_f = w.shape
        layer = grouped(prefix, tensors)
        assert set(layer) == {"qweight", "qzeros", "scales", "g_idx"}
        assert layer["qweight"].shape == (in_f // 8, out_f) and layer["qweight"].dtype == torch.int32
        assert layer["qzeros"].shape == (in_f // 128, out_f // 8) and layer["qzeros"].dtype == torch.int32
        assert layer["scales"].shape == (in_f // 128, out_f) and layer["scales"].dtype == torch.float16
        assert torch.equal(layer["g_idx"], torch.arange(in_f, dtype=torch.int32) // 128)
        # Symmetric 4-bit GPTQ: zero point 8 stored as 8 - 1 = 7 in every nibble.
        assert torch.all(layer["qzeros"] == 0x77777777)
        qw = unpack_gptq(layer)
        # vLLM's uint4b8 kernels compute (q - 8) * scale; that must equal our dequantization.
        groups = torch.arange(in_f) // 128
        vllm_view = ((qw.q - 8).float() * layer["scales"].float()[groups]).t()
        assert torch.equal(vllm_view, dequantize(qw))
        assert_within_rtn_error(w, dequantize(qw), qw.scales)


@pytest.mark.parametrize("fmt", ["awq", "gptq"])
def test_unquantized_tensors_are_fp16_copies(built: dict[str, Path], fmt: str) -> None:
    source = load_file(str(SOURCE_DIR / "model.safetensors"))
    with safe_open(str(built[fmt] / "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        for name in (
            "model.embed_tokens.weight",
            "lm_head.weight",
            "model.norm.weight",
            "model.layers.0.input_layernorm.weight",
        ):
            tensor = f.get_tensor(name)
            assert tensor.dtype == torch.float16
            assert torch.equal(tensor, source[name].to(torch.float16))
    assert not any(k.endswith("_proj.weight") for k in keys)


def load_shim() -> Any:
    """Import playground/engines/cpu_shim/sitecustomize.py under a private name and patch torch.ops."""
    path = SHIM_DIR / "sitecustomize.py"
    spec = importlib.util.spec_from_file_location("playground_cpu_shim", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_with_cpu_shim_puts_shim_first_on_pythonpath() -> None:
    env = with_cpu_shim({"PYTHONPATH": f"/a{os.pathsep}{SHIM_DIR}", "X": "1"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(SHIM_DIR), "/a"]
    assert env["X"] == "1"
    assert with_cpu_shim({})["PYTHONPATH"] == str(SHIM_DIR)
    assert isinstance(cpu_has_avx512(), bool)


@pytest.mark.parametrize("fmt", ["awq", "gptq"])
def test_vllm_cpu_kernel_path_matches_dequantized_weights(fmt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """vLLM's AWQ/GPTQ weight processing and CPU WNA16 kernel compute x @ W for our packed W."""
    # The kernel is vLLM's C++ op where the build has it, else the shim's PyTorch fallback.
    pytest.importorskip("vllm")
    import vllm.model_executor.parameter as vparam
    from vllm.model_executor.kernels.linear.mixed_precision.cpu import CPUWNA16LinearKernel
    from vllm.model_executor.kernels.linear.mixed_precision.MPLinearKernel import MPLinearLayerConfig
    from vllm.model_executor.layers.quantization.auto_awq import _convert_awq_to_standard_format
    from vllm.scalar_type import scalar_types

    monkeypatch.setattr(vparam, "get_tensor_model_parallel_rank", lambda: 0)
    monkeypatch.setattr(vparam, "get_tensor_model_parallel_world_size", lambda: 1)
    load_shim()
    gen = torch.Generator().manual_seed(3)
    in_f, out_f = 256, 384
    w = torch.randn(out_f, in_f, generator=gen) * 0.05
    qw = quantize_rtn(w, sym=(fmt == "gptq"))
    packed = pack_awq(qw) if fmt == "awq" else pack_gptq(qw)
    noop = lambda *args, **kwargs: None  # noqa: E731
    layer = torch.nn.Module()
    layer.register_parameter("bias", None)
    pack_dim = 1 if fmt == "awq" else 0
    layer.qweight = vparam.PackedvLLMParameter(
        data=packed["qweight"].clone(),
        input_dim=0,
        output_dim=1,
        packed_dim=pack_dim,
        packed_factor=8,
        weight_loader=noop,
    )
    layer.qzeros = vparam.PackedvLLMParameter(
        data=packed["qzeros"].clone(), input_dim=0, output_dim=1, packed_dim=1, packed_factor=8, weight_loader=noop
    )
    layer.scales = vparam.GroupQuantScaleParameter(
        data=packed["scales"].clone(), input_dim=0, output_dim=1, weight_loader=noop
    )
    config = MPLinearLayerConfig(
        full_weight_shape=(in_f, out_f),
        partition_weight_shape=(in_f, out_f),
        weight_type=scalar_types.uint4 if fmt == "awq" else scalar_types.uint4b8,
        act_type=torch.float16,
        group_size=GROUP_SIZE,
        zero_points=(fmt == "awq"),
    )
    kernel = CPUWNA16LinearKernel(config, w_q_param_name="qweight", w_s_param_name="scales", w_zp_param_name="qzeros")
    if fmt == "awq":
        _convert_awq_to_standard_format(layer, "qweight", "qzeros", 4)
    kernel.process_weights_after_loading(layer)
    x = torch.randn(5, in_f, generator=gen).half()
    got = kernel.apply_weights(layer, x).float()
    want = x.float() @ dequantize(qw).half().float().t()
    assert got.shape == (5, out_f)
    assert torch.allclose(got, want, atol=2e-2, rtol=1e-2), float((got - want).abs().max())
