"""``diff/index.html``: a short page on what changed between two sweeps (:mod:`pipeline.report`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

from pipeline.aggregate.ranking import OVERALL
from pipeline.report.html import Section, table_html, write_report
from pipeline.report.style import fmt, model_colors

SHOWN = ["model", "train_size", "metric", "before", "after", "change", "test", "p_raw",
         "p_value", "p_bound", "significant", "verdict", "rank_before", "rank_after"]


def _overview(summary: dict, changes: pd.DataFrame) -> Section:
    n = summary["n_significant"]
    only = [f"{len(summary[k])} cell(s) {k.replace('_', ' in ')} "
            f"({', '.join(summary[k])})" for k in ("only_before", "only_after") if summary[k]]
    reading = (f"{len(summary['cells_compared'])} cell(s) finished in both sweeps "
               f"({summary['before']} -> {summary['after']}): {n['better']} significant "
               f"improvement(s) and {n['worse']} significant regression(s) at alpha "
               f"{summary['alpha']:g}, paired tests on the shared example ids; "
               f"{summary['n_negligible']} significant change(s) are smaller than min_effect "
               f"{summary['min_effect']:g} and called negligible. "
               + ("; ".join(only) + "." if only else "No cell is on one side only.")
               + (f" Warning: the test data differ in {len(summary['test_data_differs'])} "
                  "cell(s) (manifest checksums)." if summary["test_data_differs"] else ""))
    overall = changes[changes["metric"] == OVERALL]
    return Section("Overview", reading, [table_html(overall[SHOWN])] if len(overall) else [])


def _significant(changes: pd.DataFrame) -> Section:
    sig = changes[changes["significant"] == "yes"].sort_values("p_value", kind="stable")
    reading = (f"{len(sig)} (cell, metric) change(s) are significant; all rows are in "
               "changes.csv." if len(sig) else "No change is significant.")
    return Section("Significant changes", reading, [table_html(sig[SHOWN])] if len(sig) else [])


def _top_k(summary: dict) -> Section:
    top = summary["top_k"]
    if top is None:
        return Section("Top ranks", "A side has no model_comparison.csv: run "
                                    "`python -m pipeline.aggregate` on it to compare ranks.")
    reading = (f"Entered the top {top['k']}: {', '.join(top['entered']) or 'none'}; left it: "
               f"{', '.join(top['left']) or 'none'}.")
    width = max(len(top["before"]), len(top["after"]))
    frame = pd.DataFrame({"rank": range(1, width + 1),
                          "before": top["before"] + [""] * (width - len(top["before"])),
                          "after": top["after"] + [""] * (width - len(top["after"]))})
    return Section(f"Top {top['k']} ranks", reading, [table_html(frame, sortable=False)])


def _ids(summary: dict) -> Section:
    rows = [{"cell": cell, "shared": m["n_shared"],
             "only before": m["only_in_before"]["count"],
             "only after": m["only_in_after"]["count"],
             "first one-sided ids": ", ".join(m["only_in_before"]["first"]
                                              + m["only_in_after"]["first"])}
            for cell, m in summary["ids"].items()]
    reading = (f"{len(rows)} cell(s) have example ids on one side only; they are left out of "
               "the paired tests." if rows else "Every compared cell has the same example ids "
                                                "on both sides.")
    return Section("Example ids", reading, [table_html(pd.DataFrame(rows))] if rows else [])


def history_section(history: pd.DataFrame, top_n: int = 20) -> Section:
    """A line per cell: its overall score in each sweep (the ``top_n`` best in the last)."""
    labels = [c for c in history.columns if c not in ("cell", "model", "family")]
    shown = history.head(top_n)
    colors = model_colors(history.assign(params_b=float("nan")))
    fig = go.Figure()
    for _, row in shown.iterrows():
        fig.add_trace(go.Scatter(x=labels, y=row[labels].tolist(), mode="lines+markers",
                                 name=row["cell"], line={"color": colors[row["model"]]},
                                 hovertemplate=row["cell"] + " in %{x}: %{y:.4f}"
                                               "<extra></extra>"))
    fig.update_layout(title=f"Overall score per cell across {len(labels)} sweeps (oldest first;"
                            " colour: shade of the family colour per model)",
                      xaxis_title="sweep (diff.sweeps)", yaxis_title=OVERALL, height=480,
                      legend={"title": {"text": "cell"}})
    change = (history[labels[-1]] - history[labels[0]]).dropna()
    reading = (f"{len(history)} cell(s) tracked over {len(labels)} sweeps; the {len(shown)} "
               "best in the last sweep are drawn and history.csv lists all.")
    if len(change):
        up, down = change.idxmax(), change.idxmin()
        reading += (f" From the first to the last sweep the largest rise is "
                    f"{history.loc[up, 'cell']} ({fmt(change[up])}) and the largest fall "
                    f"{history.loc[down, 'cell']} ({fmt(change[down])}).")
    return Section("Score history", reading, [fig, table_html(history, filter_id="history")])


def write_page(path: Path, summary: dict, changes: pd.DataFrame,
               history: pd.DataFrame | None = None) -> None:
    """Write the diff report page (and plotly.js beside it); with ``history`` (3+ sweeps)
    a score-history section too."""
    sections = [_overview(summary, changes), _significant(changes), _top_k(summary),
                _ids(summary)]
    if history is not None:
        sections.insert(1, history_section(history))
    write_report(path, "Sweep against sweep", sections)
