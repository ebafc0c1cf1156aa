"""Text about a model quantized here: the llm-compressor code that made it and the model card
(README.md) written beside the checkpoint (pure: values in, text out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# What the quantizer worker does for each scheme (playground/quantize/worker.py `recipe_for`),
# written as the code a user would type; tests/quantize check that both give the same recipe.yaml.
_IMPORTS = {
    "FP8_DYNAMIC": "from llmcompressor.modifiers.quantization import QuantizationModifier",
    "W4A16": "from llmcompressor.modifiers.gptq import GPTQModifier",
    "W8A8": "from llmcompressor.modifiers.gptq import GPTQModifier\n"
    "from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier",
}


def recipe_code(scheme: str, group_size: int | None) -> str:
    """The `recipe = ...` line(s) for a scheme, as the worker builds it."""
    if scheme == "FP8_DYNAMIC":
        return 'recipe = QuantizationModifier(targets="Linear", scheme="FP8_DYNAMIC", ignore=["lm_head"])'
    if scheme == "W4A16" and group_size == 128:
        return 'recipe = GPTQModifier(targets="Linear", scheme="W4A16", ignore=["lm_head"])'
    if scheme == "W4A16":
        strategy = f'"strategy": "group", "group_size": {group_size}' if group_size else '"strategy": "channel"'
        return (
            f'weights = {{"num_bits": 4, "type": "int", "symmetric": True, {strategy}}}\n'
            "recipe = GPTQModifier(\n"
            '    targets="Linear",\n'
            '    config_groups={"group_0": {"targets": ["Linear"], "weights": weights}},\n'
            '    ignore=["lm_head"],\n'
            ")"
        )
    if scheme == "W8A8":
        return (
            "recipe = [\n"
            "    SmoothQuantModifier(smoothing_strength=0.8),\n"
            '    GPTQModifier(targets="Linear", scheme="W8A8", ignore=["lm_head"]),\n'
            "]"
        )
    raise ValueError(f"unknown scheme {scheme!r}")


def llmcompressor_code(
    model: str, scheme: str, group_size: int | None, *, calib: str | None, samples: int, seq_len: int, out: str
) -> str:
    """A standalone llm-compressor script that makes the same checkpoint as the playground did."""
    lines = [
        f"# pip install llmcompressor  (made here with the settings below; see {out}/recipe.yaml)",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        "from llmcompressor import oneshot",
        _IMPORTS[scheme],
        "",
        f"MODEL = {model!r}",
        'model = AutoModelForCausalLM.from_pretrained(MODEL, dtype="auto")',
        "tokenizer = AutoTokenizer.from_pretrained(MODEL)",
        "",
    ]
    data_args = ""
    if calib:
        lines += [
            "# Calibration: the text cut into consecutive windows of SEQ_LEN tokens (with BOS), at most SAMPLES.",
            "from datasets import Dataset",
            "from datasets.table import InMemoryTable",
            "",
            f"SAMPLES, SEQ_LEN = {samples}, {seq_len}",
            f'text = open({calib!r}, encoding="utf-8", errors="replace").read()',
            'ids = tokenizer(text, add_special_tokens=False)["input_ids"]',
            "bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []",
            "step = SEQ_LEN - len(bos)",
            "windows = [bos + ids[i : i + step] for i in range(0, len(ids), step)][:SAMPLES]",
            'data = {"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]}',
            "# A fingerprint of our own: datasets' hashing of a new table fails on Python 3.12 (MonthDayNano).",
            'dataset = Dataset(InMemoryTable.from_pydict(data), fingerprint="calibration")',
            "",
        ]
        data_args = (
            "    dataset=dataset,\n    max_seq_length=SEQ_LEN,\n    num_calibration_samples=len(windows),\n"
            "    shuffle_calibration_samples=False,\n"
        )
    lines += [
        recipe_code(scheme, group_size),
        f"oneshot(\n    model=model,\n    recipe=recipe,\n{data_args})",
        f"model.save_pretrained({out!r}, save_compressed=True)",
        f"tokenizer.save_pretrained({out!r})",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CardFacts:
    """Everything the model card states, as measured by the run."""

    base_model: str
    scheme: str
    scheme_title: str
    group_size: int | None
    calibration: str  # what the text was: "the playground's bundled text (assets/calibration.txt)", a path
    samples: int
    tokens: int
    seq_len: int
    before_bytes: int  # the base model's weight files
    after_bytes: int  # the checkpoint's weight files
    predicted_after_bytes: float
    seconds: float  # wall time of the whole run
    quantize_seconds: float  # llm-compressor's oneshot alone
    versions: Mapping[str, str]
    device: str
    peak_rss_bytes: int | None = None
    predicted_peak_bytes: float | None = None


def _mb(n: float) -> str:
    return f"{n / 1e6:,.2f} MB"


def model_card(facts: CardFacts, code: str, serve_line: str) -> str:
    """README.md for the output folder: what it is, how it was made, how to serve it."""
    group = ""
    if facts.scheme == "W4A16":
        group = f", group size {facts.group_size}" if facts.group_size else ", one scale per output channel"
    calib = (
        f"{facts.calibration}: {facts.samples} samples of up to {facts.seq_len} tokens ({facts.tokens:,} tokens)"
        if facts.samples
        else "none (this scheme needs no calibration data)"
    )
    ratio = facts.after_bytes / facts.before_bytes if facts.before_bytes else 0.0
    rows = [
        ("base model", f"`{facts.base_model}`"),
        ("scheme", f"**{facts.scheme}**{group}: {facts.scheme_title}; `lm_head` left unquantized"),
        ("calibration", calib),
        (
            "weights on disk",
            f"{_mb(facts.before_bytes)} before → {_mb(facts.after_bytes)} after (×{ratio:.2f}; "
            f"predicted {_mb(facts.predicted_after_bytes)} of tensors from config.json)",
        ),
        ("time", f"{facts.seconds:.1f} s in all, {facts.quantize_seconds:.2f} s in llm-compressor's oneshot"),
        ("made with", ", ".join(f"{k.replace('_', '-')} {v}" for k, v in facts.versions.items())),
        ("device", facts.device),
    ]
    if facts.peak_rss_bytes:
        predicted = f" (predicted {facts.predicted_peak_bytes / 1e9:,.2f} GB)" if facts.predicted_peak_bytes else ""
        rows.append(("peak host memory", f"{facts.peak_rss_bytes / 1e9:,.2f} GB{predicted}"))
    table = "\n".join(["| what | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
    return (
        f"# {facts.base_model.split(' (')[0].rstrip('/')} · {facts.scheme}\n\n"
        f"A compressed-tensors checkpoint {CARD_MARK}. "
        "vLLM reads the method from `config.json` (`quantization_config`): no `--quantization` flag is needed.\n\n"
        f"{table}\n\n"
        "## Serve it\n\n"
        f"```bash\n{serve_line}\n```\n\n"
        f"{_HOW}\n\n"
        "`recipe.yaml` in this folder is the recipe llm-compressor saved. The same run as a script:\n\n"
        f"```python\n{code}```\n"
    )


CARD_MARK = "made by the vLLM Quantization Playground with llm-compressor"
_HOW = "## How it was made"


def code_from_card(card: str) -> str:
    """The llm-compressor script in a model card written here; empty for any other README."""
    if CARD_MARK not in card or _HOW not in card:
        return ""
    after = card.split(_HOW, 1)[1]
    start = after.find("```python\n")
    end = after.find("```", start + 10)
    return after[start + 10 : end] if start >= 0 and end > start else ""


def card_facts_dict(facts: CardFacts) -> dict[str, Any]:
    """The facts as JSON-ready values (the CLI's --json)."""
    return {
        "base_model": facts.base_model,
        "scheme": facts.scheme,
        "group_size": facts.group_size,
        "calibration": facts.calibration,
        "samples": facts.samples,
        "tokens": facts.tokens,
        "seq_len": facts.seq_len,
        "before_bytes": facts.before_bytes,
        "after_bytes": facts.after_bytes,
        "predicted_after_bytes": facts.predicted_after_bytes,
        "seconds": facts.seconds,
        "quantize_seconds": facts.quantize_seconds,
        "versions": dict(facts.versions),
        "device": facts.device,
        "peak_rss_bytes": facts.peak_rss_bytes,
        "predicted_peak_bytes": facts.predicted_peak_bytes,
    }
