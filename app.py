"""Launch the vLLM Quantization Playground (Hugging Face Spaces runs this file).

Engines come from PLAYGROUND_A / PLAYGROUND_B (`MODEL[,key=value...]`), else the default pair: on a
GPU with network the largest Qwen2.5 Instruct that fits it beside its AWQ sibling, the project's tiny
model otherwise.
PLAYGROUND_LOCKED=1 makes a public instance (README, "Configuration").
"""

from __future__ import annotations

import gc
import os
import signal
import sys


def main() -> None:
    """Build the arena, start both engines one after the other in the background, serve the UI."""
    from playground.arena.defaults import use_storage

    # First: huggingface_hub (under gradio) reads HF_HOME once, when it is imported.
    storage = use_storage()
    from playground.arena.core import Arena
    from playground.arena.defaults import default_pair, neutral_spec
    from playground.arena.settings import SettingsError, load_settings
    from playground.engines.build import BuildProbeError
    from playground.engines.monitor import device_info
    from playground.measure.specs import SpecError, parse_spec
    from playground.store.sqlite import StoreError
    from playground.ui.app import build_ui, launch_options, with_queue

    try:
        device = device_info()
        settings = load_settings()
        pair = list(default_pair(device))
        for i, text in enumerate((settings.a, settings.b)):
            if text:
                pair[i] = parse_spec(text, base=neutral_spec(device))
        arena = Arena(pair, data_dir=storage.data, device=device, limits=settings.limits)
    except (BuildProbeError, SettingsError, SpecError, StoreError) as exc:
        sys.exit(f"error: {exc}")
    demo = build_ui(arena, settings, storage)
    arena.sampler.start()
    if os.environ.get("PLAYGROUND_AUTOSTART", "1") != "0":
        for name in ("A", "B"):
            try:
                arena.start_in_background(name)
            except SpecError as exc:  # refused before launch: the slot's card shows it to visitors too
                arena.slot(name).start_error = str(exc)
                print(f"engine {name} not started: {exc}", file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # atexit and `finally` stop the engines
    try:
        port = int(os.environ.get("PORT", os.environ.get("GRADIO_SERVER_PORT", "7860")))
        # Each event's own limit is set in build_ui; queue_size bounds the wait: beyond it, "busy".
        with_queue(demo, settings).launch(server_port=port, **launch_options(settings, demo))
    finally:
        arena.shutdown()
        # The interpreter's last garbage collection walks every object gradio, plotly and pandas made: about
        # 1 s of CPU, many more on a busy host, between SIGTERM and the exit (docs/NOTES.md). None is left
        # to collect that matters now.
        gc.freeze()


if __name__ == "__main__":
    main()
