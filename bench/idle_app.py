"""What an idle Gradio app costs in CPU: Gradio's queue as it comes (it looks for work every millisecond)
against the app's (`playground.ui.app.polled_gently`: every 10 ms, progress every 50 ms). A benchmark, not a
test. Each is a separate process serving a one-textbox app, measured for SECONDS after it has started, in
turns; prints each one's CPU share of one core and the ratio as JSON.

Usage: PYTHONPATH=. python bench/idle_app.py [SECONDS] [ROUNDS]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import sys, time
import gradio as gr
from playground.ui.app import polled_gently
with gr.Blocks() as demo:
    gr.Textbox().submit(lambda t: t, None, None)
queued = demo.queue()
if sys.argv[1] == "gently":
    queued = polled_gently(queued)
queued.launch(prevent_thread_lock=True, server_port=None, quiet=True)
time.sleep(3)
cpu, wall = time.process_time(), time.monotonic()
time.sleep(float(sys.argv[2]))
print("share", (time.process_time() - cpu) / (time.monotonic() - wall), flush=True)
queued.close()
"""


def share(mode: str, seconds: float) -> float:
    out = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", CHILD, mode, str(seconds)], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return next(float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("share "))


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    runs: dict[str, list[float]] = {"gradio default": [], "gently": []}
    for _ in range(rounds):
        runs["gradio default"].append(share("default", seconds))
        runs["gently"].append(share("gently", seconds))
    best = {k: min(v) for k, v in runs.items()}
    print(
        json.dumps(
            {
                "cpu_share_of_one_core": runs,
                "seconds": seconds,
                "default_over_gently": round(best["gradio default"] / best["gently"], 2),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
