"""Learning curves: each model's fitted power law with its CI band over the measured points,
from ``tables/learning_curves.csv`` and ``tables/learning_curve_bands.csv``
(:mod:`pipeline.aggregate.learning_curves`); nothing is refitted here.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from pipeline.aggregate.learning_curves import BAND_COLUMNS, MIN_SIZES, PHRASES
from pipeline.aggregate.ranking import OVERALL
from pipeline.report.html import Section, table_html
from pipeline.report.style import fmt, rgba

# Okabe-Ito, without its yellow (too light on white): safe for the common colour blindnesses
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
TITLE = "Learning curves"


def _model_traces(curve: pd.Series, band: pd.DataFrame, points: pd.DataFrame,
                  color: str) -> list[go.Scatter]:
    model = str(curve["model"])
    group = {"legendgroup": model}
    x = band["train_size"]
    traces = []
    if band["ci_low"].notna().all():
        traces += [go.Scatter(x=x, y=band["ci_high"], mode="lines", line={"width": 0},
                              showlegend=False, hoverinfo="skip", **group),
                   go.Scatter(x=x, y=band["ci_low"], mode="lines", line={"width": 0},
                              fill="tonexty", fillcolor=rgba(color, 0.18), showlegend=False,
                              hoverinfo="skip", **group)]
    inside = band[~band["extrapolated"].astype(bool)]
    traces += [go.Scatter(x=x, y=band["predicted_score"], mode="lines", showlegend=False,
                          line={"color": color, "dash": "dot"}, hoverinfo="skip", **group),
               go.Scatter(x=inside["train_size"], y=inside["predicted_score"], mode="lines",
                          name=model, line={"color": color},
                          hovertemplate=model + " fit @ %{x}: %{y:.4f}<extra></extra>", **group)]
    err = None
    lo, hi = f"{OVERALL}_ci_low", f"{OVERALL}_ci_high"
    if lo in points and points[lo].notna().all():
        err = {"type": "data", "symmetric": False, "array": points[hi] - points[OVERALL],
               "arrayminus": points[OVERALL] - points[lo]}
    traces.append(go.Scatter(x=points["train_size"], y=points[OVERALL], mode="markers",
                             marker={"color": color, "size": 8}, error_y=err,
                             showlegend=False, **group,
                             hovertemplate=model + " measured @ %{x}: %{y:.4f}"
                                                   "<extra></extra>"))
    traces.append(go.Scatter(x=[curve["at_train_size"]], y=[curve["predicted_score"]],
                             mode="markers", showlegend=False, **group,
                             marker={"color": color, "size": 11, "symbol": "diamond-open"},
                             hovertemplate=f"{model} predicted @ %{{x}}: %{{y:.4f}} "
                                           f"({curve['verdict']})<extra></extra>"))
    return traces


def _table(fitted: pd.DataFrame) -> str:
    def ci(low: pd.Series, high: pd.Series) -> list[str]:
        return [f"{fmt(a)} to {fmt(b)}" if pd.notna(a) else "" for a, b in
                zip(low, high, strict=True)]
    table = pd.DataFrame({
        "model": fitted["model"], "measured sizes": [
            f"{int(a):,} to {int(b):,} ({int(n)})" for a, b, n in zip(fitted["smallest_train_size"],
                                                       fitted["largest_train_size"],
                                                       fitted["n_sizes"], strict=True)],
        "at train size": [f"{int(n):,}" + (" (extrapolated)" if e else "") for n, e in
                          zip(fitted["at_train_size"], fitted["extrapolated"], strict=True)],
        "predicted": fitted["predicted_score"],
        "predicted CI": ci(fitted["predicted_ci_low"], fitted["predicted_ci_high"]),
        "gain": fitted["gain"], "gain CI": ci(fitted["gain_ci_low"], fitted["gain_ci_high"]),
        "needed train size": fitted["needed_train_size"], "verdict": fitted["verdict"]})
    return table_html(table.drop(columns=[c for c in table if (table[c] == "").all()]))


def learning_sections(ranked: pd.DataFrame, curves: pd.DataFrame | None,
                      bands: pd.DataFrame | None, alpha: float = 0.05) -> list[Section]:
    """One section with the fitted models' curves (band: bootstrap CI; dotted: extrapolation;
    diamond: the prediction at the target size; the best :data:`PALETTE`-many predicted
    models are drawn) and the table of every curve. No
    section without ``tables/learning_curves.csv``; a one-line one when no model was fitted."""
    if curves is None or curves.empty:
        return []
    fitted = curves[curves["verdict"].notna()]
    if fitted.empty:
        return [Section(TITLE, f"No model has {MIN_SIZES} train sizes above 0, so no learning "
                               "curve is fitted.")]
    if bands is None:  # an older aggregate: points and predictions, no curves
        bands = pd.DataFrame(columns=BAND_COLUMNS)
    fig = go.Figure()
    for i, curve in enumerate(fitted.head(len(PALETTE)).itertuples(index=False)):
        row = pd.Series(curve._asdict())
        model = row["model"]
        points = ranked[(ranked["model"] == model) & (ranked["train_size"] > 0)]
        for trace in _model_traces(row, bands[bands["model"] == model], points,
                                   PALETTE[i % len(PALETTE)]):
            fig.add_trace(trace)
    has_ci = fitted["predicted_ci_low"].notna().any()
    level = f"{1 - alpha:.0%}"
    fig.update_layout(title="Overall score vs train size: fitted a - b·n^-c ("
                            + (f"band: {level} bootstrap CI; " if has_ci else "")
                            + "dotted: extrapolation; diamond: prediction)",
                      xaxis_title="train size (examples)", yaxis_title=OVERALL, height=500,
                      legend={"title": {"text": "model"}})
    counts = fitted["verdict"].value_counts()
    summary = "; ".join(f"{PHRASES[v]} for "
                        + ", ".join(fitted.loc[fitted["verdict"] == v, "model"].astype(str))
                        for v in PHRASES if counts.get(v))
    reading = (f"A saturating power law fitted to the overall score of each of {len(fitted)} "
               f"model(s) with at least {MIN_SIZES} train sizes above 0: {summary}. "
               + (f"A verdict needs the whole {level} CI of the gain above (worth it) or below "
                  "(not worth it) aggregate.min_effect."
                  if has_ci else "No per-example scores: no CI, the verdict is read from the "
                                 "point estimate.")
               + " Beyond the measured sizes the curve is an extrapolation.")
    if len(fitted) > len(PALETTE):
        reading += (f" The chart draws the {len(PALETTE)} models with the highest predicted "
                    f"score (one colour each); the table lists all {len(fitted)}.")
    skipped = curves[curves["verdict"].isna()]
    if not skipped.empty:
        reading += " Not fitted: " + ", ".join(skipped["model"].astype(str)) + "."
    return [Section(TITLE, reading, [fig, _table(fitted)])]
