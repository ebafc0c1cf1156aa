"""A child process started with `start_new_session=True` (its own process group) and its descendants."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import psutil


def _children(pid: int) -> list[int] | None:
    """A process's direct children from Linux's /proc/PID/task/TID/children (each thread lists the children
    it started); None where the kernel has no such file. Reads the process's own entries only, where psutil's
    children() reads every process on the machine to find the ones whose parent is `pid`."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return [] if os.path.exists("/proc/self/task") else None
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None  # a kernel without CONFIG_PROC_CHILDREN
        except OSError:
            continue
    return found


def descendants(pids: list[int]) -> list[int]:
    """The given live processes and all their descendants, each once (roots first). The memory sampler
    calls this every sample for every engine: with the suite's few hundred processes, psutil's
    children(recursive=True) cost the test processes about 45 of their 290 CPU-seconds a worker
    (py-spy, docs/NOTES.md)."""
    seen: set[int] = set()
    order: list[int] = []
    todo = list(pids)
    while todo:
        pid = todo.pop(0)
        if pid in seen:
            continue
        kids = _children(pid)
        if kids is None:  # no /proc children files: psutil's scan of the whole table
            try:
                kids = [c.pid for c in psutil.Process(pid).children()]
            except psutil.Error:
                continue
        elif not os.path.exists(f"/proc/{pid}"):
            continue
        seen.add(pid)
        order.append(pid)
        todo += kids
    return order


def tree_pids(proc: subprocess.Popen[bytes] | None) -> list[int]:
    """The child's PID and all its descendants; [] once it has ended (or was never started)."""
    if proc is None or proc.poll() is not None:
        return []
    return descendants([proc.pid])


def stop_tree(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM to the child's process group, SIGKILL after `timeout_s`, then kill whatever of the tree
    left the group (none seen so far, but never leave one behind). Nothing to do once it has ended."""
    if proc.poll() is not None:
        return
    tree = tree_pids(proc)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    for pid in tree:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
