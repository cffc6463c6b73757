"""Slice heatmaps: one metric of one cell broken down by two example attributes.

The attributes adapt to the data: a configured attribute the records lack is replaced (rows:
length buckets computed from the longest text field; columns: another attribute with a few
distinct values, else one column of all examples), and the reading says so. Every cell shows
the mean, a 95% confidence interval and n; cells with fewer than ``min_n`` examples are grey.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats as sps

from pipeline.core.errors import ConfigError
from pipeline.report.html import Section
from pipeline.report.style import fmt

LENGTH = "length (words)"
ALL = "all examples"
MAX_LEVELS = 12
MAX_AUTO_BINS = 8
GREY = "#d9d9d9"


@dataclass
class Slicing:
    """The examples with the two attributes used, and notes on any replacement made."""

    examples: pd.DataFrame
    rows: str
    cols: str
    notes: list[str] = field(default_factory=list)


def _labels(values: pd.Series) -> pd.Series:
    """Attribute values as strings (lists joined), missing ones as ``(none)``."""
    return values.map(lambda v: "(none)" if v is None or (isinstance(v, float) and pd.isna(v))
                      else ", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v))


MIN_TEXT_WORDS = 3.0


def text_field(examples: pd.DataFrame) -> str | None:
    """The string column with the most words on average (the source text; at least three
    words on average), or None."""
    best, words = None, MIN_TEXT_WORDS
    for col in examples.columns:
        if col == "id" or pd.api.types.is_numeric_dtype(examples[col]):
            continue
        lengths = examples[col].map(lambda v: len(v.split()) if isinstance(v, str) else np.nan)
        mean = float(lengths.mean()) if lengths.notna().any() else 0.0
        if mean >= words:
            best, words = col, mean
    return best


def length_buckets(words: pd.Series, bins: int) -> pd.Series:
    """Quantile buckets of word counts labelled by their ranges, e.g. ``120-250 words``."""
    edges = np.unique(np.quantile(words.to_numpy(dtype=float), np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return pd.Series([f"{int(words.iloc[0])} words"] * len(words), index=words.index)
    codes = np.clip(np.searchsorted(edges, words.to_numpy(dtype=float), side="right") - 1,
                    0, len(edges) - 2)
    names = [f"{int(np.ceil(lo)) if i else int(lo)}-{int(hi)} words"
             for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True))]
    return pd.Series([f"{c + 1}. {names[c]}" for c in codes], index=words.index)


def auto_bins(n: int, n_cols: int, min_n: int) -> int:
    """As many length bins (3 to 8) as keep about two ``min_n`` per cell on average."""
    fit = n // max(1, 2 * max(min_n, 1) * max(n_cols, 1))
    return int(min(MAX_AUTO_BINS, max(3, fit)))


def _other_attribute(examples: pd.DataFrame, skip: set[str]) -> str | None:
    for col in sorted(examples.columns):
        if col in skip or col == "id":
            continue
        values = _labels(examples[col])
        if 2 <= values.nunique() <= MAX_LEVELS and values.nunique() < len(values):
            return col
    return None


def resolve(examples: pd.DataFrame, rows: str, cols: str, length_bins: int = 0,
            min_n: int = 5) -> Slicing | None:
    """Pick the slice attributes the examples support; None when no row attribute exists.

    ``rows="length"`` (or a row attribute the examples lack) gives length buckets of the
    longest text field: ``length_bins`` of them, or with 0 as many as :func:`auto_bins` allows.
    """
    frame, notes = examples.copy(), []
    text = text_field(frame)
    if cols not in frame.columns:
        other = _other_attribute(frame, {rows, text or ""})
        notes.append(f"the examples have no {cols!r}, so the columns are "
                     + (f"{other!r}" if other else "all examples together"))
        cols = other or ALL
        if other is None:
            frame[ALL] = ALL
    bins = length_bins or auto_bins(len(frame), _labels(frame[cols]).nunique(), min_n)
    if rows == "length" or rows not in frame.columns:
        if text is None:
            return None
        words = frame[text].map(lambda v: len(v.split()) if isinstance(v, str) else 0)
        frame[LENGTH] = length_buckets(words, bins)
        why = "" if rows == "length" else f"the examples have no {rows!r}, so "
        notes.insert(0, f"{why}the rows are {bins} length buckets of {text!r} (quantiles of "
                        "its word count)")
        rows = LENGTH
    elif text is not None and bins > _labels(frame[rows]).nunique():
        notes.append(f"the data allow finer length bins: report.slices.rows=length gives {bins} "
                     f"quantile buckets of {text!r} (report.slices.length_bins sets the number)")
    return Slicing(frame, rows, cols, notes)


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


def half_widths(scores: pd.DataFrame, examples: pd.DataFrame, rows: str, cols: str,
                metric: str, level: float = 0.95) -> pd.DataFrame:
    """Half-width of the t-interval of the mean per slice (NaN below two examples)."""
    merged = scores[["id", metric]].merge(examples[["id", rows, cols]].assign(
        **{rows: _labels(examples[rows]), cols: _labels(examples[cols])}), on="id")
    grouped = merged.groupby([rows, cols])[metric]
    n, sd = grouped.count(), grouped.std(ddof=1)
    t = sps.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
    half = pd.Series(np.where(n > 1, t * sd / np.sqrt(n), np.nan), index=n.index)
    return half.unstack(cols)


def _heatmap(means: pd.DataFrame, counts: pd.DataFrame, half: pd.DataFrame, metric: str,
             min_n: int) -> go.Figure:
    m, c = means.to_numpy(dtype=float), counts.reindex_like(means).fillna(0).to_numpy()
    h = half.reindex_like(means).to_numpy(dtype=float)
    low = c < min_n
    text = [[("" if c[i, j] == 0 else
              f"{fmt(m[i, j], 3)}<br>±{fmt(h[i, j], 3) if np.isfinite(h[i, j]) else '?'}"
              f"<br>n={int(c[i, j])}") for j in range(m.shape[1])] for i in range(m.shape[0])]
    x, y = [str(v) for v in means.columns], [str(v) for v in means.index]
    fig = go.Figure()
    if (low & (c > 0)).any():
        fig.add_trace(go.Heatmap(z=np.where(low & (c > 0), 0.0, np.nan), x=x, y=y, text=text,
                                 texttemplate="%{text}", colorscale=[[0, GREY], [1, GREY]],
                                 showscale=False, name=f"n < {min_n}",
                                 hovertemplate="%{y} x %{x}<br>%{text}<br>(too few examples)"
                                               "<extra></extra>"))
    fig.add_trace(go.Heatmap(z=np.where(low, np.nan, m), x=x, y=y, text=text,
                             texttemplate="%{text}", colorscale="RdYlGn",
                             colorbar={"title": f"mean {metric}"},
                             hovertemplate="%{y} x %{x}<br>%{text}<extra></extra>"))
    return fig


def slice_section(scores: pd.DataFrame, slicing: Slicing, metric: str, label: str,
                  min_n: int = 5) -> Section:
    """A heatmap of mean ``metric`` per slice (95% CI, n; grey below ``min_n``) and a reading."""
    rows, cols, examples = slicing.rows, slicing.cols, slicing.examples
    means, counts = slice_table(scores, examples, rows, cols, metric)
    half = half_widths(scores, examples, rows, cols, metric)
    fig = _heatmap(means, counts, half, metric, min_n)
    fig.update_layout(title=f"{label}: mean {metric} by {rows} x {cols} (± 95% CI; grey: "
                            f"n < {min_n})", xaxis_title=cols, yaxis_title=rows,
                      height=max(340, 60 * len(means) + 160))
    flat = pd.DataFrame({"mean": means.stack(), "n": counts.stack(),
                         "half": half.stack()}).dropna(subset=["mean"])
    solid = flat[flat["n"] >= min_n]
    notes = "".join(f" Note: {n}." for n in slicing.notes)
    overall = float(scores[metric].mean())
    if solid.empty:
        reading = (f"{int(flat['n'].sum())} examples in {len(flat)} slices (mean "
                   f"{fmt(overall)}); no slice has {min_n} examples, so none is compared.")
        return Section(f"Slices: {metric} by {rows} x {cols}", reading + notes, [fig])
    best, worst = solid["mean"].idxmax(), solid["mean"].idxmin()

    def desc(key: tuple) -> str:
        r = solid.loc[key]
        return (f"{rows}={key[0]}, {cols}={key[1]} ({fmt(r['mean'])} ± "
                f"{fmt(r['half'])}, n={int(r['n'])})")

    reading = (f"Across {int(flat['n'].sum())} examples in {len(flat)} slices (mean "
               f"{fmt(overall)}), {label} is strongest on {desc(best)} and weakest on "
               f"{desc(worst)}, a gap of {fmt(solid.loc[best, 'mean'] - solid.loc[worst, 'mean'])}"
               f" (slices with at least {min_n} examples; {len(flat) - len(solid)} smaller "
               "slice(s) are grey).")
    return Section(f"Slices: {metric} by {rows} x {cols}", reading + notes, [fig])
