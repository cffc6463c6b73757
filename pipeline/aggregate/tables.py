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

from pipeline.aggregate import stats
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
    cell_label,
    example_overall,
    metric_columns,
    order_best,
)

FACTORS = ["train_size", "params_b", "perplexity"]
MIN_N_FOR_P = 5  # correlations on fewer points carry their n and no p-value


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

    NaN with a ``note`` when fewer than 3 pairs remain or either side is constant; with fewer
    than ``MIN_N_FOR_P`` pairs the coefficients come without p-values (noted).
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
        out.update(pearson=float(pr.statistic), spearman=float(sr.statistic))
        if len(both) < MIN_N_FOR_P:
            out["note"] = f"n = {len(both)} < {MIN_N_FOR_P}: no p-value"
        else:
            out.update(pearson_p=float(pr.pvalue), spearman_p=float(sr.pvalue))
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


RECOMMENDATION_COLUMNS = ["choice", "model", "train_size", "params_b", "n_examples", OVERALL,
                          "gap_to_best", "gap_ci_low", "gap_ci_high", "gap_upper_one_sided",
                          "non_inferior", "params_saved_b", "train_size_saved", "reason"]


def cost_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Cheapest first: fewest parameters (unknown last), then smallest training set, then
    higher score, then model name."""
    return frame.assign(_neg=-frame[OVERALL]).sort_values(
        ["params_b", "train_size", "_neg", "model"]).drop(columns="_neg")


def gaps_to_best(x: np.ndarray, n_boot: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> pd.DataFrame:
    """Per column of ``x`` (per-example overall scores, column 0 = the best cell): the paired
    bootstrap of ``mean(best - cell)`` over the examples both have: its two-sided ``1 - alpha``
    percentile CI (``gap_ci_low/high``) and one-sided ``1 - alpha`` upper bound
    (``gap_upper_one_sided``). NaN where a cell shares no example with the best."""
    x = np.asarray(x, dtype=float)
    d = x[:, :1] - x
    means = stats.bootstrap_means(d, n_boot, seed)
    empty = np.isnan(d).all(axis=0)
    means[:, empty] = 0.0  # silence all-NaN warnings; overwritten below
    low, high, upper = np.nanquantile(means, [alpha / 2, 1 - alpha / 2, 1 - alpha], axis=0)
    out = pd.DataFrame({"gap_ci_low": low, "gap_ci_high": high, "gap_upper_one_sided": upper})
    out[empty] = np.nan
    return out


def _params(p: float) -> str:
    return "unknown size" if pd.isna(p) else f"{p:.3g}B parameters"


def recommendations(ranked: pd.DataFrame, x: np.ndarray | None, min_effect: float,
                    n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """The cell to ship, by one documented rule, with its runner-up and the best cell.

    Rule: the cheapest cell (:func:`cost_order`) shown **non-inferior** to the best cell: the
    one-sided ``1 - alpha`` upper bound of ``best - cell`` (paired bootstrap over test
    examples, :func:`gaps_to_best`) is below ``min_effect``. If no cell is (no per-example
    scores, or ``min_effect`` 0), the best cell. Runner-up: the next non-inferior cell in cost
    order, else the best-scoring cell other than the choice. ``x`` holds the per-example
    overall scores of ``ranked``'s rows (its order, best first); None: none exist. Rows
    ``ship``, ``runner_up`` and ``best_overall`` (columns ``RECOMMENDATION_COLUMNS``).
    """
    scored_rows = ranked[OVERALL].notna().to_numpy()
    scored = ranked[scored_rows].reset_index(drop=True)
    if scored.empty:
        return pd.DataFrame(columns=RECOMMENDATION_COLUMNS)
    best = scored.iloc[0]
    gaps = gaps_to_best(x[:, scored_rows] if x is not None else np.full((0, len(scored)), np.nan),
                        n_boot, seed, alpha)
    table = pd.concat([scored, gaps], axis=1).assign(
        gap_to_best=best[OVERALL] - scored[OVERALL])
    table["non_inferior"] = table["gap_upper_one_sided"] < min_effect  # NaN: False
    table.loc[0, "non_inferior"] = True  # the best cell is itself the benchmark
    best = table.iloc[0]
    ordered = cost_order(table)
    passing = ordered[ordered["non_inferior"].astype(bool)]
    ship = passing.iloc[0]
    rest = passing.iloc[1:]
    runner = (rest.iloc[0] if len(rest) else
              next((r for _, r in table.iterrows() if r.name != ship.name), None))
    tied = table[np.isclose(table[OVERALL], best[OVERALL], rtol=0, atol=1e-12)]
    tested = bool(table["gap_upper_one_sided"].iloc[1:].notna().any())
    rows = [_recommendation("ship", ship, best, _ship_reason(ship, best, tied, tested,
                                                             min_effect, alpha))]
    if runner is not None:
        rows.append(_recommendation("runner_up", runner, best, _runner_reason(
            runner, min_effect, alpha)))
    ties = ", ".join(cell_label(r.model, r.train_size) for r in tied.iloc[1:].itertuples())
    rows.append(_recommendation("best_overall", best, best, (
        f"Highest overall score {best[OVERALL]:.4f}"
        + (f", tied with {ties}" if ties else "") + ".")))
    return pd.DataFrame(rows)  # each row's keys in RECOMMENDATION_COLUMNS order


def _recommendation(choice: str, row: pd.Series, best: pd.Series, reason: str) -> dict:
    return {"choice": choice, **{c: row.get(c, np.nan) for c in RECOMMENDATION_COLUMNS[1:-3]},
            "params_saved_b": best["params_b"] - row["params_b"],
            "train_size_saved": int(best["train_size"]) - int(row["train_size"]),
            "reason": reason}


def _gap(row: pd.Series, alpha: float) -> str:
    text = f"{row['gap_to_best']:.4f} below the best"
    if pd.notna(row["gap_ci_low"]):
        text += (f" ({100 * (1 - alpha):g}% CI {row['gap_ci_low']:.4f} to "
                 f"{row['gap_ci_high']:.4f}; one-sided upper bound "
                 f"{row['gap_upper_one_sided']:.4f})")
    return text


def _ship_reason(ship: pd.Series, best: pd.Series, tied: pd.DataFrame, tested: bool,
                 min_effect: float, alpha: float) -> str:
    cell = cell_label(ship["model"], ship["train_size"])
    lead = cell_label(best["model"], best["train_size"])
    if cell != lead:
        saved = [f"{best['params_b'] - ship['params_b']:.3g}B parameters"
                 if pd.notna(best["params_b"]) and pd.notna(ship["params_b"])
                 and best["params_b"] > ship["params_b"] else "",
                 f"{int(best['train_size']) - int(ship['train_size'])} training examples"
                 if best["train_size"] > ship["train_size"] else ""]
        saves = " and ".join(s for s in saved if s) or "nothing measurable"
        return (f"The cheapest cell shown to be no worse than the best ({lead}) by more than "
                f"min_effect {min_effect:g}: overall {ship[OVERALL]:.4f}, {_gap(ship, alpha)}. "
                f"It saves {saves} ({_params(ship['params_b'])}, train size "
                f"{ship['train_size']}).")
    if len(tied) > 1:
        others = ", ".join(cell_label(r.model, r.train_size)
                           for r in tied.iloc[1:].itertuples())
        head = f"Ties for the best overall score ({ship[OVERALL]:.4f}) with {others}"
    else:
        head = f"The best overall score ({ship[OVERALL]:.4f})"
    if not tested:
        return (f"{head}. No cheaper cell could be tested for non-inferiority (no per-example "
                "scores), so the best cell is recommended.")
    return (f"{head}; no cheaper cell is shown to be within min_effect {min_effect:g} of it "
            f"(one-sided {100 * (1 - alpha):g}% bound), so the best cell is recommended.")


def _runner_reason(runner: pd.Series, min_effect: float, alpha: float) -> str:
    text = (f"Overall {runner[OVERALL]:.4f} ({_params(runner['params_b'])}, train size "
            f"{runner['train_size']})")
    if runner["gap_to_best"] > 0:
        text += f", {_gap(runner, alpha)}"
    verdict = ("non-inferior to the best (within min_effect " f"{min_effect:g})"
               if runner["non_inferior"] else
               "not shown to be within min_effect " f"{min_effect:g} of the best")
    return f"{text}; {verdict}."


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
                                      f"{method}_p": system_pvalue(x, y, method)
                                      if n[0] >= MIN_N_FOR_P else np.nan})
                per_doc, _ = rowwise_corr(wide[metric], wide[aspect], method)
                n_docs = int((~np.isnan(per_doc)).sum())
                row["summary"].update({"n": n_docs,
                                       method: float(np.nanmean(per_doc)) if n_docs else np.nan,
                                       f"{method}_p": summary_pvalue(per_doc)
                                       if n_docs >= MIN_N_FOR_P else np.nan})
                ci = bootstrap_ci(wide[metric], wide[aspect], method, n_boot, seed, alpha)
                for level, (low, high) in ci.items():
                    row[level].update({f"{method}_ci_low": low, f"{method}_ci_high": high})
            rows.extend(row.values())
    return pd.DataFrame(rows, columns=HUMAN_COLUMNS)
