"""Finding a model's config.json without its weights: presets, local folders, the hub cache, the hub."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from playground.measure.planner import PRESETS


def load_config(name: str, *, download: bool = True) -> dict[str, Any]:
    """A preset, a local config.json or folder, the Hugging Face cache, or (if allowed) the hub."""
    if name in PRESETS:
        return dict(PRESETS[name])
    path = Path(name).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return dict(json.loads(path.read_text()))
    from huggingface_hub import hf_hub_download, try_to_load_from_cache  # hub ids only: config.json alone

    cached = try_to_load_from_cache(name, "config.json")
    if isinstance(cached, str):
        return dict(json.loads(Path(cached).read_text()))
    if not download:
        raise FileNotFoundError(f"no config.json for {name} on disk or in the Hugging Face cache")
    return dict(json.loads(Path(hf_hub_download(name, "config.json")).read_text()))


def checkpoint_tensor_bytes(name: str) -> int | None:
    """Bytes of all tensors in a local checkpoint's safetensors files (each file less its header),
    or None for a hub id or a folder without safetensors."""
    folder = Path(name).expanduser()
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    total = 0
    for f in files:
        with f.open("rb") as fh:
            (header,) = struct.unpack("<Q", fh.read(8))  # safetensors: u64 header length, JSON, data
        total += f.stat().st_size - 8 - header
    return total
