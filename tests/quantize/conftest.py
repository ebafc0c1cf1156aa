"""Fixtures for the quantize tests: the tiny model quantized for real in every scheme, and vLLM's own
argument parsers run in a subprocess."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from playground.arena.quantizer import Quantizer
from playground.engines.monitor import device_info
from playground.measure.quant_plan import SCHEMES, QuantRequest
from playground.quantize.runner import QuantOutcome

# Parses argument lists the way vLLM does: `vllm serve ...` with the `vllm` command's serve
# subparser, the playground's `python -m vllm.entrypoints.openai.api_server ...` with that server's
# parser; prints each as EngineArgs (vLLM's dataclass of engine settings). A subprocess, because
# importing vllm sets up logging and platform state the test process should not carry.
_PARSE = r"""
import dataclasses, json, sys
from vllm.engine.arg_utils import EngineArgs
from vllm.entrypoints.cli.serve import ServeSubcommand
from vllm.entrypoints.launchers.cli_args import make_arg_parser
from vllm.utils.argparse_utils import FlexibleArgumentParser

top = FlexibleArgumentParser(prog="vllm")
ServeSubcommand().subparser_init(top.add_subparsers(dest="subparser"))
server = make_arg_parser(FlexibleArgumentParser())
out = []
for kind, argv in json.load(sys.stdin):
    args = top.parse_args(argv) if kind == "serve" else server.parse_args(argv)
    if kind == "serve":
        args.model = args.model_tag
    engine = dataclasses.asdict(EngineArgs.from_cli_args(args))
    out.append({k: v if isinstance(v, (str, int, float, bool, type(None))) else repr(v) for k, v in engine.items()})
print(json.dumps(out))
"""


def vllm_engine_args(commands: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """EngineArgs (as dicts) for ("serve", argv after `vllm`) or ("api_server", argv after the module)."""
    done = subprocess.run(
        [sys.executable, "-c", _PARSE], input=json.dumps(commands), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def serve_argv(line: str) -> list[str]:
    """The arguments after `vllm` in a "Run this yourself" line (environment assignments dropped)."""
    words = shlex.split(line)
    start = words.index("vllm")
    return words[start + 1 :]


# -- real quantizations of the tiny model, shared by the tests of this folder ---------------------------
FAST = {"samples": 4, "seq_len": 128}  # seconds per scheme on the tiny model


@pytest.fixture(scope="session")
def quant_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder for the quantize tests (the tiny build, logs, results)."""
    return tmp_path_factory.mktemp("quantize-data")


@pytest.fixture(scope="session")
def quantizer(quant_dir: Path) -> Quantizer:
    """The real quantizer (llm-compressor in .venv-quant)."""
    return Quantizer(quant_dir, device_info())


@pytest.fixture(scope="session")
def quantized(quantizer: Quantizer) -> dict[str, QuantOutcome]:
    """The tiny model quantized in every scheme, through the real worker."""
    out = {}
    for scheme in SCHEMES:
        outcome = quantizer.run(QuantRequest("tiny/bf16", scheme, **FAST))  # type: ignore[arg-type]
        assert outcome.state == "done", f"{scheme}: {outcome.message}\n{outcome.log_path}"
        out[scheme] = outcome
    return out
