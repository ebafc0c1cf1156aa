"""Layer 0, pure: the values the playground talks about and the arithmetic over them.

Engine specs and generation settings, records of answers and memory samples, request timing from
per-token timestamps, answer quality (agreement, KL, perplexity), memory arithmetic and the planner,
the memory anatomy, the session summary and sweep figures, and the parsers of vLLM's log and
/metrics text. Imports: the standard library only (no other playground folder, and no gradio,
httpx, vllm, pynvml, psutil, torch or plotly), so every figure here is testable by hand.
"""
