"""Tiny Llama model shipped with the playground, and its 4-bit AWQ/GPTQ exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground.tiny.build import build_tiny

__all__ = ["build_tiny"]


def __getattr__(name: str) -> Any:
    """Import build_tiny lazily so `import playground.tiny` stays light (no torch)."""
    if name == "build_tiny":
        from playground.tiny.build import build_tiny

        return build_tiny
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
