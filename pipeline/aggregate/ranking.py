"""Rank (model, train_size) cells by overall score, with CIs, rank groups and paired tests.

Conventions (shared by every function here):

* overall_score = sum(w * m) / sum(w) over the weighted metric columns; a cell missing a
  weighted metric has no overall score and is ranked last. An ``overall_score`` column already
  in ``cells`` is used as given. Per example the same combination of per-example columns is
  used (or a per-example ``overall_score`` column when present).
* Per-example frames are aligned on the union of their ``id`` values; a missing example is NaN
  and left out (pairwise) of every mean and paired test.
* Paired tests: the sign-flip permutation test on continuous metrics, McNemar's test when the
  per-example values of both cells are all 0/1. ``n_boot`` is also the number of permutations.
* ``p_vs_next``, rank groups and the significance table use raw (unadjusted) p-values; the
  all-pairs matrix of :func:`pairwise_matrix` is Holm-adjusted by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from pipeline.aggregate import stats
from pipeline.core.errors import ConfigError, UserError

KEY_COLUMNS = ["model", "family", "params_b", "train_size"]
NON_METRIC = {*KEY_COLUMNS, "perplexity", "overall_score"}
OVERALL = "overall_score"

PerExample = Mapping[tuple[str, int], pd.DataFrame]


def cell_label(model: str, train_size: int) -> str:
    """The display name of a cell, ``model@train_size``."""
    return f"{model}@{train_size}"


def metric_columns(frame: pd.DataFrame, higher_is_better: Mapping[str, bool]) -> list[str]:
    """Metric columns of a frame in frame order: those with a direction, except perplexity and
    overall_score (columns without a direction are ignored)."""
    return [c for c in frame.columns if c in higher_is_better and c not in NON_METRIC]


def validate_weights(weights: Mapping[str, float], higher_is_better: Mapping[str, bool]) -> None:
    """Raise ValueError unless every weighted metric is known, higher-is-better and w >= 0."""
    for col, w in weights.items():
        if col not in higher_is_better:
            raise ConfigError(f"weight given for {col!r}, which has no direction in "
                             "higher_is_better")
        if not higher_is_better[col]:
            raise ConfigError(f"weight given for {col!r}, a lower-is-better metric; the overall "
                             "score only combines higher-is-better metrics")
        if not np.isfinite(w) or w < 0:
            raise ConfigError(f"weight for {col!r} must be a finite number >= 0, got {w!r}")
    if weights and sum(weights.values()) <= 0:
        raise ConfigError("weights sum to 0; give at least one positive weight")


def weighted_overall(frame: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series | None:
    """``sum(w * m) / sum(w)`` row-wise; None when a weighted column is absent or no weights."""
    cols = [c for c, w in weights.items() if w > 0]
    if not cols or any(c not in frame.columns for c in cols):
        return None
    w = np.array([weights[c] for c in cols], dtype=float)
    values = frame[cols].to_numpy(dtype=float) @ w / w.sum()
    return pd.Series(values, index=frame.index, name=OVERALL)


def order_best(frame: pd.DataFrame, col: str, higher: bool = True,
               keep_missing: bool = False) -> pd.DataFrame:
    """Rows best first by ``col`` (ties by model, then train_size); rows without a value are
    dropped, or kept last when ``keep_missing``."""
    key = -frame[col].astype(float) if higher else frame[col].astype(float)
    out = frame.assign(_key=key).sort_values(["_key", "model", "train_size"], kind="stable",
                                             na_position="last").drop(columns="_key")
    return out if keep_missing else out[out[col].notna()]


def sort_cells(cells: pd.DataFrame, higher_is_better: Mapping[str, bool],
               weights: Mapping[str, float]) -> pd.DataFrame:
    """Cells with ``overall_score`` filled in, best first (ties by model, then train_size)."""
    validate_weights(weights, higher_is_better)
    missing = [c for c in ("model", "train_size") if c not in cells.columns]
    if missing:
        raise UserError(f"cells table lacks column(s) {missing}")
    out = cells.copy()
    for col in ("family", "params_b", "perplexity"):
        if col not in out.columns:
            out[col] = "" if col == "family" else np.nan
    if OVERALL not in out.columns:
        overall = weighted_overall(out, weights)
        if overall is None:
            absent = sorted(set(weights) - set(out.columns))
            raise UserError("cannot compute overall_score: "
                             + (f"weighted column(s) {absent} absent" if absent else "no weights"))
        out[OVERALL] = overall
    if out.duplicated(["model", "train_size"]).any():
        raise UserError("cells has duplicate (model, train_size) rows")
    return order_best(out, OVERALL, keep_missing=True).reset_index(drop=True)


def example_overall(frame: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series | None:
    """Per-example overall score of one cell, or None when it cannot be formed."""
    if OVERALL in frame.columns:
        return frame[OVERALL]
    return weighted_overall(frame, weights)


def aligned_matrix(ordered: pd.DataFrame, per_example: PerExample,
                   values: Callable[[pd.DataFrame], pd.Series | None]) -> np.ndarray:
    """``(n_ids, n_cells)`` matrix of ``values(frame)`` on the union of ids, NaN where absent.

    Cells follow the row order of ``ordered``; ``values`` returns None for "not available".
    """
    keys = list(zip(ordered["model"], ordered["train_size"], strict=True))
    frames = {k: per_example[k] for k in keys if k in per_example}
    for (model, size), frame in frames.items():
        if frame["id"].duplicated().any():
            raise UserError(f"per-example scores of {cell_label(model, size)} repeat an id")
    ids = sorted({str(i) for f in frames.values() for i in f["id"]})
    out = np.full((len(ids), len(keys)), np.nan)
    index = pd.Index(ids)
    for j, key in enumerate(keys):
        frame = frames.get(key)
        col = None if frame is None else values(frame)
        if col is not None:
            series = pd.Series(col.to_numpy(dtype=float), index=frame["id"].astype(str))
            out[:, j] = series.reindex(index).to_numpy()
    return out


def _is_binary(x: np.ndarray) -> bool:
    """True when every non-NaN value is 0 or 1 (and there is at least one)."""
    v = x[~np.isnan(x)]
    return v.size > 0 and bool(np.isin(v, (0.0, 1.0)).all())


def adjacent_tests(x: np.ndarray, n_perm: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Paired test between each column of ``(n, k)`` and the next: (test names, p-values)."""
    k = x.shape[1]
    if k < 2:
        return [], np.array([])
    p = np.asarray(stats.paired_permutation_test(x[:, :-1], x[:, 1:], n_perm, seed), dtype=float)
    tests = []
    for i in range(k - 1):
        both = ~(np.isnan(x[:, i]) | np.isnan(x[:, i + 1]))
        if not both.any():
            tests.append("")
            p[i] = np.nan
        elif _is_binary(x[:, i]) and _is_binary(x[:, i + 1]):
            tests.append("mcnemar")
            p[i] = stats.mcnemar_test(x[:, i], x[:, i + 1])[1]
        else:
            tests.append("permutation")
    return tests, p


def _metric_cis(ordered: pd.DataFrame, per_example: PerExample, metrics: list[str],
                n_boot: int, alpha: float, seed: int) -> pd.DataFrame:
    """``<metric>_ci_low/high`` per cell from its own per-example values (NaN if none)."""
    rows = []
    for model, size in zip(ordered["model"], ordered["train_size"], strict=True):
        frame = per_example.get((model, size))
        row: dict[str, float] = {}
        present = [] if frame is None else [m for m in metrics if m in frame.columns]
        if present:
            low, high = stats.bootstrap_ci(frame[present].to_numpy(dtype=float), n_boot, alpha,
                                           seed)
            for m, lo, hi in zip(present, low, high, strict=True):
                row[f"{m}_ci_low"], row[f"{m}_ci_high"] = lo, hi
        rows.append(row)
    cols = [f"{m}_ci_{e}" for m in metrics for e in ("low", "high")]
    return pd.DataFrame(rows, columns=cols, index=ordered.index, dtype=float)


def rank_cells(cells: pd.DataFrame, per_example: PerExample,
               higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
               n_boot: int = 1000, seed: int = 0, alpha: float = 0.05) -> pd.DataFrame:
    """The ranked ``model_comparison`` table, best first.

    ``rank`` is 1-based (equal overall scores share the best rank; NaN scores have none),
    ``rank_group`` follows :func:`pipeline.aggregate.stats.rank_groups` on raw pairwise p-values,
    ``rank_low/high`` are bootstrap rank intervals (example ids resampled jointly across
    cells), ``p_vs_next`` is the paired test of this row against the next one.
    """
    ordered = sort_cells(cells, higher_is_better, weights)
    metrics = metric_columns(ordered, higher_is_better)
    scores = ordered[OVERALL].to_numpy(dtype=float)
    scored = ~np.isnan(scores)
    x = aligned_matrix(ordered, per_example, lambda f: example_overall(f, weights))

    ci = np.full((len(ordered), 2), np.nan)
    for j in np.flatnonzero(~np.isnan(x).all(axis=0)):
        ci[j] = stats.bootstrap_ci(x[~np.isnan(x[:, j]), j], n_boot, alpha, seed)
    groups = np.full(len(ordered), np.nan)
    groups[scored] = stats.rank_groups(stats.pairwise_pvalues(x[:, scored], n_boot, seed), alpha)
    rank_low = np.full(len(ordered), np.nan)
    rank_high = rank_low.copy()
    if x.size:
        rank_low[scored], rank_high[scored] = stats.rank_intervals(
            x[:, scored], scores[scored], n_boot, seed, alpha)
    p_next = np.full(len(ordered), np.nan)
    p_next[: max(scored.sum() - 1, 0)] = adjacent_tests(x[:, scored], n_boot, seed)[1]

    head = pd.DataFrame({
        "rank": pd.Series(scores).rank(method="min", ascending=False),
        "rank_group": groups,
    }).astype("Int64")
    head = pd.concat([head, ordered[KEY_COLUMNS + [OVERALL]]], axis=1).assign(
        overall_score_ci_low=ci[:, 0], overall_score_ci_high=ci[:, 1],
        rank_low=pd.array(rank_low).astype("Int64"), rank_high=pd.array(rank_high).astype("Int64"),
        p_vs_next=p_next)
    cis = _metric_cis(ordered, per_example, metrics, n_boot, alpha, seed)
    body = [c for m in metrics for c in (m, f"{m}_ci_low", f"{m}_ci_high")]
    return pd.concat([head, ordered[metrics], cis, ordered[["perplexity"]]], axis=1)[
        list(head.columns) + body + ["perplexity"]]


def pairwise_matrix(cells: pd.DataFrame, per_example: PerExample,
                    higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
                    n_boot: int = 1000, seed: int = 0, adjust: str = "holm",
                    alpha: float = 0.05) -> pd.DataFrame:
    """All-vs-all paired permutation p-values of the overall score, in ranking order.

    ``adjust="holm"`` (default) Holm-corrects over the m = k(k-1)/2 distinct pairs; so that a
    clear difference can survive the correction, the number of permutations is raised to at
    least ``2 * m / alpha`` (the smallest Monte-Carlo p-value is 1 / (permutations + 1)).
    ``"none"`` gives raw p-values from ``n_boot`` permutations. First column ``cell`` names
    the row; the diagonal is empty.
    """
    if adjust not in ("holm", "none"):
        raise ValueError(f"adjust must be 'holm' or 'none', got {adjust!r}")
    ordered = sort_cells(cells, higher_is_better, weights)
    x = aligned_matrix(ordered, per_example, lambda f: example_overall(f, weights))
    n_pairs = len(ordered) * (len(ordered) - 1) // 2
    n_perm = max(n_boot, math.ceil(2 * n_pairs / alpha)) if adjust == "holm" else n_boot
    p = stats.pairwise_pvalues(x, n_perm, seed)
    if adjust == "holm":
        i, j = np.triu_indices(len(p), 1)
        p[i, j] = p[j, i] = stats.holm_adjust(p[i, j])
    labels = [cell_label(m, s) for m, s in zip(ordered["model"], ordered["train_size"],
                                               strict=True)]
    return pd.concat([pd.DataFrame({"cell": labels}), pd.DataFrame(p, columns=labels)], axis=1)


def adjacent_significance(cells: pd.DataFrame, per_example: PerExample,
                          higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
                          n_boot: int = 1000, seed: int = 0,
                          alpha: float = 0.05) -> pd.DataFrame:
    """For overall_score and each metric: paired test of every adjacent pair in its ranking.

    The ranking of a metric respects its direction (ties by model, train_size; cells with no
    value are left out). ``difference`` = better_value - worse_value (negative for
    lower-is-better metrics). ``test`` is ``mcnemar`` for 0/1 per-example values,
    ``permutation`` otherwise, empty (NaN p) without per-example data. Raw p-values.
    """
    ordered = sort_cells(cells, higher_is_better, weights)
    rows = []
    for metric in [OVERALL, *metric_columns(ordered, higher_is_better)]:
        higher = True if metric == OVERALL else higher_is_better[metric]
        sub = order_best(ordered, metric, higher)
        getter = ((lambda f: example_overall(f, weights)) if metric == OVERALL
                  else (lambda f, m=metric: f[m] if m in f.columns else None))
        x = aligned_matrix(sub, per_example, getter)
        tests, p = adjacent_tests(x, n_boot, seed)
        for i, (test, pv) in enumerate(zip(tests, p, strict=True)):
            better, worse = sub.iloc[i], sub.iloc[i + 1]
            both = ~(np.isnan(x[:, i]) | np.isnan(x[:, i + 1]))
            rows.append({
                "metric": metric, "position": i + 1,
                "better_model": better["model"], "better_train_size": better["train_size"],
                "worse_model": worse["model"], "worse_train_size": worse["train_size"],
                "better_value": better[metric], "worse_value": worse[metric],
                "difference": better[metric] - worse[metric], "n_pairs": int(both.sum()),
                "test": test, "p_value": pv,
                "significant": pd.NA if np.isnan(pv) else bool(pv < alpha),
            })
    cols = ["metric", "position", "better_model", "better_train_size", "worse_model",
            "worse_train_size", "better_value", "worse_value", "difference", "n_pairs", "test",
            "p_value", "significant"]
    out = pd.DataFrame(rows, columns=cols)
    out["significant"] = out["significant"].astype("boolean")
    return out
