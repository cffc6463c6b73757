"""The BERTScore suite of one model: per-example precision, recall and F1 as report sections.

``bertscore_sections(scores, prefix)`` takes a frame with ``id`` and ``<prefix>_precision``,
``<prefix>_recall``, ``<prefix>_f1`` columns and returns :class:`Section` objects whose
readings are computed from the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from scipy.stats import gaussian_kde

from pipeline.core.errors import ConfigError, UserError
from pipeline.report.html import Section, table_html
from pipeline.report.style import DIVERGING, SEQUENTIAL

DEFAULT_BANDS: dict[str, float] = {"Poor": 0.0, "Fair": 0.7, "Good": 0.8, "Excellent": 0.9}
COMPONENTS = ("precision", "recall", "f1")
BAND_SHADES = ("#fde725", "#7ad151", "#22a884", "#2a788e", "#414487", "#440154")  # viridis
F1_RANGE = (0.5, 1.0)
COLORS = {"precision": "#0072b2", "recall": "#e69f00", "f1": "#009e73"}  # Okabe-Ito


@dataclass(frozen=True)
class Trend:
    """Least-squares line ``y = slope * x + intercept`` and its R^2."""

    slope: float
    intercept: float
    r2: float

    @property
    def equation(self) -> str:
        sign = "+" if self.intercept >= 0 else "-"
        return f"R = {self.slope:.3f}·P {sign} {abs(self.intercept):.3f} (R² = {self.r2:.3f})"


def trend_line(x: np.ndarray, y: np.ndarray) -> Trend | None:
    """Fit ``y`` on ``x``; None with fewer than two distinct x values."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(x)) < 2:
        return None
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / total if total > 0 else 1.0
    return Trend(float(slope), float(intercept), r2)


def sorted_bands(bands: Mapping[str, float] | None) -> list[tuple[str, float]]:
    """``(name, lower bound)`` from lowest to highest; the defaults when None."""
    items = sorted((bands or DEFAULT_BANDS).items(), key=lambda kv: kv[1])
    if not items:
        raise ConfigError("report bands: at least one band is needed")
    return [(str(k), float(v)) for k, v in items]


def band_of(value: float, bands: Mapping[str, float] | None = None) -> str:
    """The band ``value`` falls in (the highest band whose lower bound it reaches)."""
    ordered = sorted_bands(bands)
    name = ordered[0][0]
    for band, low in ordered:
        if value >= low:
            name = band
    return name


def band_distances(value: float, bands: Mapping[str, float] | None = None) -> dict[str, float]:
    """``value - threshold`` for every band threshold above the lowest band's bound."""
    return {name: value - low for name, low in sorted_bands(bands)[1:]}


def _cols(prefix: str) -> dict[str, str]:
    return {c: f"{prefix}_{c}" for c in COMPONENTS}


def _check(scores: pd.DataFrame, prefix: str) -> pd.DataFrame:
    cols = _cols(prefix)
    missing = [c for c in ["id", *cols.values()] if c not in scores.columns]
    if missing:
        raise UserError(f"BERTScore suite: scores lack column(s) {missing}")
    frame = scores[["id", *cols.values()]].dropna()
    if frame.empty:
        raise UserError(f"BERTScore suite: no example has {prefix} scores")
    return frame.rename(columns={v: k for k, v in cols.items()}).reset_index(drop=True)


def _grid(values: np.ndarray, ids: list[str]) -> tuple[list, list]:
    """Values and ids laid out row by row in a near-square grid (padded with None)."""
    width = max(1, math.ceil(math.sqrt(len(values))))
    pad = width * math.ceil(len(values) / width) - len(values)
    z = [*values.tolist(), *([None] * pad)]
    text = [*ids, *([""] * pad)]
    return ([z[i:i + width] for i in range(0, len(z), width)],
            [text[i:i + width] for i in range(0, len(text), width)])


def _heatmap(frame: pd.DataFrame, label: str, bands: list[tuple[str, float]],
             f1_range: tuple[float, float]) -> Section:
    f1 = frame["f1"].to_numpy()
    z, text = _grid(f1, frame["id"].astype(str).tolist())
    lo, hi = f1_range
    fig = go.Figure(go.Heatmap(z=z, text=text, colorscale=SEQUENTIAL, zmin=lo, zmax=hi,
                               colorbar={"title": f"F1<br>(fixed {lo:g}-{hi:g})"},
                               hovertemplate="%{text}<br>F1 %{z:.4f}<extra></extra>"))
    fig.update_layout(title=f"{label}: per-example F1 (row by row, in dataset order; colour "
                            f"scale fixed at {lo:g}-{hi:g} for every grid)",
                      yaxis={"autorange": "reversed", "showticklabels": False,
                             "title": "grid row (examples in dataset order)"},
                      xaxis={"showticklabels": False, "title": "grid column"}, height=420)
    low, high = frame.loc[frame["f1"].idxmin()], frame.loc[frame["f1"].idxmax()]
    second = bands[1] if len(bands) > 1 else bands[0]
    below = float((frame["f1"] < second[1]).mean())
    reading = (f"{len(frame)} examples, mean F1 {f1.mean():.4f}. The weakest is {low['id']} "
               f"(F1 {low['f1']:.4f}), the strongest {high['id']} ({high['f1']:.4f}); "
               f"{below:.0%} of the examples fall below the {second[0]} threshold "
               f"({second[1]:g}). Colours use the fixed scale {lo:g}-{hi:g} "
               "(report.f1_range), so one colour means one value in every grid; values "
               "outside it take the end colour.")
    return Section(f"{label}: per-example F1 map", reading, [fig])


def _scatter(frame: pd.DataFrame, label: str) -> Section:
    p, r = frame["precision"].to_numpy(), frame["recall"].to_numpy()
    lo, hi = float(min(p.min(), r.min())), float(max(p.max(), r.max()))
    fig = go.Figure(go.Scatter(
        x=p, y=r, mode="markers", text=frame["id"], name="examples",
        marker={"color": frame["f1"], "colorscale": "Viridis", "showscale": True,
                "colorbar": {"title": "F1"}},
        hovertemplate="%{text}<br>P %{x:.4f}<br>R %{y:.4f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="P = R",
                             line={"dash": "dash", "color": "grey"}))
    trend = trend_line(p, r)
    if trend is not None:
        xs = np.array([p.min(), p.max()])
        fig.add_trace(go.Scatter(x=xs, y=trend.slope * xs + trend.intercept, mode="lines",
                                 name=f"trend: {trend.equation}", line={"color": "#d55e00"}))
    fig.update_layout(title=f"{label}: precision vs recall", xaxis_title="precision",
                      yaxis_title="recall", legend={"orientation": "h", "y": -0.2})
    above = float((r > p).mean())
    fit = (f"the fitted trend is {trend.equation}." if trend is not None
           else "all examples share one precision value, so no trend line is fitted.")
    reading = (f"Recall exceeds precision on {above:.0%} of the examples (mean recall "
               f"{r.mean():.4f} vs precision {p.mean():.4f}); {fit}")
    return Section(f"{label}: precision vs recall", reading, [fig])


def _components(frame: pd.DataFrame, label: str) -> Section:
    means = {c: float(frame[c].mean()) for c in COMPONENTS}
    stds = {c: float(frame[c].std(ddof=0)) for c in COMPONENTS}
    ordered = frame.sort_values("f1").reset_index(drop=True)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.3, 0.7],
                        subplot_titles=("average (± 1 sd)", "per example, sorted by F1"))
    fig.add_trace(go.Bar(x=list(COMPONENTS), y=list(means.values()),
                         error_y={"type": "data", "array": list(stds.values())},
                         marker_color=[COLORS[c] for c in COMPONENTS], showlegend=False),
                  row=1, col=1)
    for c in COMPONENTS:
        fig.add_trace(go.Scatter(x=ordered.index, y=ordered[c], mode="markers", name=c,
                                 text=ordered["id"], marker={"color": COLORS[c], "size": 5},
                                 hovertemplate="%{text}: %{y:.4f}<extra>" + c + "</extra>"),
                      row=1, col=2)
    fig.update_layout(title=f"{label}: precision, recall and F1")
    fig.update_xaxes(title_text="component", row=1, col=1)
    fig.update_xaxes(title_text="example (sorted by F1)", row=1, col=2)
    fig.update_yaxes(title_text="BERTScore")
    gap = means["recall"] - means["precision"]
    side = "recall" if gap > 0 else "precision"
    reading = (f"Average precision {means['precision']:.4f}, recall {means['recall']:.4f}, "
               f"F1 {means['f1']:.4f}; {side} is higher by {abs(gap):.4f}. F1 varies with a "
               f"standard deviation of {stds['f1']:.4f} across examples.")
    return Section(f"{label}: average and per-example components", reading, [fig])


def _correlation(frame: pd.DataFrame, label: str) -> Section:
    corr = frame[list(COMPONENTS)].corr()
    fig = go.Figure(go.Heatmap(z=corr.to_numpy(), x=list(COMPONENTS), y=list(COMPONENTS),
                               zmin=-1, zmax=1, colorscale=DIVERGING,
                               text=corr.round(3).to_numpy(),
                               texttemplate="%{text}"))
    fig.update_layout(title=f"{label}: Pearson correlation of the components", height=380,
                      xaxis_title="component",
                      yaxis={"autorange": "reversed", "title": "component"})
    pr = corr.loc["precision", "recall"]
    reading = ("Precision and recall correlate at r = "
               + ("n/a (constant values)" if pd.isna(pr) else f"{pr:.3f}")
               + f" across examples; F1 follows precision at r = "
               f"{corr.loc['f1', 'precision']:.3f} and recall at r = "
               f"{corr.loc['f1', 'recall']:.3f}.")
    return Section(f"{label}: component correlation", reading, [fig])


def _spread(frame: pd.DataFrame, label: str) -> Section:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("box", "violin"), shared_yaxes=True)
    for c in COMPONENTS:
        fig.add_trace(go.Box(y=frame[c], name=c, text=frame["id"], boxpoints="outliers",
                             marker_color=COLORS[c]), row=1, col=1)
        fig.add_trace(go.Violin(y=frame[c], name=c, box_visible=True, meanline_visible=True,
                                marker_color=COLORS[c]), row=1, col=2)
    fig.update_layout(title=f"{label}: box and violin plots", showlegend=False, height=420)
    fig.update_xaxes(title_text="component")
    fig.update_yaxes(title_text="BERTScore")
    q1, q3 = frame["f1"].quantile([0.25, 0.75])
    iqr = q3 - q1
    low_out = frame[frame["f1"] < q1 - 1.5 * iqr]
    reading = (f"The middle half of the examples has F1 between {q1:.4f} and {q3:.4f} "
               f"(IQR {iqr:.4f}); {len(low_out)} example(s) lie more than 1.5 IQR below the "
               "lower quartile"
               + (f" (e.g. {', '.join(low_out['id'].astype(str).head(3))})."
                  if len(low_out) else "."))
    return Section(f"{label}: spread (box and violin)", reading, [fig])


def _density(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if len(values) < 2 or np.std(values) == 0:
        return None
    xs = np.linspace(values.min(), values.max(), 200)
    return xs, gaussian_kde(values)(xs)


def _histograms(frame: pd.DataFrame, label: str) -> Section:
    fig = make_subplots(rows=1, cols=3, subplot_titles=list(COMPONENTS))
    skews = []
    for i, c in enumerate(COMPONENTS, start=1):
        v = frame[c].to_numpy()
        fig.add_trace(go.Histogram(x=v, histnorm="probability density", name=c,
                                   marker_color=COLORS[c], opacity=0.6, showlegend=False),
                      row=1, col=i)
        dens = _density(v)
        if dens is not None:
            fig.add_trace(go.Scatter(x=dens[0], y=dens[1], mode="lines", showlegend=False,
                                     line={"color": "black"}, name=f"{c} density"),
                          row=1, col=i)
        mean, median = float(v.mean()), float(np.median(v))
        fig.add_vline(x=mean, line={"color": "#d55e00"}, row=1, col=i)
        fig.add_vline(x=median, line={"color": "#0072b2", "dash": "dot"}, row=1, col=i)
        skews.append((c, mean - median))
    fig.update_layout(title=f"{label}: distributions (solid: mean, dotted: median, "
                            "black: kernel density)", height=380)
    fig.update_xaxes(title_text="BERTScore")
    fig.update_yaxes(title_text="density")
    words = [f"{c} mean {'above' if d > 0 else 'below' if d < 0 else 'equal to'} median by "
             f"{abs(d):.4f}" for c, d in skews]
    gap, spread = skews[2][1], float(frame["f1"].std(ddof=0))
    tail = ("F1 is roughly symmetric (mean and median within a tenth of a standard deviation)"
            if abs(gap) <= 0.1 * spread
            else f"a tail of {'low' if gap < 0 else 'high'} scores pulls the F1 mean "
                 f"{'down' if gap < 0 else 'up'}")
    return Section(f"{label}: distributions",
                   "; ".join(words) + f": {tail}.", [fig])


def _bands(frame: pd.DataFrame, label: str, bands: list[tuple[str, float]]) -> Section:
    mapping = dict(bands)
    means = {c: float(frame[c].mean()) for c in COMPONENTS}
    fig = go.Figure(go.Bar(x=list(COMPONENTS), y=list(means.values()),
                           marker_color=[COLORS[c] for c in COMPONENTS],
                           text=[f"{v:.3f} ({band_of(v, mapping)})" for v in means.values()],
                           textposition="outside"))
    top = max(bands[-1][1], max(means.values()))
    edges = [low for _, low in bands[1:]] + [max(1.0, top)]
    for (name, low), high, shade in zip(bands, edges, BAND_SHADES, strict=False):
        fig.add_hrect(y0=low, y1=high, fillcolor=shade, opacity=0.15, line_width=0,
                      layer="below")
        # labels in the right margin, at each band's middle: they never cover the bars
        fig.add_annotation(x=1.01, xref="paper", xanchor="left", y=(low + min(high, 1.05)) / 2,
                           text=f"{name} ≥ {low:g}", showarrow=False, font={"size": 11})
    fig.update_layout(title=f"{label}: average scores against quality bands",
                      xaxis_title="component",
                      yaxis={"range": [min(0.0, *means.values()), min(1.05, top + 0.1)],
                             "title": "mean BERTScore"},
                      height=420, showlegend=False, margin={"r": 140})
    rows = [{"component": c, "mean": v, "band": band_of(v, mapping),
             **{f"to {name}": d for name, d in band_distances(v, mapping).items()}}
            for c, v in means.items()]
    counts = frame["f1"].map(lambda v: band_of(v, mapping)).value_counts()
    f1 = means["f1"]
    band = band_of(f1, mapping)
    higher = [(n, lo) for n, lo in bands if lo > f1]
    step = (f"{higher[0][1] - f1:.4f} short of {higher[0][0]} ({higher[0][1]:g})" if higher
            else "already in the top band")
    split = ", ".join(f"{counts.get(n, 0)} {n}" for n, _ in bands)
    reading = (f"Mean F1 {f1:.4f} is in the {band} band, {step}. Per example: {split}.")
    return Section(f"{label}: quality bands", reading,
                   [fig, table_html(pd.DataFrame(rows), sortable=False)])


def bertscore_sections(scores: pd.DataFrame, prefix: str,
                       bands: Mapping[str, float] | None = None,
                       title: str = "", f1_range: tuple[float, float] = F1_RANGE
                       ) -> list[Section]:
    """Every BERTScore chart of one model as report sections.

    ``bands`` maps a band name to its lower bound (default: Poor 0, Fair 0.7, Good 0.8,
    Excellent 0.9); ``title`` prefixes each section title (default: the prefix);
    ``f1_range`` is the fixed colour scale of the per-example F1 grid.
    """
    frame = _check(scores, prefix)
    ordered = sorted_bands(bands)
    label = title or prefix.replace("_", " ")
    return [_heatmap(frame, label, ordered, f1_range), _scatter(frame, label),
            _components(frame, label), _correlation(frame, label), _spread(frame, label),
            _histograms(frame, label), _bands(frame, label, ordered)]
