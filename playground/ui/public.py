"""Locked mode's last line: every event's output, error and exported file, and the page's first
values, pass through `views.public.scrub` before a visitor gets them (no host path, port or key)."""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import gradio as gr
import plotly.io as pio
from gradio.components.plot import PlotData

from playground.arena.core import Arena
from playground.arena.slot import SLOT_NAMES
from playground.views.public import Private, scrub, scrub_value

_KNOWN: dict[int, tuple[float, Private]] = {}  # id(arena) -> (when, what): read at most once a second


def private_of(arena: Arena) -> Private:
    """What this host must keep to itself now (re-read at most once a second: every streamed update of
    every visitor passes through here): model folders, logs and the data folder; the engines' ports;
    their API keys."""
    when, known = _KNOWN.get(id(arena), (float("-inf"), Private()))
    if time.monotonic() - when > 1.0:
        known = _private_now(arena)
        _KNOWN[id(arena)] = (time.monotonic(), known)
    return known


def _private_now(arena: Arena) -> Private:
    paths: set[str] = {str(arena.data_dir), str(Path(arena.data_dir).resolve()), str(Path.home())}
    ports: set[int] = set()
    keys: set[str] = set()
    for name in SLOT_NAMES:
        slot = arena.slot(name)
        for spec in (slot.spec, getattr(slot.engine, "spec", slot.spec)):  # as asked, and as launched
            local = Path(spec.model).expanduser()
            if spec.model and local.is_absolute() and local.exists():
                paths |= {spec.model, str(local), str(local.resolve())}
            keys.add(spec.api_key)
        for url in (slot.spec.endpoint, getattr(slot.engine, "base_url", "")):
            if url and (port := urlparse(url).port):
                ports.add(port)
        if slot.engine is not None:
            keys.add(slot.engine.api_key)
            paths |= {str(p) for p in (getattr(slot.engine, "log_path", None), slot.engine.log_dir) if p}
        if log := arena.status(name).log_path:
            paths.add(log)
    return Private(tuple(p for p in paths if p), tuple(sorted(ports)), tuple(k for k in keys if k))


def _is_host_path(path: str) -> bool:
    return len(path) > 1 and os.path.exists(path)


def _public(value: Any, private: Private) -> Any:
    """One output as a visitor may see it; an exported file becomes a scrubbed copy beside it."""
    # A file name has no line break: a streamed answer with one is not stat'ed at every update.
    if isinstance(value, str) and len(value) < 4096 and "\n" not in value and os.path.isfile(value):
        original = Path(value)
        try:
            text = original.read_text()
        except UnicodeDecodeError:  # not text: nothing of ours to scrub in it
            return value
        copy = original.with_name(f"public-{original.name}")
        copy.write_text(scrub(text, private, _is_host_path))
        return str(copy)
    if isinstance(value, PlotData):  # a chart already serialised for gr.Plot: scrub its JSON as it is
        return value.model_copy(update={"plot": scrub(value.plot, private, _is_host_path)})
    if hasattr(value, "to_plotly_json"):  # a plotly figure: its labels and hover text are strings too
        return pio.from_json(scrub(pio.to_json(value), private, _is_host_path))
    if isinstance(value, (list, tuple)):
        return type(value)(_public(v, private) for v in value)
    if isinstance(value, dict):
        return {k: _public(v, private) for k, v in value.items()}
    return scrub_value(value, private, _is_host_path)


def _wrap(fn: Callable[..., Any], arena: Arena) -> Callable[..., Any]:
    """`fn` with every output scrubbed, and its gr.Error messages too; generators and coroutines stay so."""

    def error(exc: gr.Error) -> gr.Error:
        return gr.Error(scrub(str(exc.message), private_of(arena), _is_host_path))

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen(*args: Any, **kwargs: Any) -> Any:
            try:
                async for out in fn(*args, **kwargs):
                    yield _public(out, private_of(arena))
            except gr.Error as exc:
                raise error(exc) from None

        return agen
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen(*args: Any, **kwargs: Any) -> Any:
            try:
                for out in fn(*args, **kwargs):
                    yield _public(out, private_of(arena))
            except gr.Error as exc:
                raise error(exc) from None

        return gen
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def coro(*args: Any, **kwargs: Any) -> Any:
            try:
                return _public(await fn(*args, **kwargs), private_of(arena))
            except gr.Error as exc:
                raise error(exc) from None

        return coro

    @functools.wraps(fn)
    def plain(*args: Any, **kwargs: Any) -> Any:
        try:
            return _public(fn(*args, **kwargs), private_of(arena))
        except gr.Error as exc:
            raise error(exc) from None

    return plain


def public_value(arena: Arena) -> Callable[[Any], Any]:
    """One value as a visitor of this arena may see it (the page refresh scrubs once per build)."""
    return lambda value: _public(value, private_of(arena))


def make_public(demo: gr.Blocks, arena: Arena) -> gr.Blocks:
    """Scrub every event of `demo` and its components' first values (locked instances); the refresh's
    handlers (ui/live.py) scrub what they build themselves, once for every page."""
    private = private_of(arena)
    for block in demo.blocks.values():
        value = getattr(block, "value", None)
        if isinstance(value, (str, list, dict)) and not callable(value):
            block.value = _public(value, private)  # type: ignore[union-attr]
    live = getattr(demo, "live", None)
    built_public = {live.cards, live.charts} if live is not None else set()
    for block_fn in demo.fns.values():
        if block_fn.fn is not None and block_fn.fn not in built_public:
            block_fn.fn = _wrap(block_fn.fn, arena)
    return demo
