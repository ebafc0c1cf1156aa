"""vLLM server processes: launch, watch the startup, stop the whole process tree (the only place
that spawns engines)."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx

from playground.engines.build import engine_python
from playground.engines.launch_code import (  # noqa: F401 - the marks are part of this module's interface
    CPU_FORK_MARK,
    CPU_PIN_ENV,
    CPU_PIN_MARK,
    CPU_START_ENV,
    GUARD,
    LAUNCHER,
    LAUNCHER_NAME,
    SERVER_MODULE,
    WARM_MARK,
)
from playground.engines.warm import START_WAIT_S, WarmProcess, launcher_for
from playground.measure.phases import LogReport, explain_exit, read_log
from playground.measure.records import EngineStatus
from playground.measure.specs import EngineSpec, server_args
from playground.procs.tree import stop_tree, tree_pids

STARTING_GRACE_S = 2.0  # how long a stop waits after SIGTERM for an engine that is not ready yet
READY_TIMEOUT_S = 1200.0  # a cold first start on a GPU took 238 s (device README); hub downloads add more
# Set by the test suite (tests/conftest.py): each engine start, in this process or any child it runs,
# appends one JSON line here, so a run can say how many engines it started and what they cost.
START_LOG_ENV = "PLAYGROUND_ENGINE_LOG"
_LIVE: set[Engine] = set()
_LIVE_LOCK = threading.Lock()
_LIVE_REGISTERED: list[bool] = []


class EngineError(RuntimeError):
    """An engine failed to start or stopped; the message is meant for the user."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Engine:
    """One vLLM OpenAI-compatible server: started here, or an existing endpoint attached to."""

    def __init__(
        self,
        spec: EngineSpec,
        *,
        name: str,
        log_dir: Path,
        env: dict[str, str] | None = None,
        fallback_kernel: bool = False,
    ):
        self.spec = spec
        # Known before launch (4-bit weights on a CPU without AVX-512): the log's own mark of the
        # fallback is written only at the first forward pass and can trail the first answer.
        self.fallback_kernel = fallback_kernel
        self.name = name
        self.log_dir = log_dir
        self.extra_env = dict(env or {})
        self.api_key = spec.api_key if spec.attached else secrets.token_urlsafe(24)
        self.base_url = spec.endpoint.rstrip("/") if spec.attached else ""
        self.model_id = spec.served_name or spec.model
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | WarmProcess | None = None
        self._started_at = time.monotonic()
        self._ready_at: float | None = None
        self._failure = ""
        self._report = LogReport()
        self._log_offset = 0
        self._log_lines: list[str] = []
        self._noted = False  # this launch is in $PLAYGROUND_ENGINE_LOG

    # -- lifecycle ---------------------------------------------------------------------------
    def launch(self) -> None:
        """Start the server process (no-op for an attached endpoint); returns at once."""
        if self.spec.attached:
            return
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.log_path = self.log_dir / f"engine-{self.name}-{stamp}-{port}.log"
        python = self.spec.python or engine_python()
        cmd = [python, "-c", LAUNCHER, *server_args(self.spec, port=port)]
        guarded = [python, "-c", GUARD, str(os.getpid()), *cmd]
        # The key goes in the environment, not argv, where any local user could read it in `ps`.
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            **dict(self.spec.env),
            **self.extra_env,
            "VLLM_API_KEY": self.api_key,
        }
        warm = launcher_for(python, env, self.log_dir)
        with open(self.log_path, "wb") as log:
            shown = [LAUNCHER_NAME if arg == LAUNCHER else arg for arg in cmd]
            log.write(("$ " + shlex.join(shown) + "\n").encode())
            log.flush()
            self._proc = None
            if warm is not None:  # a CPU engine: forked from the process that imported vLLM once
                with contextlib.suppress(OSError):  # that launcher ended a moment ago: start cold
                    self._proc = warm.launch(cmd[3:], env, self.log_path, os.getcwd())
            if self._proc is None:
                self._proc = subprocess.Popen(  # noqa: S603 - a list, never a shell
                    guarded,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,  # own process group: stop() kills the whole tree
                )
        self._started_at = time.monotonic()
        self._noted = False
        with _LIVE_LOCK:
            if not _LIVE_REGISTERED:
                atexit.register(stop_all)  # registered on first launch: importing has no side effects
                _LIVE_REGISTERED.append(True)
            _LIVE.add(self)

    def wait_ready(
        self,
        *,
        timeout_s: float = READY_TIMEOUT_S,
        on_progress: Callable[[EngineStatus], None] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> EngineStatus:
        """Block until /health answers, reporting the phase read from the log; raise EngineError."""
        try:
            status = self._wait(timeout_s, on_progress, cancelled)
        except EngineError:
            self._note_start("failed")
            raise
        self._note_start("ready")
        return status

    def _wait(
        self,
        timeout_s: float,
        on_progress: Callable[[EngineStatus], None] | None,
        cancelled: Callable[[], bool],
    ) -> EngineStatus:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as http:
            while True:
                status = self.status()
                if on_progress:
                    on_progress(status)
                # "stopped": stop() ran while starting (the arena shutting down, a restart): waiting
                # on for /health would hold this thread, and interpreter exit with it, for the whole timeout.
                if status.state in ("failed", "stopped"):
                    raise EngineError(status.message)
                if cancelled():
                    self.stop()
                    raise EngineError("start cancelled")
                if self._healthy(http):
                    self._ready_at = time.monotonic()
                    if self.spec.attached:
                        self._discover_model(http)
                    final = self.status()
                    if on_progress:
                        on_progress(final)
                    return final
                if time.monotonic() > deadline:
                    self.stop()
                    self._failure = (
                        f"{self.base_url} did not answer /health within {timeout_s:.0f} s"
                        if self.spec.attached
                        else f"engine was not ready after {timeout_s:.0f} s; see {self.log_path}"
                    )
                    raise EngineError(self._failure)
                time.sleep(0.5)

    def _note_start(self, outcome: str) -> None:
        """One line in $PLAYGROUND_ENGINE_LOG for a server this process started (attached ones cost nothing)."""
        path = os.environ.get(START_LOG_ENV)
        if not path or self.spec.attached or self._noted:
            return
        self._noted = True  # one line per launch: the first word on it (ready, failed, or stopped) stands
        line = {
            "outcome": outcome,
            "seconds": round(time.monotonic() - self._started_at, 2),
            "ended_at": round(time.time(), 2),  # with `seconds`: the span, so overlapping starts are not summed
            "name": self.name,
            "model": self.spec.model,
            "quantization": self.spec.quantization,
            "process": os.getpid(),
            "forked": isinstance(self._proc, WarmProcess),  # from the warm launcher: vLLM was imported already
            "test": os.environ.get("PYTEST_CURRENT_TEST", ""),  # children inherit the test that ran them
        }
        with open(path, "a", encoding="utf-8") as fh:  # one short append per line: processes do not interleave
            fh.write(json.dumps(line) + "\n")

    def _healthy(self, http: httpx.Client) -> bool:
        try:
            return http.get(f"{self.base_url}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def _discover_model(self, http: httpx.Client) -> None:
        """Use the attached server's own model name when the given one is not served there."""
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, IndexError):
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            served = [m["id"] for m in http.get(f"{self.base_url}/v1/models", headers=headers).json()["data"]]
            if served and self.model_id not in served:
                self.model_id = served[0]

    def stop(self, timeout_s: float = 15.0) -> None:
        """Terminate the process group, then kill whatever is left of the tree."""
        proc = self._proc
        with _LIVE_LOCK:
            _LIVE.discard(self)
        if proc is not None:
            self._note_start("stopped before ready")  # launched and never waited for: counted too
        if isinstance(proc, WarmProcess):
            proc.wait_started(START_WAIT_S)  # queued while the warm launcher imports: kill it once forked
        if proc is None or proc.poll() is not None:
            return
        # A starting engine has no request to finish, and vLLM's API server, once it has set its SIGTERM handler,
        # ignores the signal until it serves: a stop mid-start waited the whole timeout (15 s) for SIGKILL.
        stop_tree(proc, timeout_s if self._ready_at is not None else min(timeout_s, STARTING_GRACE_S))
        if not self._failure:
            self._failure = "stopped"

    # -- observation -------------------------------------------------------------------------
    def pids(self) -> list[int]:
        """The server's PID and all its descendants (the engine core holds the GPU memory)."""
        return tree_pids(self._proc)

    def returncode(self) -> int | None:
        """The exit code once the process has ended."""
        return None if self._proc is None else self._proc.poll()

    def log_report(self) -> LogReport:
        """Phase, loaded weights and failure as the log tells them (reads only new bytes)."""
        if self.log_path and self.log_path.exists():
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                chunk = fh.read()
            if chunk:
                cut = chunk.rfind(b"\n") + 1
                self._log_offset += cut
                self._log_lines += chunk[:cut].decode("utf-8", "replace").splitlines()
                self._report = read_log(self._log_lines)
        return self._report

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the engine's log."""
        self.log_report()
        return "\n".join(self._log_lines[-lines:])

    def status(self) -> EngineStatus:
        """Where the engine stands now."""
        report = self.log_report()
        notes = []
        if report.fallback_kernel or self.fallback_kernel:
            notes.append(
                "4-bit kernel: the playground's PyTorch fallback (this CPU lacks AVX-512): the answers "
                "are real 4-bit, the speed is not vLLM's kernel"
            )
        if report.quantized_layers == 0:
            notes.append("vLLM quantized 0 layers with this method: the engine runs unquantized weights")
        now = EngineStatus(
            "starting",
            report.phase,
            time.monotonic() - self._started_at,
            pid=self._proc.pid if self._proc else None,
            base_url=self.base_url,
            log_path=str(self.log_path or ""),
            weights_gib=report.weights_gib,
            notes=tuple(notes),
            compile_cache=report.compile_cache,
        )
        code = self.returncode()
        if self._failure == "stopped":
            return replace(now, state="stopped", phase="stopped", message="stopped")
        if not self._failure and code is not None:
            self._failure = explain_exit(report, code)
        if self._failure:
            return replace(now, state="failed", message=self._failure)
        if self._ready_at is not None:
            return replace(now, state="ready", phase="ready", startup_s=self._ready_at - self._started_at)
        return now


def stop_all() -> None:
    """Stop every engine this process started (at exit, and on SIGTERM/SIGINT via the shells)."""
    with _LIVE_LOCK:
        engines = list(_LIVE)
    for engine in engines:
        engine.stop(timeout_s=5)
