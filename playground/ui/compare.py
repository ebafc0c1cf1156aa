"""The Gradio "Compare" tab: the prompt, both answer panes with their figures, the room panel, the
live charts and the request history. Compares from every visitor run at once and vLLM batches them."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass

import gradio as gr

from playground.arena.core import SLOT_NAMES, Arena, CompareProgress
from playground.arena.defaults import ASSETS
from playground.arena.settings import AppSettings
from playground.measure.generation import MODES, GenerationParams
from playground.measure.specs import SpecError
from playground.ui.history import visitor_key
from playground.views import cards, charts

EXAMPLES = [
    "Explain in two sentences what a hash table is.",
    "The default value is",
    "This module provides",
]
SHARED_NOTE = (
    "Other visitors' requests may share the engines with yours: vLLM batches them. Under each answer it "
    "says whether it ran alone or shared its engine, and the summary's speeds use only answers that ran alone."
)


@dataclass(frozen=True)
class CompareTab:
    """The components the page's refresh updates."""

    room: gr.Markdown
    plots: tuple[gr.Plot, gr.Plot, gr.Plot, gr.Plot]  # memory, latency, anatomy, KV cache
    history: gr.Dataframe


def compare_tab(arena: Arena, settings: AppSettings) -> CompareTab:
    """Add the tab's components and its compare event to the Blocks being built."""
    panes: dict[str, gr.Textbox] = {}
    figures: dict[str, gr.Markdown] = {}
    # The tiny model learned docstrings, not dialogue: plain completion of a docstring opening suits it.
    tiny = any(s.spec.model.startswith("tiny/") for s in arena.slots.values())
    with gr.Row(equal_height=True):
        prompt = gr.Textbox(label="Prompt (sent to both engines)", lines=3, value=EXAMPLES[1 if tiny else 0], scale=5)
        go_btn = gr.Button("Compare ▶", variant="primary", scale=1, min_width=150, size="lg")
    with gr.Row():
        separate = arena.separate_gpus()
        mode = gr.Radio(
            list(MODES),
            value="simultaneous" if separate else "fair",
            label="Mode",
            scale=2,
            info=(
                "A and B are on different GPUs: simultaneous is fair here (neither slows the other)"
                if separate
                else "fair: your A, then your B, so neither slows the other · simultaneous: both at once"
            ),
        )
        chat = gr.Checkbox(not tiny, label="Chat template", info="off: plain completion", scale=1)
    with gr.Accordion("Sampling", open=False), gr.Row():
        temperature = gr.Slider(0, 2, value=0.0, step=0.05, label="temperature")
        top_p = gr.Slider(0.05, 1, value=1.0, step=0.05, label="top_p")
        limit = arena.limits.max_tokens
        max_tokens = gr.Number(
            min(96, limit or 96), label="max_tokens" + (f" (up to {limit})" if limit else ""), precision=0
        )
        seed = gr.Number(0, label="seed", precision=0)
    gr.Examples(EXAMPLES, prompt)
    message = gr.Markdown(elem_classes=["message"])
    with gr.Row():
        for name in SLOT_NAMES:
            with gr.Column():
                panes[name] = gr.Textbox(
                    label=f"Answer {name}", lines=10, max_lines=18, interactive=False, elem_classes=[f"pane-{name}"]
                )
                figures[name] = gr.Markdown()
    gr.Markdown(SHARED_NOTE, elem_classes=["note"])
    with gr.Accordion("The room: who shares this instance, and what vLLM's batching does", open=True):
        room = gr.Markdown()
    with gr.Row():
        memory_plot = gr.Plot(charts.memory_figure([], arena.labels()), label="Memory")
        latency_plot = gr.Plot(charts.latency_figure([], arena.labels()), label="Latency")
    with gr.Row():
        with gr.Column(scale=3):
            anatomy_plot = gr.Plot(charts.anatomy_figure({}), label="Memory anatomy")
            kv_plot = gr.Plot(charts.kv_usage_figure([], arena.labels()), label="KV cache in use")
        with gr.Column(scale=2):
            gr.Markdown((ASSETS / "teaching.md").read_text())
    with gr.Accordion("History", open=True):
        history = gr.Dataframe(headers=cards.HISTORY_COLUMNS, value=[], interactive=False, wrap=True)
    inputs = [prompt, mode, chat, temperature, top_p, max_tokens, seed]
    outputs = [panes["A"], panes["B"], figures["A"], figures["B"], message]
    # Compares from different visitors run together (vLLM batches them); more wait in the queue.
    go_btn.click(
        compare_handler(arena),
        inputs,
        outputs,
        api_name="compare",
        concurrency_limit=settings.concurrency,
        concurrency_id="compare",
    )
    prompt.submit(compare_handler(arena), inputs, outputs, api_visibility="private", concurrency_id="compare")
    return CompareTab(room, (memory_plot, latency_plot, anatomy_plot, kv_plot), history)


def compare_handler(arena: Arena):  # type: ignore[no-untyped-def]
    """The compare event: stream both answers into the panes, figures under each when it is done."""

    def compare(
        prompt: str,
        mode: str,
        chat: bool,
        temperature: float,
        top_p: float,
        max_tokens: float,
        seed: float | None,
        request: gr.Request,
    ) -> Iterator[tuple[str, str, str, str, str]]:
        updates: Iterator[CompareProgress] | None = None
        try:
            params = GenerationParams(
                max_tokens=int(max_tokens or 0),
                temperature=float(temperature),
                top_p=float(top_p),
                seed=None if seed is None else int(seed),
                chat=bool(chat),
            )
            updates = arena.compare(prompt or "", params, mode, visitor=visitor_key(request))
            yield "", "", "", "", "… sending to " + (" then ".join(SLOT_NAMES) if mode == "fair" else "both")
            for p in updates:  # the arena checks the prompt and the visitor's limit at the first step
                yield (*_panes(p.texts), *_figures(p), _note(arena, p))
        except (SpecError, ValueError, OverflowError) as exc:
            yield "", "", "", "", f"✕ {exc}"
        finally:
            if isinstance(updates, Generator):
                updates.close()  # a visitor who left: the arena cancels their requests at the engines

    return compare


def _panes(texts: dict[str, str]) -> tuple[str, str]:
    return texts.get("A", ""), texts.get("B", "")


def _figures(progress: CompareProgress) -> tuple[str, str]:
    return cards.answer_figures(progress.answers.get("A")), cards.answer_figures(progress.answers.get("B"))


def _note(arena: Arena, progress: CompareProgress) -> str:
    if not progress.done:
        return "… streaming…"
    answers = [progress.answers[n] for n in SLOT_NAMES if n in progress.answers]
    errors = [f"**{x.slot}:** {x.error}" for x in answers if x.error]
    note = ("✕ " + " · ".join(errors)) if errors else ""
    if progress.run_id is None:  # the answers stand; say that the history lacks them
        note = " · ".join(filter(None, (note, "⚠ " + (arena.saved.error or "the run was not saved"))))
    return note
