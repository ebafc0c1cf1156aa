"""Warm starts for CPU engines: one process per Python imports vLLM's API server once, and each CPU
engine's server is forked from it instead of importing vLLM, torch and transformers again.

On a 2-core CPU machine that import is about 10 s of CPU in every start, most of a tiny engine's start
(docs/NOTES.md). The forked server is the same vLLM server: its own process, session and guard, its own
environment and arguments, stopped and measured as a cold one. What a fork cannot change is what a module
read from the environment while it was imported, so an engine is forked only from a launcher whose
environment equals its own apart from PER_ENGINE (variables vLLM and the playground read after start-up),
and that imported on as many cores as the engine has (OpenMP reads them as torch loads); any other difference
gets its own launcher (MAX_LAUNCHERS at most, an idle one ending to make room; else a cold start). GPU engines
always start cold: vLLM starts their engine core by spawn, and they differ in CUDA_VISIBLE_DEVICES.
`PLAYGROUND_WARM_START=0` starts every engine cold."""

from __future__ import annotations

import collections
import contextlib
import itertools
import json
import os
import subprocess
import threading
from pathlib import Path

from playground.engines.launch_code import (
    CPU_PIN_ENV,
    CPU_START_ENV,
    GUARD,
    LAUNCHER,
    SERVER_MODULE,
    WARM_LAUNCHER,
    WARM_MARK,
)
from playground.procs.tree import alive

WARM_ENV = "PLAYGROUND_WARM_START"
# Read after start-up only (vLLM's CPU platform, worker and API server; the playground's launcher and
# test bookkeeping), so engines that differ in them can share a launcher.
PER_ENGINE = frozenset(
    {
        "VLLM_API_KEY",
        "VLLM_CPU_OMP_THREADS_BIND",
        "VLLM_CPU_KVCACHE_SPACE",
        CPU_PIN_ENV,
        CPU_START_ENV,
        WARM_ENV,
        "PYTEST_CURRENT_TEST",
    }
)
# Per app process: each holds vLLM's modules in memory for as long as it lives. When a third environment needs
# one, a launcher whose engines have all stopped makes room; if none has, the engine starts cold.
MAX_LAUNCHERS = 2
START_WAIT_S = 300.0  # how long a stop waits for a queued fork (the launcher may still be importing)


class WarmProcess:
    """An engine's guard forked by the warm launcher: what `subprocess.Popen` offers for a child of this
    process (pid, poll, wait), for a process that is the launcher's child. `pid` is None until forked."""

    def __init__(self, launcher: WarmLauncher, log_path: Path):
        self._launcher = launcher
        self.log_path = log_path
        self.pid: int | None = None
        self.returncode: int | None = None
        self._started = threading.Event()
        self._ended = threading.Event()

    def _start(self, pid: int | None, failure: int | None = None) -> None:
        self.pid = pid
        self._started.set()
        if failure is not None:
            self._end(failure)

    def _end(self, code: int) -> None:
        self.returncode = code
        self._ended.set()

    def wait_started(self, timeout: float) -> bool:
        """Wait until the launcher has forked the engine (or failed to); True once it has."""
        return self._started.wait(timeout)

    def poll(self) -> int | None:
        """The guard's exit code once it has ended (the launcher reports it as it reaps the guard)."""
        if self.returncode is None and self._launcher.dead and not (self.pid and alive([self.pid])):
            self._end(-9)  # the launcher itself died: the guard killed its engine, nobody reaped it here
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit code; subprocess.TimeoutExpired as Popen.wait raises it."""
        if not self._ended.wait(timeout):
            if self.poll() is None:
                raise subprocess.TimeoutExpired(WARM_MARK, timeout or 0.0)
        return self.returncode if self.returncode is not None else -9


class WarmLauncher:
    """One warm launcher process: imports the API server's modules, then forks engines on request."""

    def __init__(self, python: str, env: dict[str, str], cwd: str, width: int, log_path: Path):
        self.log_path = log_path
        self.dead = False
        self._closed = False
        self._lock = threading.Lock()
        self._queued: collections.deque[WarmProcess] = collections.deque()
        self._forked: dict[int, WarmProcess] = {}
        with open(log_path, "ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - a list, never a shell
                [python, "-c", WARM_LAUNCHER, str(os.getpid()), GUARD, LAUNCHER, SERVER_MODULE, WARM_MARK, str(width)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=cwd,
                start_new_session=True,  # Ctrl-C in the app's terminal reaches the app, which stops the engines
            )
        threading.Thread(target=self._read, name="warm-launcher", daemon=True).start()

    def launch(self, args: list[str], env: dict[str, str], log_path: Path, cwd: str) -> WarmProcess:
        """Queue one engine: returns at once; its pid is known once the launcher has forked it."""
        child = WarmProcess(self, log_path)
        request = json.dumps({"args": args, "env": env, "log": str(log_path), "cwd": cwd}) + "\n"
        with self._lock:
            if self.dead or self._closed or self._proc.stdin is None:
                raise OSError(f"the warm launcher has ended; see {self.log_path}")
            try:
                self._proc.stdin.write(request.encode())
                self._proc.stdin.flush()
            except ValueError as exc:  # closed meanwhile: the caller starts the engine cold
                raise OSError(str(exc)) from exc
            self._queued.append(child)  # after the write: a request that never left is not waited for
        return child

    @property
    def closed(self) -> bool:
        """Closed to make room: it takes no more engines."""
        return self._closed

    @property
    def idle(self) -> bool:
        """No engine of this launcher runs or waits to be forked."""
        with self._lock:
            return not self._queued and not self._forked

    def close(self) -> None:
        """End the launcher; only an idle one is closed (a running engine's guard would stop it). A launch that
        comes after (another thread had already been given this launcher) raises OSError and starts cold."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._closed = True
            if self._proc.stdin is not None:
                self._proc.stdin.close()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            word, _, rest = raw.decode(errors="replace").strip().partition(" ")
            with self._lock:
                if word == "started":
                    child = self._queued.popleft()
                    child._start(int(rest))
                    self._forked[int(rest)] = child
                elif word == "failed":
                    self._note_failure(self._queued.popleft(), f"the warm launcher could not fork: {rest}")
                elif word == "exited":
                    pid, code = (int(x) for x in rest.split())
                    if (ended := self._forked.pop(pid, None)) is not None:
                        ended._end(code)
        self._proc.wait()
        with self._lock:
            self.dead = True
            while self._queued:  # never forked: say why in the engine's own log
                tail = self._log_tail()
                self._note_failure(self._queued.popleft(), f"the warm launcher ended ({self.log_path}):\n{tail}")

    def _log_tail(self, lines: int = 20) -> str:
        """The launcher's last lines (an import that failed says why there)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @staticmethod
    def _note_failure(child: WarmProcess, why: str) -> None:
        with contextlib.suppress(OSError), open(child.log_path, "a", encoding="utf-8") as log:
            log.write(f"playground: {why}\n")  # the engine's card shows its log's last lines
        child._start(None, failure=1)


_LAUNCHERS: dict[LaunchKey, WarmLauncher] = {}
_LAUNCHERS_LOCK = threading.Lock()
_SERIALS = itertools.count()


def warm_enabled(env: dict[str, str]) -> bool:
    """A CPU engine (the playground gives it VLLM_CPU_OMP_THREADS_BIND) unless PLAYGROUND_WARM_START=0."""
    return "VLLM_CPU_OMP_THREADS_BIND" in env and env.get(WARM_ENV, "1") != "0"


LaunchKey = tuple[str, str, int, tuple[tuple[str, str], ...]]


def launch_key(python: str, cwd: str, env: dict[str, str]) -> LaunchKey:
    """Which launcher may fork an engine: the same Python, folder, number of cores (OpenMP reads it as torch
    loads) and environment apart from PER_ENGINE."""
    shared = tuple(sorted((k, v) for k, v in env.items() if k not in PER_ENGINE))
    return python, cwd, bound_cores(env.get("VLLM_CPU_OMP_THREADS_BIND", "")), shared


def bound_cores(bind: str) -> int:
    """How many cores a numeric VLLM_CPU_OMP_THREADS_BIND names ("0-3", "4,5", "0-1|2-3"); 0 for "auto",
    "nobind" or anything unreadable (the launcher then imports on every core it may use, as a cold start does)."""
    cores: set[int] = set()
    try:
        for part in bind.replace("|", ",").split(","):
            lo, _, hi = part.partition("-")
            cores.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        return 0
    return len(cores)


def launcher_for(python: str, env: dict[str, str], log_dir: Path) -> WarmLauncher | None:
    """The live launcher for this Python, folder and environment (less PER_ENGINE), started if needed;
    None where the engine should start cold (disabled, a GPU engine, too many launchers already)."""
    if not warm_enabled(env):
        return None
    key = launch_key(python, os.getcwd(), env)
    python, cwd, width, shared = key
    with _LAUNCHERS_LOCK:
        for gone in [k for k, v in _LAUNCHERS.items() if v.dead or v.closed]:
            del _LAUNCHERS[gone]
        if (launcher := _LAUNCHERS.get(key)) is not None:
            return launcher
        if len(_LAUNCHERS) >= MAX_LAUNCHERS:  # make room by ending one whose engines have all stopped
            idle = [k for k, v in _LAUNCHERS.items() if v.idle]
            if not idle:
                return None
            _LAUNCHERS.pop(idle[0]).close()
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"warm-launcher-{os.getpid()}-{next(_SERIALS)}.log"  # one file per launcher
        launcher = WarmLauncher(python, dict(shared), cwd, width, log_path)
        _LAUNCHERS[key] = launcher
        return launcher
