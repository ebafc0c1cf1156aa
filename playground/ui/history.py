"""The Gradio "History" tab: every saved compare, and exports as JSON, CSV or an HTML report."""

from __future__ import annotations

from typing import Any

import gradio as gr

from playground.arena.core import Arena
from playground.arena.defaults import Storage
from playground.arena.history import EXPORT_FORMATS
from playground.views import cards


def storage_note(storage: Storage | None) -> str:
    """What the History tab says about keeping runs across restarts ('' where nothing needs saying)."""
    if storage is None or not (storage.on_volume or storage.lost_on_restart):
        return ""
    if storage.on_volume:
        return f"Runs are kept on the persistent volume ({storage.volume}), so they outlast a restart."
    return (
        f"**History does not survive a restart here.** No persistent volume is mounted at {storage.volume}, so "
        f"the runs live in the container (`{storage.data}`) and are gone when it restarts; export what you "
        "want to keep. The operator can attach persistent storage to keep them (README, Deploying)."
    )


def history_tab(arena: Arena, locked: bool, storage: Storage | None = None) -> gr.Dataframe:
    """Add the tab's components and events; returns the table (refreshed when the tab opens)."""
    where = arena.saved.store.path.name
    note = storage_note(storage)
    gr.Markdown(
        f"Every compare is saved the moment both answers are in, with its settings, answers, figures and "
        f"the memory series (SQLite, `{where}` in the data folder), so a crash loses no finished run. "
        "Export one run, or this session, as JSON, CSV or a self-contained HTML report with the charts."
        + ("\n\nOn this public instance you see and export only your own runs." if locked else "")
        + (f"\n\n{note}" if note else "")
    )
    show = gr.Button("Show saved runs", size="sm")
    table = gr.Dataframe(headers=cards.SAVED_RUN_COLUMNS, value=[], interactive=False, wrap=True)
    with gr.Row(equal_height=False):
        run_id = gr.Number(0, label="Run number (0: this whole session)", precision=0, minimum=0, scale=2)
        fmt = gr.Radio(list(EXPORT_FORMATS), value="html", label="Format", scale=2)
        export = gr.Button("Export", variant="primary", scale=1)
    download = gr.File(label="Download", interactive=False, elem_classes=["export-file"])
    message = gr.Markdown(elem_classes=["message"])
    list_runs = list_handler(arena, locked)
    show.click(list_runs, None, table, api_name="history")
    export.click(_export_handler(arena, locked), [run_id, fmt], [download, message], api_name="export")
    with gr.Row(equal_height=False):
        acc_fmt = gr.Radio(list(EXPORT_FORMATS), value="html", label="Accuracy reports (all saved)", scale=4)
        acc_export = gr.Button("Export accuracy", scale=1)
    acc_export.click(_accuracy_export(arena, locked), [acc_fmt], [download, message], api_name="export_accuracy")
    return table


def _accuracy_export(arena: Arena, locked: bool):  # type: ignore[no-untyped-def]
    def export(fmt: str) -> tuple[Any, str]:
        try:
            path = arena.accuracy.store.export(fmt, arena.data_dir / "exports", locked=locked)
        except (ValueError, OSError) as exc:
            return None, f"✕ {exc}"
        return str(path), f"Exported the accuracy reports to `{path.name}`."

    return export


def visitor_key(request: gr.Request | None) -> str | None:
    """One key per browser session (each API client gets its own session too)."""
    return getattr(request, "session_hash", None) or None


def _visitor(request: gr.Request | None, locked: bool) -> str | None:
    # Locked instances scope everything to the asking browser session; open ones show all runs.
    return (visitor_key(request) or "-") if locked else None


def list_handler(arena: Arena, locked: bool):  # type: ignore[no-untyped-def]
    def list_runs(request: gr.Request) -> list[list[object]]:
        return cards.saved_run_rows(arena.saved.runs(visitor=_visitor(request, locked)))

    return list_runs


def _export_handler(arena: Arena, locked: bool):  # type: ignore[no-untyped-def]
    def export(run_id: float | None, fmt: str, request: gr.Request) -> tuple[Any, str]:
        try:
            number = int(run_id) if run_id else None  # 0 or empty: the whole session
            path = arena.saved.export(fmt, run_id=number, visitor=_visitor(request, locked))
        except (ValueError, OSError) as exc:
            return None, f"✕ {exc}"
        return str(path), f"Saved {path.name} ({path.stat().st_size / 1e3:,.0f} kB)"

    return export
