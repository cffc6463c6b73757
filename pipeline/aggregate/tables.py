"""Summary tables computed from the ranked ``model_comparison`` table (one function each).

Every function takes the ranked table of :func:`pipeline.aggregate.ranking.rank_cells` (any
frame with ``model, family, params_b, train_size, overall_score`` and metric columns works)
and returns a new DataFrame; nothing is written here. Score differences are in the units of
the score (``delta`` of 0.01 = one point on a 0-1 scale).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats as sps

from pipeline.aggregate.human_stats import (
    METHODS,
    bootstrap_ci,
    rowwise_corr,
    summary_pvalue,
    system_pvalue,
)
from pipeline.aggregate.ranking import (
    OVERALL,
    PerExample,
    example_overall,
    metric_columns,
    order_best,
)

FACTORS = ["train_size", "params_b", "perplexity"]


def _has_values(frame: pd.DataFrame, col: str) -> bool:
    return col in frame.columns and frame[col].notna().any()


def _largest_size_rows(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per model: the cell at the model's largest train size."""
    return ranked.sort_values(["model", "train_size"]).groupby("model").tail(1)


def pareto_front(score: np.ndarray, params: np.ndarray) -> np.ndarray:
    """True where no other point has score >= and params <= with at least one strict.

    Points with a NaN score or NaN params are never on the front.
    """
    s, p = np.asarray(score, dtype=float), np.asarray(params, dtype=float)
    ok = ~(np.isnan(s) | np.isnan(p))
    ge, le = s[None, :] >= s[:, None], p[None, :] <= p[:, None]
    strict = (s[None, :] > s[:, None]) | (p[None, :] < p[:, None])
    dominated = (ge & le & strict & ok[None, :]).any(axis=1)
    return ok & ~dominated


def efficiency(ranked: pd.DataFrame) -> pd.DataFrame:
    """Per model, at its largest train size: score, params, score per billion, Pareto flag."""
    rows = _largest_size_rows(ranked)
    out = rows[["model", "family", "params_b", "train_size", OVERALL]].copy()
    out["score_per_billion"] = out[OVERALL] / out["params_b"].where(out["params_b"] > 0)
    out["pareto"] = pareto_front(out[OVERALL].to_numpy(), out["params_b"].to_numpy())
    return order_best(out, OVERALL, keep_missing=True).reset_index(drop=True)


def scaling(ranked: pd.DataFrame) -> pd.DataFrame:
    """Per family, model and train size: overall score and its change from the previous size.

    ``delta`` = score - score at the model's previous (smaller) train size, in score units;
    ``delta_pct`` = 100 * delta / previous score. The first size of a model has NaN.
    """
    out = ranked[["family", "model", "params_b", "train_size", OVERALL]].sort_values(
        ["family", "params_b", "model", "train_size"])  # missing params_b last
    prev = out.groupby("model")[OVERALL].shift(1)
    out = out.assign(delta=out[OVERALL] - prev)
    out["delta_pct"] = 100 * out["delta"] / prev.where(prev != 0)
    return out.reset_index(drop=True)


def train_size_summary(ranked: pd.DataFrame) -> pd.DataFrame:
    """Per train size: number of cells, mean/min/max overall score, best and worst model."""
    rows = []
    for size, grp in ranked.groupby("train_size"):
        best = order_best(grp, OVERALL)
        rows.append({
            "train_size": size, "n_cells": len(grp), "mean_score": grp[OVERALL].mean(),
            "best_model": best["model"].iloc[0] if len(best) else "",
            "max_score": grp[OVERALL].max(),
            "worst_model": best["model"].iloc[-1] if len(best) else "",
            "min_score": grp[OVERALL].min(),
        })
    return pd.DataFrame(rows, columns=["train_size", "n_cells", "mean_score", "best_model",
                                       "max_score", "worst_model", "min_score"])


def _report_metrics(ranked: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> list[str]:
    """overall_score, the metric columns, and perplexity when it has values."""
    extra = ["perplexity"] if _has_values(ranked, "perplexity") else []
    return [OVERALL, *metric_columns(ranked, higher_is_better), *extra]


def _direction(metric: str, higher_is_better: Mapping[str, bool]) -> bool:
    return True if metric == OVERALL else bool(higher_is_better[metric])


def family_comparison(ranked: pd.DataFrame,
                      higher_is_better: Mapping[str, bool]) -> pd.DataFrame:
    """Families side by side at the largest train size of the sweep (mean over their models).

    Rows are overall_score, each metric and perplexity; ``best_family`` respects direction
    (tied families are listed, comma-separated). Families with no cell at that size are absent.
    """
    if ranked.empty:
        return pd.DataFrame(columns=["metric", "higher_is_better", "best_family"])
    top = ranked[ranked["train_size"] == ranked["train_size"].max()]
    metrics = _report_metrics(ranked, higher_is_better)
    means = top.groupby("family")[metrics].mean().T  # one column per family, sorted
    rows = []
    for metric, vals in means.iterrows():
        higher = _direction(metric, higher_is_better)
        valid = vals.dropna().sort_index()
        top = valid.max() if higher else valid.min()  # NaN when no family has a value
        best = ", ".join(str(f) for f in valid.index[np.isclose(valid, top, rtol=0, atol=1e-12)])
        rows.append({"metric": metric, "higher_is_better": higher, **vals.to_dict(),
                     "best_family": best})
    return pd.DataFrame(rows)


def task_leaders(ranked: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> pd.DataFrame:
    """Best and worst cell per metric (overall, metrics, perplexity), respecting direction."""
    rows = []
    for metric in _report_metrics(ranked, higher_is_better):
        higher = _direction(metric, higher_is_better)
        order = order_best(ranked, metric, higher)
        if order.empty:
            continue
        best, worst = order.iloc[0], order.iloc[-1]
        rows.append({
            "metric": metric, "higher_is_better": higher, "n_cells": len(order),
            "best_model": best["model"], "best_train_size": best["train_size"],
            "best_value": best[metric], "worst_model": worst["model"],
            "worst_train_size": worst["train_size"], "worst_value": worst[metric],
            "spread": abs(best[metric] - worst[metric]),
        })
    return pd.DataFrame(rows, columns=["metric", "higher_is_better", "n_cells", "best_model",
                                       "best_train_size", "best_value", "worst_model",
                                       "worst_train_size", "worst_value", "spread"])


def correlate(x: pd.Series, y: pd.Series) -> dict[str, float | int | str]:
    """Pearson and Spearman (with p-values) on the rows where both are present.

    NaN with a ``note`` when fewer than 3 pairs remain or either side is constant.
    """
    both = pd.concat([x, y], axis=1).dropna().to_numpy(dtype=float)
    out: dict[str, float | int | str] = {
        "n": len(both), "pearson": np.nan, "pearson_p": np.nan, "spearman": np.nan,
        "spearman_p": np.nan, "note": ""}
    if len(both) < 3:
        out["note"] = f"n = {len(both)} < 3"
    elif (both.min(axis=0) == both.max(axis=0)).any():
        out["note"] = "constant values"
    else:
        pr, sr = sps.pearsonr(both[:, 0], both[:, 1]), sps.spearmanr(both[:, 0], both[:, 1])
        out.update(pearson=float(pr.statistic), pearson_p=float(pr.pvalue),
                   spearman=float(sr.statistic), spearman_p=float(sr.pvalue))
    return out


def factor_correlations(ranked: pd.DataFrame) -> pd.DataFrame:
    """Correlation of train_size, params_b and perplexity with the overall score, over cells."""
    rows = [{"factor": f, **correlate(ranked[f], ranked[OVERALL])}
            for f in FACTORS if f in ranked.columns]
    return pd.DataFrame(rows, columns=["factor", "n", "pearson", "pearson_p", "spearman",
                                       "spearman_p", "note"])


def metric_correlations(ranked: pd.DataFrame,
                        higher_is_better: Mapping[str, bool]) -> pd.DataFrame:
    """Pearson and Spearman between every pair of metric columns over cells (long format)."""
    metrics = metric_columns(ranked, higher_is_better)
    rows = []
    for i, a in enumerate(metrics):
        for b in metrics[i + 1:]:
            r = correlate(ranked[a], ranked[b])
            rows.append({"metric_a": a, "metric_b": b, "pearson": r["pearson"],
                         "spearman": r["spearman"], "n": r["n"], "note": r["note"]})
    return pd.DataFrame(rows, columns=["metric_a", "metric_b", "pearson", "spearman", "n",
                                       "note"])


def _fmt_params(p: float) -> str:
    return f"{p:g}B parameters"


def recommendations(ranked: pd.DataFrame, margin: float = 0.01,
                    alpha: float = 0.05) -> pd.DataFrame:
    """Best overall, best score per parameter, smallest model within ``margin`` of the best,
    lowest perplexity (when present); each with a reason computed from the data (``alpha`` is
    the level of the CIs in ``ranked``, used for wording)."""
    cols = ["choice", "model", "train_size", "criterion", "value", "reason"]
    scored = order_best(ranked, OVERALL)
    if scored.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    best = scored.iloc[0]
    n_top = int((ranked["rank_group"] == 1).sum()) if "rank_group" in ranked else 0
    ci = ""
    if pd.notna(best.get("overall_score_ci_low")):
        ci = (f" ({100 * (1 - alpha):g}% CI {best['overall_score_ci_low']:.4f}-"
              f"{best['overall_score_ci_high']:.4f})")
    group = (f"; {n_top} of {len(ranked)} cells are in rank group 1 (not significantly worse)"
             if n_top else "")
    rows.append(["best_overall", best["model"], best["train_size"], OVERALL, best[OVERALL],
                 f"Highest overall score {best[OVERALL]:.4f}{ci}{group}."])

    eff = efficiency(ranked).dropna(subset=["score_per_billion"])
    if not eff.empty:
        top = order_best(eff, "score_per_billion").iloc[0]
        rows.append(["best_score_per_billion", top["model"], top["train_size"],
                     "score_per_billion", top["score_per_billion"],
                     f"Overall score {top[OVERALL]:.4f} with {_fmt_params(top['params_b'])} "
                     f"at its largest train size {top['train_size']}: "
                     f"{top['score_per_billion']:.4f} per billion parameters, the most of "
                     f"{len(eff)} models with a known size."])

    near = scored[(scored[OVERALL] >= best[OVERALL] - margin - 1e-12) & scored["params_b"].notna()]
    if not near.empty:
        small = near.assign(_neg=-near[OVERALL]).sort_values(
            ["params_b", "_neg", "model", "train_size"]).iloc[0]
        if small["model"] == best["model"] and small["train_size"] == best["train_size"]:
            reason = (f"No smaller model scores within {margin:g} of the best; the best cell "
                      f"({_fmt_params(small['params_b'])}) is itself the smallest such choice.")
        else:
            reason = (f"Smallest model ({_fmt_params(small['params_b'])}) scoring within "
                      f"{margin:g} of the best: {small[OVERALL]:.4f} vs {best[OVERALL]:.4f} "
                      f"(gap {best[OVERALL] - small[OVERALL]:.4f}).")
        rows.append(["smallest_within_margin", small["model"], small["train_size"], "params_b",
                     small["params_b"], reason])

    if _has_values(ranked, "perplexity"):
        low = order_best(ranked, "perplexity", False).iloc[0]
        rank = int(low["rank"]) if "rank" in low and pd.notna(low["rank"]) else None
        where = f" (rank {rank} of {len(ranked)})" if rank else ""
        rows.append(["lowest_perplexity", low["model"], low["train_size"], "perplexity",
                     low["perplexity"],
                     f"Lowest perplexity {low['perplexity']:.4f}; its overall score is "
                     f"{low[OVERALL]:.4f}{where}."])
    return pd.DataFrame(rows, columns=cols)


HUMAN_COLUMNS = ["metric", "aspect", "level", "n", *METHODS, *(f"{m}_p" for m in METHODS),
                 *(f"{m}_ci_{e}" for m in METHODS for e in ("low", "high"))]


def human_correlations(per_example: PerExample, cells: pd.DataFrame, human: pd.DataFrame,
                       weights: Mapping[str, float] | None = None, n_boot: int = 1000,
                       seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """Metric-vs-human correlations at system and summary level (Pearson, Spearman, Kendall)
    with p-values and bootstrap CIs over documents (see :mod:`pipeline.aggregate.human_stats`).

    Per-example scores of the cells in ``cells`` are joined with ``human`` on
    (model, train_size, id). System level: correlate per-system means across systems
    (``n`` = systems). Summary level: for each id correlate across the systems that have it,
    then average over ids (``n`` = ids with a defined correlation). Metrics are the numeric
    per-example columns, plus the per-example overall score when ``weights`` allow it.
    """
    aspects = [c for c in human.columns if str(c).startswith("human_")]
    frames = []
    for model, size in zip(cells["model"], cells["train_size"], strict=True):
        frame = per_example.get((model, size))
        if frame is None:
            continue
        frame = frame.assign(model=model, train_size=size, id=frame["id"].astype(str))
        overall = example_overall(frame, weights or {})
        if overall is not None:  # an existing overall_score column is kept as it is
            frame[OVERALL] = overall
        frames.append(frame)
    if not frames or not aspects:
        return pd.DataFrame(columns=HUMAN_COLUMNS)
    keys = ["model", "train_size", "id"]
    scores = pd.concat(frames)
    joined = scores.merge(human.assign(id=human["id"].astype(str)), on=keys)
    metrics = [c for c in scores.columns if c not in keys and c not in aspects
               and pd.api.types.is_numeric_dtype(scores[c])]
    system = joined.assign(_sys=joined["model"] + "@" + joined["train_size"].astype(str))
    means = system.groupby("_sys")[metrics + aspects].mean()
    # dropna=False: every system gets a column, all-NaN ones too, so the matrices align
    wide = {c: system.pivot_table(index="id", columns="_sys", values=c,
                                  dropna=False).to_numpy(dtype=float)
            for c in metrics + aspects}
    rows = []
    for metric in metrics:
        for aspect in aspects:
            x, y = means[metric].to_numpy(dtype=float), means[aspect].to_numpy(dtype=float)
            row = {level: {"metric": metric, "aspect": aspect, "level": level}
                   for level in ("system", "summary")}
            for method in METHODS:
                r, n = rowwise_corr(x[None, :], y[None, :], method)
                row["system"].update({"n": int(n[0]), method: float(r[0]),
                                      f"{method}_p": system_pvalue(x, y, method)})
                per_doc, _ = rowwise_corr(wide[metric], wide[aspect], method)
                n_docs = int((~np.isnan(per_doc)).sum())
                row["summary"].update({"n": n_docs,
                                       method: float(np.nanmean(per_doc)) if n_docs else np.nan,
                                       f"{method}_p": summary_pvalue(per_doc)})
                ci = bootstrap_ci(wide[metric], wide[aspect], method, n_boot, seed, alpha)
                for level, (low, high) in ci.items():
                    row[level].update({f"{method}_ci_low": low, f"{method}_ci_high": high})
            rows.extend(row.values())
    return pd.DataFrame(rows, columns=HUMAN_COLUMNS)
