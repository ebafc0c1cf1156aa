"""A class on one instance: N visitors, each a separate gradio_client session whose page polls /refresh
once a second, send K compares at the same moment; then the same N streams go straight to each engine
as the reference. Prints what the room saw and how it compares with the engines alone.

    python bench/class_load.py --a tiny/bf16 --b tiny/awq --visitors 12 --compares 1 --max-tokens 32 --json
    python bench/class_load.py --url http://host:7860 [--engine-a URL --key-a KEY --engine-b URL --key-b KEY]
                               [--app-pid PID] ...

Without --url it starts the two engines itself (the playground's own launcher: the same server
arguments, thread binding and tiny-model build as the app), then `app.py` in locked mode attached to
them, so the engines' URLs are known for the reference and for reading vLLM's /metrics (the
`peak_running` figures), and the app's process alone is measured for CPU. With --url, the engines are
private to that instance: give their URLs and keys, or the direct and peak fields are null.

Pages poll the way a browser does: a page sends its next tick only when the last was answered, and
a refresh outside Gradio's queue (queue=False) is POSTed to /gradio_api/run/refresh, which
gradio_client cannot do (it always joins the queue). `--idle-pages P --idle-s S` first measures the
app's CPU with P open pages and no compares.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from gradio_client import Client

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from class_instance import EngineRef, attached, start_app, start_engines, stop_app, wait_ready  # noqa: E402

from playground.engines.client import fetch_metrics  # noqa: E402
from playground.engines.stream_async import run_streams  # noqa: E402
from playground.measure.generation import GenerationParams  # noqa: E402
from playground.measure.metrics import percentile  # noqa: E402

BUSY = "Queue is full"


BROWSER_ENCODINGS = {"Accept-Encoding": "gzip, deflate, br, zstd"}  # what Chromium sends: Gradio compresses


@dataclass
class Poller:
    """Pages that tick their refresh events until stopped; counts answers and refusals."""

    url: str
    ticks: dict[str, float]  # api name -> seconds between its ticks (the page's gr.Timer values)
    queued: bool  # the app's refresh joins Gradio's queue (older versions): poll through gradio_client
    stop: threading.Event = field(default_factory=threading.Event)
    answered: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def page(self, client: Client | None) -> None:
        """One open page: each timer ticks, waits for its answer, and ticks again its interval after."""
        session = client.session_hash if client else secrets.token_hex(6)
        http = httpx.Client(timeout=60, headers=BROWSER_ENCODINGS)
        due = dict.fromkeys(self.ticks, time.monotonic())
        while not self.stop.is_set():
            name = min(due, key=due.__getitem__)
            if self.stop.wait(max(0.0, due[name] - time.monotonic())):
                break
            due[name] = time.monotonic() + self.ticks[name]
            ok, why = self._tick(http, client, session, name)
            with self.lock:
                self.answered += ok
                self.refused += not ok
                if why and len(self.errors) < 5:
                    self.errors.append(why)

    def _tick(self, http: httpx.Client, client: Client | None, session: str, name: str) -> tuple[bool, str]:
        try:
            if self.queued and client is not None:
                client.predict(api_name=f"/{name}")
                return True, ""
            r = http.post(f"{self.url}/gradio_api/run/{name}", json={"data": [], "session_hash": session})
            return r.status_code == 200, "" if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:120]}"
        except Exception as exc:  # counted and shown: a refused or failed tick is a result here
            return False, f"{type(exc).__name__}: {str(exc)[:120]}"


def page_ticks(url: str) -> tuple[dict[str, float], bool]:
    """The app's refresh events with their timer intervals, and whether they join Gradio's queue."""
    config = httpx.get(f"{url}/config", timeout=30).json()
    timers = {
        c["id"]: c.get("props", {}).get("value", 1.0) for c in config.get("components", []) if c.get("type") == "timer"
    }
    ticks: dict[str, float] = {}
    queued = True
    for dep in config.get("dependencies", []):
        name = dep.get("api_name")
        if name in ("refresh", "refresh_charts"):
            trigger = (dep.get("targets") or [[None]])[0][0]
            ticks[name] = float(timers.get(trigger) or 1.0)
            queued = bool(dep.get("queue", True)) if name == "refresh" else queued
    if "refresh" not in ticks:
        raise SystemExit(f"{url} has no /refresh event: is it the playground?")
    return ticks, queued


def compare(client: Client, args: argparse.Namespace, go: threading.Event) -> dict[str, Any]:
    """One compare as a visitor sees it: seconds to the first visible token and to both answers."""
    go.wait()
    sent = time.monotonic()
    first: float | None = None
    seen = 0
    try:
        job = client.submit(args.prompt, "fair", args.chat, 0.0, 1.0, args.max_tokens, 0, api_name="/compare")
        while True:
            outputs = job.outputs()
            if first is None and any(out[0] or out[1] for out in outputs[seen:]):
                first = time.monotonic() - sent
            seen = len(outputs)
            if job.done():
                break
            if time.monotonic() - sent > args.timeout_s:
                return {"error": f"no answer within {args.timeout_s:.0f} s"}
            time.sleep(0.005)
        last = tuple(job.result(timeout=5))  # raises the queue's refusal or the app's error
        done = time.monotonic() - sent
    except Exception as exc:
        return {"refused": BUSY in str(exc), "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    answered = len(last) >= 4 and all("out" in f and "✕" not in f for f in last[2:4])
    return {"first": first, "done": done, "answered": answered, "note": last[4] if len(last) > 4 else ""}


def watch(stop: threading.Event, engines: dict[str, EngineRef], app: psutil.Process | None, out: dict[str, Any]):
    """vLLM's running count per engine every 0.25 s (each engine read by its own thread: a CPU engine's /metrics
    takes 0.2-0.4 s while it streams, and reading them in turn once left a 1 s burst on B unseen), and the app
    process's CPU every second."""
    peaks = dict.fromkeys(engines, 0)

    def read(name: str, url: str) -> None:
        while not stop.wait(0.25):
            try:
                peaks[name] = max(peaks[name], int(fetch_metrics(url).requests_running or 0))
            except Exception:  # noqa: S112 - one missed read of a busy engine is not a result
                continue

    readers = [threading.Thread(target=read, args=(n, ref.url), daemon=True) for n, ref in engines.items()]
    for reader in readers:
        reader.start()
    cpu: list[float] = []
    if app is not None:
        app.cpu_percent(None)
    while not stop.wait(1.0):
        if app is not None:
            cpu.append(app.cpu_percent(None))
    for reader in readers:
        reader.join(timeout=10)
    out["peak_running"] = peaks
    out["cpu"] = cpu


def summary(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and max, rounded for reading."""

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {"p50": r(percentile(values, 50)), "p95": r(percentile(values, 95)), "max": r(max(values, default=None))}


def run_class(
    args: argparse.Namespace,
    url: str,
    engines: dict[str, EngineRef],
    app: psutil.Process | None,
    on_go: Callable[[], None] = lambda: None,
) -> dict:
    """The idle pages (optional), then the class, then the reference streams. `on_go` runs the moment
    the compares are released (a profiler's start)."""
    ticks, queued = page_ticks(url)
    result: dict[str, Any] = {"refresh_queued": queued, "page_ticks_s": ticks}
    if args.idle_pages:
        result["idle"] = idle(url, ticks, queued, args, app)
    clients = [Client(url, verbose=False) for _ in range(args.visitors)]
    poller = Poller(url, ticks, queued)
    pages = [threading.Thread(target=poller.page, args=(c,), daemon=True) for c in clients]
    for t in pages:
        t.start()
    time.sleep(2.0)  # every page has ticked: the room is open before the compares go
    go, stop_watch, watched = threading.Event(), threading.Event(), {}
    watcher = threading.Thread(target=watch, args=(stop_watch, engines, app, watched), daemon=True)
    watcher.start()
    outcomes: list[dict[str, Any]] = []
    lock = threading.Lock()

    def visitor_compare(client: Client) -> None:
        outcome = compare(client, args, go)
        with lock:
            outcomes.append(outcome)

    workers = [
        threading.Thread(target=visitor_compare, args=(c,), daemon=True) for c in clients for _ in range(args.compares)
    ]
    for w in workers:
        w.start()
    time.sleep(0.5)
    on_go()
    cpu_before = app.cpu_times() if app is not None else None
    start = time.monotonic()
    go.set()
    for w in workers:
        w.join(args.timeout_s)
    class_wall = time.monotonic() - start
    cpu_after = app.cpu_times() if app is not None else None
    stop_watch.set()
    watcher.join()
    poller.stop.set()
    direct = reference(args, engines)
    firsts = [o["first"] for o in outcomes if o.get("first") is not None]
    dones = [o["done"] for o in outcomes if o.get("answered")]
    walls = [w for w in direct.values() if w is not None]
    cpu = watched.get("cpu", [])
    result.update(
        {
            "visitors": args.visitors,
            "compares": args.visitors * args.compares,
            "answered": sum(1 for o in outcomes if o.get("answered")),
            "refused": sum(1 for o in outcomes if o.get("refused")),
            "failed": [o.get("error") or o.get("note") for o in outcomes if not o.get("answered")][:5],
            "first_token_s": summary(firsts),
            "both_answers_s": summary(dones),
            "class_wall_s": round(class_wall, 2),
            "direct_wall_s": direct,
            "ratio": round(class_wall / (sum(walls) * args.compares), 2) if len(walls) == 2 else None,
            "peak_running": watched.get("peak_running") if engines else {"A": None, "B": None},
            "app_cpu_percent": {
                "mean": round(sum(cpu) / len(cpu), 1) if cpu else None,
                "max": round(max(cpu), 1) if cpu else None,
            },
            "app_cpu_s": None
            if cpu_before is None or cpu_after is None
            else round(cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system, 2),
            "refresh_refused": poller.refused,
            "refresh_answered": poller.answered,
            "refresh_errors": poller.errors,
        }
    )
    return result


def idle(
    url: str, ticks: dict[str, float], queued: bool, args: argparse.Namespace, app: psutil.Process | None
) -> dict[str, Any]:
    """P open pages and no compares for S seconds: the app's CPU and any refused tick."""
    clients: list[Client | None] = [Client(url, verbose=False) for _ in range(args.idle_pages)] if queued else []
    poller = Poller(url, ticks, queued)
    pages = [threading.Thread(target=poller.page, args=(c,), daemon=True) for c in clients or [None] * args.idle_pages]
    for t in pages:
        t.start()
    deadline = time.monotonic() + 120  # every page opened (Gradio builds a session's state once) and ticking
    while poller.answered < 3 * args.idle_pages and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2.0)
    answered_before = poller.answered
    cpu: list[float] = []
    if app is not None:
        app.cpu_percent(None)
        for _ in range(int(args.idle_s)):
            time.sleep(1.0)
            cpu.append(app.cpu_percent(None))
    else:
        time.sleep(args.idle_s)
    poller.stop.set()
    return {
        "pages": args.idle_pages,
        "seconds": args.idle_s,
        "app_cpu_percent": {"mean": round(sum(cpu) / len(cpu), 1) if cpu else None, "max": max(cpu, default=None)},
        "refresh_answered": poller.answered - answered_before,
        "refresh_refused": poller.refused,
    }


def reference(args: argparse.Namespace, engines: dict[str, EngineRef]) -> dict[str, float | None]:
    """The same N streams sent straight to each engine at once, one engine after the other."""
    params = GenerationParams(max_tokens=args.max_tokens, temperature=0.0, seed=0, chat=args.chat)
    out: dict[str, float | None] = {"A": None, "B": None}
    for name, ref in engines.items():
        started = time.monotonic()
        answers = run_streams(ref.url, ref.key, ref.model, [args.prompt] * args.visitors, params, args.visitors)
        out[name] = round(time.monotonic() - started, 2)
        if bad := [a.error for a in answers if a.error]:
            print(f"[class] direct {name}: {len(bad)} failed, e.g. {bad[0]}", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", help="engine spec for A: start the engines here")
    parser.add_argument("--b", help="engine spec for B")
    for n in ("a", "b"):
        parser.add_argument(f"--engine-{n}", help=f"or engine {n.upper()} already running: its base URL")
        parser.add_argument(f"--key-{n}", default="", help=f"engine {n.upper()}'s API key")
        parser.add_argument(f"--model-{n}", default="", help=f"engine {n.upper()}'s served model name (default: asked)")
    parser.add_argument("--url", help="a running instance (else app.py starts here, attached to the engines)")
    parser.add_argument("--app-pid", type=int, help="with --url: the app's PID, for its CPU figures")
    parser.add_argument("--app-dir", type=Path, default=ROOT, help="the checkout whose app.py to start (default: this)")
    parser.add_argument("--visitors", type=int, default=40)
    parser.add_argument("--compares", type=int, default=2, help="compares each visitor sends at the same moment")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--prompt", default="The default value is")
    parser.add_argument("--chat", action="store_true", help="use the chat template (off: plain completion)")
    parser.add_argument("--open", action="store_true", help="start app.py open rather than locked")
    parser.add_argument("--idle-pages", type=int, default=0, help="first: this many open pages, no compares")
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--timeout-s", type=float, default=600.0, help="longest wait for one compare")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    given = {n.upper(): getattr(args, f"engine_{n}") for n in ("a", "b") if getattr(args, f"engine_{n}")}
    if not args.url and not (args.a and args.b) and len(given) < 2:
        parser.error("give --a and --b (start the engines here), --engine-a and --engine-b, or --url")
    stack: list[Callable[[], None]] = []
    try:
        work = Path(tempfile.mkdtemp(prefix="class-load-"))
        if given or args.url:
            engines = {
                n: attached(url, getattr(args, f"key_{n.lower()}"), getattr(args, f"model_{n.lower()}"))
                for n, url in given.items()
            }
        else:
            arena, engines = start_engines(args, work / "engines")
            stack.append(arena.shutdown)
        if args.url:
            url = args.url.rstrip("/")
            app = psutil.Process(args.app_pid) if args.app_pid else None
        else:
            (work / "app").mkdir()
            proc, url = start_app(engines, work / "app", args)
            stack.append(lambda: stop_app(proc))
            app = psutil.Process(proc.pid)
        wait_ready(url)
        result = run_class(args, url, engines, app)
    finally:
        for undo in reversed(stack):
            undo()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
