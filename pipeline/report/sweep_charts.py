"""Sections about the whole sweep, built from ``model_comparison.csv`` and ``tables/*.csv``.

Charts stay readable for many models: dots with CI whiskers show each model's best cell with
a dropdown over metrics; lines are split by family with a dropdown when there are more than
``MAX_LINES``. Score axes are scaled to the data (never forced to start at 0), every axis has
a title, and a chart that would show a single point is replaced by a sentence.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pipeline.aggregate.ranking import OVERALL, cell_label, metric_columns
from pipeline.aggregate.significance import p_text
from pipeline.aggregate.tables import efficiency, metric_correlations
from pipeline.report.html import Section, table_html
from pipeline.report.style import (
    DIVERGING,
    SEQUENTIAL,
    family_colors,
    fmt,
    model_colors,
    model_symbols,
    rgba,
)

MAX_LINES = 8
MAX_LABELS = 30


def best_cells(ranked: pd.DataFrame) -> pd.DataFrame:
    """Each model's best-ranked cell (``ranked`` is best first)."""
    return ranked.drop_duplicates("model", keep="first").reset_index(drop=True)


def top_models(ranked: pd.DataFrame, top_n: int) -> list[str]:
    """The ``top_n`` models whose best cell ranks highest."""
    return best_cells(ranked)["model"].head(top_n).astype(str).tolist()


def _shown(ranked: pd.DataFrame, top_n: int) -> str:
    n = ranked["model"].nunique()
    return "" if n <= top_n else (f" Only the top {top_n} of {n} models (by their best cell) "
                                  "are drawn (report.top_n); the leaderboard lists every cell.")


def _ci(frame: pd.DataFrame, col: str) -> list[str]:
    lo, hi = frame.get(f"{col}_ci_low"), frame.get(f"{col}_ci_high")
    if lo is None or hi is None:
        return [""] * len(frame)
    return [f"{fmt(a)}-{fmt(b)}" if pd.notna(a) else "" for a, b in zip(lo, hi, strict=True)]


def family_legend(fig: go.Figure, colors: dict[str, str], families: list[str]) -> None:
    """Legend entries only (no data): one per family, in its colour."""
    for fam in families:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=fam,
                                 marker={"color": colors[fam], "size": 10}, showlegend=True,
                                 legendgroup=fam, hoverinfo="skip"))


def leaderboard(ranked: pd.DataFrame, metrics: list[str]) -> Section:
    """The ranked cells as a sortable, filterable table with rank groups and intervals."""
    table = ranked[["rank", "rank_group", "model", "family", "params_b", "train_size",
                    OVERALL]].copy()
    table["overall 95% CI"] = _ci(ranked, OVERALL)
    table["rank range"] = [f"{a:g}-{b:g}" if pd.notna(a) else "" for a, b in
                           zip(ranked.get("rank_low", ranked["rank"]),
                               ranked.get("rank_high", ranked["rank"]), strict=True)]
    if "p_vs_next" in ranked:  # Holm-adjusted; "<=" marks a bound at the permutation floor
        bound = ranked.get("p_vs_next_bound", pd.Series(False, index=ranked.index))
        table["p_vs_next"] = [("" if pd.isna(p) else f"<={fmt(p, 3)}" if bool(b) else fmt(p, 3))
                              for p, b in zip(ranked["p_vs_next"], bound, strict=True)]
    for col in metrics:
        table[col] = ranked[col]
    empty = [c for c in table.columns if table[c].isna().all() or (table[c] == "").all()]
    table = table.drop(columns=empty)  # e.g. no CIs from a per-model table
    top = ranked.iloc[0]
    group = ranked[ranked["rank_group"] == top["rank_group"]]
    tested = f"{OVERALL}_ci_low" in ranked and ranked[f"{OVERALL}_ci_low"].notna().any()
    reading = (f"{len(ranked)} cells ({ranked['model'].nunique()} models). The top cell is "
               f"{cell_label(top['model'], top['train_size'])} with overall score "
               f"{fmt(top[OVERALL])}"
               + (f" (95% CI {fmt(top[f'{OVERALL}_ci_low'])}-{fmt(top[f'{OVERALL}_ci_high'])})"
                  if pd.notna(top.get(f"{OVERALL}_ci_low")) else "")
               + ("" if not tested else
                  f"; {len(group) - 1} other cell(s) share its rank group, so it is not "
                  "separable from " + ", ".join(cell_label(m, t) for m, t in
                                                 zip(group["model"][1:4],
                                                     group["train_size"][1:4], strict=True))
                  + (" ..." if len(group) > 4 else "")
                  if len(group) > 1 else "; it is alone in its rank group, significantly "
                  "ahead of the next cell")
               + ". Click a column header to sort; type in the box to filter rows."
               + ("" if tested else " No per-example scores: no CI, rank interval or test."))
    return Section("Leaderboard", reading, [table_html(table, filter_id="leaderboard")])


def task_bars(ranked: pd.DataFrame, task: str, metrics: list[str],
              weighted: list[str] | None = None, top_n: int = 30) -> Section:
    """Dots with 95% CI whiskers for each model's best cell on one task, one metric at a time
    (the axis is scaled to the data); a sentence instead when there is only one model.

    The metric shown first is the task's metric weighted in the overall score (if any).
    """
    first = next((m for m in metrics if m in (weighted or [])), metrics[0])
    metrics = [first, *[m for m in metrics if m != first]]
    best = best_cells(ranked).head(top_n).iloc[::-1]
    if len(best) < 2:
        row = best.iloc[0]
        cell = cell_label(row["model"], row["train_size"])
        return Section(f"Task: {task}", f"A single model ({cell}): {first} = "
                       f"{fmt(row[first])}; one point makes no chart.")
    colors, symbols = family_colors(ranked), model_symbols(ranked)
    labels = [cell_label(m, t) for m, t in zip(best["model"], best["train_size"], strict=True)]
    fig = go.Figure()
    for i, col in enumerate(metrics):
        err = None
        if f"{col}_ci_low" in best and best[f"{col}_ci_low"].notna().any():
            err = {"type": "data", "symmetric": False,
                   "array": best[f"{col}_ci_high"] - best[col],
                   "arrayminus": best[col] - best[f"{col}_ci_low"]}
        fig.add_trace(go.Scatter(x=best[col], y=labels, mode="markers", name=col,
                                 visible=i == 0, error_x=err, showlegend=False,
                                 marker={"color": [colors[str(f)] for f in best["family"]],
                                         "symbol": [symbols[str(m)] for m in best["model"]],
                                         "size": 11},
                                 hovertemplate="%{y}: %{x:.4f}<extra>" + col + "</extra>"))
    families = sorted(best["family"].astype(str).unique())
    family_legend(fig, colors, families)
    n_leg = len(families)
    buttons = [{"label": col.removeprefix(f"{task}_"), "method": "update",
                "args": [{"visible": [j == i for j in range(len(metrics))] + [True] * n_leg},
                         {"xaxis.title.text": col}]} for i, col in enumerate(metrics)]
    has_ci = any(tr.error_x is not None and tr.error_x.array is not None for tr in fig.data)
    fig.update_layout(title=f"{task}: each model's best cell (dot: mean; "
                            + ("whiskers: 95% CI; " if has_ci else "no CI available; ")
                            + "colour: family; axis scaled to the data)",
                      xaxis_title=metrics[0], yaxis_title="model@train size",
                      height=max(340, 24 * len(best) + 160),
                      updatemenus=[{"buttons": buttons, "x": 1, "y": 1.02,
                                    "xanchor": "right", "yanchor": "bottom"}],
                      legend={"title": {"text": "family"}}, margin={"l": 180})
    leaders = []
    for col in metrics:
        row = best.loc[best[col].idxmax()] if best[col].notna().any() else None
        if row is not None:
            leaders.append(f"{col.removeprefix(task + '_')}: {row['model']} "
                           f"({fmt(row[col])})")
    shown = ("the metric weighted in the overall score" if first in (weighted or [])
             else "the first metric")
    reading = (f"Best cell of each of {len(best)} models on {task}; leaders by metric: "
               + "; ".join(leaders) + f". The chart opens on {first} ({shown}); use the menu "
               "to switch metric." + _shown(ranked, top_n))
    return Section(f"Task: {task}", reading, [fig])


def perplexity(ranked: pd.DataFrame, top_n: int = 30) -> Section:
    """Perplexity per cell (log scale), or a note when no cell reports one."""
    present = ranked[ranked["perplexity"].notna()] if "perplexity" in ranked else ranked[:0]
    if present.empty:
        return Section("Perplexity", "No cell of this sweep reports a perplexity (the models "
                       "or predictions carry no token probabilities), so there is no chart.")
    present = present.sort_values("perplexity")
    if len(present) < 2:
        row = present.iloc[0]
        return Section("Perplexity", f"Only {cell_label(row['model'], row['train_size'])} "
                       f"reports a perplexity ({row['perplexity']:.4g}); one point makes no chart.")
    shown = present.head(top_n)
    labels = [cell_label(m, t) for m, t in zip(shown["model"], shown["train_size"],
                                               strict=True)]
    colors = family_colors(ranked)
    symbols = model_symbols(ranked)
    fig = go.Figure(go.Scatter(x=shown["perplexity"], y=labels, mode="markers", showlegend=False,
                               marker={"color": [colors[str(f)] for f in shown["family"]],
                                       "symbol": [symbols[str(m)] for m in shown["model"]],
                                       "size": 11},
                               hovertemplate="%{y}: %{x:.4g}<extra></extra>"))
    family_legend(fig, colors, sorted(shown["family"].astype(str).unique()))
    fig.update_layout(title="Perplexity (log scale, lower is better; colour: family)",
                      xaxis={"type": "log", "title": "perplexity (log scale)"},
                      yaxis={"autorange": "reversed", "title": "model@train size"},
                      margin={"l": 180},
                      legend={"title": {"text": "family"}},
                      height=max(340, 22 * len(shown) + 160))
    low, high = present.iloc[0], present.iloc[-1]
    reading = (f"{len(present)} of {len(ranked)} cells report perplexity, from "
               f"{low['perplexity']:.3g} ({cell_label(low['model'], low['train_size'])}) to "
               f"{high['perplexity']:.3g} ({cell_label(high['model'], high['train_size'])})."
               + ("" if len(present) <= top_n else
                  f" The {top_n} lowest are drawn (report.top_n)."))
    return Section("Perplexity", reading, [fig])


def _band_traces(rows: pd.DataFrame, color: str, symbol: str,
                 bands: bool = True) -> list[go.Scatter]:
    """A model's line (markers only for a single train size), with its CI band when asked
    and every point has a CI."""
    model = str(rows["model"].iloc[0])
    x = rows["train_size"].tolist()
    traces = []
    if (bands and len(rows) > 1 and f"{OVERALL}_ci_low" in rows
            and rows[f"{OVERALL}_ci_low"].notna().all()):
        traces = [go.Scatter(x=x, y=rows[f"{OVERALL}_ci_high"], mode="lines", line={"width": 0},
                             showlegend=False, hoverinfo="skip", legendgroup=model),
                  go.Scatter(x=x, y=rows[f"{OVERALL}_ci_low"], mode="lines", line={"width": 0},
                             fill="tonexty", fillcolor=rgba(color, 0.15), showlegend=False,
                             hoverinfo="skip", legendgroup=model)]
    traces.append(go.Scatter(x=x, y=rows[OVERALL], mode="lines+markers" if len(rows) > 1
                             else "markers", name=model, line={"color": color},
                             marker={"symbol": symbol, "size": 9}, legendgroup=model,
                             hovertemplate=model + " @ %{x}: %{y:.4f}<extra></extra>"))
    return traces


def scaling_chart(ranked: pd.DataFrame, top_n: int = 30) -> Section:
    """Overall score vs train size per model with CI bands; dropdown by family when crowded.
    A sentence instead when the sweep has a single train size."""
    sizes = sorted(ranked["train_size"].dropna().unique())
    if len(sizes) < 2:
        return Section("Score vs train size", "Every cell has train size "
                       f"{', '.join(fmt(s) for s in sizes) or 'unknown'}: with one train size "
                       "there is no trend to draw, so there is no chart.")
    fams = ranked.groupby("model")["family"].first().astype(str)
    models = sorted(top_models(ranked, top_n))
    colors, symbols = model_colors(ranked), model_symbols(ranked)
    fig, owner = go.Figure(), []
    per_family = pd.Series([fams[m] for m in models]).value_counts()
    bands = bool(per_family.max() <= MAX_LINES) if len(per_family) else True
    for model in models:
        rows = ranked[ranked["model"] == model].sort_values("train_size")
        for tr in _band_traces(rows, colors[model], symbols[model], bands):
            fig.add_trace(tr)
            owner.append(fams[model])
    families = sorted(set(owner))
    menu = len(models) > MAX_LINES and len(families) > 1
    if menu:
        first = str(fams[ranked.iloc[0]["model"]])
        for tr, fam in zip(fig.data, owner, strict=True):
            tr.visible = fam == first
        buttons = [{"label": f, "method": "restyle",
                    "args": [{"visible": [o == f for o in owner]}]} for f in families]
        fig.update_layout(updatemenus=[{"buttons": buttons, "x": 1, "y": 1.02,
                                        "xanchor": "right", "yanchor": "bottom",
                                        "active": families.index(first)}])
    drawn = any(tr.fill == "tonexty" for tr in fig.data)
    fig.update_layout(title="Overall score vs train size (" + ("band: 95% CI; " if drawn else "")
                            + "colour: a shade of the family colour and a marker per model)",
                      legend={"title": {"text": "model"}},
                      xaxis_title="train size", yaxis_title=OVERALL, height=480)
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
                   "improve with more data. analysis.md lists every step.")
    else:
        reading = "Each model has a single train size, so there is no trend to read."
    if menu:
        reading += " Use the menu to switch family."
    if bands and not drawn:
        reading += " No cell has a CI (no per-example scores), so no band is drawn."
    if not bands:
        reading += (f" CI bands are left out: a family has more than {MAX_LINES} models drawn, "
                    "and overlapping bands would hide the lines.")
    return Section("Score vs train size", reading + _shown(ranked, top_n), [fig])


def pareto_chart(ranked: pd.DataFrame) -> Section:
    """Overall score vs parameters (each model at its largest size) with the Pareto front."""
    eff = efficiency(ranked).dropna(subset=["params_b", OVERALL])
    if eff.empty:
        return Section("Score vs parameters", "No cell has a parameter count, so there is "
                       "no efficiency chart.")
    if len(eff) < 2:
        row = eff.iloc[0]
        return Section("Score vs parameters", f"Only {row['model']} has a parameter count "
                       f"({fmt(row['params_b'])}B, overall score {fmt(row[OVERALL])}); one "
                       "point makes no chart.")
    colors, symbols = family_colors(ranked), model_symbols(ranked)
    label_all = len(eff) <= MAX_LABELS
    # neighbours along the x axis get their labels above and below in turn: no overlap
    order = eff.sort_values(["params_b", OVERALL]).index
    where = pd.Series(["top center", "bottom center"] * len(order), dtype=object)[:len(order)]
    where.index = order
    fig = go.Figure()
    for fam, rows in eff.groupby("family"):
        text = [m if label_all or p else "" for m, p in zip(rows["model"], rows["pareto"],
                                                            strict=True)]
        fig.add_trace(go.Scatter(x=rows["params_b"], y=rows[OVERALL], mode="markers+text",
                                 name=str(fam), text=text, customdata=rows["model"],
                                 textposition=where[rows.index].tolist(), textfont={"size": 10},
                                 marker={"color": colors[str(fam)], "size": 11,
                                         "symbol": [symbols[str(m)] for m in rows["model"]]},
                                 hovertemplate="%{customdata}: %{y:.4f} at %{x:.3g}B"
                                               "<extra></extra>"))
    front = eff[eff["pareto"]].sort_values("params_b")
    if len(front) > 1:
        fig.add_trace(go.Scatter(x=front["params_b"], y=front[OVERALL], mode="lines",
                                 line={"shape": "hv", "dash": "dash", "color": "black"},
                                 name="Pareto front"))
    p = eff["params_b"].to_numpy(dtype=float)
    log = bool((p > 0).all() and p.max() / p.min() > 20)
    fig.update_layout(title="Overall score vs parameters (each model at its largest train size)",
                      xaxis={"title": "parameters (billions)", "type": "log" if log else "linear"},
                      yaxis_title=OVERALL, height=480, legend={"title": {"text": "family"}})
    reading = (f"{len(front)} of {len(eff)} models are on the Pareto front (no other model is "
               "both smaller and better): " + ", ".join(front["model"].astype(str)) + "."
               + ("" if label_all else " Only the models on the front are labelled."))
    return Section("Score vs parameters", reading, [fig])


def correlation_heatmap(ranked: pd.DataFrame, higher: Mapping[str, bool]) -> Section:
    """Spearman correlation of the metric columns over cells, each cell annotated."""
    long = metric_correlations(ranked, higher)
    metrics = metric_columns(ranked, higher)
    if long.empty or len(ranked) < 3:
        return Section("Metric correlations", "Fewer than three cells or two metrics: no "
                       "correlation to show.")
    mat = pd.DataFrame(np.eye(len(metrics)), index=metrics, columns=metrics)
    for rec in long.itertuples(index=False):
        mat.loc[rec.metric_a, rec.metric_b] = mat.loc[rec.metric_b, rec.metric_a] = rec.spearman
    z = mat.to_numpy(dtype=float)
    low = float(np.nanmin(z)) if np.isfinite(z).any() else -1.0
    # all positive: a sequential scale from the lowest value up, so differences show
    zmin, scale = (-1.0, DIVERGING) if low < 0 else (np.floor(low * 10) / 10, SEQUENTIAL)
    fig = go.Figure(go.Heatmap(z=z, x=metrics, y=metrics, zmin=zmin, zmax=1,
                               colorscale=scale,
                               colorbar={"title": f"Spearman<br>({zmin:g} to 1)"},
                               text=[[fmt(v, 2) for v in row] for row in z],
                               texttemplate="%{text}", textfont={"size": 9},
                               hovertemplate="%{y} vs %{x}: %{z:.3f}<extra></extra>"))
    side = max(520, 34 * len(metrics) + 260)
    fig.update_layout(title="Spearman correlation of metrics over cells", height=side,
                      xaxis_title="metric", yaxis={"autorange": "reversed", "title": "metric"},
                      margin={"l": 230, "b": 210})
    ok = long.dropna(subset=["spearman"])
    if ok.empty:
        return Section("Metric correlations", "No metric pair varies across cells.", [fig])
    low = ok.loc[ok["spearman"].idxmin()]
    reading = (f"Over {len(ranked)} cells, {float((ok['spearman'] > 0.8).mean()):.0%} of the "
               f"{len(ok)} metric pairs agree strongly (Spearman > 0.8); the least aligned pair "
               f"is {low['metric_a']} vs {low['metric_b']} ({fmt(low['spearman'], 3)}).")
    return Section("Metric correlations", reading, [fig])


def significance_matrix(pvalues: pd.DataFrame | None, alpha: float, ranked: pd.DataFrame,
                        max_cells: int = 30, tests: pd.DataFrame | None = None) -> Section:
    """Holm-adjusted pairwise p-values of the overall score among the top ``max_cells``;
    values ``tests`` (``tables/pairwise_tests.csv``) marks as bounds are shown as ``<=``."""
    title = "Significance matrix"
    if pvalues is None or pvalues.empty or "cell" not in pvalues:
        return Section(title, "tables/pairwise_pvalues.csv is missing; rerun "
                       "`python -m pipeline.aggregate` to create it.")
    mat = pvalues.set_index("cell")
    mat = mat.loc[:, [c for c in mat.columns if c in mat.index]]
    if mat.isna().all().all():
        return Section(title, "No pair of cells was tested: the cells have no per-example "
                              "scores (e.g. a per-model table was aggregated), and paired tests "
                              "need the scores of every test example.")
    order = [c for c in (cell_label(m, t) for m, t in zip(ranked["model"], ranked["train_size"],
                                                            strict=True)) if c in mat.index]
    shown = order[:max_cells]
    mat = mat.loc[shown, shown]
    vals = mat.to_numpy(dtype=float)
    annotate = len(shown) <= 20
    fig = go.Figure(go.Heatmap(z=vals, x=shown, y=shown, zmin=0, zmax=1,
                               colorscale=[[0, "#08306b"], [alpha, "#6baed6"], [1, "#f7fbff"]],
                               colorbar={"title": "p (Holm)"},
                               text=_matrix_text(vals, shown, tests) if annotate else None,
                               texttemplate="%{text}" if annotate else None,
                               textfont={"size": 9},
                               hovertemplate="%{y} vs %{x}: p = %{z:.4f}<extra></extra>"))
    fig.update_layout(title=f"Pairwise p-values of the overall score (Holm; dark: p < {alpha})",
                      height=max(480, 24 * len(mat) + 300),
                      yaxis={"autorange": "reversed", "dtick": 1, "title": "cell (rank order)"},
                      xaxis={"dtick": 1, "title": "cell (rank order)"},
                      margin={"l": 200, "b": 200})
    upper = vals[np.triu_indices_from(vals, k=1)]
    upper = upper[~np.isnan(upper)]
    adjacent = np.diag(vals, k=1)
    adjacent = adjacent[~np.isnan(adjacent)]
    reading = (f"{int((upper < alpha).sum())} of {len(upper)} tested cell pairs shown differ "
               f"significantly (adjusted p < {alpha}); {int((adjacent >= alpha).sum())} of "
               f"{len(adjacent)} neighbours in the ranking cannot be told apart.") if len(
        upper) else "Only one cell: no pair to test."
    if len(order) > len(shown):
        reading += (f" Only the top {len(shown)} of {len(order)} cells are drawn "
                    "(report.max_matrix); a full matrix would be unreadable.")
    return Section(title, reading, [fig])


def _matrix_text(vals: np.ndarray, labels: list[str],
                 tests: pd.DataFrame | None) -> list[list[str]]:
    """Cell texts of the p-value matrix: ``<=`` before values that are upper bounds."""
    bounds = set()
    if tests is not None and "p_bound" in tests:
        hit = tests[tests["p_bound"].astype(bool)]
        bounds = {frozenset(pair) for pair in zip(hit["cell_a"], hit["cell_b"], strict=True)}
    return [[("<=" if frozenset((a, b)) in bounds else "") + fmt(v, 3)
             for b, v in zip(labels, row, strict=True)] for a, row in zip(labels, vals,
                                                                          strict=True)]


def human_section(human: pd.DataFrame | None) -> Section | None:
    """Metric-vs-human correlations with their p-values and CIs (``tables/human_correlations``);
    None without human judgments."""
    if human is None or human.empty:
        return None
    table = human.sort_values(["aspect", "level", "kendall"], ascending=[True, True, False],
                              na_position="last")
    reading = ("Agreement of each metric with the human judgments: system level correlates "
               "per-system means across systems, summary level averages the per-example "
               "correlations across systems over examples; p-values and CIs as in "
               "tables/human_correlations.csv.")
    lines = []
    for (aspect, level), grp in table.dropna(subset=["kendall"]).groupby(["aspect", "level"],
                                                                         sort=True):
        top = grp.iloc[0]
        p = f", {p_text(top['kendall_p'])}" if pd.notna(top.get("kendall_p")) else ""
        lines.append(f"{aspect} ({level}): {top['metric']}, Kendall {fmt(top['kendall'], 3)}"
                     f"{p}, n = {int(top['n'])}")
    if lines:
        reading += " Highest Kendall per aspect and level: " + "; ".join(lines) + "."
    return Section("Agreement with human judgments", reading,
                   [table_html(table, filter_id="human")])
