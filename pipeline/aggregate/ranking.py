"""Rank (model, train_size) cells by overall score, with CIs, rank groups and paired tests.

Conventions (shared by every function here):

* overall_score = sum(w * m) / sum(w) over the weighted metric columns; a cell missing a
  weighted metric has no overall score and is ranked last. An ``overall_score`` column already
  in ``cells`` is used as given. Per example the same combination of per-example columns is
  used (or a per-example ``overall_score`` column when present).
* Per-example frames are aligned on the union of their ``id`` values; a missing example is NaN
  and left out (pairwise) of every mean and paired test.
* Paired tests: the sign-flip permutation test (the overall score, continuous metrics),
  McNemar's test when a metric's per-example values of both cells are all 0/1; at least
  ``n_boot`` permutations, more for large families.
* One significance policy (:mod:`pipeline.aggregate.significance`): every p-value a view
  shows is Holm-adjusted over its family; rank groups, ``p_vs_next``, the significance table
  and the pairwise matrix read the same tests.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.aggregate import stats
from pipeline.aggregate.examples import Examples, PerExample
from pipeline.aggregate.significance import (
    FamilyTests,
    at_floor,
    family_tests,
    holm,
    n_permutations,
)
from pipeline.core.errors import ConfigError, UserError

KEY_COLUMNS = ["model", "family", "params_b", "train_size"]
NON_METRIC = {*KEY_COLUMNS, "n_examples", "perplexity", "overall_score"}
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


def overall_family(ordered: pd.DataFrame, x: np.ndarray, n_boot: int = 1000, seed: int = 0,
                   alpha: float = 0.05, max_pairs: int | None = None) -> FamilyTests:
    """The overall score's family of paired tests (:mod:`pipeline.aggregate.significance`) for
    the cells of ``ordered`` (best first, unscored last) with per-example matrix ``x``: the
    pairs of :func:`select_pairs` and each model's consecutive training sizes, among the
    scored cells, plus the pairs the rank groups need."""
    scored = int(ordered[OVERALL].notna().sum())
    sub = ordered.iloc[:scored]
    left, right, _ = select_pairs(sub, max_pairs)
    return family_tests(x[:, :scored], [*zip(left, right, strict=True), *scaling_pairs(sub)],
                        n_boot, seed, alpha)


def scaling_pairs(ordered: pd.DataFrame) -> list[tuple[int, int]]:
    """Positions ``(i, j)``, ``i < j``, of each model's consecutive training sizes."""
    pos = ordered.assign(_pos=np.arange(len(ordered))).sort_values(["model", "train_size"])
    pairs = []
    for _, grp in pos.groupby("model", sort=False):
        at = grp["_pos"].to_numpy()
        pairs += [(min(a, b), max(a, b)) for a, b in zip(at[:-1], at[1:], strict=True)]
    return pairs


def rank_cells(cells: pd.DataFrame, per_example: PerExample,
               higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
               n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
               examples: Examples | None = None, family: FamilyTests | None = None,
               max_pairs: int | None = None) -> pd.DataFrame:
    """The ranked ``model_comparison`` table, best first.

    ``rank`` is 1-based (equal overall scores share the best rank; NaN scores have none);
    ``rank_group`` and ``p_vs_next`` (the paired test of this row against the next one, with
    ``p_vs_next_bound`` where that value is an upper bound) come from the overall score's
    family of Holm-adjusted tests (:func:`overall_family`, passed in as ``family`` or
    computed); ``rank_low/high`` are bootstrap rank intervals (example ids resampled jointly
    across cells); ``n_examples`` counts each cell's per-example scores (a column already in
    ``cells`` is kept where there are none).
    """
    ordered = sort_cells(cells, higher_is_better, weights)
    metrics = metric_columns(ordered, higher_is_better)
    scores = ordered[OVERALL].to_numpy(dtype=float)
    scored = ~np.isnan(scores)
    examples = examples or sweep_examples(per_example, higher_is_better, weights)
    x = examples.matrix(ordered, OVERALL)
    family = family or overall_family(ordered, x, n_boot, seed, alpha, max_pairs)

    ci = np.full((len(ordered), 2), np.nan)
    tested = np.flatnonzero(~np.isnan(x).all(axis=0))
    blocks = [x[~np.isnan(x[:, j]), j][:, None] for j in tested]
    for j, (low, high) in zip(tested, stats.bootstrap_ci_blocks(blocks, n_boot, alpha, seed),
                              strict=True):
        ci[j] = low[0], high[0]
    groups = np.full(len(ordered), np.nan)
    groups[scored] = family.groups
    rank_low = np.full(len(ordered), np.nan)
    rank_high = rank_low.copy()
    if x.size:
        rank_low[scored], rank_high[scored] = stats.rank_intervals(
            x[:, scored], scores[scored], n_boot, seed, alpha)
    p_next = np.full(len(ordered), np.nan)
    p_bound = np.zeros(len(ordered), dtype=bool)
    for j in range(max(int(scored.sum()) - 1, 0)):
        p_next[j], p_bound[j] = family.p(j, j + 1)

    head = pd.DataFrame({
        "rank": pd.Series(scores).rank(method="min", ascending=False),
        "rank_group": groups,
    }).astype("Int64")
    head = pd.concat([head, ordered[KEY_COLUMNS]], axis=1).assign(
        n_examples=_n_examples(ordered, per_example))
    head = head.assign(**{OVERALL: ordered[OVERALL]}).assign(
        overall_score_ci_low=ci[:, 0], overall_score_ci_high=ci[:, 1],
        rank_low=pd.array(rank_low).astype("Int64"), rank_high=pd.array(rank_high).astype("Int64"),
        p_vs_next=p_next, p_vs_next_bound=p_bound)
    cis = _metric_cis(ordered, per_example, metrics, n_boot, alpha, seed)
    body = [c for m in metrics for c in (m, f"{m}_ci_low", f"{m}_ci_high")]
    return pd.concat([head, ordered[metrics], cis, ordered[["perplexity"]]], axis=1)[
        list(head.columns) + body + ["perplexity"]]


def _n_examples(ordered: pd.DataFrame, per_example: PerExample) -> pd.Series:
    """Per cell: the number of its per-example scores, else its ``n_examples`` column."""
    given = (ordered["n_examples"] if "n_examples" in ordered.columns
             else pd.Series(np.nan, index=ordered.index))
    counts = [len(per_example[key]) if key in per_example else given.iloc[i]
              for i, key in enumerate(zip(ordered["model"], ordered["train_size"],
                                          strict=True))]
    return pd.Series(pd.array(counts, dtype="Int64"), index=ordered.index)


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
                   n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                   max_pairs: int | None = None, examples: Examples | None = None,
                   family: FamilyTests | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The overall score's family of paired tests (:func:`overall_family`) as a long table.

    Columns ``cell_a, cell_b, position_a, position_b`` (1-based places in the ranking, ``a``
    above ``b``), ``p_raw`` (sign-flip permutation test), ``p_value`` (Holm-adjusted over
    the family: the value every view uses), ``p_bound`` (the value is an upper bound: the
    test's resolution floor) and ``n_permutations``. Also returns the labels of the top ``t``
    cells of :func:`select_pairs` (all scored cells when every pair was tested).
    """
    ordered = sort_cells(cells, higher_is_better, weights)
    if family is None:
        examples = examples or sweep_examples(per_example, higher_is_better, weights)
        family = overall_family(ordered, examples.matrix(ordered, OVERALL), n_boot, seed,
                                alpha, max_pairs)
    top = select_pairs(ordered[ordered[OVERALL].notna()], max_pairs)[2]
    labels = np.array([cell_label(m, s) for m, s in zip(ordered["model"], ordered["train_size"],
                                                        strict=True)], dtype=object)
    i, j = family.left, family.right
    table = pd.DataFrame({"cell_a": labels[i], "cell_b": labels[j], "position_a": i + 1,
                          "position_b": j + 1, "p_raw": family.raw, "p_value": family.adjusted,
                          "p_bound": family.bound, "n_permutations": family.n_perm})
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
                    n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                    max_pairs: int | None = None) -> pd.DataFrame:
    """All-vs-all Holm-adjusted p-values of the overall score in ranking order
    (:func:`pairwise_tests`).

    With more than ``max_pairs`` pairs only the top ``t`` cells of :func:`select_pairs` are
    in the matrix (their p-values still Holm-adjusted over the whole family). First column
    ``cell`` names the row; the diagonal is empty.
    """
    tests, labels = pairwise_tests(cells, per_example, higher_is_better, weights, n_boot, seed,
                                   alpha, max_pairs)
    return pvalue_matrix(tests, labels)


SIGNIFICANCE_COLUMNS = ["metric", "position", "better_model", "better_train_size",
                        "worse_model", "worse_train_size", "better_value", "worse_value",
                        "difference", "n_pairs", "test", "p_raw", "p_value", "p_bound",
                        "n_permutations", "significant"]


def adjacent_significance(cells: pd.DataFrame, per_example: PerExample,
                          higher_is_better: Mapping[str, bool], weights: Mapping[str, float],
                          n_boot: int = 1000, seed: int = 0, alpha: float = 0.05,
                          examples: Examples | None = None, family: FamilyTests | None = None,
                          max_pairs: int | None = None) -> pd.DataFrame:
    """For overall_score and each metric: the paired test of every adjacent pair in its ranking.

    The ranking of a metric respects its direction (ties by model, train_size; cells with no
    value are left out). ``difference`` = better_value - worse_value (negative for
    lower-is-better metrics). Overall-score rows are the overall family's tests
    (:func:`overall_family`: permutation tests, Holm over that family). Each metric's
    adjacent pairs form their own family: ``mcnemar`` for 0/1 per-example values,
    ``permutation`` otherwise (with :func:`pipeline.aggregate.significance.n_permutations`
    of the family's size), Holm-adjusted over the metric's tested pairs; empty test and NaN p
    without per-example data. ``p_value`` is the adjusted value, ``p_raw`` the unadjusted one.
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
        pairs = ~(np.isnan(x[:, :-1]) | np.isnan(x[:, 1:]))
        if metric == OVERALL:
            if family is None:
                family = overall_family(ordered, examples.matrix(ordered, OVERALL), n_boot,
                                        seed, alpha, max_pairs)
            found = [family.p(j, j + 1) for j in range(len(sub) - 1)]
            rows = [family.index(j, j + 1) for j in range(len(sub) - 1)]
            raw = np.array([np.nan if r is None else family.raw[r] for r in rows])
            p = np.array([v for v, _ in found])
            bound = np.array([b for _, b in found], dtype=bool)
            tests = np.where(np.isnan(p), "", "permutation")
            n_perm = family.n_perm
        else:
            n_perm = n_permutations(len(sub) - 1, n_boot, alpha)
            tests, raw = adjacent_tests(x, n_perm, seed)
            tests = np.array(tests, dtype=object)
            perm = tests == "permutation"
            p, bound = holm(raw, perm & at_floor(raw, n_perm))
        value, model, size = (sub[c].to_numpy() for c in (metric, "model", "train_size"))
        parts.append(pd.DataFrame({
            "metric": metric, "position": np.arange(1, len(sub)),
            "better_model": model[:-1], "better_train_size": size[:-1],
            "worse_model": model[1:], "worse_train_size": size[1:],
            "better_value": value[:-1], "worse_value": value[1:],
            "difference": value[:-1] - value[1:], "n_pairs": pairs.sum(axis=0),
            "test": tests, "p_raw": raw, "p_value": p, "p_bound": bound,
            "n_permutations": np.where(np.asarray(tests) == "permutation", n_perm, 0),
            "significant": pd.array(np.where(np.isnan(p), None, p < alpha), dtype="boolean"),
        }))
    if not parts:
        return pd.DataFrame(columns=SIGNIFICANCE_COLUMNS).astype({"significant": "boolean"})
    return pd.concat(parts, ignore_index=True)[SIGNIFICANCE_COLUMNS]
