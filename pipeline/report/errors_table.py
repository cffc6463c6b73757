"""Error analysis: the lowest-scoring examples of one cell, prediction beside reference, and
the outputs of a language model that could not be parsed (from ``raw`` in the predictions)."""

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


# parsed field -> the value a generator gives an output it could not parse
UNPARSED = {"tags": [], "type": ""}


def unparsable_outputs(predictions: pd.DataFrame) -> pd.DataFrame:
    """Rows ``id, task, raw output`` where a generator kept raw text (``raw``: task -> text)
    but the parsed tag list or type came out empty."""
    rows = []
    if "raw" not in predictions.columns:
        return pd.DataFrame(rows, columns=["id", "task", "raw output"])
    for rec in predictions.to_dict("records"):
        raw = rec.get("raw") if isinstance(rec.get("raw"), dict) else {}
        for task, text in raw.items():
            fld = {"tag": "tags", "type": "type"}.get(task)
            if fld is not None and str(text).strip() and rec.get(fld) in (UNPARSED[fld], None):
                rows.append({"id": rec["id"], "task": task, "raw output": str(text)})
    return pd.DataFrame(rows, columns=["id", "task", "raw output"])


def unparsable_section(predictions: pd.DataFrame, n: int, label: str) -> Section | None:
    """The first ``n`` unparsable outputs of the cell, or None when every output parsed
    (or the generator keeps no raw text, as the demo learners and predictions files)."""
    bad = unparsable_outputs(predictions)
    if bad.empty:
        return None
    counts = ", ".join(f"{task} {k}" for task, k in bad["task"].value_counts().sort_index().items())
    reading = (f"{len(bad)} outputs of {label} could not be parsed ({counts} of "
               f"{len(predictions)} examples) and score as wrong; the first {min(n, len(bad))} "
               "are shown as the model wrote them.")
    return Section(f"Unparsable outputs: {label}", reading,
                   [table_html(bad.head(n), text_columns=("raw output",))])
