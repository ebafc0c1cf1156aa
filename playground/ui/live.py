"""The page's refresh: engine cards and the room panel every second, the live charts and the history
table every few seconds.

Its cost must not grow with the room, measured (docs/performance.md, section 7):
- What a tick returns is built once per `max_age_s` for every page together, and the charts are
  serialised then too (gr.Plot passes a PlotData through as it is), so 100 pages cost one build.
- Each page is sent the values as they are. `gr.skip()` is no cheaper in Gradio 6.31: an output
  skipped is a property update, for which Gradio constructs the component anew and recomputes its
  config in the server's event loop (2 ms a component), which starved the queue at 40 pages.
- Charts tick less often than cards: they are most of the bytes, and they change with each sample.
- The ticks run outside Gradio's queue (queue=False): they never take a place a compare needs, and a
  full queue never refuses them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from playground.arena.core import SLOT_NAMES, Arena
from playground.measure.room import room_sentence
from playground.ui.history import visitor_key
from playground.views import cards, charts

CARDS_TICK_S = 1.0  # engine cards and the room panel
CHARTS_TICK_S = 3.0  # memory, latency, anatomy and KV charts, and the history table
HISTORY_ROWS = 100  # the Compare tab's table shows the newest requests; the History tab has them all


class SharedBuild:
    """A value built at most once per `max_age_s` and handed to every caller meanwhile."""

    def __init__(self, build: Callable[[], tuple[Any, ...]], max_age_s: float):
        self._build = build
        self.max_age_s = max_age_s
        self.builds = 0  # how often it was built (tests hold this flat as pages are added)
        self._lock = threading.Lock()
        self._built: tuple[tuple[Any, ...], float] = ((), float("-inf"))  # the value and when it was built

    def get(self) -> tuple[Any, ...]:
        """The current value, rebuilt when older than `max_age_s`."""
        with self._lock:
            if time.monotonic() - self._built[1] > self.max_age_s:
                value = self._build()
                self._built = (value, time.monotonic())  # one assignment: `fresh` reads it without the lock
                self.builds += 1
            return self._built[0]

    def fresh(self) -> tuple[Any, ...] | None:
        """The current value if it is younger than `max_age_s`, else None; never builds and never waits
        for a build (the event loop's tick cache asks this: waiting there would stall every request)."""
        value, at = self._built
        return value if time.monotonic() - at <= self.max_age_s else None


class LiveRefresh:
    """The two tick handlers over one arena: `cards` (every second) and `charts` (every few)."""

    def __init__(
        self,
        arena: Arena,
        plots: Sequence[gr.Plot],
        card: Callable[..., str],
        max_age_s: float = 0.5,
        public: Callable[[Any], Any] | None = None,
    ):
        self.arena = arena
        self.plots = list(plots)  # memory, latency, anatomy, KV: serialised here, once per build
        self.card = card
        self.public = public or (lambda value: value)  # locked mode's scrubber, applied once per build
        self._checks: dict[str, Any] = {}  # each slot's weights check, from the last charts build
        self.cards_build = SharedBuild(self._cards, max_age_s)
        # Charts are built at most once per tick of their timer: building them is most of the work.
        self.charts_build = SharedBuild(self._charts, max(max_age_s, CHARTS_TICK_S - max_age_s))

    @property
    def builds(self) -> int:
        """Snapshots built so far, cards and charts together."""
        return self.cards_build.builds + self.charts_build.builds

    # make_public leaves these two alone: what they return was scrubbed when it was built.
    def cards(self, request: gr.Request) -> tuple[Any, ...]:
        """Engine cards and the room panel; the asking page counts as a visitor."""
        self.arena.room.seen(visitor_key(request))
        return self.cards_build.get()

    def charts(self, request: gr.Request) -> tuple[Any, ...]:
        """The four live charts and the history table."""
        self.arena.room.seen(visitor_key(request))
        return self.charts_build.get()

    def _cards(self) -> tuple[Any, ...]:
        arena = self.arena
        values = (
            self.card(arena, "A", self._checks.get("A")),
            self.card(arena, "B", self._checks.get("B")),
            room_markdown(arena),
        )
        return tuple(self.public(v) for v in values)

    def _charts(self) -> tuple[Any, ...]:
        arena = self.arena
        labels = arena.labels()
        anatomy = {n: arena.insights.anatomy(n) for n in SLOT_NAMES}  # once per build: it reads the config and log
        self._checks = {n: check for n, (_, check) in anatomy.items()}
        figures = (
            charts.memory_figure(charts.thinned(list(arena.samples)), labels),
            charts.latency_figure(list(arena.history), labels),
            charts.anatomy_figure({labels[n]: parts for n, (parts, _) in anatomy.items() if parts}),
            charts.kv_usage_figure(charts.thinned(list(arena.kv_usage)), labels),
        )
        return (
            *(self.public(plot.postprocess(fig)) for plot, fig in zip(self.plots, figures, strict=True)),
            self.public(cards.history_rows(arena.history[-HISTORY_ROWS:])),
        )


def room_markdown(arena: Arena) -> str:
    """The room panel: visitors, each engine's requests and tokens/s, vLLM's batch and KV cache."""
    state = arena.room.state({n: s.metrics for n, s in arena.slots.items()})
    return cards.room_panel(state, arena.labels(), room_sentence(state, arena.labels()))
