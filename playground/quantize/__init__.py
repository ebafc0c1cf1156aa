"""Layer 2, I/O: quantizing a model with llm-compressor in its own environment (.venv-quant).

runner starts worker.py with that environment's Python in its own process group, reads its progress
from its log, cancels it (the whole process tree) and renames the finished folder into place. The
worker imports only the standard library and llm-compressor's stack, never `playground`.
Imports: `playground.measure`, `playground.views`, `playground.procs` (the process tree) and the
standard library; never another layer-2 folder or anything above.
"""
