"""The accuracy report as the tab, the Ladder's accuracy column and the exports show it; the ladder table's
short headers and legend; the ladder chart's edge labels kept inside the plot."""

from __future__ import annotations

from playground.measure.accuracy import AccuracyReport, EngineAccuracy, ItemResult
from playground.measure.ladder import COLUMNS, LEGEND, LadderRow, table_rows
from playground.views.accuracy import (
    accuracy_by_variant,
    accuracy_tasks,
    commands_markdown,
    disagreement_columns,
    disagreement_rows,
    result_rows,
)
from playground.views.charts import ladder_figure


def report() -> dict[str, object]:
    gold = [0, 1, 0, 1]
    a = tuple(
        ItemResult(i, f"q{i}", ("yes", "no"), g, p) for i, (g, p) in enumerate(zip(gold, [0, 1, 0, 0], strict=True))
    )
    b = tuple(
        ItemResult(i, f"q{i}", ("yes", "no"), g, p) for i, (g, p) in enumerate(zip(gold, [0, 1, 1, 1], strict=True))
    )
    engines = (
        EngineAccuracy("A: bf16", a, 2.0, "open A", "locked A"),
        EngineAccuracy("B: awq", b, 4.0, "open B", "locked B"),
    )
    data = AccuracyReport("t", 4, 0, engines, 0.5).as_dict()
    return {
        **data,
        "lm_eval_command_locked": AccuracyReport("t", 4, 0, engines, 0.5).as_dict(locked=True)["lm_eval_command"],
    }


def test_result_rows_by_hand() -> None:
    rows = result_rows(report())
    # A: 3 of 4 (75 %, stderr sqrt(0.25 / 4) = 25 %); B: 3 of 4 too; differences 0, 0, -1, +1
    assert rows[0] == ["A: bf16 (baseline)", "75.0 % ± 25.0", "—", "—", "4", "2.0 s", "2.00"]
    assert rows[1][:3] == ["B: awq", "75.0 % ± 25.0", "100.0 %"]
    assert rows[1][3].startswith("+0.0 pts [")


def test_disagreements_show_each_pick_and_gold() -> None:
    data = report()
    assert disagreement_columns(data) == ["item", "prompt", "gold", "A: bf16", "B: awq"]
    assert disagreement_rows(data) == [["2", "q2", "yes", "✓ yes", "✕ no"], ["3", "q3", "no", "✕ yes", "✓ no"]]


def test_commands_open_and_locked() -> None:
    data = report()
    assert "open A" in commands_markdown(data, locked=False) and "open A" not in commands_markdown(data, locked=True)
    assert "locked B" in commands_markdown(data, locked=True)
    assert commands_markdown({}, locked=True) == ""


def test_ladder_accuracy_column_from_the_newest_report_on_the_task() -> None:
    older = {"task": "t", "engines": [{"label": "tiny AWQ", "accuracy": 0.1, "stderr": 0.01}]}
    newer = {"task": "t", "engines": [{"label": "B: tiny AWQ", "accuracy": 0.5, "stderr": 0.05}]}
    other = {"task": "u", "engines": [{"label": "tiny GPTQ", "accuracy": 0.9, "stderr": 0.01}]}
    reports = [newer, other, older]  # newest first, as the store lists them
    assert accuracy_tasks(reports) == ["t", "u"]
    column = accuracy_by_variant(reports, "t")
    assert column["tiny AWQ"] == "50.0 ± 5.0 %" and "tiny GPTQ" not in column
    row = LadderRow(label="tiny AWQ", model="m", quantization="awq")
    assert table_rows([row], "bf16", column)[0][-1] == "50.0 ± 5.0 %"
    assert table_rows([row], "bf16")[0][-1] == "–"


def test_ladder_headers_are_short_and_explained() -> None:
    assert len(COLUMNS) == len(table_rows([LadderRow(label="x", model="m", quantization="q")], "x")[0])
    assert max(len(w) for c in COLUMNS for w in c.split()) <= 8  # no word long enough to break mid-word
    for column in COLUMNS[1:]:
        assert f"**{column}**" in LEGEND or column == "kernel"


def test_ladder_chart_labels_of_the_edge_points_point_inward() -> None:
    rows = [
        LadderRow(label="bf16", model="m", quantization="auto", weights_gb=8.0, kl_mean=0.0),
        LadderRow(label="AWQ", model="m", quantization="awq", weights_gb=3.7, kl_mean=0.02),
        LadderRow(label="GPTQ", model="m", quantization="gptq", weights_gb=3.8, kl_mean=0.03),
    ]
    fig = ladder_figure(rows, ["AWQ", "bf16"])
    points = {t.text[0]: t for t in fig.data if t.mode == "markers+text"}
    assert points["AWQ"].textposition == "top right"  # the leftmost point's label goes right
    assert points["bf16"].textposition == "top left"  # the rightmost point's label goes left
    assert points["GPTQ"].textposition == "top center"
    assert all(t.cliponaxis is False for t in points.values())
    low, high = fig.layout.xaxis.range
    assert low < 3.7 and high > 8.0
    assert fig.layout.yaxis.range[1] > 0.03
