"""The instance a class benchmark runs against: the two engines (started the way the app starts them,
or given by URL) and app.py attached to them, from this checkout or another (a before/after run).
Used by bench/class_load.py, bench/stream_cost.py and bench/serve_pair.py."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from gradio_client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playground.engines.server import free_port  # noqa: E402


@dataclass(frozen=True)
class EngineRef:
    """An engine the reference streams go to and whose /metrics is read."""

    url: str
    key: str
    model: str


def attached(url: str, key: str, model: str) -> EngineRef:
    """An engine given by URL: its served model name from /v1/models unless given."""
    url = url.rstrip("/")
    if not model:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        model = httpx.get(f"{url}/v1/models", headers=headers, timeout=30).json()["data"][0]["id"]
    return EngineRef(url, key, model)


def start_engines(args: argparse.Namespace, data: Path) -> tuple[Any, dict[str, EngineRef]]:
    """Both engines, started the way the app starts them (then attached to by app.py)."""
    from playground.arena.core import Arena
    from playground.arena.defaults import neutral_spec
    from playground.engines.monitor import device_info
    from playground.measure.specs import parse_spec

    device = device_info()
    specs = [parse_spec(s, base=neutral_spec(device)) for s in (args.a, args.b)]
    arena = Arena(specs, data_dir=data, device=device)
    for name in ("A", "B"):
        print(f"[class] starting engine {name}: {arena.slot(name).spec.display_name}", file=sys.stderr, flush=True)
        arena.start(name)
    arena.sampler.stop()  # the app reads the engines; this process only launched them
    refs = {}
    for name in ("A", "B"):
        engine = arena.slot(name).engine
        assert engine is not None
        refs[name] = EngineRef(engine.base_url, engine.api_key, engine.model_id)
    return arena, refs


def start_app(refs: dict[str, EngineRef], data: Path, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    """app.py in locked mode, attached to the engines; returns it once its page serves."""
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "PLAYGROUND_DATA": str(data),
        "PLAYGROUND_LOCKED": "0" if args.open else "1",
        "PLAYGROUND_MAX_TOKENS": str(max(args.max_tokens, 1)),
        "PLAYGROUND_REQUESTS_PER_MINUTE": str(max(args.compares * 2, 10)),
    }
    for name, ref in refs.items():
        env[f"PLAYGROUND_{name}"] = f"{ref.model},endpoint={ref.url},api_key={ref.key},label={name.lower()}"
    app_dir = args.app_dir.resolve()
    # its own package first (an older checkout for a before/after run), then whatever the caller had
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(app_dir), os.environ.get("PYTHONPATH", "")) if p)
    log = open(data / "app.log", "w")  # noqa: SIM115 - open for the app's whole life
    app = subprocess.Popen(
        [sys.executable, str(app_dir / "app.py")], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=app_dir
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise SystemExit(f"app.py exited with {app.returncode}; see {data / 'app.log'}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return app, url
        except httpx.HTTPError:
            pass
        time.sleep(1.0)
    raise SystemExit(f"app.py did not serve {url} within 300 s")


def wait_ready(url: str, timeout_s: float = 900) -> None:
    """Until both engine cards say ready (the app attached to them)."""
    client = Client(url, verbose=False)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        cards = client.predict(api_name="/refresh")
        if all("● ready" in str(c) for c in cards[:2]):
            return
        time.sleep(2.0)
    raise SystemExit(f"the engines behind {url} were not ready within {timeout_s:.0f} s")


def stop_app(proc: subprocess.Popen) -> None:
    """SIGTERM, then a kill if it has not ended within a minute."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
