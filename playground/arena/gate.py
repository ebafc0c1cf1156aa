"""The gate that orders compares against swaps: any number of compares stream at once (vLLM batches
them), while a swap, a ladder step or a restart has the panes to itself. A readers-writer lock with
writer preference: a swap waits for the compares already running, and compares that arrive while a
swap waits or works wait for it, so a stream of visitors can never starve a swap."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class GateTimeout(TimeoutError):
    """An exclusive holder waited longer than its limit for the running compares; says how many."""


class PaneGate:
    """Shared for compares, exclusive (and re-entrant in its own thread) for what changes a pane."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._owner: int | None = None  # thread id of the exclusive holder
        self._depth = 0  # re-entries of the exclusive holder (a swap that restarts an engine)
        self._waiting = 0  # exclusive holders waiting: new compares queue behind them

    @property
    def running(self) -> int:
        """Compares inside the gate now."""
        return self._shared

    @property
    def busy(self) -> bool:
        """True while a swap, ladder step or restart holds the panes or waits for them."""
        return self._owner is not None or self._waiting > 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Enter as one of many compares; waits while an exclusive holder works or waits."""
        me = threading.get_ident()
        with self._cond:
            if self._owner != me:  # the holder's own thread may compare (a ladder step's requests)
                self._cond.wait_for(lambda: self._owner is None and self._waiting == 0)
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self, timeout_s: float, what: str = "the swap") -> Iterator[None]:
        """Have the panes alone: waits for running compares up to `timeout_s`, then raises GateTimeout."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
            else:
                self._waiting += 1
                deadline = time.monotonic() + timeout_s
                try:
                    while self._owner is not None or self._shared:
                        left = deadline - time.monotonic()
                        if left <= 0:
                            raise GateTimeout(
                                f"{what} waited {timeout_s:.0f} s for {self._shared} running compare(s) "
                                "to finish and gave up; try again when they are done"
                            )
                        self._cond.wait(left)
                finally:
                    self._waiting -= 1
                    self._cond.notify_all()
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                self._cond.notify_all()
