"""The Ladder tab's events through the real Gradio server (gradio_client): adding a variant and a
refused swap. No engine starts here: what is sent is checked before anything launches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from playground.arena.core import Arena
from playground.ui.app import build_ui, polled_gently
from tests.conftest import DEVICE, SPEC_A, SPEC_B


@pytest.fixture(scope="module")
def idle_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Arena]]:
    arena = Arena((SPEC_A, SPEC_B), data_dir=Path(tmp_path_factory.mktemp("ladder-tab")), device=DEVICE)
    demo = build_ui(arena)
    polled_gently(demo.queue()).launch(prevent_thread_lock=True, server_port=None, quiet=True)
    try:
        yield Client(demo.local_url, verbose=False), arena
    finally:
        demo.close()
        arena.shutdown()


def test_add_a_variant_through_the_tab(idle_client: tuple[Client, Arena]) -> None:
    client, arena = idle_client
    table, _pick, _baseline, message = client.predict(
        "tiny/gptq,quantization=gptq,label=tiny GPTQ", api_name="/add_variant"
    )
    assert "Added **tiny GPTQ**" in message
    rows = {r[0]: r for r in table["data"]}
    assert rows["tiny GPTQ"][1:] == ["tiny/gptq", "gptq", "not started", ""]
    assert "tiny GPTQ" in arena.variants.specs
    *_, again = client.predict("tiny/gptq,quantization=gptq,label=tiny GPTQ", api_name="/add_variant")
    assert again.startswith("✕ there is already a variant called 'tiny GPTQ'")


def test_a_refused_swap_says_why_and_starts_nothing(idle_client: tuple[Client, Arena]) -> None:
    client, arena = idle_client
    label_a = arena.slot("A").spec.display_name
    _table, message = client.predict("B", label_a, api_name="/show_variant")
    assert message == f"✕ {label_a} is already shown in pane A; pick another variant for pane B"
    assert arena.slot("B").engine is None
