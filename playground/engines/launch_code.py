"""The code an engine's own Python runs: the launcher of vLLM's API server, the guard that stops an
engine whose app died, and the warm launcher that imports vLLM once for many CPU engines. Each is a
`python -c` program, so that it runs in the engine's Python (which may be another environment) and
imports nothing of the playground."""

from __future__ import annotations

SERVER_MODULE = "vllm.entrypoints.openai.api_server"
# How a CPU engine starts its engine core and worker: "fork" (the playground's default) or "spawn" (vLLM's).
CPU_START_ENV = "PLAYGROUND_CPU_START"
CPU_FORK_MARK = "playground: the engine core and worker start by fork"
# "0" leaves a CPU engine's processes free to run on any core; by default they stay on its own cores.
CPU_PIN_ENV = "PLAYGROUND_CPU_PIN"
CPU_PIN_MARK = "playground: this engine's processes run on cores"
# The server runs from `python -c` rather than `python -m SERVER_MODULE`. Where vLLM starts its engine
# core and worker with multiprocessing's spawn, each child first re-imports the parent's __main__ module
# when it has one: with `-m` that is the whole API server, again in both children. A `-c` main has nothing
# to re-import (a tiny CPU engine ready in 29 s instead of 36; docs/NOTES.md).
# On the CPU, vLLM's platform always sets spawn, so both children still import vLLM, torch and
# transformers again (about 13 s of CPU each on 2 cores). They fork from the API server instead, which
# has imported them and has run no OpenMP work yet (vLLM's own default for library use is fork): a tiny
# CPU engine is ready in 19 s instead of 49, with 23 s of CPU instead of 51. The worker still binds its
# OpenMP threads itself. `PLAYGROUND_CPU_START=spawn` keeps vLLM's choice. The CPU platform's hook runs
# on the CPU only, so GPU engines are untouched.
# vLLM binds only the worker's OpenMP threads to the cores in VLLM_CPU_OMP_THREADS_BIND (set for CPU engines
# by playground/engines/cpu.py). Its engine core and worker also busy-wait for each other's messages
# (sched_yield for 1 s after each), and a process free to run anywhere spins on the other engine's core,
# where it takes that worker's time. The launcher confines the whole server (API server, engine core,
# worker: children inherit it) to the engine's own cores, where the spinning yields to its own worker.
# Two tiny engines under the same load at once, on this 2-core machine with two other busy processes: 3.5-3.6 s
# confined against 21-30 s free (bench/cpu_pinning.py, docs/NOTES.md). `PLAYGROUND_CPU_PIN=0` leaves them free.
LAUNCHER = f"""
import os, runpy, sys
_bind = os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "")
if _bind[:1].isdigit() and os.environ.get({CPU_PIN_ENV!r}, "1") != "0":  # not "auto" or "nobind"
    try:
        _cores = set()
        for _part in _bind.replace("|", ",").split(","):
            _lo, _, _hi = _part.partition("-")
            _cores.update(range(int(_lo), int(_hi or _lo) + 1))
        os.sched_setaffinity(0, _cores)
        print({CPU_PIN_MARK!r}, sorted(_cores), flush=True)
    except (ValueError, OSError) as _exc:  # cores this process may not use, a range it cannot read
        print("playground: the engine runs on any core:", _exc, flush=True)
if os.environ.get({CPU_START_ENV!r}, "fork") == "fork":
    try:
        from vllm.platforms.cpu import CpuPlatform
        _update = CpuPlatform.check_and_update_config.__func__
    except (ImportError, AttributeError):
        _update = None
    if _update is not None:
        def _fork_children(cls, config):
            if os.environ.get("VLLM_WORKER_MULTIPROC_METHOD") != "fork":
                print({CPU_FORK_MARK!r}, flush=True)
            _update(cls, config)
            os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "fork"
        CpuPlatform.check_and_update_config = classmethod(_fork_children)
sys.argv[0] = {SERVER_MODULE!r}
runpy.run_module({SERVER_MODULE!r}, run_name="__main__", alter_sys=False)
"""
# How the log's first line names LAUNCHER (many lines), so that the command reads on one line.
LAUNCHER_NAME = f"<playground launcher of {SERVER_MODULE}>"
# Runs each engine under a small guard in the same process group: if the app dies without stopping
# its engines (SIGKILL, a crash), the guard sees its parent change and kills the group, so no
# engine keeps holding GPU memory. A child killed by a signal is re-raised so the exit reads the same.
# `--adopt PID`: the server was forked by the warm launcher just before this process replaced itself with
# the guard (a child survives its parent's exec); otherwise the guard starts the command it is given.
# SIGCHLD is blocked only after the start (a child inherits the mask) and wakes the wait at once.
GUARD = r"""
import os, signal, subprocess, sys
parent = int(sys.argv[1])
pid = int(sys.argv[3]) if sys.argv[2] == "--adopt" else subprocess.Popen(sys.argv[2:]).pid
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda s, _f: os.kill(pid, s))
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if os.getppid() != parent:
        os.killpg(0, signal.SIGKILL)
    signal.sigtimedwait({signal.SIGCHLD}, 1.0)
code = os.waitstatus_to_exitcode(status)
if code < 0:
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
sys.exit(code)
"""

WARM_MARK = "playground: forked from the warm launcher, which imported vLLM once for this app's CPU engines"
# The warm launcher (playground/engines/warm.py): imports the API server's modules once (about 10 s of
# CPU here, the largest part of a tiny CPU engine's start), then forks one engine per request. Each
# request is a JSON line on its stdin: the server's arguments, its environment, its log and folder. It
# answers on its stdout: "ready" once imported, "started PID" per request in order (PID is the engine's
# guard), "failed WHY" when it could not fork, and "exited PID CODE" when a guard ends. The forked child
# starts its own session, forks the server, and replaces itself with GUARD (so the guard holds none of
# vLLM's memory, which the sampler would count); the server takes its environment and arguments and runs
# LAUNCHER as `python -c` would. The import runs on as many cores as each of its engines has (argv[6]; 0: all
# it may use): OpenMP (libgomp) sets its default number of threads from them as torch loads it, and a worker
# forked with two threads' default on its one core ran 17 times slower (docs/NOTES.md). The warm launcher ends
# when its app closes its stdin or dies, and every guard then sees its parent change and stops its engine.
WARM_LAUNCHER = r"""
import atexit, json, os, select, signal, sys, threading, traceback
parent, guard, launcher, module, mark = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
requests, replies = os.dup(0), os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # what importing prints goes to the launcher's log, not into the replies
width, cores = int(sys.argv[6]), os.sched_getaffinity(0)
if width:  # OpenMP counts the cores it may use as torch loads it: as many as each engine has, as cold starts see
    os.sched_setaffinity(0, sorted(cores)[:width])
__import__(module)
os.sched_setaffinity(0, cores)
try:  # vLLM's own dependency, with which it names its engine core and worker: set once here, before any
    from setproctitle import setproctitle  # child replaces its environment, it works in every child too

    setproctitle(f"playground warm launcher of {module}")
except ImportError:
    setproctitle = None
woken, wake = os.pipe()
os.set_blocking(wake, False)
signal.set_wakeup_fd(wake)
signal.signal(signal.SIGCHLD, lambda _s, _f: None)
replies.write("ready\n")


def serve(request):
    os.setsid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for fd in (requests, replies.fileno(), woken, wake):
        os.close(fd)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    server = os.fork()
    if server:
        try:
            argv = [sys.executable, "-c", guard, str(os.getppid()), "--adopt", str(server)]
            os.execve(sys.executable, argv, request["env"])
        finally:
            os.kill(server, signal.SIGKILL)
    print(mark, flush=True)
    if setproctitle is not None:
        setproctitle(" ".join(["VLLM::APIServer", *request["args"]]))
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = ["-c", *request["args"]]
    sys.modules.pop(module, None)  # runpy runs it afresh as __main__ (and warns when it finds it imported)
    code = 0
    try:
        exec(compile(launcher, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as exc:  # as the interpreter reads sys.exit's argument
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if not isinstance(exc.code, int | None):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    threading._shutdown()  # what the interpreter does at exit: wait for threads, run atexit
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not pid:
            return
        replies.write(f"exited {pid} {os.waitstatus_to_exitcode(status)}\n")


pending = b""
while os.getppid() == parent:
    readable = select.select([requests, woken], [], [], 1.0)[0]
    if woken in readable:
        os.read(woken, 512)
    reap()
    if requests not in readable:
        continue
    chunk = os.read(requests, 1 << 16)
    if not chunk:
        break
    pending += chunk
    while b"\n" in pending:
        line, pending = pending.split(b"\n", 1)
        try:
            pid = os.fork()
        except OSError as exc:
            replies.write(f"failed {exc}\n")
            continue
        if pid == 0:
            try:
                serve(json.loads(line))
            finally:
                os._exit(127)
        replies.write(f"started {pid}\n")
"""
