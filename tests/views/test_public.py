"""What a visitor may read: host paths, engine ports and keys taken out of text (pure)."""

from __future__ import annotations

from playground.views.public import Private, scrub, scrub_value

PRIVATE = Private(
    paths=("/srv/models/Qwen2.5-0.5B-AWQ", "/data/playground"),
    ports=(41234,),
    keys=("sk-per-launch-key",),
)


def test_a_local_model_shows_as_its_folder_name() -> None:
    card = "### A\n\n`/srv/models/Qwen2.5-0.5B-AWQ` · quantization **awq**"
    assert scrub(card, PRIVATE) == "### A\n\n`Qwen2.5-0.5B-AWQ` · quantization **awq**"
    assert scrub("/srv/models/Qwen2.5-0.5B-AWQ/config.json", PRIVATE) == "Qwen2.5-0.5B-AWQ/config.json"


def test_engine_addresses_ports_and_keys_are_hidden() -> None:
    log = "/data/playground/logs/engine-A-20261203-41234.log"
    text = f"attached to `http://127.0.0.1:41234/v1` with key sk-per-launch-key; log: `{log}`"
    out = scrub(text, PRIVATE, lambda p: p.startswith("/data/"))
    assert out == "attached to `(engine)` with key (key hidden); log: `engine-A-20261203-(engine).log`"
    assert scrub("listening on port 41234", PRIVATE) == "listening on (engine)"
    assert scrub("port 412345 and 41234567", PRIVATE) == "port 412345 and 41234567"  # other numbers stay


def test_only_host_paths_go_and_words_with_slashes_stay() -> None:
    def exists(path: str) -> bool:
        return path in {"/home/op/.cache/vllm", "/tmp/x.csv"}

    text = "decode 250 tok/s · vLLM /metrics · cache at /home/op/.cache/vllm · saved /tmp/x.csv · /v1/completions"
    assert scrub(text, Private(), exists) == (
        "decode 250 tok/s · vLLM /metrics · cache at vllm · saved x.csv · /v1/completions"
    )


def test_every_string_inside_a_value_and_nothing_else() -> None:
    value = {"rows": [["/data/playground/a.log", 3, None]], "label": ("A: /srv/models/Qwen2.5-0.5B-AWQ",)}
    assert scrub_value(value, PRIVATE) == {"rows": [["playground/a.log", 3, None]], "label": ("A: Qwen2.5-0.5B-AWQ",)}
    assert scrub_value(12.5, PRIVATE) == 12.5


def test_a_key_too_short_to_be_secret_is_left_in_the_text() -> None:
    """A one-letter key replaced everywhere cut "k" out of every word and broke the charts' JSON."""
    short = Private(keys=("k",))
    assert scrub('{"marker": {"color": "blue"}} · tokens', short) == '{"marker": {"color": "blue"}} · tokens'
    eight = Private(keys=("k3y-8chr",))
    assert scrub("auth k3y-8chr here", eight) == "auth (key hidden) here"
