"""Layer 2, I/O: the vLLM server processes and everything that talks to them.

Process lifecycle and startup phases (server), HTTP streaming with per-token timestamps and /metrics
(client), quality measurements against running engines (scoring), NVML/psutil memory sampling
(monitor), the CPU engine's environment and 4-bit fallback kernel (cpu, cpu_fallback), and a
model's config.json (model_config). Imports: `playground.measure`, `playground.views`,
`playground.procs` (stopping a process tree) and their own libraries (httpx, pynvml, psutil); never
another layer-2 folder or anything above.
"""
