"""Error analysis: the lowest-scoring examples of one cell, prediction beside reference."""

from __future__ import annotations

import pandas as pd

from pipeline.report.html import Section, table_html

TEXT_FIELDS = ("summary", "title", "tags", "type")


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return " | ".join(map(str, value))
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def worst_examples(scores: pd.DataFrame, metric: str, n: int) -> pd.DataFrame:
    """The ``n`` examples with the lowest ``metric`` (ties by id)."""
    return scores[["id", metric]].dropna().sort_values([metric, "id"]).head(n)


def _lengths(table: pd.DataFrame) -> str:
    """How long the worst predicted summaries are compared with their references."""
    if "predicted summary" not in table:
        return ""
    if "reference summary" not in table:
        return "The test references were not found, so only the predictions are shown."
    pred = table["predicted summary"].str.split().str.len().mean()
    ref = table["reference summary"].str.split().str.len().mean()
    return (f"Their predicted summaries average {pred:.0f} words against {ref:.0f} in the "
            "references.")


def error_section(scores: pd.DataFrame, predictions: pd.DataFrame,
                  examples: pd.DataFrame | None, metric: str, n: int, label: str) -> Section:
    """A table of the worst examples with each text field's reference and prediction."""
    worst = worst_examples(scores, metric, n)
    table = worst.reset_index(drop=True)
    refs = examples.set_index("id") if examples is not None else None
    preds = predictions.set_index("id")
    text_cols = []
    for fld in TEXT_FIELDS:
        if fld not in preds.columns:
            continue
        if refs is not None and fld in refs.columns:
            table[f"reference {fld}"] = [_text(refs[fld].get(i)) for i in table["id"]]
            text_cols.append(f"reference {fld}")
        table[f"predicted {fld}"] = [_text(preds[fld].get(i)) for i in table["id"]]
        text_cols.append(f"predicted {fld}")
    reading = (f"The {len(worst)} lowest-scoring of {scores[metric].notna().sum()} examples "
               f"score {worst[metric].min():.4f} to {worst[metric].max():.4f} on {metric}, "
               f"against a mean of {float(scores[metric].mean()):.4f}. " + _lengths(table))
    return Section(f"Error analysis: {label}", reading,
                   [table_html(table, text_columns=tuple(text_cols))])
