"""Where a run's wall time went per pytest-xdist worker: each test phase's start and stop as the controller
receives them, and whether the test used the session's shared engines. Written to $PLAYGROUND_TEST_TIMELINE
(JSON lines) when that is set; read by scripts that plan how modules are spread over workers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

TIMELINE_ENV = "PLAYGROUND_TEST_TIMELINE"


def record(report: pytest.TestReport) -> None:
    """Append one test phase to the timeline file, if one was asked for."""
    path = os.environ.get(TIMELINE_ENV)
    if not path or os.environ.get("PYTEST_XDIST_WORKER"):  # workers send their reports to the controller
        return
    node = getattr(report, "node", None)
    worker = node.gateway.id if node is not None else "main"
    line = {
        "test": report.nodeid,
        "when": report.when,
        "start": report.start,
        "stop": report.stop,
        "worker": worker,
        "outcome": report.outcome,
        **dict(report.user_properties),
    }
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
