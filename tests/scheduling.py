"""How scripts/test spreads the suite over its pytest-xdist workers (`-n 2 --dist loadfile`): each test
module whole on one worker, so its module fixtures start once, except that modules sharing a costly session
fixture go to one worker together, where it is made once. Units are handed out in xdist's own order (most
tests first). Handing the engine modules out first was tried and was slower: both workers then started
their shared pairs and the modules' own engines at once (27 min 29 s of pytest against 24 min 23 s; each
start 75-130 s instead of 30-60 s; docs/testing.md).

pytest-xdist's own `--dist loadgroup` would do the first part from markers, but with pytest 9 its markers
have no effect (it renames items through `Item._nodeid`, which pytest 9 no longer reads: docs/NOTES.md),
so the scheduler here groups by module path instead."""

from __future__ import annotations

from typing import Any

import pytest

# Modules that run on one worker together, and why.
SAME_WORKER = {
    "tests/quantize/test_quantize.py": "the tiny model quantized in every scheme (the `quantized` fixture)",
    "tests/quantize/test_engines.py": "the tiny model quantized in every scheme (the `quantized` fixture)",
}


def scope(nodeid: str) -> str:
    """The unit of work a test belongs to: its module, or the group its module shares a worker with."""
    module = nodeid.split("::", 1)[0]
    return SAME_WORKER.get(module, module)


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's file scheduling with the groups above (only asked for under `--dist loadfile`)."""
    from xdist.scheduler import LoadFileScheduling

    class Grouped(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return scope(nodeid)

    return Grouped(config, log)
