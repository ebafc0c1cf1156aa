"""Layer 3, the core: `Arena` owns the two engine slots, the memory monitor and the history.

core (the Arena: slots, compare, engines' lifecycle), slot (one side's spec and engine), insights
(quality, anatomy, summary), history (saved runs and exports), loadgen (the load behind a sweep),
defaults (which engines run when none is named) and settings (locked mode, visitor limits).
Imports: any lower layer (measure, views, engines, store, tiny); never ui or cli.
"""

from playground.arena.core import Arena
from playground.arena.slot import SLOT_NAMES

__all__ = ["SLOT_NAMES", "Arena"]
