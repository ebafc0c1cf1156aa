"""The page's one-second refresh: engine cards, the room panel, the live charts and the history.

Its cost must not grow with the room. The figures are built once per `max_age_s` for every page
together and serialised once (a PlotData is passed through by gr.Plot as it is); each page then gets
only the outputs that changed since its own last tick (gr.skip() for the rest), so 100 open pages
cost a little more than one. The tick runs outside Gradio's queue (queue=False): it never takes a
place a compare needs, and a full queue never refuses it."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

from playground.arena.core import SLOT_NAMES, Arena
from playground.measure.room import room_sentence
from playground.ui.history import visitor_key
from playground.views import cards, charts

HISTORY_ROWS = 200  # the Compare tab's table shows the newest requests; History has them all
MAX_PAGES = 10_000  # pages remembered for "what did this page get last": bounded for public instances


class LiveRefresh:
    """The refresh handler: one shared snapshot, and per page only what changed since its last tick."""

    def __init__(self, arena: Arena, plots: Sequence[gr.Plot], card: Callable[..., str], max_age_s: float = 0.5):
        self.arena = arena
        self.plots = list(plots)  # memory, latency, anatomy, KV: serialised here, once per build
        self.card = card
        self.max_age_s = max_age_s
        self.builds = 0  # snapshots built (a test holds this flat as pages are added)
        self._lock = threading.Lock()
        self._built_at = float("-inf")
        self._values: tuple[Any, ...] = ()
        self._versions: tuple[int, ...] = ()
        self._pages: OrderedDict[str, tuple[int, ...]] = OrderedDict()

    def __call__(self, request: gr.Request) -> tuple[Any, ...]:
        page = visitor_key(request)
        self.arena.room.seen(page)
        values, versions = self.snapshot()
        if page is None:
            return values
        with self._lock:
            last = self._pages.pop(page, None)
            self._pages[page] = versions
            while len(self._pages) > MAX_PAGES:
                self._pages.popitem(last=False)
        if last is None:
            return values
        return tuple(gr.skip() if old == new else v for v, old, new in zip(values, last, versions, strict=True))

    def snapshot(self) -> tuple[tuple[Any, ...], tuple[int, ...]]:
        """The current values and their versions; rebuilt at most once per `max_age_s`."""
        with self._lock:
            if time.monotonic() - self._built_at > self.max_age_s:
                values = self._build()
                old = self._values or (None,) * len(values)
                prev = self._versions or (0,) * len(values)
                self._versions = tuple(p if _same(o, v) else p + 1 for o, v, p in zip(old, values, prev, strict=True))
                self._values = values
                self._built_at = time.monotonic()
                self.builds += 1
            return self._values, self._versions

    def _build(self) -> tuple[Any, ...]:
        arena = self.arena
        labels = arena.labels()
        anatomy = {n: arena.insights.anatomy(n) for n in SLOT_NAMES}  # once per build: it reads the config and log
        figures = (
            charts.memory_figure(list(arena.samples), labels),
            charts.latency_figure(list(arena.history), labels),
            charts.anatomy_figure({labels[n]: parts for n, (parts, _) in anatomy.items() if parts}),
            charts.kv_usage_figure(list(arena.kv_usage), labels),
        )
        return (
            self.card(arena, "A", anatomy["A"][1]),
            self.card(arena, "B", anatomy["B"][1]),
            room_markdown(arena),
            *(plot.postprocess(fig) for plot, fig in zip(self.plots, figures, strict=True)),
            cards.history_rows(arena.history[-HISTORY_ROWS:]),
        )


def room_markdown(arena: Arena) -> str:
    """The room panel: visitors, each engine's requests and tokens/s, vLLM's batch and KV cache."""
    state = arena.room.state({n: s.metrics for n, s in arena.slots.items()})
    return cards.room_panel(state, arena.labels(), room_sentence(state, arena.labels()))


def _same(old: Any, new: Any) -> bool:
    """Equal content: a plot's JSON, a card's text, the table's rows."""
    if hasattr(old, "plot") and hasattr(new, "plot"):
        return bool(old.plot == new.plot)
    return bool(old == new)
