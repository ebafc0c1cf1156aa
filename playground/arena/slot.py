"""One side of the arena: a slot's settings and the engine running them. Its own module so that the
core, the insights and the load generator all import it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field

from playground.engines.server import Engine
from playground.measure.prometheus import EngineMetrics
from playground.measure.specs import EngineSpec

SLOT_NAMES = ("A", "B")


@dataclass
class Slot:
    """One side of the arena: its settings and the engine running them, if any."""

    name: str
    spec: EngineSpec
    engine: Engine | None = None
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    metrics_error: str = ""
    start_error: str = ""  # why the last start failed before an engine existed
    metrics_at: float = float("-inf")  # time.monotonic() of the last /metrics read

    @property
    def label(self) -> str:
        """Name in charts and panes, unique per slot."""
        return f"{self.name}: {self.spec.display_name}"
