"""Slice heatmaps: one metric of one cell broken down by two example attributes."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from pipeline.core.errors import ConfigError
from pipeline.report.html import Section


def _labels(values: pd.Series) -> pd.Series:
    """Attribute values as strings (lists joined), missing ones as ``(none)``."""
    return values.map(lambda v: "(none)" if v is None or (isinstance(v, float) and pd.isna(v))
                      else ", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v))


def slice_table(scores: pd.DataFrame, examples: pd.DataFrame, rows: str, cols: str,
                metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean of ``metric`` and example counts per (``rows`` value, ``cols`` value)."""
    for attr in (rows, cols):
        if attr not in examples.columns:
            raise ConfigError(f"report.slices: examples have no attribute {attr!r} (known: "
                           f"{', '.join(sorted(map(str, examples.columns)))})")
    merged = scores[["id", metric]].merge(examples[["id", rows, cols]].assign(
        **{rows: _labels(examples[rows]), cols: _labels(examples[cols])}), on="id")
    grouped = merged.groupby([rows, cols])[metric]
    return grouped.mean().unstack(cols), grouped.size().unstack(cols).fillna(0).astype(int)


def slice_section(scores: pd.DataFrame, examples: pd.DataFrame, rows: str, cols: str,
                  metric: str, label: str) -> Section:
    """A heatmap of mean ``metric`` per slice with the counts, and a computed reading."""
    means, counts = slice_table(scores, examples, rows, cols, metric)
    text = [[("" if pd.isna(m) else f"{m:.3f}<br>n={n}") for m, n in zip(mr, nr, strict=True)]
            for mr, nr in zip(means.to_numpy(), counts.to_numpy(), strict=True)]
    fig = go.Figure(go.Heatmap(z=means.to_numpy(), x=list(means.columns), y=list(means.index),
                               text=text, texttemplate="%{text}", colorscale="RdYlGn",
                               colorbar={"title": metric},
                               hovertemplate=f"{rows}=%{{y}}<br>{cols}=%{{x}}<br>"
                                             "%{text}<extra></extra>"))
    fig.update_layout(title=f"{label}: mean {metric} by {rows} x {cols}", xaxis_title=cols,
                      yaxis_title=rows, height=max(320, 45 * len(means) + 160))
    flat = pd.DataFrame({"mean": means.stack(), "n": counts.stack()}).dropna()
    solid = flat[flat["n"] >= 3] if (flat["n"] >= 3).any() else flat
    best, worst = solid["mean"].idxmax(), solid["mean"].idxmin()
    overall = float(scores[metric].mean())
    reading = (f"Across {int(flat['n'].sum())} examples in {len(flat)} slices (mean {overall:.4f})"
               f", {label} is strongest on {rows}={best[0]}, {cols}={best[1]} "
               f"({solid.loc[best, 'mean']:.4f}, n={solid.loc[best, 'n']}) and weakest on "
               f"{rows}={worst[0]}, {cols}={worst[1]} ({solid.loc[worst, 'mean']:.4f}, "
               f"n={solid.loc[worst, 'n']}), a gap of "
               f"{solid.loc[best, 'mean'] - solid.loc[worst, 'mean']:.4f}"
               + (" (slices with at least 3 examples)." if len(solid) < len(flat) else "."))
    return Section(f"Slices: {metric} by {rows} x {cols}", reading, [fig])
