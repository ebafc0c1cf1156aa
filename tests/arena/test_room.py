"""The arena's room counters with real threads: requests in flight, what each shared, tokens/s."""

from __future__ import annotations

import threading

import pytest

from playground.arena.room import RATE_WINDOW_S, VISITOR_WINDOW_S, Room
from playground.measure.prometheus import EngineMetrics


def test_each_request_keeps_the_most_requests_it_shared_its_engine_with() -> None:
    room = Room(("A", "B"))
    with room.streaming("A") as first:
        assert (room.in_flight("A"), first.shared_with) == (1, 0)
        with room.streaming("A") as second, room.streaming("A") as third:
            assert room.in_flight("A") == 3
        with room.streaming("B") as other_engine:
            pass
        assert room.in_flight("A") == 1, "the two that ended are no longer in flight"
        with room.streaming("A") as fourth:
            pass
    assert (first.shared_with, second.shared_with, third.shared_with) == (2, 2, 2)
    assert fourth.shared_with == 1, "it overlapped only the first"
    assert other_engine.shared_with == 0, "requests on the other engine do not count"
    with room.streaming("A") as alone:
        pass
    assert alone.shared_with == 0 and room.in_flight("A") == 0


def test_vllms_running_count_raises_only_requests_already_streaming_when_it_was_read() -> None:
    room = Room(("A",))
    with room.streaming("A") as mine:
        read_at = mine.started + 0.001
        with room.streaming("A") as later:
            later.started = read_at + 1.0  # began after the /metrics read started
            room.engine_running("A", 9.0, read_at)  # another client's 8 requests beside this one
        room.engine_running("A", None, read_at)  # a read without the figure changes nothing
    assert mine.shared_with == 8, "vLLM saw more than the app sent: an attached endpoint serving others"
    assert later.shared_with == 1, "a request that began after the read is not credited with its count"


def test_tokens_per_second_over_the_window_and_visitors_in_the_last_minute() -> None:
    room = Room(("A", "B"))
    room.served("A", 500, now=100.0)
    room.served("A", 300, now=105.0)
    room.served("B", 0, now=105.0)  # nothing arrived: no entry
    assert room.tokens_per_s("A", now=106.0) == pytest.approx(800 / RATE_WINDOW_S)
    assert room.tokens_per_s("A", now=112.0) == pytest.approx(300 / RATE_WINDOW_S), "the first fell out"
    assert room.tokens_per_s("B", now=106.0) == 0.0
    room.seen("page-1", now=0.0)
    room.seen("page-2", now=30.0)
    room.seen("page-1", now=50.0)  # polled again: counted once
    room.seen(None, now=50.0)  # no session: not a visitor
    assert room.visitors(now=55.0) == 2
    assert room.visitors(now=30.0 + VISITOR_WINDOW_S + 1) == 1, "page-2 left the minute"


def test_counts_stay_right_under_many_threads() -> None:
    room = Room(("A",))
    start = threading.Barrier(16)
    inside = threading.Barrier(16)
    peaks: list[int] = []

    def request() -> None:
        start.wait()
        with room.compare(), room.streaming("A") as r:
            inside.wait()  # all 16 in flight together
            room.served("A", 10)
        peaks.append(r.shared_with)

    threads = [threading.Thread(target=request) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert peaks == [15] * 16 and room.in_flight("A") == 0 and room.compares == 0
    state = room.state({"A": EngineMetrics(requests_running=3.0, requests_waiting=1.0, kv_cache_usage=0.25)})
    load = state.engines["A"]
    assert (load.in_flight, load.batch, load.waiting, load.kv_usage) == (0, 3, 1, 0.25)
    assert load.tokens_per_s == pytest.approx(160 / RATE_WINDOW_S)
