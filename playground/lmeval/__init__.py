"""Layer 2, I/O: lm-evaluation-harness in its own environment (.venv-eval) against running engines.

tasks resolves what the user asked for (the shipped task, an lm-eval task name, a YAML or a JSONL
file); runner starts `lm_eval` as a subprocess in its own process group with the engine's endpoint and
key, follows lm-eval's own progress bar, cancels it (the whole tree) and reads its per-item sample log.
It loads no model: lm-eval's `local-completions` scores through the engine's /v1/completions (echo with
prompt logprobs) and tokenizes with the engine's own /tokenize.
Imports: `playground.measure`, `playground.procs` and the standard library (and PyYAML); never another
layer-2 folder or anything above.
"""
