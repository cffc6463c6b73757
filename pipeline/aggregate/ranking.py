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
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.aggregate import stats
from pipeline.aggregate.examples import Examples, PerExample
from pipeline.core.errors import ConfigError, UserError

KEY_COLUMNS = ["model", "family", "params_b", "train_size"]
NON_METRIC = {*KEY_COLUMNS, "perplexity", "overall_score"}
OVERALL = "overall_score"


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
    out = frame.assign(_key=key).sort_values(["_key", "model", "train_size"],
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


def sweep_examples(per_example: PerExample, higher_is_better: Mapping[str, bool],
                   weights: Mapping[str, float]) -> Examples:
    """Every cell's per-example metric columns and per-example overall score, aligned once
    (:class:`pipeline.aggregate.examples.Examples`)."""
    columns = [c for c in higher_is_better if c not in NON_METRIC]
    return Examples(per_example, columns, {OVERALL: lambda f: example_overall(f, weights)})


def _is_binary(x: np.ndarray) -> bool:
    """True when every non-NaN value is 0 or 1."""
    return bool(np.isin(x[~np.isnan(x)], (0.0, 1.0)).all())


def adjacent_tests(x: np.ndarray, n_perm: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Paired test between each column of ``(n, k)`` and the next: (test names, p-values)."""
    k = x.shape[1]
    if k < 2:
        return [], np.array([])
    p = np.full(k - 1, np.nan)
    tests = []
    binary = [_is_binary(x[:, i]) for i in range(k)]
    for i in range(k - 1):
        both = ~(np.isnan(x[:, i]) | np.isnan(x[:, i + 1]))
        if not both.any():
            tests.append("")
        elif binary[i] and binary[i + 1]:
            tests.append("mcnemar")
            p[i] = stats.mcnemar_test(x[:, i], x[:, i + 1])[1]
        else:
            tests.append("permutation")
    perm = np.flatnonzero(np.array(tests) == "permutation")
    p[perm] = stats.pair_pvalues(x, perm, perm + 1, n_perm, seed)
    return tests, p


def _metric_cis(ordered: pd.DataFrame, per_example: PerExample, metrics: list[str],
                n_boot: int, alpha: float, seed: int) -> pd.DataFrame:
    """``<metric>_ci_low/high`` per cell from its own per-example values (NaN if none)."""
    out = np.full((len(ordered), 2 * len(metrics)), np.nan)
    cells, blocks = [], []
    for row, key in enumerate(zip(ordered["model"], ordered["train_size"], strict=True)):
        frame = per_example.get(key)
        present = [] if frame is None else [i for i, m in enumerate(metrics)
                                             if m in frame.columns]
        if present:
            cells.append((row, np.array(present)))
            blocks.append(frame[[metrics[i] for i in present]].to_numpy(dtype=float))
    for (row, present), (low, high) in zip(cells, stats.bootstrap_ci_blocks(
            blocks, n_boot, alpha, seed), strict=True):
        out[row, 2 * present], out[row, 2 * present + 1] = low, high
    return pd.DataFrame(out, columns=[f"{m}_ci_{e}" for m in metrics for e in ("low", "high")],
                        index=ordered.index)


def rank_cells(cells: pd.DataFrame, per_example: PerExample,
               higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
               n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
               examples: Examples | None = None) -> pd.DataFrame:
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
    examples = examples or sweep_examples(per_example, higher_is_better, weights)
    x = examples.matrix(ordered, OVERALL)

    ci = np.full((len(ordered), 2), np.nan)
    tested = np.flatnonzero(~np.isnan(x).all(axis=0))
    blocks = [x[~np.isnan(x[:, j]), j][:, None] for j in tested]
    for j, (low, high) in zip(tested, stats.bootstrap_ci_blocks(blocks, n_boot, alpha, seed),
                              strict=True):
        ci[j] = low[0], high[0]
    groups = np.full(len(ordered), np.nan)
    groups[scored] = stats.rank_groups_of(x[:, scored], n_boot, seed, alpha)
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


def select_pairs(ordered: pd.DataFrame,
                 max_pairs: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """The pairs of ranked cells (positions in ``ordered``) that the all-pairs section tests.

    All ``k(k-1)/2`` pairs when that is at most ``max_pairs`` (or ``max_pairs`` is None).
    Otherwise pairs are taken in this order until there are ``max_pairs``: the leader against
    every cell, each cell against the next, each model's smallest against its largest train
    size, then all pairs among the top ``t`` cells for the largest ``t`` that fits. Returns
    ``(left, right, t)``: positions with ``left < right`` in row-major order, and ``t``, the
    number of leading cells all of whose pairs are included (``t == k`` when all are).
    """
    k = len(ordered)
    if max_pairs is None or k * (k - 1) // 2 <= max_pairs:
        i, j = np.triu_indices(k, 1)
        return i, j, k
    chosen: dict[tuple[int, int], None] = {}  # an insertion-ordered set

    def add(pairs: list[tuple[int, int]]) -> None:
        for pair in pairs:  # a pair already chosen takes no slot
            if len(chosen) >= max_pairs:
                return
            chosen.setdefault(pair)

    add([(0, j) for j in range(1, k)])
    add([(j, j + 1) for j in range(k - 1)])
    pos = ordered.assign(_pos=np.arange(k)).sort_values(["model", "train_size"]).groupby(
        "model", sort=False)["_pos"]
    add([(min(a, b), max(a, b)) for a, b in zip(pos.first(), pos.last(), strict=True)
         if a != b])
    top = 1
    while top < k:
        new = [(i, top) for i in range(top) if (i, top) not in chosen]
        if len(chosen) + len(new) > max_pairs:
            break
        chosen.update(dict.fromkeys(new))
        top += 1
    pairs = np.array(sorted(chosen), dtype=int).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1], top


def pairwise_tests(cells: pd.DataFrame, per_example: PerExample,
                   higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
                   n_boot: int = 1000, seed: int = 0, adjust: str = "holm",
                   alpha: float = 0.05, max_pairs: int | None = None,
                   examples: Examples | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Paired permutation p-values of the overall score for the pairs of :func:`select_pairs`.

    ``adjust="holm"`` (default) Holm-corrects over the m tested pairs; so that a clear
    difference can survive the correction, the number of permutations is raised to at least
    ``2 * m / alpha`` (the smallest Monte-Carlo p-value is 1 / (permutations + 1)).
    ``"none"`` gives raw p-values from ``n_boot`` permutations. Returns the long table
    (``cell_a, cell_b, position_a, position_b, p_value``; positions are 1-based places in the
    ranking, ``a`` above ``b``) and the labels of the top ``t`` cells of :func:`select_pairs`
    (all cells when every pair was tested).
    """
    if adjust not in ("holm", "none"):
        raise ValueError(f"adjust must be 'holm' or 'none', got {adjust!r}")
    ordered = sort_cells(cells, higher_is_better, weights)
    examples = examples or sweep_examples(per_example, higher_is_better, weights)
    x = examples.matrix(ordered, OVERALL)
    i, j, top = select_pairs(ordered, max_pairs)
    n_perm = max(n_boot, math.ceil(2 * len(i) / alpha)) if adjust == "holm" else n_boot
    p = stats.pair_pvalues(x, i, j, n_perm, seed)
    if adjust == "holm":
        p = stats.holm_adjust(p)
    labels = np.array([cell_label(m, s) for m, s in zip(ordered["model"], ordered["train_size"],
                                                        strict=True)], dtype=object)
    table = pd.DataFrame({"cell_a": labels[i], "cell_b": labels[j], "position_a": i + 1,
                          "position_b": j + 1, "p_value": p})
    return table, list(labels[:top])


def pvalue_matrix(tests: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    """The symmetric matrix of the first ``len(labels)`` ranked cells from
    :func:`pairwise_tests` (every pair among them must be in ``tests``): first column
    ``cell``, empty diagonal."""
    top = len(labels)
    first = tests[tests["position_b"] <= top]
    p = np.full((top, top), np.nan)
    i, j = first["position_a"].to_numpy() - 1, first["position_b"].to_numpy() - 1
    p[i, j] = p[j, i] = first["p_value"].to_numpy(dtype=float)
    return pd.concat([pd.DataFrame({"cell": labels}), pd.DataFrame(p, columns=labels)], axis=1)


def pairwise_matrix(cells: pd.DataFrame, per_example: PerExample,
                    higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
                    n_boot: int = 1000, seed: int = 0, adjust: str = "holm",
                    alpha: float = 0.05, max_pairs: int | None = None) -> pd.DataFrame:
    """All-vs-all p-values of the overall score in ranking order (:func:`pairwise_tests`).

    With more than ``max_pairs`` pairs only the top ``t`` cells of :func:`select_pairs` are
    in the matrix (their p-values still Holm-adjusted over every tested pair). First column
    ``cell`` names the row; the diagonal is empty.
    """
    tests, labels = pairwise_tests(cells, per_example, higher_is_better, weights, n_boot, seed,
                                   adjust, alpha, max_pairs)
    return pvalue_matrix(tests, labels)


def adjacent_significance(cells: pd.DataFrame, per_example: PerExample,
                          higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
                          n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                          examples: Examples | None = None) -> pd.DataFrame:
    """For overall_score and each metric: paired test of every adjacent pair in its ranking.

    The ranking of a metric respects its direction (ties by model, train_size; cells with no
    value are left out). ``difference`` = better_value - worse_value (negative for
    lower-is-better metrics). ``test`` is ``mcnemar`` for 0/1 per-example values,
    ``permutation`` otherwise, empty (NaN p) without per-example data. Raw p-values.
    """
    ordered = sort_cells(cells, higher_is_better, weights)
    examples = examples or sweep_examples(per_example, higher_is_better, weights)
    parts = []
    for metric in [OVERALL, *metric_columns(ordered, higher_is_better)]:
        higher = True if metric == OVERALL else higher_is_better[metric]
        sub = order_best(ordered, metric, higher)
        if len(sub) < 2:
            continue
        x = examples.matrix(sub, metric)
        tests, p = adjacent_tests(x, n_boot, seed)
        value, model, size = (sub[c].to_numpy() for c in (metric, "model", "train_size"))
        parts.append(pd.DataFrame({
            "metric": metric, "position": np.arange(1, len(sub)),
            "better_model": model[:-1], "better_train_size": size[:-1],
            "worse_model": model[1:], "worse_train_size": size[1:],
            "better_value": value[:-1], "worse_value": value[1:],
            "difference": value[:-1] - value[1:],
            "n_pairs": (~(np.isnan(x[:, :-1]) | np.isnan(x[:, 1:]))).sum(axis=0),
            "test": tests, "p_value": p,
            "significant": pd.array(np.where(np.isnan(p), None, p < alpha), dtype="boolean"),
        }))
    cols = ["metric", "position", "better_model", "better_train_size", "worse_model",
            "worse_train_size", "better_value", "worse_value", "difference", "n_pairs", "test",
            "p_value", "significant"]
    if not parts:
        return pd.DataFrame(columns=cols).astype({"significant": "boolean"})
    return pd.concat(parts, ignore_index=True)[cols]
