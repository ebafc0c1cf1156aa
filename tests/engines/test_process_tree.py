"""The process trees the memory sampler and `stop` walk: read from the kernel's per-thread children lists, and
the same as psutil's scan of the whole process table, also for a child started from a second thread."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from playground.engines.monitor import sample_memory
from playground.procs import tree
from playground.procs.tree import descendants, stop_tree, tree_pids
from tests.conftest import alive

# A parent that starts one child from its main thread and one from another thread; each child starts a
# grandchild. Linux lists a child under the thread that started it (/proc/PID/task/TID/children).
TREE = """
import subprocess, sys, threading, time
grandparent = [sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"]
subprocess.Popen(grandparent)
threading.Thread(target=lambda: (subprocess.Popen(grandparent), time.sleep(60)), daemon=True).start()
time.sleep(60)
"""


def _wait_for(proc: subprocess.Popen[bytes], count: int) -> None:
    deadline = time.monotonic() + 30
    while len(psutil.Process(proc.pid).children(recursive=True)) < count:
        assert time.monotonic() < deadline, "the tree did not form"
        time.sleep(0.1)


def test_descendants_match_psutils_scan_of_the_whole_table(monkeypatch: pytest.MonkeyPatch) -> None:
    proc = subprocess.Popen([sys.executable, "-c", TREE], start_new_session=True)
    try:
        _wait_for(proc, 4)
        root = psutil.Process(proc.pid)
        want = {proc.pid, *(c.pid for c in root.children(recursive=True))}
        got = tree_pids(proc)
        assert got[0] == proc.pid and len(got) == len(set(got)) == 5
        assert set(got) == want
        with monkeypatch.context() as m:  # a kernel without the children files: psutil's own walk
            m.setattr(tree, "_PROC_CHILDREN", False)
            assert tree_pids(proc)[0] == proc.pid and set(tree_pids(proc)) == want
        threads = root.threads()
        assert len(threads) == 2, "one child came from a second thread"
        # the sampler's memory per engine is the sum over exactly that tree
        sample = sample_memory({"T": got})
        rss = sum(psutil.Process(p).memory_info().rss for p in want)
        assert abs(sample.engines["T"] - rss) < 0.05 * rss
    finally:
        stop_tree(proc, timeout_s=5)
    # stop_tree reaps its own child; the kernel finishes the killed grandchildren's exits a moment later
    deadline = time.monotonic() + 10
    while alive(list(want)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive(list(want)) == []
    assert tree_pids(proc) == [] and descendants([proc.pid]) == []
