"""The sweep's load generator against a real local streaming server (tests/token_server.py) under load:
exact token counts, nothing lost, order kept, every timestamp the token's arrival."""

from __future__ import annotations

import threading
import time

import pytest

from playground.engines.client import StreamOutcome
from playground.engines.http1 import RawAnswer
from playground.engines.stream_async import parse_answer, run_streams
from playground.measure.generation import GenerationParams
from tests.token_server import count_tokens, running

PARAMS = GenerationParams(max_tokens=64, temperature=0.0, chat=False, ignore_eos=True)


def tokens_sent(outcome: StreamOutcome) -> list[tuple[int, float]]:
    """(index, server send time) of every token, from the token server's `" <index>@<time>"` texts."""
    return [(int(i), float(t)) for c in outcome.chunks for i, t in (tok.split("@") for tok in c.text.split())]


def arrivals(outcome: StreamOutcome) -> list[float]:
    """The client's timestamp of every token (a chunk's k tokens share its arrival)."""
    return [c.t for c in outcome.chunks for _ in range(c.tokens)]


@pytest.mark.parametrize("tokens_per_chunk", [1, 3])  # vLLM puts several tokens in one event under load
def test_flat_out_load_counts_exact_and_order_kept(tokens_per_chunk: int) -> None:
    prompts = [f"{i}: the the the" for i in range(256)]
    with running(step_ms=0, tokens_per_chunk=tokens_per_chunk) as url:
        outcomes = run_streams(url, "key", "m", prompts, PARAMS, concurrency=128)
    assert len(outcomes) == len(prompts)
    for o in outcomes:
        assert o.error == "" and o.finish_reason == "length"
        assert o.output_tokens == PARAMS.max_tokens == sum(c.tokens for c in o.chunks)
        assert o.prompt_tokens == count_tokens(prompts[0])
        assert [c.tokens for c in o.chunks[:-1]] == [tokens_per_chunk] * (len(o.chunks) - 1)
        sent = tokens_sent(o)
        assert [i for i, _ in sent] == list(range(PARAMS.max_tokens)), "a token lost, doubled or out of order"
        got = arrivals(o)
        assert got == sorted(got) and o.sent_at <= got[0] and got[-1] <= o.finished_at
        # A token cannot arrive before the server wrote it (the same CLOCK_MONOTONIC in both processes).
        assert all(arrived >= written for arrived, (_, written) in zip(got, sent, strict=True))


def test_timestamps_are_arrival_times_not_parse_times() -> None:
    """Paced like an engine (a token every 20 ms): the timestamps spread over the stream as the
    tokens did. Stamping at parse time (after the stream) would put them all at its end."""
    params = GenerationParams(max_tokens=25, temperature=0.0, chat=False, ignore_eos=True)
    with running(step_ms=20) as url:
        outcomes = run_streams(url, "", "m", [f"{i}: the" for i in range(16)], params, concurrency=16)
    for o in outcomes:
        assert not o.error
        sent = [t for _, t in tokens_sent(o)]
        got = arrivals(o)
        lags = sorted(a - s for a, s in zip(got, sent, strict=True))
        span = sent[-1] - sent[0]
        assert span > 0.3  # 24 steps of 20 ms
        assert lags[0] >= 0 and lags[len(lags) // 2] < span / 4, (lags[0], lags[len(lags) // 2], span)
        assert got[-1] - got[0] > span / 2


def test_refusals_and_an_unreachable_engine_are_reported() -> None:
    chat = GenerationParams(max_tokens=4, chat=True)  # the token server has no chat route: HTTP 404
    with running() as url:
        (refused,) = run_streams(url, "", "m", ["x"], chat, concurrency=1)
        port = int(url.rsplit(":", 1)[1])
    assert refused.error == "the engine refused the request (HTTP 404): no route POST /v1/chat/completions"
    (unreachable,) = run_streams(f"http://127.0.0.1:{port}", "", "m", ["x"], PARAMS, concurrency=1)
    assert unreachable.error == "the engine is not reachable (it may have stopped)"


def test_an_error_event_mid_stream_is_reported() -> None:
    body = (
        b'data: {"choices":[{"index":0,"text":"a","finish_reason":null}],"usage":{"completion_tokens":1}}\n\n'
        b'data: {"error":{"message":"boom"}}\n\ndata: [DONE]\n\n'
    )
    outcome = parse_answer(
        RawAnswer(sent_at=1.0, reads=[(1.5, body[:40]), (2.0, body[40:])], finished_at=2.0, status=200)
    )
    assert outcome.error == "the engine reported an error: {'message': 'boom'}"
    assert [(c.t, c.text, c.tokens) for c in outcome.chunks] == [(2.0, "a", 1)]  # timed by the read that completed it


def test_stop_closes_the_open_streams_and_a_failing_progress_callback_stops_all() -> None:
    slow = GenerationParams(max_tokens=500, temperature=0.0, chat=False, ignore_eos=True)  # 10 s at 20 ms a step
    stop = threading.Event()
    with running(step_ms=20) as url:
        threading.Timer(0.5, stop.set).start()
        started = time.monotonic()
        outcomes = run_streams(url, "", "m", ["a b"] * 8, slow, concurrency=4, should_stop=stop.is_set)
        assert time.monotonic() - started < 5
        assert len(outcomes) == 4 and {o.error for o in outcomes} == {"cancelled"}
        assert all(0 < sum(c.tokens for c in o.chunks) < 500 for o in outcomes)

        def fail(_: int) -> None:
            raise RuntimeError("the progress bar went away")

        with pytest.raises(RuntimeError, match="the progress bar went away"):
            run_streams(url, "", "m", ["a b"] * 4, slow, concurrency=4, on_tick=fail)


def feed(response: bytes, sizes: list[int]) -> RawAnswer:
    """Run `response` through a real Connection cut into reads of the given sizes (as TCP may cut it)."""
    import asyncio

    from playground.engines.http1 import Connection

    loop = asyncio.new_event_loop()
    try:
        conn, answer = Connection(), RawAnswer(sent_at=0.0)
        conn.expect(answer, loop.create_future())
        pos = 0
        for size in sizes:
            conn.data_received(response[pos : pos + size])
            pos += size
        assert conn.done is not None and conn.done.done() == (pos == len(response))
        return answer
    finally:
        loop.close()


def test_framing_survives_any_cut_of_the_bytes() -> None:
    events = [b'data: {"choices":[{"text":"a"}]}\n\n', b"data: [DONE]\n\n"]
    chunked = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(e), e) for e in events) + b"0\r\n\r\n"
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    whole = head + chunked
    for sizes in ([len(whole)], [1] * len(whole), [len(head) - 3, 5, 2, 40, len(whole) - len(head) - 44]):
        answer = feed(whole, sizes)
        assert answer.status == 200 and b"".join(d for _, d in answer.reads) == b"".join(events)
    refused = b'{"error":{"message":"too long"}}'
    plain = b"HTTP/1.1 400 Bad Request\r\ncontent-length: %d\r\n\r\n%s" % (len(refused), refused)
    answer = feed(plain, [10, 60, len(plain) - 70])
    assert parse_answer(answer).error == "the engine refused the request (HTTP 400): too long"
