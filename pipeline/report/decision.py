"""The report's answer first: the cell to ship (``tables/recommendations.csv``) and the cells
left out of the ranking (``tables/excluded_cells.csv``)."""

from __future__ import annotations

import html

import pandas as pd

from pipeline.aggregate.ranking import OVERALL, cell_label
from pipeline.report.html import Section, table_html
from pipeline.report.style import fmt


def recommendation_section(recs: pd.DataFrame | None, rule: str) -> Section | None:
    """The recommendation box: the cell to ship with its reason, the runner-up, the rule
    (``rule``: the text analysis.md states); None when the table is absent (an aggregate of
    an older version: rerun it)."""
    if recs is None or recs.empty or "choice" not in recs:
        return None
    by = recs.set_index("choice")
    ship = by.loc["ship"]
    ship_label = html.escape(cell_label(ship["model"], ship["train_size"]))
    items = [f'<p class="decision"><strong>Ship {ship_label}</strong>: '
             f"{html.escape(str(ship['reason']))}</p>"]
    if "runner_up" in by.index:
        run = by.loc["runner_up"]
        items.append(f"<p>Runner-up: {html.escape(cell_label(run['model'], run['train_size']))}."
                     f" {html.escape(str(run['reason']))}</p>")
    shown = recs[["choice", "model", "train_size", "params_b", "n_examples", OVERALL,
                  "gap_to_best", "gap_ci_low", "gap_ci_high", "gap_upper_one_sided",
                  "non_inferior"]]
    return Section("Recommendation", rule, [*items, table_html(shown)])


def excluded_section(excluded: pd.DataFrame | None) -> Section | None:
    """The cells left out of the ranking (scored on other examples), or None."""
    if excluded is None or excluded.empty:
        return None
    reading = (f"{len(excluded)} finished cell(s) were scored on other test examples than the "
               "ranked cells, so they are in no table or chart of this report "
               "(aggregate.examples=common ranks every cell on the examples all share): "
               + "; ".join(f"{cell_label(r.model, r.train_size)} ({fmt(r.n_examples, 0)} "
                           f"examples)" for r in excluded.itertuples()) + ".")
    return Section("Cells left out of the ranking", reading, [table_html(excluded)])
