"""Quantizing the tiny model with the real llm-compressor (.venv-quant): what the folder holds, the
sizes it predicted, and every bad input refused with nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from playground.arena.quantizer import Quantizer
from playground.measure.quant_plan import QuantError, QuantRequest
from playground.quantize.runner import QuantEnvError, QuantOutcome, quant_python
from playground.views.model_card import code_from_card
from tests.conftest import alive

ROOT = Path(__file__).resolve().parents[2]


def leftovers(folder: Path) -> list[str]:
    """Anything in the results folder other than finished checkpoints (a partial folder above all)."""
    return sorted(p.name for p in folder.glob("*") if p.name.startswith(".") or not (p / "README.md").exists())


@pytest.mark.parametrize("scheme", ["FP8_DYNAMIC", "W4A16", "W8A8"])
def test_each_scheme_writes_a_complete_folder(quantized: dict[str, QuantOutcome], scheme: str) -> None:
    outcome = quantized[scheme]
    folder = outcome.out
    for name in ("config.json", "model.safetensors", "tokenizer.json", "recipe.yaml", "README.md"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())["quantization_config"]
    assert config["quant_method"] == "compressed-tensors" and config["ignore"] == ["lm_head"]
    recipe = yaml.safe_load((folder / "recipe.yaml").read_text().replace("!!python/tuple", ""))
    modifiers = recipe["default_stage"]["default_modifiers"]
    expected = {
        "FP8_DYNAMIC": ["QuantizationModifier"],
        "W4A16": ["GPTQModifier"],
        "W8A8": ["SmoothQuantModifier", "GPTQModifier"],
    }
    assert list(modifiers) == expected[scheme]
    facts = outcome.facts
    assert facts is not None and facts.versions["llmcompressor"] == "0.14.0.1"
    card = (folder / "README.md").read_text()
    for fact in ("bf16", scheme, "llmcompressor 0.14.0.1", "weights on disk", "time"):
        assert fact in card, fact
    assert code_from_card(card) == outcome.code and f"{folder}" in outcome.code
    # The weights shrink as predicted from config.json (the rest is the safetensors header).
    assert facts.after_bytes < facts.before_bytes
    assert abs(facts.after_bytes - facts.predicted_after_bytes) / facts.predicted_after_bytes < 0.01
    assert facts.peak_rss_bytes is not None and facts.predicted_peak_bytes is not None
    assert facts.peak_rss_bytes <= facts.predicted_peak_bytes, "the prediction is an upper bound"
    if scheme != "FP8_DYNAMIC":
        assert facts.samples >= 1 and "bundled text" in facts.calibration
    assert leftovers(folder.parent) == []


def test_the_card_script_is_what_made_it(quantized: dict[str, QuantOutcome], tmp_path: Path) -> None:
    """Run the card's llm-compressor script itself in .venv-quant: it writes the same recipe and config."""
    made = quantized["W4A16"]
    script = made.code.replace(str(made.out), str(tmp_path / "again"))
    python, _ = quant_python()
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "again" / "recipe.yaml").read_text() == (made.out / "recipe.yaml").read_text()
    ours = json.loads((made.out / "config.json").read_text())["quantization_config"]
    theirs = json.loads((tmp_path / "again" / "config.json").read_text())["quantization_config"]
    assert ours == theirs


def cli(*args: str, env: dict[str, str] | None = None, data: Path, limit: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "playground", "quantize", *args]
    if limit:  # a shell with a file-size limit: writes beyond it fail as on a full disk
        command = ["bash", "-c", f'ulimit -f {limit}; exec "$@"', "_", *command]
    full_env = {**os.environ, "PLAYGROUND_DATA": str(data), **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT, env=full_env)


def test_cli_quantizes_and_prints_json(tmp_path: Path) -> None:
    done = cli("--model", "tiny/bf16", "--scheme", "fp8_dynamic", "--json", data=tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["state"] == "done" and out["scheme"] == "FP8_DYNAMIC"
    assert out["vllm_serve"].startswith("vllm serve ") and out["out"] in out["vllm_serve"]
    assert "LLM(" in out["python"] and "QuantizationModifier" in out["llmcompressor"]
    assert "[quantize] 100% done" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scheme", "INT3"], "unknown scheme 'INT3'; choose one of: FP8_DYNAMIC, W4A16, W8A8"),
        (["--scheme", "W4A16", "--group-size", "96"], "group size 96 does not divide the input width 256 of q_proj"),
        (
            ["--scheme", "W8A8", "--calib", "/nonexistent/calib.txt"],
            "calibration file /nonexistent/calib.txt does not exist",
        ),
        (["--scheme", "W4A16", "--calib", "EMPTY"], "is empty: give a text file with sample text"),
        (["--scheme", "W4A16", "--seq-len", "5000"], "longer than the model's context (1024)"),
    ],
)
def test_bad_requests_are_refused_before_the_quantizer_starts(tmp_path: Path, args: list[str], message: str) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    args = [str(empty) if a == "EMPTY" else a for a in args]
    done = cli("--model", "tiny/bf16", *args, data=tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not (tmp_path / "quantized").exists() and not list((tmp_path / "logs").glob("quantize-*"))


def test_a_model_too_large_for_this_machine_is_refused(quantizer: Quantizer) -> None:
    # The planner's preset carries Llama-2-70B's config.json: 69 B parameters, 138 GB in bf16.
    with pytest.raises(QuantError, match=r"quantizing needs about \d+.\d GB of host memory .* is available"):
        quantizer.prepare(QuantRequest("meta-llama/Llama-2-70b-hf", "FP8_DYNAMIC"))


def test_the_quantizer_environment_missing_or_broken(tmp_path: Path) -> None:
    missing = cli(
        "--model",
        "tiny/bf16",
        "--scheme",
        "FP8_DYNAMIC",
        env={"PLAYGROUND_QUANT_PYTHON": "/nonexistent/python"},
        data=tmp_path,
    )
    assert missing.returncode == 2
    assert (
        "the quantizer environment is missing (/nonexistent/python does not exist): create it with `make quant-env`"
        in missing.stderr
    )
    # The app's own environment has vLLM but no llm-compressor: a broken quantizer environment.
    broken = cli(
        "--model",
        "tiny/bf16",
        "--scheme",
        "FP8_DYNAMIC",
        env={"PLAYGROUND_QUANT_PYTHON": sys.executable},
        data=tmp_path,
    )
    assert broken.returncode == 2 and "is broken (missing: " in broken.stderr and "llmcompressor" in broken.stderr
    assert not (tmp_path / "quantized").exists()
    with pytest.raises(QuantEnvError):
        os.environ["PLAYGROUND_QUANT_PYTHON"] = "/nonexistent/python"
        try:
            Quantizer(tmp_path, __import__("playground.engines.monitor", fromlist=["x"]).device_info()).start(
                QuantRequest("tiny/bf16", "FP8_DYNAMIC")
            )
        finally:
            del os.environ["PLAYGROUND_QUANT_PYTHON"]


def test_a_full_disk_while_saving_leaves_no_loadable_folder(quantizer: Quantizer, tmp_path: Path) -> None:
    # ulimit -f 1024 (1 MiB per file): the 8 MB tiny model is read, the 3.7 MB checkpoint cannot be written
    # (EFBIG, "File too large": the same failed write the worker meets on a full disk).
    model = quantizer.model_path("tiny/bf16")  # built already: the limit would stop copying it too
    done = cli("--model", model, "--scheme", "W4A16", "--samples", "4", "--seq-len", "128", data=tmp_path, limit="1024")
    assert done.returncode == 1, done.stderr
    assert "quantizing failed while saving" in done.stderr and "File too large" in done.stderr
    assert list((tmp_path / "quantized").iterdir()) == []


def test_cancel_mid_calibration_stops_the_tree_and_leaves_nothing(quantizer: Quantizer) -> None:
    job = quantizer.start(QuantRequest("tiny/bf16", "W8A8", samples=64, seq_len=256))
    deadline = time.monotonic() + 300
    while job.progress().phase != "calibrating" or "layer" not in job.progress().detail:
        assert job.returncode() is None, job.log_tail()
        assert time.monotonic() < deadline, job.log_tail()
        time.sleep(0.2)
    pids = job.pids()
    assert pids
    assert quantizer.cancel()
    outcome = job.wait()
    assert outcome.state == "cancelled" and "no folder was written" in outcome.message
    assert alive(pids) == []
    assert not job.out.exists() and not job.tmp.exists()
    assert leftovers(job.out.parent) == []
