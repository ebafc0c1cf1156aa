"""Weights that read right: vLLM's rounded log figure against the checkpoint's tensor bytes, and the
FP8-online note on the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from playground.engines.model_config import checkpoint_tensor_bytes
from playground.measure.anatomy import check_weights, readable_weights
from playground.views.cards import FP8_ONLINE_NOTE, loaded_lines

TINY = Path(__file__).resolve().parents[2] / "assets" / "tiny" / "bf16"


def test_tensor_bytes_of_the_tiny_checkpoint() -> None:
    with safe_open(str(TINY / "model.safetensors"), "pt") as f:  # every tensor, counted one by one
        expected = sum(f.get_tensor(k).numel() * f.get_tensor(k).element_size() for k in f.keys())  # noqa: SIM118
    assert checkpoint_tensor_bytes(str(TINY)) == expected
    assert expected < (TINY / "model.safetensors").stat().st_size  # the header is not weights
    assert checkpoint_tensor_bytes("Qwen/Qwen2.5-0.5B") is None  # a hub id: nothing on disk to count


def test_rounded_log_figures_give_way_to_tensor_bytes() -> None:
    tiny = 8_388_608  # 0.0078 GiB: vLLM logs 0.01 GiB
    assert readable_weights(0.01, tiny) == (tiny / 2**30, "checkpoint tensor bytes; vLLM's log rounds them to 0.01 GiB")
    assert readable_weights(0.0, tiny)[0] == pytest.approx(0.0078125)  # AWQ's "0.00 GiB" on the H200
    assert readable_weights(0.02, tiny)[1].startswith("checkpoint tensor bytes")
    assert readable_weights(0.03, tiny) == (0.03, "vLLM log")  # past the rounding: vLLM's own figure
    assert readable_weights(12.55, None) == (12.55, "vLLM log")
    assert readable_weights(0.0, None) == (0.0, "vLLM log")  # nothing better to show
    assert readable_weights(None, tiny) == (tiny / 2**30, "checkpoint tensor bytes")  # the CPU build logs none
    assert readable_weights(None, None) == (None, "")


def test_card_names_the_source_and_explains_fp8_online() -> None:
    config = json.loads((TINY / "config.json").read_text())
    tensor = checkpoint_tensor_bytes(str(TINY))
    gib, source = readable_weights(0.01, tensor)
    assert gib is not None
    check = check_weights(config, gib * 2**30, source)
    lines = loaded_lines("CutlassFP8ScaledMMLinearKernel", "fp8", check)
    assert "checkpoint tensor bytes; vLLM's log rounds them to 0.01 GiB" in lines[1]
    assert lines[-1] == FP8_ONLINE_NOTE and "quantizes each linear layer to FP8 as it loads" in FP8_ONLINE_NOTE
    assert FP8_ONLINE_NOTE not in loaded_lines("MacheteLinearKernel", "awq", check)
