"""The readers-writer gate that orders compares against swaps, with real threads (no engines)."""

from __future__ import annotations

import threading
import time

import pytest

from playground.arena.gate import GateTimeout, PaneGate


def hold_shared(gate: PaneGate, entered: threading.Event, release: threading.Event, log: list[str], name: str) -> None:
    with gate.shared():
        log.append(f"{name} in")
        entered.set()
        release.wait(10)
        log.append(f"{name} out")


def test_many_compares_share_the_gate_at_once() -> None:
    gate = PaneGate()
    release = threading.Event()
    entered = [threading.Event() for _ in range(8)]
    log: list[str] = []
    threads = [
        threading.Thread(target=hold_shared, args=(gate, e, release, log, str(i))) for i, e in enumerate(entered)
    ]
    for t in threads:
        t.start()
    assert all(e.wait(5) for e in entered), "every compare got in while the others still held the gate"
    assert gate.running == 8 and not gate.busy
    release.set()
    for t in threads:
        t.join(5)
    assert gate.running == 0


def test_a_swap_waits_for_running_compares_and_new_compares_wait_for_the_swap() -> None:
    gate = PaneGate()
    log: list[str] = []
    first_in, release_first = threading.Event(), threading.Event()
    compare = threading.Thread(target=hold_shared, args=(gate, first_in, release_first, log, "compare 1"))
    compare.start()
    assert first_in.wait(5)

    swap_in, release_swap = threading.Event(), threading.Event()

    def swap() -> None:
        with gate.exclusive(10):
            log.append("swap in")
            swap_in.set()
            release_swap.wait(10)
            log.append("swap out")

    swapper = threading.Thread(target=swap)
    swapper.start()
    time.sleep(0.2)
    assert not swap_in.is_set() and gate.busy, "the swap waits while a compare streams"

    late_in, release_late = threading.Event(), threading.Event()
    late = threading.Thread(target=hold_shared, args=(gate, late_in, release_late, log, "compare 2"))
    late.start()
    time.sleep(0.2)
    assert not late_in.is_set(), "a compare that arrives while a swap waits queues behind it"

    release_first.set()
    assert swap_in.wait(5), "the swap starts once the running compare is done"
    time.sleep(0.2)
    assert not late_in.is_set(), "and the late compare still waits while the swap works"
    release_swap.set()
    assert late_in.wait(5)
    release_late.set()
    for t in (compare, swapper, late):
        t.join(5)
    assert log == ["compare 1 in", "compare 1 out", "swap in", "swap out", "compare 2 in", "compare 2 out"]


def test_a_swap_that_outwaits_its_limit_says_why_and_lets_compares_go_on() -> None:
    gate = PaneGate()
    entered, release = threading.Event(), threading.Event()
    log: list[str] = []
    compare = threading.Thread(target=hold_shared, args=(gate, entered, release, log, "c"))
    compare.start()
    assert entered.wait(5)
    with pytest.raises(GateTimeout, match=r"waited 0 s for 1 running compare\(s\) to finish and gave up"):
        with gate.exclusive(0.3, "showing X in pane B"):
            pytest.fail("the swap must not run while the compare streams")
    assert not gate.busy, "a swap that gave up no longer holds new compares back"
    other_in = threading.Event()
    other = threading.Thread(target=hold_shared, args=(gate, other_in, release, log, "d"))
    other.start()
    assert other_in.wait(5)
    release.set()
    compare.join(5)
    other.join(5)


def test_exclusive_is_reentrant_in_its_own_thread_and_its_requests_pass() -> None:
    """A swap restarts an engine (start takes the gate too), a ladder step measures inside its hold."""
    gate = PaneGate()
    with gate.exclusive(1):
        with gate.exclusive(1):  # Arena.start inside Variants.show
            with gate.shared():  # the holder's own thread is not blocked by itself
                assert gate.running == 1
        assert gate.busy, "still held after the inner exit"
    assert not gate.busy
    other_done = threading.Event()

    def other() -> None:
        with gate.exclusive(1):
            other_done.set()

    t = threading.Thread(target=other)
    t.start()
    assert other_done.wait(5), "released for other threads once the outermost hold ends"
    t.join(5)
