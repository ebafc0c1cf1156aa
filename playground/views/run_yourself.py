"""An engine as code to run outside the playground: the `vllm serve` line and the `LLM(...)` Python
for exactly what a slot runs, without the playground's own host, port and key (pure)."""

from __future__ import annotations

import ast
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from playground.measure.specs import EngineSpec, server_args

# Arguments the playground adds for itself (where it listens, its key, its log): not the engine's settings.
_OWN_WITH_VALUE = frozenset({"--model", "--host", "--port", "--api-key", "--served-model-name"})
# --enable-tokenizer-info-endpoint: for the Accuracy tab's lm-eval (its own "Run this yourself" names it).
_OWN_FLAGS = frozenset({"--disable-uvicorn-access-log", "--enable-tokenizer-info-endpoint"})
# Environment that changes what the engine does (its GPUs; vLLM's CPU build reads its KV-cache size
# from it); the playground's core binding and its fallback-kernel PYTHONPATH are its own arrangements.
SHOWN_ENV = ("CUDA_DEVICE_ORDER", "CUDA_VISIBLE_DEVICES", "VLLM_CPU_KVCACHE_SPACE")


@dataclass(frozen=True)
class RunYourself:
    """The same engine three ways: a shell line, Python, and (for a model quantized here) the recipe."""

    vllm_serve: str
    python: str
    llmcompressor: str = ""
    note: str = ""

    def as_dict(self) -> dict[str, str]:
        """JSON keys of the CLI and the report."""
        out = {"vllm_serve": self.vllm_serve, "python": self.python}
        if self.llmcompressor:
            out["llmcompressor"] = self.llmcompressor
        return out


def engine_args(spec: EngineSpec) -> list[str]:
    """The engine's own arguments: what the playground passes, less --model/--host/--port/--api-key."""
    args = server_args(spec, port=0)
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _OWN_WITH_VALUE:
            skip = "=" not in arg
            continue
        if name in _OWN_FLAGS:
            continue
        out.append(arg)
    return out


def _env_prefix(env: Mapping[str, str]) -> str:
    shown = [f"{k}={shlex.quote(env[k])}" for k in SHOWN_ENV if k in env]
    return " ".join(shown) + " " if shown else ""


def vllm_serve_line(spec: EngineSpec, env: Mapping[str, str] = {}) -> str:  # noqa: B006 - read only
    """`vllm serve MODEL ...` for the spec (the model as the engine loads it: a resolved local path)."""
    return _env_prefix(env) + shlex.join(["vllm", "serve", spec.model, *engine_args(spec)])


def api_server_line(spec: EngineSpec, env: Mapping[str, str] = {}) -> str:  # noqa: B006 - read only
    """The same server started as a Python module (what works with vllm-cpu, whose `vllm` command fails)."""
    cmd = ["python", "-m", "vllm.entrypoints.openai.api_server", "--model", spec.model, *engine_args(spec)]
    return _env_prefix(env) + shlex.join(cmd)


def _literal(text: str) -> object:
    """A command-line value as the Python value vLLM's parser would give it (best effort)."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def llm_kwargs(spec: EngineSpec) -> dict[str, object]:
    """`LLM(...)` keyword arguments equal to the engine's command-line arguments."""
    args = engine_args(spec)
    kwargs: dict[str, object] = {"model": spec.model}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            i += 1  # a stray value; vLLM's own parser would refuse it at start
            continue
        name, eq, value = arg[2:].partition("=")
        key = name.replace("-", "_")
        if eq:
            kwargs[key] = _literal(value)
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            kwargs[key] = _literal(args[i + 1])
            i += 1
        else:
            kwargs[key] = True
        i += 1
    return kwargs


def llm_python(spec: EngineSpec, env: Mapping[str, str] = {}) -> str:  # noqa: B006 - read only
    """Python that builds the same engine in-process with `vllm.LLM`."""
    lines = []
    shown = {k: env[k] for k in SHOWN_ENV if k in env}
    if shown:
        lines.append("import os")
        lines += [f"os.environ[{k!r}] = {v!r}  # before importing vllm" for k, v in shown.items()]
        lines.append("")
    lines.append("from vllm import LLM, SamplingParams")
    lines.append("")
    args = ",\n".join(f"    {k}={v!r}" for k, v in llm_kwargs(spec).items())
    lines.append(f"llm = LLM(\n{args},\n)")
    lines.append('out = llm.generate(["The default value is"], SamplingParams(max_tokens=32, temperature=0))')
    lines.append("print(out[0].outputs[0].text)")
    return "\n".join(lines) + "\n"


def run_yourself(spec: EngineSpec, env: Mapping[str, str] = {}, *, cpu: bool = False, recipe: str = "") -> RunYourself:  # noqa: B006
    """All of it for one engine; on vLLM's CPU build the note gives the module form of the server."""
    if spec.attached:
        note = (
            f"this slot is attached to {spec.endpoint}, started outside the playground: its command is not known here"
        )
        return RunYourself("", "", recipe, note)
    note = ""
    if cpu:
        note = (
            "vLLM's CPU build (package vllm-cpu) cannot run the `vllm` command itself (it looks for a package "
            "named vllm); start the same server with:\n" + api_server_line(spec, env)
        )
    return RunYourself(vllm_serve_line(spec, env), llm_python(spec, env), recipe, note)


def as_markdown(code: RunYourself) -> str:
    """The card's "Run this yourself" section: copyable code blocks."""
    if not code.vllm_serve:
        return f"**Run this yourself:** {code.note}"
    parts = ["**Run this yourself**", f"```bash\n{code.vllm_serve}\n```"]
    if code.note:
        head, _, cmd = code.note.partition("\n")
        parts.append(head + (f"\n\n```bash\n{cmd}\n```" if cmd else ""))
    parts.append(f"```python\n{code.python}```")
    if code.llmcompressor:
        parts.append("Made here with llm-compressor:")
        parts.append(f"```python\n{code.llmcompressor}```")
    return "\n\n".join(parts)
