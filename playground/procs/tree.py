"""A child process started with `start_new_session=True` (its own process group) and its descendants."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import psutil


def tree_pids(proc: subprocess.Popen[bytes] | None) -> list[int]:
    """The child's PID and all its descendants; [] once it has ended (or was never started)."""
    if proc is None or proc.poll() is not None:
        return []
    try:
        root = psutil.Process(proc.pid)
        return [root.pid, *(c.pid for c in root.children(recursive=True))]
    except psutil.Error:
        return []


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
