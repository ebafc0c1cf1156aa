"""Layer 1, processes: a child started in its own process group, seen and stopped as a whole tree.

Shared by the vLLM servers (engines/server) and the quantizer (quantize/runner), two layer-2 folders
that may not import each other. Imports: the standard library and psutil only; nothing of
`playground`.
"""
