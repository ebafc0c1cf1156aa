"""Shared fixtures: one pair of real vLLM CPU engines on the tiny checkpoints per test session, a check after
each test that it left them as it found them, and the run's engine bill in the terminal summary."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio_client import Client

from playground.arena.core import Arena
from playground.arena.defaults import tiny_pair
from playground.engines.monitor import device_info
from playground.engines.server import START_LOG_ENV
from playground.procs.tree import alive  # noqa: F401 - the tests import it from here
from playground.ui.app import build_ui, polled_gently
from tests.engine_starts import EngineState, changes, read_starts, summary_lines
from tests.scheduling import make_scheduler
from tests.timeline import record

DEVICE = device_info()
# bf16 against AWQ 4-bit where this CPU's vLLM build has the 4-bit kernel (AVX-512), else against
# online int8 weight-only (AVX2 machines such as this project's CI): see docs/NOTES.md.
SPEC_A, SPEC_B = tiny_pair(DEVICE)


# The session pair once started, and what it looked like then (or when last lent out and given back).
SHARED: list[Arena] = []
BASELINE: dict[str, EngineState] = {}
LENT: list[str] = []  # why the pair is lent out right now, if it is
GIVEN_BACK_CHANGED: list[str] = []  # engines a loan left with other settings: restarted before the next user
SHARED_FIXTURES = {"arena", "client"}  # a test that asks for one of these (or a fixture that does) uses the pair
OWN_LOG: list[Path] = []  # the engine log this run made for itself


def pytest_configure(config: pytest.Config) -> None:
    """Engines started by this run, here or in any app or CLI it runs, append to one file (server.py)."""
    if not os.environ.get(START_LOG_ENV):  # set by the caller: keep the file; else a temporary one
        handle, path = tempfile.mkstemp(prefix="playground-engine-starts-", suffix=".jsonl")
        os.close(handle)
        os.environ[START_LOG_ENV] = path
        OWN_LOG.append(Path(path))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the temporary engine log this run made."""
    for path in OWN_LOG:
        path.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """How many vLLM engines the run started and what they cost, per test module."""
    terminalreporter.section("vLLM engines started by this run")
    for line in summary_lines(read_starts(Path(os.environ[START_LOG_ENV]))):
        terminalreporter.write_line(line)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under `--dist loadfile`, modules that share a costly fixture go to one worker (tests/scheduling.py)."""
    return make_scheduler(config, log) if config.getvalue("dist") == "loadfile" else None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Each test phase on the run's timeline (tests/timeline.py), as the controller receives it."""
    record(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Mark each report with whether its test used the session's shared engines."""
    outcome = yield
    outcome.get_result().user_properties.append(("shared", bool(SHARED_FIXTURES & set(item.fixturenames))))


def shared_state(arena: Arena) -> dict[str, EngineState]:
    """The shared engines' processes, settings and states."""
    states = {}
    for name in ("A", "B"):
        status = arena.status(name)
        states[name] = EngineState(status.pid, arena.slot(name).spec, status.state)
    return states


@pytest.fixture(autouse=True)
def shared_engines_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: the shared engines have the processes, settings and states they had before it.
    A test that changed them fails here, by name, and the pair is started again as it was for the next.
    Before a test that uses them: engines a loan gave back changed are started again as they were."""
    if SHARED and GIVEN_BACK_CHANGED and not LENT and SHARED_FIXTURES & set(request.fixturenames):
        restore(SHARED[0], GIVEN_BACK_CHANGED)
        GIVEN_BACK_CHANGED.clear()
    yield
    if not SHARED or LENT or GIVEN_BACK_CHANGED:
        return
    now = shared_state(SHARED[0])
    changed = changes(BASELINE, now)
    if changed:
        restore(SHARED[0], [n for n in BASELINE if changes({n: BASELINE[n]}, {n: now[n]})])
        pytest.fail(
            f"{request.node.nodeid} changed the shared engines ({'; '.join(changed)}): a test that stops, "
            "restarts or reconfigures an engine owns its own (docs/testing.md); the pair was started again"
        )


def restore(arena: Arena, names: list[str]) -> None:
    """Start these shared engines again with their baseline settings, and take the pair's new baseline."""
    for name in names:
        arena.start(name, BASELINE[name].spec)
    BASELINE.update(shared_state(arena))


@contextlib.contextmanager
def lend_shared(arena: Arena, why: str) -> Iterator[Arena]:
    """Lend the shared pair to a test module that reconfigures it. The borrower need not set it back:
    engines that come back with other settings (or not ready) are started again as they were, but only
    before the next test that uses the pair, so a loan at the end of a worker's run costs no restart.
    New processes with the same settings become the baseline. Each use says why it cannot own its engines."""
    assert arena is SHARED[0] and not LENT, "lend the shared pair once at a time"
    LENT.append(why)
    try:
        yield arena
    finally:
        LENT.clear()
        after = shared_state(arena)
        wrong = [n for n, s in after.items() if s.spec != BASELINE[n].spec or s.state != "ready"]
        GIVEN_BACK_CHANGED.extend(wrong)
        BASELINE.update({n: s for n, s in after.items() if n not in wrong})


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh data folder (logs, the tiny build) for the session."""
    return tmp_path_factory.mktemp("playground-data")


@pytest.fixture(scope="session")
def arena(data_dir: Path) -> Iterator[Arena]:
    """Two real vLLM servers (bf16 and a quantized tiny model), started one after the other."""
    core = Arena((SPEC_A, SPEC_B), data_dir=data_dir, device=DEVICE, sample_interval_s=0.5)
    started = core.start_all()
    problems = {n: s for n, s in started.items() if isinstance(s, str)}
    if problems:
        core.shutdown()
        pytest.fail(f"engines did not start: {problems}")
    SHARED.append(core)
    BASELINE.update(shared_state(core))
    yield core
    SHARED.clear()
    core.shutdown()


@pytest.fixture(scope="session")
def client(arena: Arena) -> Iterator[Client]:
    """The app (open mode) over the session's engines, served for real, and a client of it."""
    demo: gr.Blocks = build_ui(arena)
    polled_gently(demo.queue()).launch(prevent_thread_lock=True, server_port=None, quiet=True)
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()
