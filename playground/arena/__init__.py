"""Layer 3, the core: `Arena` owns the two engine slots, the memory monitor and the history.

core (the Arena: slots, engines' lifecycle, compare, and the gate that orders compares against swaps)
and the parts it holds by composition, each given only the services it uses: variants (the variant
list and swaps), ladder, insights (quality, anatomy, summary, run-yourself), history (SavedRuns:
the SQLite history and exports), quantizer (Quantizer, QuantizedLoader), watch (memory and /metrics
samples), door (visitor limits), room (who shares the instance now). Beside them: gate (the
readers-writer gate), slot (one side's spec and engine), loadgen (the load behind a sweep), defaults
(which engines run when none is named) and settings (locked mode, visitor limits).
Imports: any lower layer (measure, views, engines, store, tiny); never ui or cli.
"""

from playground.arena.core import Arena
from playground.arena.slot import SLOT_NAMES

__all__ = ["SLOT_NAMES", "Arena"]
