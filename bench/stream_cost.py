"""The app's own CPU per streamed token: a class through app.py, with the project's token server as
both engines (tests/token_server.py: vLLM's wire format at a fixed engine step, so the engines cost
almost nothing and the app's share is what is measured).

    python bench/stream_cost.py [--visitors 40] [--max-tokens 256] [--step-ms 10] [--json]

Prints the app process's CPU seconds (user + system, psutil) over the class divided by the tokens it
streamed, and what that means for the H200 class of issue 20: 40 streams at about 5,100 tokens/s on
one engine at a time (fair mode) need `cost x 5,100` of a core. With --profile, py-spy samples the
app's threads during the class (if installed) and the top frames are printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import class_instance  # noqa: E402
import class_load  # noqa: E402

from tests.token_server import running  # noqa: E402

H200_CLASS_TOK_S = 5_100  # 40 streams on one 7B fp16 engine with CUDA graphs (shared/device/README.md)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--step-ms", type=float, default=10.0, help="the token server's engine step")
    parser.add_argument("--idle-pages", type=int, default=0, help="first: this many open pages, no compares")
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--profile", action="store_true", help="py-spy the app during the class")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout whose app.py to measure")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="stream-cost-"))
    with running(step_ms=args.step_ms) as url_a, running(step_ms=args.step_ms) as url_b:
        refs = {
            "A": class_instance.EngineRef(url_a, "k", "token-server"),
            "B": class_instance.EngineRef(url_b, "k", "token-server"),
        }
        ns = argparse.Namespace(open=False, max_tokens=args.max_tokens, compares=1, app_dir=args.app_dir)
        app, url = class_instance.start_app(refs, work, ns)
        try:
            class_instance.wait_ready(url)
            proc = psutil.Process(app.pid)
            spies: list[subprocess.Popen | None] = []
            go = (lambda: spies.append(_spy(app.pid, work))) if args.profile else (lambda: None)
            result = class_load.run_class(_class_args(args), url, {}, proc, on_go=go)
            for spy in spies:
                if spy is not None:
                    spy.wait(120)
        finally:
            class_instance.stop_app(app)
    cpu_s = result["app_cpu_s"]  # from the compares' release to the last answer, refresh ticks included
    tokens = result["answered"] * 2 * args.max_tokens
    per_token_ms = cpu_s / tokens * 1000 if tokens else None
    out = {
        "visitors": args.visitors,
        "answered": result["answered"],
        "failed": result["failed"],  # what the first few unanswered compares said
        "tokens": tokens,
        "app_cpu_s": round(cpu_s, 2),
        "class_wall_s": result["class_wall_s"],
        "app_cpu_ms_per_token": None if per_token_ms is None else round(per_token_ms, 4),
        "h200_class_cores": None if per_token_ms is None else round(per_token_ms / 1000 * H200_CLASS_TOK_S, 2),
        "first_token_s": result["first_token_s"],
        "app_cpu_percent": result["app_cpu_percent"],
        "refresh_refused": result["refresh_refused"],
        "idle": result.get("idle"),
        "page_ticks_s": result.get("page_ticks_s"),
    }
    if args.profile:
        out["profile"] = str(work / "profile.txt")
    print(json.dumps(out) if args.json else "\n".join(f"{k:>22}: {v}" for k, v in out.items()))
    return 0


def _class_args(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(
        visitors=args.visitors,
        compares=1,
        max_tokens=args.max_tokens,
        prompt="The default value is",
        chat=False,
        idle_pages=args.idle_pages,
        idle_s=args.idle_s,
        timeout_s=600.0,
    )


def _spy(pid: int, work: Path) -> subprocess.Popen | None:
    exe = shutil.which("py-spy")
    if exe is None:
        print("[stream-cost] py-spy is not installed: no profile", file=sys.stderr)
        return None
    out = open(work / "profile.txt", "w")  # noqa: SIM115 - py-spy writes while the class runs
    cmd = [
        exe,
        "record",
        "--nonblocking",
        "--pid",
        str(pid),
        "--duration",
        "15",
        "--format",
        "raw",
        "-o",
        str(work / "profile.raw"),
    ]
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


if __name__ == "__main__":
    sys.exit(main())
