"""What a quantization run's log says: its phase, how far calibration has got (layer k of n), and
why it failed (pure). The log is the worker's own `[playground quantize]` marks plus llm-compressor's
log lines and tqdm progress bars (llm-compressor 0.14)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MARK = "[playground quantize]"  # playground/quantize/worker.py prints it before each event
_EVENT = re.compile(re.escape(MARK) + r" (\w+) (\{.*\})\s*$")
# "(3/5): Calibrating:  67%|██████▋   | 2/3 [...]": the sequential pipeline's bar per subgraph
_SUBGRAPH = re.compile(r"\((\d+)/(\d+)\): (Calibrating|Propagating):\s+(\d+)%")
_PIPELINE = re.compile(r"Inferred `(\w+)Pipeline` for `(\w+)`")
_GPTQ_MODULE = re.compile(r"Quantizing \d+ module\(s\): \['([\w.]+)'")
_SMOOTHING = re.compile(r"Smoothing with ([\w.]+)")
_SAVING = re.compile(r"(Compressing model|Writing model shards):\s+(\d+)%")
_EXCEPTION = re.compile(r"^\s*(?:\w+\.)*(\w*(?:Error|Exception|Interrupt)): (.+)$")
# Where the bar stands at the start of each phase; calibration fills the space up to saving.
PHASE_START = {
    "starting": 0.0,
    "importing": 0.01,
    "loading": 0.05,
    "calibrating": 0.08,
    "quantizing": 0.08,
    "saving": 0.92,
    "done": 1.0,
}


@dataclass(frozen=True)
class QuantProgress:
    """Where a quantization run stands, read from its log."""

    phase: str = "starting"  # starting, importing, loading, calibrating, saving, done
    fraction: float = 0.0
    detail: str = ""
    module: str = ""  # the module GPTQ or SmoothQuant worked on last
    error: str = ""  # the last exception line, if any
    result: dict[str, Any] = field(default_factory=dict)  # the worker's final report

    @property
    def text(self) -> str:
        """One line for a progress bar's label."""
        parts = [self.phase]
        if self.detail:
            parts.append(self.detail)
        if self.module:
            parts.append(self.module)
        return " · ".join(parts)


def _where(subgraph: int, subgraphs: int, layers: int | None) -> str:
    """The sequential pipeline's subgraph as the model's layer: one subgraph before the first layer."""
    if layers and subgraphs == layers + 1:
        return "embeddings" if subgraph == 1 else f"layer {subgraph - 1} of {layers}"
    return f"part {subgraph} of {subgraphs}"


def split_lines(text: str) -> list[str]:
    """Log text as lines, with tqdm's carriage-return updates as lines of their own."""
    return [part for line in text.splitlines() for part in line.split("\r") if part.strip()]


def read_progress(lines: Iterable[str], *, layers: int | None = None) -> QuantProgress:
    """Scan the log once: the latest phase, calibration's pass and subgraph, the worker's result."""
    phase, detail, module, error = "starting", "", "", ""
    passes, pass_no, within = 1, 0, 0.0
    saving = 0.0
    result: dict[str, Any] = {}
    for line in lines:
        if m := _EVENT.search(line):
            try:
                fields: dict[str, Any] = json.loads(m[2])
            except ValueError:
                fields = {}
            if m[1] == "phase":
                phase, detail = str(fields.get("phase", phase)), str(fields.get("detail", ""))
                passes = int(fields.get("passes", passes) or 1)
            elif m[1] == "done":
                phase, detail, result = "done", "", fields
            continue
        if m := _PIPELINE.search(line):
            if within > 0:
                pass_no += 1  # the next modifier's pass (SmoothQuant, then GPTQ)
            within = 0.0
            detail = f"{m[2]} ({m[1].lower()} pipeline)"
        elif m := _SUBGRAPH.search(line):
            k, n, stage, pct = int(m[1]), int(m[2]), m[3], int(m[4])
            half = 0.5 * pct / 100 + (0.5 if stage == "Propagating" else 0.0)
            within = max(within, (k - 1 + half) / n)
            step = f" (pass {pass_no + 1} of {passes})" if passes > 1 else ""
            detail = f"{stage.lower()} {_where(k, n, layers)}{step}"
        elif m := _GPTQ_MODULE.search(line):
            module = f"GPTQ {m[1]}"
        elif m := _SMOOTHING.search(line):
            module = f"SmoothQuant {m[1]}"
        elif m := _SAVING.search(line):
            saving = (0.5 if m[1] == "Writing model shards" else 0.0) + 0.5 * int(m[2]) / 100
        if m := _EXCEPTION.match(line):
            error = f"{m[1]}: {m[2]}".strip()
    fraction = PHASE_START.get(phase, 0.0)
    if phase in ("calibrating", "quantizing"):
        span = PHASE_START["saving"] - PHASE_START["calibrating"]
        fraction += span * min((pass_no + within) / passes, 1.0)
    elif phase == "saving":
        fraction += (1.0 - PHASE_START["saving"]) * 0.9 * saving
    if phase in ("saving", "done"):
        module = ""
    return QuantProgress(phase, fraction, detail, module, error, result)
