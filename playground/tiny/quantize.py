"""Write 4-bit AWQ (GEMM) and GPTQ checkpoints of the tiny model."""

# The quantization itself is plain round-to-nearest (RTN) per group of 128 input channels: it is
# NOT the AWQ activation-aware scale search nor the GPTQ Hessian-based error correction, both of
# which need calibration data. What is real is the on-disk format: the packed int32 tensors,
# scales, zero points and config are the ones AutoAWQ (version "gemm") and AutoGPTQ
# (checkpoint_format "gptq") write, so vLLM loads them with its ordinary AWQ and GPTQ code paths.

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from safetensors.torch import load_file, save_file

BITS = 4
GROUP_SIZE = 128
PACK = 32 // BITS
MAXQ = 2**BITS - 1
# AutoAWQ packs 8 output columns into one int32; nibble j (bits 4j..4j+3) holds column AWQ_ORDER[j].
AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
SEQUENTIAL_ORDER = tuple(range(PACK))
LINEAR_RE = re.compile(r"^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$")
COPIED_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "generation_config.json",
)
Format = Literal["awq", "gptq"]


@dataclass(frozen=True)
class QuantizedWeight:
    """RTN-quantized linear weight in [in, out] layout: w ~= (q - zeros) * scales per group."""

    q: torch.Tensor  # int32 [in, out], values 0..15
    zeros: torch.Tensor  # int32 [in // group, out], values 0..15
    scales: torch.Tensor  # float16 [in // group, out]
    group_size: int = GROUP_SIZE


def quantize_rtn(weight: torch.Tensor, group_size: int = GROUP_SIZE, sym: bool = False) -> QuantizedWeight:
    """Round-to-nearest 4-bit quantization of an nn.Linear weight [out, in], per input group."""
    out_f, in_f = weight.shape
    if in_f % group_size or out_f % PACK:
        raise ValueError(f"weight {tuple(weight.shape)} not divisible by group {group_size} / pack {PACK}")
    w = weight.detach().float().t().reshape(in_f // group_size, group_size, out_f)
    if sym:
        # GPTQ symmetric convention: scale = 2 * absmax / 15, implicit zero point 8 (uint4b8).
        absmax = w.abs().amax(dim=1).clamp(min=1e-5)
        scales = (2.0 * absmax / MAXQ).half().float()
        zeros = torch.full_like(scales, 2 ** (BITS - 1))
    else:
        # Asymmetric (AWQ zero_point=True): the range always includes 0 so zeros stay in [0, 15].
        wmax = w.amax(dim=1).clamp(min=0.0)
        wmin = w.amin(dim=1).clamp(max=0.0)
        scales = ((wmax - wmin).clamp(min=1e-5) / MAXQ).half().float()
        zeros = torch.round(-wmin / scales).clamp(0, MAXQ)
    q = torch.clamp(torch.round(w / scales[:, None, :]) + zeros[:, None, :], 0, MAXQ)
    return QuantizedWeight(
        q=q.reshape(in_f, out_f).to(torch.int32),
        zeros=zeros.to(torch.int32),
        scales=scales.half(),
        group_size=group_size,
    )


def dequantize(qw: QuantizedWeight) -> torch.Tensor:
    """Float32 weight [out, in] that the quantized tensors represent."""
    in_f, out_f = qw.q.shape
    groups = torch.arange(in_f) // qw.group_size
    w = (qw.q - qw.zeros[groups]).float() * qw.scales[groups].float()
    return w.t().contiguous()


def pack_int4(values: torch.Tensor, dim: int, order: tuple[int, ...] = SEQUENTIAL_ORDER) -> torch.Tensor:
    """Pack 4-bit values (0..15) into int32 along `dim`; nibble j holds element order[j] of each 8."""
    v = values.to(torch.int64).movedim(dim, -1)
    v = v.reshape(*v.shape[:-1], v.shape[-1] // PACK, PACK)[..., list(order)]
    shifts = torch.arange(0, 32, BITS, dtype=torch.int64)
    packed = (v << shifts).sum(dim=-1)
    packed = torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)
    return packed.movedim(-1, dim).contiguous()


def unpack_int4(packed: torch.Tensor, dim: int, order: tuple[int, ...] = SEQUENTIAL_ORDER) -> torch.Tensor:
    """Inverse of pack_int4: int32 values 0..15, with `dim` grown 8 times."""
    p = packed.to(torch.int64).movedim(dim, -1) & 0xFFFFFFFF
    shifts = torch.arange(0, 32, BITS, dtype=torch.int64)
    nibbles = (p.unsqueeze(-1) >> shifts) & MAXQ
    inverse = [order.index(i) for i in range(PACK)]
    v = nibbles[..., inverse].reshape(*p.shape[:-1], p.shape[-1] * PACK)
    return v.to(torch.int32).movedim(-1, dim).contiguous()


def pack_awq(qw: QuantizedWeight) -> dict[str, torch.Tensor]:
    """AWQ GEMM tensors: qweight [in, out/8], qzeros [in/g, out/8] (interleaved order), scales [in/g, out]."""
    return {
        "qweight": pack_int4(qw.q, dim=1, order=AWQ_ORDER),
        "qzeros": pack_int4(qw.zeros, dim=1, order=AWQ_ORDER),
        "scales": qw.scales.contiguous(),
    }


def unpack_awq(tensors: dict[str, torch.Tensor]) -> QuantizedWeight:
    """Read AWQ GEMM tensors back into a QuantizedWeight."""
    q = unpack_int4(tensors["qweight"], dim=1, order=AWQ_ORDER)
    zeros = unpack_int4(tensors["qzeros"], dim=1, order=AWQ_ORDER)
    return QuantizedWeight(q, zeros, tensors["scales"], q.shape[0] // zeros.shape[0])


def pack_gptq(qw: QuantizedWeight) -> dict[str, torch.Tensor]:
    """GPTQ tensors: qweight [in/8, out], qzeros [in/g, out/8] stored as zero - 1, scales, g_idx [in]."""
    in_f = qw.q.shape[0]
    return {
        "qweight": pack_int4(qw.q, dim=0),
        # Classic AutoGPTQ convention: the stored zero point is (zero - 1); readers add 1 back.
        "qzeros": pack_int4((qw.zeros - 1) & MAXQ, dim=1),
        "scales": qw.scales.contiguous(),
        "g_idx": (torch.arange(in_f, dtype=torch.int32) // qw.group_size).contiguous(),
    }


def unpack_gptq(tensors: dict[str, torch.Tensor]) -> QuantizedWeight:
    """Read GPTQ tensors back into a QuantizedWeight (zero = stored + 1)."""
    q = unpack_int4(tensors["qweight"], dim=0)
    zeros = (unpack_int4(tensors["qzeros"], dim=1) + 1) & MAXQ
    group_size = int(torch.bincount(tensors["g_idx"].long())[0].item())
    return QuantizedWeight(q, zeros, tensors["scales"], group_size)


def quant_config(fmt: Format) -> dict[str, object]:
    """The quantization_config block that goes into config.json for each format."""
    if fmt == "awq":
        return {
            "quant_method": "awq",
            "bits": BITS,
            "group_size": GROUP_SIZE,
            "zero_point": True,
            "version": "gemm",
            "modules_to_not_convert": None,
        }
    # vLLM's AutoGPTQConfig only maps (4 bits, sym=True) -> uint4b8, so GPTQ is symmetric here.
    return {
        "quant_method": "gptq",
        "bits": BITS,
        "group_size": GROUP_SIZE,
        "desc_act": False,
        "sym": True,
        "true_sequential": True,
        "damp_percent": 0.01,
        "static_groups": False,
        "checkpoint_format": "gptq",
    }


def quantize_state_dict(state: dict[str, torch.Tensor], fmt: Format) -> dict[str, torch.Tensor]:
    """Quantize the decoder linears of a state dict; everything else becomes float16."""
    out: dict[str, torch.Tensor] = {}
    for name in sorted(state):
        tensor = state[name]
        if LINEAR_RE.match(name):
            prefix = name.removesuffix(".weight")
            qw = quantize_rtn(tensor, GROUP_SIZE, sym=(fmt == "gptq"))
            packed = pack_awq(qw) if fmt == "awq" else pack_gptq(qw)
            out.update({f"{prefix}.{key}": value for key, value in packed.items()})
        else:
            out[name] = tensor.to(torch.float16).contiguous()
    return out


def export_checkpoint(src: Path, dst: Path, fmt: Format) -> Path:
    """Write a quantized copy of the checkpoint in `src` to `dst` in the given format."""
    if fmt not in ("awq", "gptq"):
        raise ValueError(f"unknown format {fmt!r}; expected 'awq' or 'gptq'")
    dst.mkdir(parents=True, exist_ok=True)
    state = load_file(str(src / "model.safetensors"))
    tensors = quantize_state_dict(state, fmt)
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((src / "config.json").read_text())
    config["torch_dtype"] = "float16"
    config["dtype"] = "float16"
    config["quantization_config"] = quant_config(fmt)
    (dst / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for name in COPIED_FILES:
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)
    return dst


def export_awq(src: Path, dst: Path) -> Path:
    """Write the AWQ GEMM checkpoint."""
    return export_checkpoint(src, dst, "awq")


def export_gptq(src: Path, dst: Path) -> Path:
    """Write the GPTQ checkpoint."""
    return export_checkpoint(src, dst, "gptq")
