"""Layer 2, I/O: the saved history. Every compare and memory series in one SQLite file (sqlite) and
its exports as JSON, CSV and a self-contained HTML report (report).

Imports: `playground.measure`, `playground.views` and the standard library; never another layer-2
folder or anything above.
"""
