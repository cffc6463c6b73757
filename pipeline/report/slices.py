"""Slice heatmaps: one metric of one cell broken down by two example attributes.

The attributes adapt to the data: a configured attribute the records lack is replaced (rows:
length buckets computed from the longest text field; columns: another attribute with a few
distinct values, else one column of all examples), and the reading says so. Every cell shows
the mean, a 95% confidence interval and n. Colour shows only what the data support: a
blue-orange scale centred on the cell's overall mean colours the slices whose 95% CI lies
above (blue) or below (orange) that mean; slices whose CI covers it are pale, and slices with
fewer than ``min_n`` examples are grey and not compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats as sps

from pipeline.core.errors import ConfigError
from pipeline.report.html import Section
from pipeline.report.style import DIVERGING, fmt

LENGTH = "length (words)"
ALL = "all examples"
MAX_LEVELS = 12
MAX_AUTO_BINS = 8
GREY = "#d9d9d9"
PALE = "#f4f4f4"  # the CI covers the overall mean: no supported difference


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


def _flat(value: float, mask: np.ndarray) -> np.ndarray:
    return np.where(mask, value, np.nan)


def _heatmap(means: pd.DataFrame, counts: pd.DataFrame, half: pd.DataFrame, metric: str,
             min_n: int, overall: float) -> go.Figure:
    m, c = means.to_numpy(dtype=float), counts.reindex_like(means).fillna(0).to_numpy()
    h = half.reindex_like(means).to_numpy(dtype=float)
    low = c < min_n
    supported = ~low & np.isfinite(h) & (np.abs(m - overall) > h)
    text = [[("" if c[i, j] == 0 else
              f"{fmt(m[i, j], 3)}<br>±{fmt(h[i, j], 3) if np.isfinite(h[i, j]) else '?'}"
              f"<br>n={int(c[i, j])}") for j in range(m.shape[1])] for i in range(m.shape[0])]
    x, y = [str(v) for v in means.columns], [str(v) for v in means.index]
    fig = go.Figure()
    for mask, color, why in ((low & (c > 0), GREY, "too few examples"),
                             (~low & ~supported & (c > 0), PALE, "95% CI covers the mean")):
        if mask.any():
            fig.add_trace(go.Heatmap(z=_flat(0.0, mask), x=x, y=y, text=text,
                                     texttemplate="%{text}", colorscale=[[0, color], [1, color]],
                                     showscale=False, name=why, textfont={"color": "#777"},
                                     hovertemplate="%{y} x %{x}<br>%{text}<br>(" + why + ")"
                                                   "<extra></extra>"))
    # symmetric around the mean and at least as wide as each slice's deviation plus its CI,
    # so a difference the CI barely supports never takes the strongest colour
    span = float(np.nanmax(np.where(supported, np.abs(m - overall) + h, np.nan))
                 ) if supported.any() else 1.0
    fig.add_trace(go.Heatmap(z=np.where(supported, m, np.nan), x=x, y=y, text=text,
                             texttemplate="%{text}", colorscale=DIVERGING,
                             zmin=overall - span, zmax=overall + span,
                             colorbar={"title": f"mean {metric}<br>(centre: {fmt(overall, 3)})"},
                             hovertemplate="%{y} x %{x}<br>%{text}<extra></extra>"))
    return fig


def slice_section(scores: pd.DataFrame, slicing: Slicing, metric: str, label: str,
                  min_n: int = 5) -> Section:
    """A heatmap of mean ``metric`` per slice (95% CI, n; grey below ``min_n``) and a reading."""
    rows, cols, examples = slicing.rows, slicing.cols, slicing.examples
    means, counts = slice_table(scores, examples, rows, cols, metric)
    half = half_widths(scores, examples, rows, cols, metric)
    overall = float(scores[metric].mean())
    fig = _heatmap(means, counts, half, metric, min_n, overall)
    fig.update_layout(title=f"{label}: mean {metric} by {rows} x {cols}<br><sub>± 95% CI and n"
                            f" per slice; blue/orange: CI above/below the mean "
                            f"{fmt(overall, 3)}; pale: CI covers it; grey: n < {min_n}</sub>",
                      xaxis_title=cols, yaxis_title=rows,
                      height=max(340, 60 * len(means) + 160))
    flat = pd.DataFrame({"mean": means.stack(), "n": counts.stack(),
                         "half": half.stack()}).dropna(subset=["mean"])
    solid = flat[flat["n"] >= min_n]
    notes = "".join(f" Note: {n}." for n in slicing.notes)
    if solid.empty:
        reading = (f"{int(flat['n'].sum())} examples in {len(flat)} slices (mean "
                   f"{fmt(overall)}); no slice has {min_n} examples, so none is compared.")
        return Section(f"Slices: {metric} by {rows} x {cols}", reading + notes, [fig])
    def desc(key: tuple) -> str:
        r = solid.loc[key]
        return (f"{rows}={key[0]}, {cols}={key[1]} ({fmt(r['mean'])} ± "
                f"{fmt(r['half'])}, n={int(r['n'])})")

    dev = solid["mean"] - overall
    above = dev[dev > solid["half"]].sort_values(ascending=False).index
    below = dev[-dev > solid["half"]].sort_values().index
    reading = (f"Across {int(flat['n'].sum())} examples in {len(flat)} slices (mean "
               f"{fmt(overall)}; {len(solid)} slices with at least {min_n} examples are "
               f"compared, {len(flat) - len(solid)} smaller ones are grey), ")
    if not len(above) and not len(below):
        reading += (f"no slice's 95% CI excludes the mean, so the data support no difference "
                    f"between slices for {label}; the pale cells differ by chance as far as "
                    "these examples can tell.")
    else:
        parts = [f"above the mean: {'; '.join(desc(k) for k in above)}" if len(above) else "",
                 f"below the mean: {'; '.join(desc(k) for k in below)}" if len(below) else ""]
        reading += (f"{len(above) + len(below)} slice(s) differ from the mean beyond their 95% "
                    f"CI ({', '.join(p for p in parts if p)}); the other "
                    f"{len(solid) - len(above) - len(below)} are pale: their CI covers the mean.")
    if len(solid) >= 10:
        reading += (f" Each slice is tested on its own: of {len(solid)} slices about "
                    f"{0.05 * len(solid):.1f} would fall outside their 95% CI by chance alone.")
    return Section(f"Slices: {metric} by {rows} x {cols}", reading + notes, [fig])
