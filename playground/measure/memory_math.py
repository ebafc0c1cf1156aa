"""Predicted memory of a Llama-style model under each quantization method, from its config.json
alone (pure arithmetic: no weights, no vLLM)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GROUP = 128  # AWQ/GPTQ group size used by the common checkpoints


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder-only transformer that decide its memory."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> ModelShape:
        """Read a Hugging Face config.json (Llama, Mistral, Qwen2 naming)."""
        hidden = int(cfg["hidden_size"])
        heads = int(cfg["num_attention_heads"])
        return cls(
            hidden=hidden,
            intermediate=int(cfg["intermediate_size"]),
            layers=int(cfg["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            vocab=int(cfg["vocab_size"]),
            tied_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        )

    def linears(self) -> list[tuple[int, int]]:
        """(in_features, out_features) of every quantizable linear layer in one decoder layer."""
        q_out, kv_out = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return [
            (self.hidden, q_out),
            (self.hidden, kv_out),
            (self.hidden, kv_out),
            (q_out, self.hidden),
            (self.hidden, self.intermediate),
            (self.hidden, self.intermediate),
            (self.intermediate, self.hidden),
        ]

    def linear_params(self) -> int:
        """Parameters in all decoder layers' linear weights (what weight-only methods quantize)."""
        return self.layers * sum(i * o for i, o in self.linears())

    def other_params(self) -> int:
        """Embeddings, lm_head and norms: kept in 16-bit by the usual AWQ/GPTQ/FP8 checkpoints."""
        embed = self.vocab * self.hidden * (1 if self.tied_embeddings else 2)
        norms = self.layers * 2 * self.hidden + self.hidden
        return embed + norms

    def params(self) -> int:
        """All parameters."""
        return self.linear_params() + self.other_params()

    def kv_bytes_per_token(self, dtype_bytes: float = 2) -> float:
        """KV-cache bytes one token occupies (keys and values, all layers)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * dtype_bytes


@dataclass(frozen=True)
class Method:
    """A weight format: bits per linear weight, plus what each group of 128 inputs stores."""

    name: str
    bits: int
    group_overhead_bytes: float = 0.0  # per (group of 128 inputs, output column): scale + zero point
    per_input_bytes: float = 0.0  # per input row of a linear layer (GPTQ's g_idx int32)
    per_output_bytes: float = 0.0  # per output column (per-channel scales)

    def linear_bytes(self, in_f: int, out_f: int) -> float:
        """Bytes of one quantized linear layer."""
        groups = -(-in_f // GROUP)
        return (
            in_f * out_f * self.bits / 8
            + groups * out_f * self.group_overhead_bytes
            + in_f * self.per_input_bytes
            + out_f * self.per_output_bytes
        )


# AWQ: fp16 scale (2 B) + 4-bit zero point (0.5 B) per group and output column.
# GPTQ: the same plus an int32 g_idx per input row; symmetric GPTQ still stores packed zeros.
METHODS: dict[str, Method] = {
    "bf16": Method("bf16", 16),
    "fp8": Method("fp8", 8, per_output_bytes=4),  # per-channel fp32 scales (per-tensor is smaller still)
    "int8": Method("int8", 8, per_output_bytes=2),
    "awq-4bit": Method("awq-4bit", 4, group_overhead_bytes=2.5),
    "gptq-4bit": Method("gptq-4bit", 4, group_overhead_bytes=2.5, per_input_bytes=4),
    "gptq-3bit": Method("gptq-3bit", 3, group_overhead_bytes=2 + 3 / 8, per_input_bytes=4),
    "gptq-2bit": Method("gptq-2bit", 2, group_overhead_bytes=2 + 2 / 8, per_input_bytes=4),
}


def weight_bytes(shape: ModelShape, method: Method) -> float:
    """Predicted bytes of all weights: quantized linears plus 16-bit embeddings, lm_head and norms."""
    if method.bits == 16:
        return shape.params() * 2.0
    linear = shape.layers * sum(method.linear_bytes(i, o) for i, o in shape.linears())
    return linear + shape.other_params() * 2.0
