"""HTTP to vLLM's OpenAI-compatible API: streamed generation with per-token timestamps, and
/metrics (the only place that speaks HTTP to an engine after startup)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from playground.measure.generation import GenerationParams
from playground.measure.metrics import TokenChunk
from playground.measure.prometheus import EngineMetrics, engine_metrics

# Generous read timeout: a CPU engine under load can pause for seconds between tokens, but a
# dead engine must not hang the UI for ever.
TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=30.0, pool=10.0)
_SHARED: list[httpx.Client] = []
_SHARED_LOCK = threading.Lock()


def http() -> httpx.Client:
    """One pooled client for every request: keep-alive connections, no TCP/TLS setup per request
    (a new client per request cost TTFT in bench/overhead.py). httpx.Client is thread-safe."""
    with _SHARED_LOCK:
        if not _SHARED:
            limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
            _SHARED.append(httpx.Client(timeout=TIMEOUT, limits=limits))
        return _SHARED[0]


@dataclass
class StreamOutcome:
    """Everything one streamed request produced, timestamps taken as each chunk arrived."""

    sent_at: float
    chunks: list[TokenChunk] = field(default_factory=list)
    finished_at: float = 0.0
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None
    error: str = ""

    @property
    def text(self) -> str:
        """The answer so far."""
        return "".join(c.text for c in self.chunks)


class GenerationError(RuntimeError):
    """The engine refused or failed the request; the message is meant for the user."""


def request_body(model: str, prompt: str, params: GenerationParams) -> dict[str, Any]:
    """The JSON body for /v1/chat/completions or /v1/completions."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": params.max_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "stream": True,
        # continuous_usage_stats puts running token counts in every chunk: exact tokens per chunk.
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
    }
    if params.seed is not None:
        body["seed"] = params.seed
    if params.ignore_eos:
        body["ignore_eos"] = True
    if params.chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    return body


def refusal(status: int, body: bytes) -> str:
    """The user's sentence for a non-200 answer, with the engine's own message where it gave one."""
    try:
        payload = json.loads(body)
        err = payload.get("error", payload)
        msg = err.get("message") if isinstance(err, dict) else str(err)
    except (ValueError, AttributeError):
        msg = body[:300].decode("utf-8", "replace")
    return f"the engine refused the request (HTTP {status}): {msg}"


def _error_message(response: httpx.Response) -> str:
    return refusal(response.status_code, response.read())


def _delta_text(choice: dict[str, Any]) -> str:
    if "text" in choice:
        return str(choice.get("text") or "")
    delta = choice.get("delta") or {}
    return str(delta.get("content") or "")


def apply_event(outcome: StreamOutcome, event: dict[str, Any], now: float, seen: int) -> int:
    """Add one streamed event, arrived at `now`, to `outcome`; returns the tokens seen so far.

    Exact token counts come from `continuous_usage_stats`: vLLM can put several tokens in one event
    under load. Raises GenerationError for an error event."""
    if "error" in event:
        raise GenerationError(f"the engine reported an error: {event['error']}")
    usage = event.get("usage") or {}
    if usage:
        outcome.prompt_tokens = usage.get("prompt_tokens", outcome.prompt_tokens)
        outcome.output_tokens = usage.get("completion_tokens", outcome.output_tokens)
    for choice in event.get("choices") or []:
        text = _delta_text(choice)
        total = outcome.output_tokens if outcome.output_tokens is not None else seen + 1
        new_tokens = max(total - seen, 0) if usage else 1
        if text or new_tokens:
            outcome.chunks.append(TokenChunk(now, text, new_tokens))
            seen += new_tokens
        outcome.finish_reason = choice.get("finish_reason") or outcome.finish_reason
    return seen


def stream_generation(
    base_url: str,
    api_key: str,
    model: str,
    prompt: str,
    params: GenerationParams,
    *,
    on_chunk: Callable[[StreamOutcome], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> StreamOutcome:
    """Stream one request; `on_chunk` sees the outcome after each chunk. Errors end up in `.error`."""
    path = "/v1/chat/completions" if params.chat else "/v1/completions"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    outcome = StreamOutcome(sent_at=time.perf_counter())
    seen_tokens = 0
    try:
        body = request_body(model, prompt, params)
        with http().stream("POST", base_url + path, json=body, headers=headers) as response:
            if response.status_code != 200:
                raise GenerationError(_error_message(response))
            for line in response.iter_lines():
                now = time.perf_counter()  # before any parsing or UI work
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                seen_tokens = apply_event(outcome, json.loads(data), now, seen_tokens)
                if on_chunk:
                    on_chunk(outcome)
                if should_stop():
                    outcome.error = "cancelled"
                    break
    except GenerationError as exc:
        outcome.error = str(exc)
    except httpx.ConnectError:
        outcome.error = "the engine is not reachable (it may have stopped)"
    except (httpx.RemoteProtocolError, httpx.ReadError):
        outcome.error = "the engine stopped in the middle of the answer (connection closed)"
    except httpx.TimeoutException:
        outcome.error = f"no token from the engine for {TIMEOUT.read:.0f} s: gave up"
    except (httpx.HTTPError, ValueError) as exc:
        outcome.error = f"streaming failed: {type(exc).__name__}: {exc}"
    outcome.finished_at = time.perf_counter()
    return outcome


def fetch_metrics(base_url: str, timeout_s: float = 2.0) -> EngineMetrics:
    """Read the engine's /metrics (unauthenticated in vLLM) into figures."""
    response = http().get(f"{base_url}/metrics", timeout=timeout_s)
    response.raise_for_status()
    return engine_metrics(response.text)


def post_json(base_url: str, api_key: str, path: str, body: dict[str, Any], timeout_s: float = 300.0) -> Any:
    """One non-streamed request; raises GenerationError with the engine's own message."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = http().post(base_url + path, json=body, headers=headers, timeout=timeout_s)
    except httpx.ConnectError as exc:
        raise GenerationError("the engine is not reachable (it may have stopped)") from exc
    except httpx.HTTPError as exc:
        raise GenerationError(f"request failed: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 200:
        raise GenerationError(_error_message(response))
    return response.json()


def tokenize(base_url: str, api_key: str, model: str, text: str) -> list[int]:
    """The engine's own token ids for `text` (its /tokenize endpoint, special tokens included)."""
    return [int(t) for t in post_json(base_url, api_key, "/tokenize", {"model": model, "prompt": text})["tokens"]]


def sleep_engine(base_url: str, api_key: str, level: int = 1, timeout_s: float = 120.0) -> None:
    """vLLM sleep mode: level 1 moves the weights to host RAM and drops the KV cache (needs the
    server started with --enable-sleep-mode and VLLM_SERVER_DEV_MODE=1)."""
    _dev_post(base_url, api_key, f"/sleep?level={level}", timeout_s)


def wake_engine(base_url: str, api_key: str, timeout_s: float = 120.0) -> None:
    """Bring a sleeping engine's weights and KV cache back onto the GPU."""
    _dev_post(base_url, api_key, "/wake_up", timeout_s)


def is_sleeping(base_url: str, api_key: str, timeout_s: float = 10.0) -> bool:
    """The engine's own answer to GET /is_sleeping."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = http().get(base_url + "/is_sleeping", headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise GenerationError(f"the engine is not reachable (it may have stopped): {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise GenerationError(_sleep_refusal(response))
    return bool(response.json().get("is_sleeping"))


def _dev_post(base_url: str, api_key: str, path: str, timeout_s: float) -> None:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = http().post(base_url + path, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise GenerationError(f"the engine is not reachable (it may have stopped): {type(exc).__name__}") from exc
    if response.status_code != 200:
        raise GenerationError(_sleep_refusal(response))


def _sleep_refusal(response: httpx.Response) -> str:
    if response.status_code == 404:
        return (
            "the engine has no sleep endpoints (HTTP 404): it must be started with --enable-sleep-mode "
            "and VLLM_SERVER_DEV_MODE=1"
        )
    return _error_message(response)
