"""The quantization ladder: several variants of one model, each measured the same way in one session,
one row per variant, and the rules for keeping and swapping them (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from playground.measure.quality import kl_topk

MIN_VARIANTS, MAX_VARIANTS = 2, 6
# Vocabularies up to this size are returned whole (vLLM --max-logprobs), so KL is exact; larger
# ones get the top LOWER_BOUND_K, and KL on top-k lists is a lower bound (quality.kl_topk).
EXACT_VOCAB_LIMIT = 4096
LOWER_BOUND_K = 64
ATTACHED_K = 20  # vLLM's default --max-logprobs: what an endpoint we did not start allows
# A sleeping variant keeps its weights in host RAM (vLLM sleep level 1); leave the rest of the host
# this share of its available memory for the app, the OS and the engines' own processes.
HOST_RAM_SHARE = 0.8


def swap_method(device_kind: str) -> str:
    """How a variant gets into a pane on this device: vLLM's sleep mode where it exists (CUDA
    GPUs), otherwise stop one engine and start the other. The only place this is decided."""
    return "sleep" if device_kind == "cuda" else "restart"


def logprobs_k(vocab_size: int | None) -> tuple[int, bool]:
    """How many logprobs per position to ask for, and whether that is the whole vocabulary."""
    if vocab_size and vocab_size <= EXACT_VOCAB_LIMIT:
        return vocab_size, True
    return LOWER_BOUND_K, False


def variant_problems(labels: Sequence[str], new_label: str) -> list[str]:
    """What stops one more variant joining the session's list."""
    problems = []
    if not new_label.strip():
        problems.append("a variant needs a label (label=... in its spec, or a model name)")
    if new_label in labels:
        problems.append(f"there is already a variant called {new_label!r}: give this one another label")
    if len(labels) >= MAX_VARIANTS:
        problems.append(f"a session holds at most {MAX_VARIANTS} variants; remove one first")
    return problems


def host_ram_problem(weights_bytes: Mapping[str, float], available_bytes: int) -> str | None:
    """Refusal when the sleeping variants' weights (held in host RAM by sleep level 1) do not fit."""
    need = sum(weights_bytes.values())
    room = available_bytes * HOST_RAM_SHARE
    if need <= room:
        return None
    each = ", ".join(f"{label} {b / 2**30:.1f} GiB" for label, b in weights_bytes.items())
    return (
        f"the sleeping variants' weights need {need / 2**30:.1f} GiB of host RAM ({each}); "
        f"this host has {available_bytes / 2**30:.1f} GiB available and the playground uses at most "
        f"{HOST_RAM_SHARE:.0%} of it: remove a variant or use a smaller one"
    )


def forced_comparison(
    base: Sequence[Mapping[int, float] | None], other: Sequence[Mapping[int, float] | None]
) -> tuple[list[float], float | None]:
    """Per-position KL(base‖other) on the same teacher-forced tokens, and the share of positions
    whose most likely token differs (the flip rate). Positions either side lacks are skipped."""
    kls: list[float] = []
    flips = 0
    for p, q in zip(base, other, strict=False):
        if not p or not q:
            continue
        kls.append(kl_topk(p, q))
        flips += max(p, key=p.__getitem__) != max(q, key=q.__getitem__)
    return kls, (flips / len(kls) if kls else None)


@dataclass(frozen=True)
class LadderRow:
    """One variant's figures, each measured the same way as every other row's."""

    label: str
    model: str
    quantization: str
    kernel: str | None = None
    weights_gb: float | None = None  # 10^9 bytes, vLLM's own figure where it reports one
    weights_source: str = ""
    kv_tokens: int | None = None
    ttft_ms: float | None = None  # median over the timing requests, one engine running at a time
    decode_tok_s: float | None = None
    agreement: float | None = None  # greedy tokens matching the baseline's, position by position
    kl_mean: float | None = None  # teacher-forced on the baseline's tokens, nats per token
    kl_exact: bool = False  # whole vocabulary (exact) or top-k (a lower bound)
    flip_rate: float | None = None  # share of positions whose top-1 token differs from the baseline's
    perplexity: float | None = None
    swap_s: float | None = None  # how long bringing this variant into its pane took
    swap_method: str = ""
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The CLI's JSON shape."""
        return asdict(self)


# Short headers, one word or a word and its unit, so that the table reads at 1024 px without a header
# broken mid-word; LEGEND says what each means and its unit.
COLUMNS = [
    "variant",
    "method",
    "kernel",
    "weights GB",
    "KV tokens",
    "TTFT ms",
    "tok/s",
    "agree",
    "KL",
    "flips",
    "ppl",
    "swap",
    "accuracy",
]
LEGEND = (
    "**method**: the quantization vLLM ran · **weights GB**: as loaded · **KV tokens**: the KV cache's "
    "capacity · **TTFT ms**: time to first token (median) · **tok/s**: decode tokens per second (median) · "
    "**agree**: greedy tokens equal to the baseline's · **KL**: mean KL divergence from the baseline, nats "
    "per token (exact, or ≥ from the top-k logprobs) · **flips**: positions whose top-1 token differs · "
    "**ppl**: perplexity on the reference text · **swap**: seconds to bring the variant into a pane · "
    "**accuracy**: from the Accuracy tab's latest report on the chosen task (% ± standard error)"
)


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None or not math.isfinite(value) else format(value, spec)


def table_rows(
    rows: Sequence[LadderRow], baseline: str, accuracy: Mapping[str, str] | None = None
) -> list[list[object]]:
    """Rows for the ladder table; the KL column says whether it is exact or a lower bound; `accuracy`
    holds each variant's `acc ± stderr` from an Accuracy report ("–" where there is none)."""
    out: list[list[object]] = []
    for r in rows:
        kl = _fmt(r.kl_mean, ".4f")
        if r.kl_mean is not None:
            kl += " (exact)" if r.kl_exact else " (≥, top-k)"
        swap = "–" if r.swap_s is None else f"{r.swap_s:.1f} s {r.swap_method}"
        out.append(
            [
                f"{r.label} (baseline)" if r.label == baseline else r.label,
                r.quantization,
                r.error or r.kernel or "–",
                _fmt(r.weights_gb, ".3f"),
                "–" if r.kv_tokens is None else f"{r.kv_tokens:,}",
                _fmt(r.ttft_ms, ".1f"),
                _fmt(r.decode_tok_s, ",.0f"),
                "–" if r.agreement is None else f"{r.agreement:.1%}",
                kl,
                "–" if r.flip_rate is None else f"{r.flip_rate:.1%}",
                _fmt(r.perplexity, ".3f"),
                swap,
                (accuracy or {}).get(r.label) or "–",
            ]
        )
    return out


def best_tradeoffs(rows: Sequence[LadderRow]) -> list[str]:
    """Variants no other variant beats on both memory and quality loss (the Pareto front): for each,
    no other row has weights and KL both at most its own, one of them strictly less."""
    scored = [r for r in rows if r.weights_gb is not None and r.kl_mean is not None]
    front = []
    for r in scored:
        beaten = any(
            o is not r
            and o.weights_gb <= r.weights_gb  # type: ignore[operator]
            and o.kl_mean <= r.kl_mean  # type: ignore[operator]
            and (o.weights_gb < r.weights_gb or o.kl_mean < r.kl_mean)  # type: ignore[operator]
            for o in scored
        )
        if not beaten:
            front.append(r.label)
    return front
