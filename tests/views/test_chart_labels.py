"""The comparison charts name each panel on its own axis (no subplot titles under the legend) and say
why a panel is empty."""

from __future__ import annotations

from playground.measure.summary import EngineSummary
from playground.views.charts import summary_figure


def _row(slot: str, perplexity: float | None) -> EngineSummary:
    return EngineSummary(slot, f"{slot}: tiny", 0.008, "checkpoint files", 1000, 90.0, 3, None, perplexity)


def _texts(fig: object) -> list[str]:
    return [a.text for a in fig.layout.annotations]  # type: ignore[attr-defined]


def test_summary_panels_are_named_on_their_axes() -> None:
    fig = summary_figure([_row("A", 5.0), _row("B", 5.5)])
    titles = [fig.layout[f"yaxis{n}"].title.text for n in ("", "2", "3")]
    assert titles == ["weights (GiB)", "decode (tok/s, median)", "perplexity"]
    assert _texts(fig) == []  # no subplot titles where the legend sits, and nothing is missing


def test_an_unmeasured_panel_says_what_to_do() -> None:
    fig = summary_figure([_row("A", None), _row("B", None)])
    (hint,) = fig.layout.annotations
    assert hint.text == "run the Quality tab first" and (hint.xref, hint.yref) == ("x3 domain", "y3 domain")
