"""Quantize one model with llm-compressor; runs inside .venv-quant as a script, not as part of the package.

    .venv-quant/bin/python playground/quantize/worker.py REQUEST.json

It imports only the standard library and llm-compressor's stack (torch, transformers, datasets),
never `playground`: the quantizer's environment pins other versions than the app's. The request
names the model, the scheme, the calibration text and a folder to write; the parent
(playground/quantize/runner.py) renames that folder into place when this exits 0, and reads
progress from this process's output: its own `[playground quantize]` marks and llm-compressor's
log and progress bars. No quantization arithmetic here: llm-compressor's `oneshot` and modifiers do it.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

MARK = "[playground quantize]"


def say(event: str, **fields: Any) -> None:
    """One line the parent parses: the mark, an event name, and JSON fields."""
    print(f"{MARK} {event} {json.dumps(fields)}", flush=True)


def recipe_for(scheme: str, group_size: int | None) -> list[Any]:
    """llm-compressor's own modifiers for a scheme; lm_head stays unquantized."""
    from llmcompressor.modifiers.gptq import GPTQModifier
    from llmcompressor.modifiers.quantization import QuantizationModifier
    from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier

    if scheme == "FP8_DYNAMIC":
        return [QuantizationModifier(targets="Linear", scheme="FP8_DYNAMIC", ignore=["lm_head"])]
    if scheme == "W4A16":
        if group_size == 128:
            return [GPTQModifier(targets="Linear", scheme="W4A16", ignore=["lm_head"])]
        # Same preset with another group size (or per output channel when None): llm-compressor's
        # own config_groups, so its checks and packing still apply.
        strategy = {"strategy": "group", "group_size": group_size} if group_size else {"strategy": "channel"}
        weights = {"num_bits": 4, "type": "int", "symmetric": True, **strategy}
        groups = {"group_0": {"targets": ["Linear"], "weights": weights}}
        return [GPTQModifier(targets="Linear", config_groups=groups, ignore=["lm_head"])]
    if scheme == "W8A8":
        return [
            SmoothQuantModifier(smoothing_strength=0.8),
            GPTQModifier(targets="Linear", scheme="W8A8", ignore=["lm_head"]),
        ]
    raise ValueError(f"unknown scheme {scheme!r}")


def calibration_set(tokenizer: Any, path: str, samples: int, seq_len: int) -> tuple[Any, int, int]:
    """The text cut into consecutive windows of seq_len tokens, at most `samples` of them."""
    from datasets import Dataset
    from datasets.table import InMemoryTable

    text = Path(path).read_text(encoding="utf-8", errors="replace")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    step = max(seq_len - len(bos), 1)
    windows = [bos + ids[i : i + step] for i in range(0, len(ids), step)][:samples]
    windows = [w for w in windows if len(w) > len(bos)]
    if not windows:
        raise ValueError(f"the calibration text {path} has no tokens")
    data = {"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]}
    # A fingerprint of our own: datasets hashes a new table with dill to make one, and on Python 3.12
    # (datasets 5.2, dill 0.4.1, any pyarrow) that pickles pyarrow's module by value and fails on
    # its MonthDayNano type (docs/NOTES.md). The windows themselves identify the set exactly.
    fingerprint = hashlib.sha256(json.dumps(windows).encode()).hexdigest()[:16]
    dataset = Dataset(InMemoryTable.from_pydict(data), fingerprint=fingerprint)
    return dataset, len(windows), sum(len(w) for w in windows)


def peak_rss() -> int:
    """This process's own peak resident memory, in bytes. Linux's VmHWM, not getrusage's ru_maxrss:
    ru_maxrss survives exec, so a worker forked from a 900 MB app reports at least 900 MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: an upper bound


def peak_vram() -> int | None:
    """Most GPU memory torch allocated in this process, when it used a GPU."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        return int(torch.cuda.max_memory_allocated())
    return None


def main(request_path: str) -> int:
    """Load, calibrate and quantize, save into the request's folder; report each phase."""
    req = json.loads(Path(request_path).read_text())
    started = time.perf_counter()
    say("phase", phase="importing", detail="importing torch, transformers and llm-compressor")
    import compressed_tensors
    import llmcompressor
    import torch
    import transformers
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM, AutoTokenizer

    versions = {
        "llmcompressor": llmcompressor.__version__,
        "compressed_tensors": compressed_tensors.__version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    say("phase", phase="loading", detail=f"loading {req['model']}")
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(req["model"], dtype="auto")
    tokenizer = AutoTokenizer.from_pretrained(req["model"])
    load_s = time.perf_counter() - t0
    unique = {t.data_ptr(): t.numel() * t.element_size() for t in model.state_dict().values()}
    base_bytes = sum(unique.values())  # tensor bytes as loaded (tied weights once)
    dataset, used, tokens = None, 0, 0
    if req.get("calib"):
        dataset, used, tokens = calibration_set(tokenizer, req["calib"], req["samples"], req["seq_len"])
    recipe = recipe_for(req["scheme"], req.get("group_size"))
    if dataset is None:
        say("phase", phase="quantizing", detail=f"{req['scheme']} needs no calibration data", passes=1)
    else:
        say("phase", phase="calibrating", detail=f"{used} samples, {tokens} tokens", samples=used, passes=len(recipe))
    t0 = time.perf_counter()
    oneshot(
        model=model,
        dataset=dataset,
        recipe=recipe,
        max_seq_length=req["seq_len"],
        num_calibration_samples=max(used, 1),
        shuffle_calibration_samples=False,  # the same text gives the same checkpoint
    )
    quantize_s = time.perf_counter() - t0
    say("phase", phase="saving", detail=f"writing the compressed checkpoint to {req['out']}")
    t0 = time.perf_counter()
    out = Path(req["out"])
    model.save_pretrained(out, save_compressed=True)  # also writes recipe.yaml (llm-compressor)
    tokenizer.save_pretrained(out)
    save_s = time.perf_counter() - t0
    result = {
        "versions": versions,
        # llm-compressor calibrates on the first GPU when there is one (one layer at a time), else the CPU
        "device": f"cuda: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu",
        "cuda": torch.cuda.is_available(),
        "base_bytes": base_bytes,
        "samples": used,
        "tokens": tokens,
        "load_s": load_s,
        "quantize_s": quantize_s,
        "save_s": save_s,
        "total_s": time.perf_counter() - started,
        "peak_rss_bytes": peak_rss(),
        "peak_vram_bytes": peak_vram(),
    }
    Path(req["result"]).write_text(json.dumps(result, indent=2))
    say("done", **result)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if len(sys.argv) != 2:
        print("usage: worker.py REQUEST.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
