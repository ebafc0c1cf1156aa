"""The ladder run: every variant measured the same way in this session, one after the other in pane
B with the baseline in pane A, each row reported as soon as it is measured. A part the `Arena` holds,
given the variants (which swap through the gate), the slots and the weights figure it reports.
Each step (a swap and its measurement) holds the gate: compares wait for it, so no visitor's request
shares the engine with a ladder measurement and the ladder's speeds are the engine's own."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from playground.arena.gate import GateTimeout
from playground.arena.variants import PANE_WAIT_S, SwapRecord, Variants
from playground.engines.client import GenerationError, stream_generation
from playground.engines.model_config import load_config
from playground.engines.scoring import Endpoint, greedy_answer, position_logprobs, text_logprobs
from playground.engines.server import EngineError
from playground.measure.generation import GenerationParams
from playground.measure.ladder import ATTACHED_K, LadderRow, forced_comparison, logprobs_k
from playground.measure.metrics import median, request_timing
from playground.measure.quality import compare_tokens, perplexity
from playground.measure.records import EngineStatus
from playground.measure.specs import EngineSpec, SpecError

LADDER_PROMPTS = (
    "The function returns",
    "To open a file in Python,",
    "A list comprehension is",
)
TIMING_PARAMS = GenerationParams(max_tokens=32, temperature=0.0, chat=False, ignore_eos=True)


@dataclass(frozen=True)
class LadderProgress:
    """A snapshot while the ladder runs: the rows measured so far and what happens now."""

    rows: list[LadderRow]
    message: str
    fraction: float
    done: bool = False


@dataclass
class _Baseline:
    """What every variant is held against: the baseline's greedy tokens and its teacher-forced
    distributions on them, per prompt."""

    k: int
    exact: bool
    prompts: list[str] = field(default_factory=list)
    sequences: list[tuple[list[int], list[int]]] = field(default_factory=list)  # (prompt ids, answer ids)
    forced: list[list[dict[int, float] | None]] = field(default_factory=list)


class Ladder:
    """Runs the ladder over the session's variants; keeps the last run's rows."""

    def __init__(
        self,
        variants: Variants,
        status: Callable[[str], EngineStatus],
        weights: Callable[[str], tuple[float | None, str]],
    ):
        self.variants = variants
        self.slots = variants.slots
        self._status = status
        self.weights = weights
        self.rows: list[LadderRow] = []
        self.baseline = ""
        self._running = threading.Lock()

    def run(
        self,
        baseline: str,
        *,
        text: str | None = None,
        prompts: Sequence[str] = LADDER_PROMPTS,
        max_tokens: int = 24,
        timing_requests: int = 3,
        cancel: threading.Event | None = None,
    ) -> Iterator[LadderProgress]:
        """Measure every variant: the baseline in pane A, each other variant shown in pane B in turn.

        Yields after each step; the last snapshot has done=True. Raises SpecError for a bad baseline
        or when a ladder is already running."""
        specs = self.variants.specs
        if baseline not in specs:
            raise SpecError(f"no variant called {baseline!r}; the variants are: {', '.join(specs)}")
        if not self._running.acquire(blocking=False):
            raise SpecError("a ladder is already running; wait for it or cancel it")
        stop = cancel or threading.Event()
        rows: list[LadderRow] = []
        others = [label for label in specs if label != baseline]
        steps = len(others) + 1
        gate = self.variants.gate
        try:
            yield LadderProgress([], f"showing and measuring the baseline {baseline} in pane A", 0.0)
            try:
                with gate.exclusive(PANE_WAIT_S, "the ladder"):
                    base_swap = self._show_unless_shown("A", baseline)
                    base = self._baseline(prompts, max_tokens)
                    rows.append(self._measure("A", base, text, timing_requests, base_swap))
            except GateTimeout as exc:
                raise SpecError(str(exc)) from exc
            self.rows, self.baseline = list(rows), baseline
            for i, label in enumerate(others, start=1):
                if stop.is_set():
                    yield LadderProgress(list(rows), "cancelled", i / steps, done=True)
                    return
                step = f"showing {label} in pane B and measuring it ({i} of {len(others)})"
                yield LadderProgress(list(rows), step, i / steps)
                rows.append(self._step(label, base, text, timing_requests))
                self.rows = list(rows)
            yield LadderProgress(list(rows), f"{len(rows)} variants measured", 1.0, done=True)
        finally:
            self._running.release()

    def _step(self, label: str, base: _Baseline, text: str | None, timing_requests: int) -> LadderRow:
        """Swap `label` into pane B and measure it, with the panes to the ladder alone."""
        try:
            with self.variants.gate.exclusive(PANE_WAIT_S, f"the ladder's step for {label}"):
                swap = self._show_unless_shown("B", label)
                return self._measure("B", base, text, timing_requests, swap)
        except (SpecError, EngineError, GateTimeout) as exc:
            return _failed_row(self.variants.specs[label], str(exc))

    def _show_unless_shown(self, pane: str, label: str) -> SwapRecord | None:
        if self.slots[pane].spec.display_name == label and self._status(pane).state == "ready":
            return None
        return self.variants.show(pane, label)

    def _endpoint(self, pane: str) -> Endpoint:
        engine = self.slots[pane].engine
        status = self._status(pane)
        if engine is None or status.state != "ready":
            raise EngineError(f"engine {pane} is not ready ({status.message or status.phase})")
        return Endpoint(engine.base_url, engine.api_key, engine.model_id)

    def _k(self, pane: str) -> tuple[int, bool]:
        spec = self.slots[pane].spec
        if spec.attached:
            return ATTACHED_K, False
        try:
            vocab = int(load_config(self.slots[pane].engine.spec.model, download=False)["vocab_size"])  # type: ignore[union-attr]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            vocab = None
        return logprobs_k(vocab)

    def _baseline(self, prompts: Sequence[str], max_tokens: int) -> _Baseline:
        ep = self._endpoint("A")
        k, exact = self._k("A")
        base = _Baseline(k, exact)
        for prompt in prompts:
            answer = greedy_answer(ep, prompt, max_tokens=max_tokens, k=1)
            seq = answer.prompt_ids + answer.token_ids
            base.prompts.append(prompt)
            base.sequences.append((answer.prompt_ids, answer.token_ids))
            base.forced.append(position_logprobs(ep, seq, k)[len(answer.prompt_ids) :])
        return base

    def _measure(
        self, pane: str, base: _Baseline, text: str | None, timing_requests: int, swap: SwapRecord | None
    ) -> LadderRow:
        """One variant's row: quality against the baseline, speed, memory, kernel."""
        slot = self.slots[pane]
        spec, engine = slot.spec, slot.engine
        try:
            ep = self._endpoint(pane)
            k, exact = self._k(pane)
            k = min(k, base.k)
            kls: list[float] = []
            flips: list[float] = []
            agreements = []
            for prompt, (prompt_ids, answer_ids), forced in zip(base.prompts, base.sequences, base.forced, strict=True):
                seq = prompt_ids + answer_ids  # teacher-forced on the baseline's tokens: errors do not compound
                other = position_logprobs(ep, seq, k)[len(prompt_ids) :]
                per_pos, flip = forced_comparison(forced, other)
                kls += per_pos
                if flip is not None:
                    flips.append(flip * len(per_pos))
                own = greedy_answer(ep, prompt, max_tokens=max(len(answer_ids), 1), k=1)
                agreements.append(compare_tokens(answer_ids, own.token_ids).agreement)
            ttft, decode = self._timing(ep, timing_requests)
            ppl = None
            if text and text.strip():
                context = spec.max_model_len or 1024
                window = max(16, min(1024, context - 8))
                ppl = perplexity(text_logprobs(ep, text, window=window, stride=window // 2).logprobs)
        except (GenerationError, EngineError, ValueError) as exc:
            return _failed_row(spec, str(exc))
        gib, source = self.weights(pane)
        report = engine.log_report() if engine else None
        return LadderRow(
            label=spec.display_name,
            model=spec.model,
            quantization=_loaded_method(report.loaded_quantization if report else None, spec.quantization),
            kernel=report.kernel if report else None,
            weights_gb=None if gib is None else gib * 2**30 / 1e9,
            weights_source=source,
            kv_tokens=(report.kv_cache_tokens if report else None) or slot.metrics.kv_cache_tokens,
            ttft_ms=ttft,
            decode_tok_s=decode,
            agreement=0.0 if not agreements else sum(agreements) / len(agreements),
            kl_mean=sum(kls) / len(kls) if kls else None,
            kl_exact=exact and base.exact,
            flip_rate=sum(flips) / len(kls) if kls else None,
            perplexity=ppl,
            swap_s=None if swap is None else swap.seconds,
            swap_method="" if swap is None else ("woke" if swap.woke else swap.method),
        )

    def _timing(self, ep: Endpoint, requests: int) -> tuple[float | None, float | None]:
        """Median TTFT (ms) and decode rate (tok/s) over `requests` streamed requests, one at a time."""
        ttfts: list[float] = []
        rates: list[float] = []
        for i in range(requests):
            outcome = stream_generation(
                ep.base_url, ep.api_key, ep.model, LADDER_PROMPTS[i % len(LADDER_PROMPTS)], TIMING_PARAMS
            )
            if outcome.error:
                raise GenerationError(outcome.error)
            t = request_timing(
                outcome.sent_at,
                outcome.chunks,
                outcome.finished_at,
                prompt_tokens=outcome.prompt_tokens,
                output_tokens=outcome.output_tokens,
            )
            if t.ttft_ms is not None:
                ttfts.append(t.ttft_ms)
            if t.decode_tok_s is not None:
                rates.append(t.decode_tok_s)
        return median(ttfts), median(rates)


def _loaded_method(loaded: str | None, asked: str) -> str:
    """The method vLLM's engine config names (e.g. auto_awq), or the one asked for when it names none."""
    return loaded if loaded and loaded != "None" else asked


def _failed_row(spec: EngineSpec, error: str) -> LadderRow:
    return LadderRow(label=spec.display_name, model=spec.model, quantization=spec.quantization, error=error)
