"""Sections about the whole sweep, built from ``model_comparison.csv`` and ``tables/*.csv``.

Charts stay readable for many models: bars show each model's best cell with a dropdown over
metrics; lines are split by family with a dropdown when there are more than ``MAX_LINES``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from pipeline.aggregate.ranking import OVERALL, cell_label, metric_columns
from pipeline.aggregate.tables import efficiency, metric_correlations
from pipeline.report.html import Section, table_html

MAX_LINES = 8
PALETTE = px.colors.qualitative.Plotly


def family_colors(ranked: pd.DataFrame) -> dict[str, str]:
    """One colour per family (stable: families in sorted order)."""
    fams = sorted(ranked["family"].astype(str).unique())
    return {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(fams)}


def best_cells(ranked: pd.DataFrame) -> pd.DataFrame:
    """Each model's best-ranked cell (``ranked`` is best first)."""
    return ranked.drop_duplicates("model", keep="first").reset_index(drop=True)


def _ci(frame: pd.DataFrame, col: str) -> str:
    lo, hi = frame.get(f"{col}_ci_low"), frame.get(f"{col}_ci_high")
    if lo is None or hi is None:
        return ""
    return [f"[{a:.4f}, {b:.4f}]" if pd.notna(a) else "" for a, b in zip(lo, hi, strict=True)]


def leaderboard(ranked: pd.DataFrame, metrics: list[str]) -> Section:
    """The ranked cells as a sortable table with rank groups and confidence intervals."""
    table = ranked[["rank", "rank_group", "model", "family", "params_b", "train_size",
                    OVERALL]].copy()
    table["overall 95% CI"] = _ci(ranked, OVERALL)
    table["rank range"] = [f"{a:g}-{b:g}" if pd.notna(a) else "" for a, b in
                           zip(ranked.get("rank_low", ranked["rank"]),
                               ranked.get("rank_high", ranked["rank"]), strict=True)]
    if "p_vs_next" in ranked:
        table["p_vs_next"] = ranked["p_vs_next"]
    for col in metrics:
        table[col] = ranked[col]
    top = ranked.iloc[0]
    group = ranked[ranked["rank_group"] == top["rank_group"]]
    reading = (f"{len(ranked)} cells ({ranked['model'].nunique()} models). The top cell is "
               f"{cell_label(top['model'], top['train_size'])} with overall score "
               f"{top[OVERALL]:.4f}"
               + (f" (95% CI {top[f'{OVERALL}_ci_low']:.4f}-{top[f'{OVERALL}_ci_high']:.4f})"
                  if pd.notna(top.get(f"{OVERALL}_ci_low")) else "")
               + (f"; {len(group) - 1} other cell(s) share its rank group, so it is not "
                  "separable from " + ", ".join(cell_label(m, t) for m, t in
                                                 zip(group["model"][1:4],
                                                     group["train_size"][1:4], strict=True))
                  if len(group) > 1 else "; it is alone in its rank group, significantly "
                  "ahead of the next cell")
               + ". Click a column header to sort.")
    return Section("Leaderboard", reading, [table_html(table)])


def task_bars(ranked: pd.DataFrame, task: str, metrics: list[str]) -> Section:
    """Horizontal bars of each model's best cell on one task, one metric at a time."""
    best = best_cells(ranked).iloc[::-1]
    colors = family_colors(ranked)
    labels = [cell_label(m, t) for m, t in zip(best["model"], best["train_size"], strict=True)]
    fig = go.Figure()
    for i, col in enumerate(metrics):
        err = None
        if f"{col}_ci_low" in best:
            err = {"type": "data", "symmetric": False,
                   "array": best[f"{col}_ci_high"] - best[col],
                   "arrayminus": best[col] - best[f"{col}_ci_low"]}
        fig.add_trace(go.Bar(x=best[col], y=labels, orientation="h", name=col, visible=i == 0,
                             error_x=err, marker_color=[colors[f] for f in best["family"]],
                             hovertemplate="%{y}: %{x:.4f}<extra>" + col + "</extra>"))
    buttons = [{"label": col.removeprefix(f"{task}_"), "method": "update",
                "args": [{"visible": [j == i for j in range(len(metrics))]},
                         {"xaxis.title.text": col}]} for i, col in enumerate(metrics)]
    fig.update_layout(title=f"{task}: each model's best cell (95% CI; colour = family)",
                      xaxis_title=metrics[0], height=max(320, 24 * len(best) + 140),
                      updatemenus=[{"buttons": buttons, "x": 1, "y": 1.02,
                                    "xanchor": "right", "yanchor": "bottom"}], showlegend=False,
                      margin={"l": 180})
    leaders = []
    for col in metrics:
        row = best.loc[best[col].idxmax()] if best[col].notna().any() else None
        if row is not None:
            leaders.append(f"{col.removeprefix(task + '_')}: {row['model']} "
                           f"({row[col]:.4f})")
    reading = (f"Best cell of each of {len(best)} models on {task}; leaders by metric: "
               + "; ".join(leaders) + ". Use the menu to switch metric.")
    return Section(f"Task: {task}", reading, [fig])


def perplexity(ranked: pd.DataFrame) -> Section:
    """Perplexity per cell (log scale), or a note when no cell reports one."""
    present = ranked[ranked["perplexity"].notna()] if "perplexity" in ranked else ranked[:0]
    if present.empty:
        return Section("Perplexity", "No cell of this sweep reports a perplexity (the models "
                       "or predictions carry no token probabilities), so there is no chart.")
    present = present.sort_values("perplexity")
    labels = [cell_label(m, t) for m, t in zip(present["model"], present["train_size"],
                                               strict=True)]
    colors = family_colors(ranked)
    fig = go.Figure(go.Bar(x=present["perplexity"], y=labels, orientation="h",
                           marker_color=[colors[f] for f in present["family"]]))
    fig.update_layout(title="Perplexity (log scale, lower is better)", xaxis_type="log",
                      yaxis={"autorange": "reversed"}, margin={"l": 180},
                      height=max(320, 22 * len(present) + 140))
    low, high = present.iloc[0], present.iloc[-1]
    reading = (f"{len(present)} of {len(ranked)} cells report perplexity, from "
               f"{low['perplexity']:.3g} ({labels[0]}) to {high['perplexity']:.3g} "
               f"({labels[-1]}).")
    return Section("Perplexity", reading, [fig])


def _band_traces(rows: pd.DataFrame, color: str) -> list[go.Scatter]:
    model = rows["model"].iloc[0]
    x = rows["train_size"].tolist()
    traces = []
    if rows[f"{OVERALL}_ci_low"].notna().all():
        traces = [go.Scatter(x=x, y=rows[f"{OVERALL}_ci_high"], mode="lines", line={"width": 0},
                             showlegend=False, hoverinfo="skip", legendgroup=model),
                  go.Scatter(x=x, y=rows[f"{OVERALL}_ci_low"], mode="lines", line={"width": 0},
                             fill="tonexty", fillcolor=_rgba(color, 0.2), showlegend=False,
                             hoverinfo="skip", legendgroup=model)]
    traces.append(go.Scatter(x=x, y=rows[OVERALL], mode="lines+markers", name=model,
                             line={"color": color}, legendgroup=model,
                             hovertemplate=model + " @ %{x}: %{y:.4f}<extra></extra>"))
    return traces


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[:2], 16)}, {int(h[2:4], 16)}, {int(h[4:], 16)}, {alpha})"


def scaling_chart(ranked: pd.DataFrame) -> Section:
    """Overall score vs train size per model with CI bands; dropdown by family when crowded."""
    fams = ranked.groupby("model")["family"].first()
    models = sorted(fams.index)
    fig, owner = go.Figure(), []
    for i, model in enumerate(models):
        rows = ranked[ranked["model"] == model].sort_values("train_size")
        color = PALETTE[i % len(PALETTE)]
        for tr in _band_traces(rows, color):
            fig.add_trace(tr)
            owner.append(fams[model])
    families = sorted(set(owner))
    if len(models) > MAX_LINES and len(families) > 1:
        first = str(fams[ranked.iloc[0]["model"]])
        for tr, fam in zip(fig.data, owner, strict=True):
            tr.visible = fam == first
        buttons = [{"label": f, "method": "restyle",
                    "args": [{"visible": [o == f for o in owner]}]} for f in families]
        fig.update_layout(updatemenus=[{"buttons": buttons, "x": 1, "y": 1.02,
                                        "xanchor": "right", "yanchor": "bottom",
                                        "active": families.index(first)}])
    fig.update_layout(title="Overall score vs train size (band: 95% CI)",
                      xaxis_title="train size", yaxis_title=OVERALL, height=460)
    gains = []
    for model in models:
        rows = ranked[ranked["model"] == model].sort_values("train_size")
        if len(rows) > 1:
            gains.append((rows[OVERALL].iloc[-1] - rows[OVERALL].iloc[0], model,
                          rows["train_size"].iloc[0], rows["train_size"].iloc[-1]))
    if gains:
        gains.sort()
        g_hi, g_lo = gains[-1], gains[0]
        reading = (f"From its smallest to its largest train size, {g_hi[1]} gains the most "
                   f"({g_hi[0]:+.4f}, {g_hi[2]} to {g_hi[3]}) and {g_lo[1]} the least "
                   f"({g_lo[0]:+.4f}); {sum(g[0] > 0 for g in gains)} of {len(gains)} models "
                   "improve with more data.")
    else:
        reading = "Each model has a single train size, so there is no trend to read."
    if len(models) > MAX_LINES and len(families) > 1:
        reading += " Use the menu to switch family."
    return Section("Score vs train size", reading, [fig])


def pareto_chart(ranked: pd.DataFrame) -> Section:
    """Overall score vs parameters (each model at its largest size) with the Pareto front."""
    eff = efficiency(ranked).dropna(subset=["params_b", OVERALL])
    if eff.empty:
        return Section("Score vs parameters", "No cell has a parameter count, so there is "
                       "no efficiency chart.")
    colors = family_colors(ranked)
    fig = go.Figure()
    for fam, rows in eff.groupby("family"):
        fig.add_trace(go.Scatter(x=rows["params_b"], y=rows[OVERALL], mode="markers",
                                 name=str(fam), text=rows["model"],
                                 marker={"color": colors[str(fam)], "size": 10},
                                 hovertemplate="%{text}: %{y:.4f} at %{x:.3g}B<extra></extra>"))
    front = eff[eff["pareto"]].sort_values("params_b")
    fig.add_trace(go.Scatter(x=front["params_b"], y=front[OVERALL], mode="lines",
                             line={"shape": "hv", "dash": "dash", "color": "black"},
                             name="Pareto front"))
    p = eff["params_b"].to_numpy(dtype=float)
    log = bool((p > 0).all() and p.max() / p.min() > 20)
    fig.update_layout(title="Overall score vs parameters (each model at its largest train size)",
                      xaxis={"title": "parameters (billions)", "type": "log" if log else "linear"},
                      yaxis_title=OVERALL, height=460)
    reading = (f"{len(front)} of {len(eff)} models are on the Pareto front (no other model is "
               "both smaller and better): " + ", ".join(front["model"].astype(str)) + ".")
    return Section("Score vs parameters", reading, [fig])


def correlation_heatmap(ranked: pd.DataFrame, higher: Mapping[str, bool]) -> Section:
    """Spearman correlation of the metric columns over cells."""
    long = metric_correlations(ranked, higher)
    metrics = metric_columns(ranked, higher)
    if long.empty or len(ranked) < 3:
        return Section("Metric correlations", "Fewer than three cells or two metrics: no "
                       "correlation to show.")
    mat = pd.DataFrame(np.eye(len(metrics)), index=metrics, columns=metrics)
    for rec in long.itertuples(index=False):
        mat.loc[rec.metric_a, rec.metric_b] = mat.loc[rec.metric_b, rec.metric_a] = rec.spearman
    fig = go.Figure(go.Heatmap(z=mat.to_numpy(), x=metrics, y=metrics, zmin=-1, zmax=1,
                               colorscale="RdBu", hovertemplate="%{y} vs %{x}: %{z:.3f}"
                               "<extra></extra>"))
    fig.update_layout(title="Spearman correlation of metrics over cells", height=620,
                      yaxis={"autorange": "reversed"}, margin={"l": 220, "b": 200})
    ok = long.dropna(subset=["spearman"])
    if ok.empty:
        return Section("Metric correlations", "No metric pair varies across cells.", [fig])
    low = ok.loc[ok["spearman"].idxmin()]
    reading = (f"Over {len(ranked)} cells, {float((ok['spearman'] > 0.8).mean()):.0%} of the "
               f"{len(ok)} metric pairs agree strongly (Spearman > 0.8); the least aligned pair "
               f"is {low['metric_a']} vs {low['metric_b']} ({low['spearman']:.3f}).")
    return Section("Metric correlations", reading, [fig])


def significance_matrix(pvalues: pd.DataFrame | None, alpha: float) -> Section:
    """Holm-adjusted pairwise p-values of the overall score (cells in rank order)."""
    if pvalues is None or pvalues.empty:
        return Section("Significance matrix", "tables/pairwise_pvalues.csv is missing; rerun "
                       "`python -m pipeline.aggregate` to create it.")
    mat = pvalues.set_index("cell")
    fig = go.Figure(go.Heatmap(z=mat.to_numpy(dtype=float), x=list(mat.columns),
                               y=list(mat.index), zmin=0, zmax=1,
                               colorscale=[[0, "#08306b"], [alpha, "#6baed6"], [1, "#f7fbff"]],
                               colorbar={"title": "p"},
                               hovertemplate="%{y} vs %{x}: p = %{z:.4f}<extra></extra>"))
    fig.update_layout(title=f"Pairwise p-values of the overall score (Holm; dark: p < {alpha})",
                      height=max(460, 20 * len(mat) + 300),
                      yaxis={"autorange": "reversed", "dtick": 1}, xaxis={"dtick": 1},
                      margin={"l": 200, "b": 200})
    vals = mat.to_numpy(dtype=float)
    upper = vals[np.triu_indices_from(vals, k=1)]
    upper = upper[~np.isnan(upper)]
    adjacent = np.diag(vals, k=1)
    reading = (f"{int((upper < alpha).sum())} of {len(upper)} cell pairs differ significantly "
               f"(adjusted p < {alpha}); {int((adjacent >= alpha).sum())} of {len(adjacent)} "
               "neighbours in the ranking cannot be told apart.") if len(upper) else (
        "Only one cell: no pair to test.")
    return Section("Significance matrix", reading, [fig])
