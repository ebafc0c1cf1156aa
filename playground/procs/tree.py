"""A child process started with `start_new_session=True` (its own process group) and its descendants."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Protocol

import psutil

# Linux lists each thread's children in /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN); elsewhere, psutil.
_PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _children(pid: int) -> list[int] | None:
    """A process's direct children, read from its own /proc entries (each thread lists the children it started),
    where psutil's children() reads every process on the machine; None once the process has ended."""
    if not _PROC_CHILDREN:
        try:
            return [c.pid for c in psutil.Process(pid).children()]
        except psutil.Error:
            return None
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(c) for c in f.read().split()]
        except OSError:
            continue  # the thread ended meanwhile
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
        if pid in seen or (kids := _children(pid)) is None:
            continue
        seen.add(pid)
        order.append(pid)
        todo += kids
    return order


def alive(pids: list[int]) -> list[int]:
    """The pids that still run (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


class Child(Protocol):
    """What a started process offers: subprocess.Popen, or the warm launcher's WarmProcess (its pid is None
    until the launcher has forked it)."""

    @property
    def pid(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def tree_pids(proc: Child | None) -> list[int]:
    """The child's PID and all its descendants; [] once it has ended (or was never started)."""
    if proc is None or proc.pid is None or proc.poll() is not None:
        return []
    return descendants([proc.pid])


def stop_tree(proc: Child, timeout_s: float) -> None:
    """SIGTERM to the child's process group, SIGKILL after `timeout_s`, then kill whatever of the tree
    left the group (none seen so far, but never leave one behind). Nothing to do once it has ended."""
    if proc.pid is None or proc.poll() is not None:
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
