"""The room's sentence and the load note under each answer, from hand-made states."""

from __future__ import annotations

from playground.measure.room import EngineLoad, RoomState, room_sentence, shared_note


def test_shared_note_words() -> None:
    assert shared_note(0) == "ran alone on its engine"
    assert shared_note(1) == "shared the engine with up to 1 other request"
    assert shared_note(37) == "shared the engine with up to 37 other requests"
    assert shared_note(None) == "load not recorded"


def test_sentence_for_a_busy_room_divides_the_tokens_by_the_batch() -> None:
    state = RoomState(
        visitors=38,
        compares=38,
        engines={
            "A": EngineLoad(in_flight=38, tokens_per_s=5100.0, batch=38, waiting=0, kv_usage=0.2),
            "B": EngineLoad(in_flight=0, tokens_per_s=0.0, batch=0),
        },
    )
    text = room_sentence(state, {"A": "A: fp16", "B": "B: awq"})
    assert text.startswith("38 visitors are here in the last minute.")
    assert "vLLM runs A: fp16's 38 requests as one batch: 5,100 tokens/s together, about 134 each" in text
    assert "B: awq" not in text, "an idle engine is not described as batching"


def test_sentence_uses_the_larger_of_the_apps_count_and_vllms_batch() -> None:
    # vLLM's /metrics is read every few seconds: between reads the app's own count is the fresher one.
    state = RoomState(1, 1, {"A": EngineLoad(in_flight=4, tokens_per_s=400.0, batch=1)})
    assert "A's 4 requests as one batch: 400 tokens/s together, about 100 each" in room_sentence(state, {})


def test_sentence_for_one_request_and_for_an_idle_room() -> None:
    one = RoomState(1, 1, {"A": EngineLoad(in_flight=1, tokens_per_s=250.0, batch=1)})
    assert room_sentence(one, {"A": "A"}) == "1 visitor is here in the last minute. A serves 1 request: 250 tokens/s."
    idle = RoomState(3, 0, {"A": EngineLoad(0, 0.0, batch=0), "B": EngineLoad(0, 0.0)})
    assert room_sentence(idle, {}) == (
        "3 visitors are here in the last minute; no request is running now, so each engine is idle."
    )
