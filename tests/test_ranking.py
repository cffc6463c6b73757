"""The ranking (pipeline.aggregate.ranking) on small hand-built sweeps.

Expected values are worked out by hand: paired differences that are constant on 20 examples
reach the observed |sum| only under the all-plus or all-minus sign flip (chance 2 / 2**20), so a
Monte-Carlo p-value is exactly 1 / (permutations + 1); McNemar p-values come from
scipy's binomial test; a constant per-example column has the bootstrap CI (c, c).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pipeline.aggregate.ranking import (
    adjacent_significance,
    adjacent_tests,
    cell_label,
    metric_columns,
    order_best,
    pairwise_matrix,
    pairwise_tests,
    pvalue_matrix,
    rank_cells,
    select_pairs,
    sort_cells,
    validate_weights,
    weighted_overall,
)
from pipeline.core.errors import ConfigError, UserError

HIB = {"s": True, "acc": True, "err": False, "perplexity": False}
N = 20
NOISE = 0.01 * np.tile([-2.0, -1.0, 0.0, 1.0, 2.0], 4)  # mean 0, shared: a paired design
HALF = (np.arange(N) < 10).astype(float)  # 1 on the first ten examples
ALTERNATE = (np.arange(N) % 2 == 0).astype(float)  # 1 on even examples


def _frame(**cols) -> pd.DataFrame:
    """Per-example frame with ids e00, e01, ... (sorted as listed)."""
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"id": [f"e{i:02d}" for i in range(n)], **cols})


def _separated() -> dict[tuple[str, int], pd.DataFrame]:
    """a@1 > b@1 > c@2 on ``s`` by 0.3 on every example; d@1 has no ``s`` at all."""
    return {
        ("a", 1): _frame(s=0.9 + NOISE, acc=np.ones(N), err=0.5 + NOISE),
        ("b", 1): _frame(s=0.6 + NOISE, acc=ALTERNATE, err=0.2 + NOISE),
        ("c", 2): _frame(s=0.3 + NOISE, acc=np.zeros(N), err=0.8 + NOISE),
        ("d", 1): _frame(acc=HALF, err=np.full(N, 0.1)),
    }


def _table(per: dict[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """The cells table: per-cell means of the per-example columns (NaN where absent)."""
    rows = [{"model": m, "family": "f", "params_b": 1.0, "train_size": s,
             **f.drop(columns="id").mean()} for (m, s), f in per.items()]
    return pd.DataFrame(rows, columns=["model", "family", "params_b", "train_size", "s", "acc",
                                       "err"])


def _floats(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=float, na_value=np.nan)


def _exact_sign_flip_p(d: np.ndarray) -> float:
    """Two-sided sign-flip p-value over all 2**n sign patterns, written out."""
    observed = abs(d.sum())
    hits = sum(abs(np.dot(signs, d)) >= observed - 1e-12
               for signs in itertools.product((1.0, -1.0), repeat=len(d)))
    return hits / 2 ** len(d)


# --- weights, overall score, ordering ---------------------------------------------------------

def test_cell_label_and_metric_columns_in_frame_order() -> None:
    assert cell_label("m", 5) == "m@5"
    frame = pd.DataFrame(columns=["model", "b", "extra", "perplexity", "a", "overall_score",
                                  "train_size", "family", "params_b"])
    hib = {"a": True, "b": False, "perplexity": False, "overall_score": True, "model": True,
           "train_size": True, "family": True, "params_b": True}
    assert metric_columns(frame, hib) == ["b", "a"]


@pytest.mark.parametrize(("weights", "message"), [
    ({"unknown": 1.0}, "weight given for 'unknown', which has no direction in higher_is_better"),
    ({"err": 1.0}, "weight given for 'err', a lower-is-better metric; the overall score only "
                   "combines higher-is-better metrics"),
    ({"s": -0.5}, "weight for 's' must be a finite number >= 0, got -0.5"),
    ({"s": math.nan}, "weight for 's' must be a finite number >= 0, got nan"),
    ({"s": math.inf}, "weight for 's' must be a finite number >= 0, got inf"),
    ({"s": 0.0, "acc": 0.0}, "weights sum to 0; give at least one positive weight"),
])
def test_validate_weights_rejects_with_the_config_key(weights: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate_weights(weights, HIB)
    assert str(err.value) == message


def test_validate_weights_accepts_zero_weights_beside_a_positive_one() -> None:
    for weights in ({}, {"s": 0.0, "acc": 2.0}, {"s": 0.5}):
        validate_weights(weights, HIB)  # no error


def test_weighted_overall_hand_worked() -> None:
    frame = pd.DataFrame({"s": [0.2, 0.8], "acc": [1.0, 0.0]}, index=[10, 20])
    # (3 * 0.2 + 1 * 1) / 4 = 0.4 and (3 * 0.8 + 0) / 4 = 0.6; the zero-weighted column may
    # be absent
    got = weighted_overall(frame, {"s": 3.0, "acc": 1.0, "absent": 0.0})
    assert got.name == "overall_score" and list(got.index) == [10, 20]
    np.testing.assert_allclose(got, [0.4, 0.6])
    assert weighted_overall(frame, {"s": 1.0, "absent": 1.0}) is None
    assert weighted_overall(frame, {}) is None
    assert weighted_overall(frame, {"s": 0.0}) is None
    # an object column (values built from records, None for a missing value) is numeric
    records = pd.DataFrame({"s": pd.Series([0.2, None], dtype=object), "acc": [1.0, 0.0]})
    got = weighted_overall(records, {"s": 3.0, "acc": 1.0})
    assert got.dtype == float
    np.testing.assert_allclose(got, [0.4, np.nan])


def test_order_best_breaks_ties_by_model_then_size_and_drops_missing() -> None:
    frame = pd.DataFrame({"model": ["b", "a", "a", "c", "d", "e"],
                          "train_size": [1, 10, 2, 1, 1, 1],
                          "v": [0.5, 0.5, 0.5, 0.9, np.nan, 0.1]})

    def keys(out: pd.DataFrame) -> list[tuple[str, int]]:
        return list(zip(out["model"], out["train_size"], strict=True))

    assert keys(order_best(frame, "v")) == [("c", 1), ("a", 2), ("a", 10), ("b", 1), ("e", 1)]
    assert keys(order_best(frame, "v", higher=False)) == [
        ("e", 1), ("a", 2), ("a", 10), ("b", 1), ("c", 1)]
    assert keys(order_best(frame, "v", keep_missing=True))[-1] == ("d", 1)
    assert len(order_best(frame, "v", keep_missing=True)) == 6


def test_sort_cells_fills_columns_computes_overall_and_puts_unscored_last() -> None:
    cells = pd.DataFrame({"model": ["x", "y", "z"], "train_size": [1, 1, 1],
                          "s": [0.2, np.nan, 0.8], "acc": [1.0, 1.0, 0.0]},
                         index=[7, 8, 9])
    out = sort_cells(cells, HIB, {"s": 3.0, "acc": 1.0})
    assert list(out["model"]) == ["z", "x", "y"] and list(out.index) == [0, 1, 2]
    assert list(out.columns) == ["model", "train_size", "s", "acc", "family", "params_b",
                                 "perplexity", "overall_score"]
    np.testing.assert_allclose(_floats(out["overall_score"]), [0.6, 0.4, np.nan])
    assert list(out["family"]) == ["", "", ""]
    assert out["params_b"].isna().all() and out["perplexity"].isna().all()
    assert "overall_score" not in cells.columns  # the input is left alone

    given = cells.assign(overall_score=[0.1, 0.3, 0.2], family="fam", params_b=2.0)
    out = sort_cells(given, HIB, {"s": 1.0})  # a given overall score is used as is
    assert list(out["model"]) == ["y", "z", "x"]
    assert list(out["family"]) == ["fam"] * 3 and list(out["params_b"]) == [2.0] * 3


@pytest.mark.parametrize(("cells", "weights", "message"), [
    (pd.DataFrame({"model": ["x"], "s": [0.1]}), {"s": 1.0},
     "cells table lacks column(s) ['train_size']"),
    (pd.DataFrame({"train_size": [1], "s": [0.1]}), {"s": 1.0},
     "cells table lacks column(s) ['model']"),
    (pd.DataFrame({"model": ["x"], "train_size": [1], "s": [0.1]}), {"s": 1.0, "acc": 1.0},
     "cannot compute overall_score: weighted column(s) ['acc'] absent"),
    (pd.DataFrame({"model": ["x"], "train_size": [1], "s": [0.1]}), {},
     "cannot compute overall_score: no weights"),
    (pd.DataFrame({"model": ["x", "x"], "train_size": [1, 1], "s": [0.1, 0.2]}), {"s": 1.0},
     "cells has duplicate (model, train_size) rows"),
])
def test_sort_cells_rejects_bad_tables(cells: pd.DataFrame, weights: dict, message: str) -> None:
    with pytest.raises(UserError) as err:
        sort_cells(cells, HIB, weights)
    assert str(err.value) == message


# --- the paired test between neighbours --------------------------------------------------------

def test_adjacent_tests_choose_mcnemar_permutation_or_none() -> None:
    a = np.array([1, 1, 1, 1, 1, 1, 0, 0], dtype=float)
    b = np.array([0, 0, 0, 0, 1, 1, 1, np.nan])  # binary despite the NaN
    c = np.array([0.5, 0.2, 0.9, 0.1, 0.4, 0.3, 0.7, 0.6])
    empty = np.full(8, np.nan)
    e = np.array([2.0, 0, 1, 1, 0, 0, 1, 1])  # 2 is not a 0/1 outcome
    x = np.column_stack([a, b, c, empty, a, e])
    tests, p = adjacent_tests(x, n_perm=256, seed=0)
    assert tests == ["mcnemar", "permutation", "", "", "permutation"]
    # a vs b on the 7 shared examples: 4 pairs (1, 0), 1 pair (0, 1)
    assert p[0] == pytest.approx(sps.binomtest(1, 5, 0.5).pvalue)
    ok = ~np.isnan(b)
    assert p[1] == pytest.approx(_exact_sign_flip_p(b[ok] - c[ok]))  # 2**7 <= 256: exact
    assert np.isnan(p[2]) and np.isnan(p[3])
    assert p[4] == pytest.approx(_exact_sign_flip_p(a - e))
    one = np.array([[1.0, 0.0], [np.nan, 1.0]])  # one shared example: still 0/1 outcomes
    assert adjacent_tests(one, 100, 0)[0] == ["mcnemar"]
    assert adjacent_tests(one, 100, 0)[1][0] == sps.binomtest(0, 1, 0.5).pvalue
    assert adjacent_tests(x[:, :1], 100, 0)[0] == []
    assert adjacent_tests(x[:, :1], 100, 0)[1].shape == (0,)


def test_adjacent_tests_monte_carlo_uses_n_perm_and_seed() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(0.5, 0.2, (30, 2))  # no real difference: p well inside (0, 1)
    ps = [adjacent_tests(x, n_perm=50, seed=s)[1][0] for s in range(4)]
    for p in ps:
        assert 0.1 < p < 1 and (p * 51) == pytest.approx(round(p * 51))  # (hits + 1) / 51
    assert len(set(ps)) > 1  # the seed is used
    assert adjacent_tests(x, n_perm=50, seed=2)[1][0] == ps[2]


# --- the ranked table --------------------------------------------------------------------------

def test_rank_cells_hand_worked_ranks_groups_intervals_and_p() -> None:
    per = _separated()
    cells = pd.concat([_table(per), pd.DataFrame([{"model": "e", "family": "f",
                                                   "params_b": 1.0, "train_size": 1,
                                                   "s": 0.05, "acc": 0.0, "err": 0.9}])],
                      ignore_index=True)  # e@1: scored, but without per-example values
    ranked = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=99, seed=3)
    assert list(ranked.columns) == [
        "rank", "rank_group", "model", "family", "params_b", "train_size", "n_examples",
        "overall_score", "overall_score_ci_low", "overall_score_ci_high", "rank_low",
        "rank_high", "p_vs_next", "p_vs_next_bound",
        "s", "s_ci_low", "s_ci_high", "acc", "acc_ci_low", "acc_ci_high",
        "err", "err_ci_low", "err_ci_high", "perplexity"]
    assert list(ranked["model"]) == ["a", "b", "c", "e", "d"]
    # examples per cell: e has none (and no n_examples column to take one from)
    np.testing.assert_array_equal(_floats(ranked["n_examples"]), [20, 20, 20, np.nan, 20])
    for col in ("rank", "rank_group", "rank_low", "rank_high"):
        assert ranked[col].dtype == "Int64"
    np.testing.assert_array_equal(_floats(ranked["rank"]), [1, 2, 3, 4, np.nan])
    # e has no paired data against its leader c, so it is not significantly different
    np.testing.assert_array_equal(_floats(ranked["rank_group"]), [1, 2, 3, 3, np.nan])
    # e's rank comes from its fixed score; the others never swap places
    np.testing.assert_array_equal(_floats(ranked["rank_low"]), [1, 2, 3, 4, np.nan])
    np.testing.assert_array_equal(_floats(ranked["rank_high"]), [1, 2, 3, 4, np.nan])
    # one family: the 6 pairs of the 4 scored cells, 3 of them testable (e has no examples);
    # max(99, 2 * 6 / 0.05) = 240 permutations, each testable pair at the floor 1/241, Holm
    # over 3: 3/241, an upper bound
    np.testing.assert_allclose(ranked["p_vs_next"], [3 / 241, 3 / 241, np.nan, np.nan,
                                                     np.nan], rtol=1e-12)
    assert list(ranked["p_vs_next_bound"]) == [True, True, False, False, False]
    np.testing.assert_allclose(_floats(ranked["overall_score"]), [0.9, 0.6, 0.3, 0.05, np.nan])

    low, high = ranked["overall_score_ci_low"], ranked["overall_score_ci_high"]
    scored = slice(0, 3)
    assert (low[scored] < ranked["overall_score"][scored]).all()
    assert (ranked["overall_score"][scored] < high[scored]).all()
    assert (high[scored] - low[scored] < 0.04).all()  # within the noise range
    assert low[3:].isna().all() and high[3:].isna().all()
    # overall = s here, on ids in the same order: the same interval, drawn the same way
    np.testing.assert_allclose(ranked["s_ci_low"], low, rtol=1e-12)
    np.testing.assert_allclose(ranked["s_ci_high"], high, rtol=1e-12)

    acc = ranked[["acc_ci_low", "acc_ci_high"]].to_numpy()
    np.testing.assert_allclose(acc[[0, 2, 3]], [[1, 1], [0, 0], [np.nan, np.nan]], atol=1e-12)
    for row in (1, 4):  # alternating and half 0/1: strictly around 0.5
        assert 0 < acc[row, 0] < 0.5 < acc[row, 1] < 1
    err = ranked[["err_ci_low", "err_ci_high"]].to_numpy()
    np.testing.assert_allclose(err[4], [0.1, 0.1], rtol=1e-12)  # d: constant, s absent
    assert err[0, 0] < 0.5 < err[0, 1] and err[2, 0] < 0.8 < err[2, 1]


def test_rank_cells_alpha_and_n_boot_reach_groups_and_intervals() -> None:
    per = {k: v for k, v in _separated().items() if k[0] != "d"}
    cells = _table(per)
    # 3 pairs, alpha = 0.005: 2 * 3 / 0.005 = 1200 permutations, every pair at the floor:
    # Holm 3/1201 < 0.005, so three groups (the floor never decides significance)
    ranked = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=99, seed=3, alpha=0.005)
    assert list(ranked["rank_group"]) == [1, 2, 3]
    np.testing.assert_allclose(ranked["p_vs_next"].iloc[:2], 3 / 1201, rtol=1e-12)
    # alpha = 0.0001: 60000 permutations, 3/60001 = 5.0e-5 < alpha still
    strict = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=99, seed=3, alpha=0.0001)
    assert list(strict["rank_group"]) == [1, 2, 3]
    wide = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=99, seed=3, alpha=0.05)
    narrow = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=99, seed=3, alpha=0.5)
    for col in ("overall_score", "s", "acc"):
        w = wide[f"{col}_ci_high"] - wide[f"{col}_ci_low"]
        n = narrow[f"{col}_ci_high"] - narrow[f"{col}_ci_low"]
        assert (n[w > 0] < w[w > 0]).all(), col


def test_rank_cells_rank_intervals_follow_alpha() -> None:
    # b trails a by about 1.25 standard errors: a leads in most, not all, bootstrap resamples
    rng = np.random.default_rng(0)
    base, d = rng.normal(0.5, 0.1, N), rng.normal(0, 0.1, N)
    d += 0.02 - d.mean()
    per = {("a", 1): _frame(s=base + d), ("b", 1): _frame(s=base)}
    cells = _table(per)
    wide = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=400, seed=1, alpha=0.05)
    assert list(wide["rank_low"]) == [1, 1] and list(wide["rank_high"]) == [2, 2]
    narrow = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=400, seed=1, alpha=0.5)
    assert list(narrow["rank_low"]) == [1, 2] and list(narrow["rank_high"]) == [1, 2]


def test_rank_cells_seed_is_used_and_repeatable() -> None:
    per = {k: v for k, v in _separated().items() if k[0] != "d"}
    cells = _table(per)
    one = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=99, seed=1)
    pd.testing.assert_frame_equal(one, rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=99,
                                                  seed=1))
    two = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=99, seed=2)
    for col in ("overall_score_ci_low", "s_ci_low", "err_ci_high"):
        assert not np.array_equal(one[col], two[col]), col


def _borderline() -> tuple[pd.DataFrame, dict[tuple[str, int], pd.DataFrame]]:
    """Two cells about two standard errors apart: Monte-Carlo p-values and bootstrap rank
    intervals land on either side of the line depending on the seed."""
    rng = np.random.default_rng(2)
    base, d = rng.normal(0.5, 0.1, 30), rng.normal(0, 0.1, 30)
    d += 0.037 - d.mean()
    per = {("a", 1): _frame(s=base + d), ("b", 1): _frame(s=base)}
    return _table(per), per


def test_seeded_results_repeat_and_agree_across_tables() -> None:
    cells, per = _borderline()
    args = (cells, per, HIB, {"s": 1.0})
    significant, leader_worst = [], set()
    for seed in range(8):
        ranked = rank_cells(*args, n_boot=40, seed=seed)
        pd.testing.assert_frame_equal(ranked, rank_cells(*args, n_boot=40, seed=seed))
        p = ranked["p_vs_next"].iloc[0]
        # with two cells the rank group splits exactly when the neighbour test is significant
        assert (ranked["rank_group"].iloc[1] == 2) == (p < 0.05), seed
        # the same seed gives the same p in the significance table and the all-pairs tests
        sig = adjacent_significance(*args, n_boot=40, seed=seed)
        assert list(sig["p_value"]) == [p, p], seed  # overall_score and s (equal here)
        tests, _ = pairwise_tests(*args, n_boot=40, seed=seed)
        assert tests["p_value"].iloc[0] == p == tests["p_raw"].iloc[0], seed  # one pair
        matrix = pairwise_matrix(*args, n_boot=40, seed=seed)
        assert matrix["b@1"].iloc[0] == p, seed
        significant.append(p < 0.05)
        leader_worst.add(int(ranked["rank_high"].iloc[0]))
    assert any(significant) and not all(significant)
    assert leader_worst == {1, 2}


def test_defaults_are_1000_permutations_seed_0_and_alpha_5_percent() -> None:
    # 8 cells 0.1 apart on every example: Monte-Carlo p = 1 / (permutations + 1)
    per = {(f"m{j}", 1): _frame(s=0.9 - 0.1 * j + NOISE) for j in range(8)}
    cells = _table(per)
    args = (cells, per, HIB, {"s": 1.0})
    # one family of 28 pairs: max(1000, 2 * 28 / 0.05) = 1120 permutations, every raw p at
    # the floor 1 / 1121, Holm 28 / 1121 everywhere (rank groups, p_vs_next, matrix)
    ranked = rank_cells(*args)
    np.testing.assert_allclose(ranked["p_vs_next"].iloc[:7], 28 / 1121, rtol=1e-12)
    assert ranked["p_vs_next_bound"].iloc[:7].all()
    np.testing.assert_allclose(adjacent_significance(*args)["p_value"].iloc[:7], 28 / 1121,
                               rtol=1e-12)
    # s alone: its 7 adjacent pairs, 2 * 7 / 0.05 = 280 -> 1000 permutations, Holm 7 / 1001
    sig = adjacent_significance(*args)
    np.testing.assert_allclose(sig["p_value"].iloc[7:], 7 / 1001, rtol=1e-12)
    np.testing.assert_allclose(sig["p_raw"].iloc[7:], 1 / 1001, rtol=1e-12)
    tests, _ = pairwise_tests(*args)
    np.testing.assert_allclose(tests["p_raw"], 1 / 1121, rtol=1e-12)
    np.testing.assert_allclose(tests["p_value"], 28 / 1121, rtol=1e-12)
    assert tests["p_bound"].all() and (tests["n_permutations"] == 1120).all()
    off = ~np.eye(8, dtype=bool)
    holm = pairwise_matrix(*args).drop(columns="cell").to_numpy()
    np.testing.assert_allclose(holm[off], 28 / 1121, rtol=1e-12)
    # seed 0 by default
    cells, per = _borderline()
    args = (cells, per, HIB, {"s": 1.0})
    pd.testing.assert_frame_equal(rank_cells(*args, n_boot=40),
                                  rank_cells(*args, n_boot=40, seed=0))
    pd.testing.assert_frame_equal(adjacent_significance(*args, n_boot=40),
                                  adjacent_significance(*args, n_boot=40, seed=0))
    pd.testing.assert_frame_equal(pairwise_tests(*args, n_boot=40)[0],
                                  pairwise_tests(*args, n_boot=40, seed=0)[0])
    pd.testing.assert_frame_equal(pairwise_matrix(*args, n_boot=40),
                                  pairwise_matrix(*args, n_boot=40, seed=0))


def test_rank_cells_binary_overall_exact_sign_flip_and_ties_share_the_best_rank() -> None:
    a = (np.arange(12) < 10).astype(float)  # 1 on examples 0..9
    b = (np.arange(12) >= 6).astype(float)  # 1 on examples 6..11: 6 pairs (1, 0), 2 (0, 1)
    per = {("a", 1): _frame(acc=a), ("b", 1): _frame(acc=b), ("c", 1): _frame(acc=b)}
    # 5000 >= 2**12 permutations: all sign patterns, so exact; on 0/1 outcomes the exact
    # sign-flip test is the exact McNemar test: p = 2 * BinomCDF(2; 8, 0.5) = 74/256
    ranked = rank_cells(_table(per), per, HIB, {"acc": 1.0}, n_boot=5000)
    assert list(ranked["model"]) == ["a", "b", "c"]
    assert list(ranked["rank"]) == [1, 2, 2]  # b and c tie: both take the better rank
    assert _exact_sign_flip_p(a - b) == pytest.approx(sps.binomtest(2, 8, 0.5).pvalue)
    # Holm over the family (a,b) 74/256, (a,c) 74/256, (b,c) 1: 3 * 74/256 for the smallest
    assert ranked["p_vs_next"].iloc[0] == pytest.approx(3 * 74 / 256)
    assert ranked["p_vs_next"].iloc[1] == 1.0  # identical outcomes
    assert not ranked["p_vs_next_bound"].any()  # exact p-values are not bounds


def test_rank_cells_uses_a_per_example_overall_score_column() -> None:
    # s is equal everywhere; the given per-example overall score separates the cells
    per = {("a", 1): _frame(s=np.full(N, 0.5), overall_score=0.9 + NOISE),
           ("b", 1): _frame(s=np.full(N, 0.5), overall_score=0.6 + NOISE)}
    cells = _table(per).assign(overall_score=[0.9, 0.6])
    ranked = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=99)
    assert ranked["p_vs_next"].iloc[0] == 1 / 100
    assert ranked["overall_score_ci_low"].iloc[0] > 0.85


def test_rank_cells_without_any_scores_or_examples() -> None:
    cells = pd.DataFrame({"model": ["x", "y", "z"], "train_size": [1, 1, 1],
                          "overall_score": [0.5, 0.5, 0.2]})
    ranked = rank_cells(cells, {}, HIB, {}, n_boot=20)
    assert list(ranked["rank"]) == [1, 1, 3]
    for col in ("rank_low", "rank_high", "rank_group"):
        assert ranked[col].isna().all(), col
    assert ranked["p_vs_next"].isna().all()
    records = cells.assign(overall_score=pd.Series([0.5, None, 0.2], dtype=object))
    np.testing.assert_array_equal(_floats(rank_cells(records, {}, HIB, {}, n_boot=20)["rank"]),
                                  [1, 2, np.nan])
    unscored = rank_cells(cells.assign(overall_score=np.nan), {}, HIB, {}, n_boot=20)
    assert unscored["rank"].isna().all() and unscored["p_vs_next"].isna().all()


# --- all pairs ---------------------------------------------------------------------------------

def test_select_pairs_all_when_they_fit() -> None:
    cells = pd.DataFrame({"model": list("abcd"), "train_size": [1] * 4})
    for bound in (None, 6):
        left, right, top = select_pairs(cells, bound)
        assert list(zip(left, right, strict=True)) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3),
                                                       (2, 3)]
        assert top == 4


def test_select_pairs_bounded_leader_first() -> None:
    cells = pd.DataFrame({"model": list("abcde"), "train_size": [1] * 5})
    left, right, top = select_pairs(cells, 2)
    assert left.tolist() == [0, 0] and right.tolist() == [1, 2] and top == 2
    left, right, top = select_pairs(cells, 0)
    assert left.tolist() == [] and right.tolist() == [] and top == 1
    # 9 of 10 pairs: leader 4, neighbours 3 more, then (1, 3) completes the top 4; the top 5
    # would need 2 more
    left, right, top = select_pairs(cells, 9)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [
        (0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (2, 3), (3, 4)]
    assert top == 4


def test_select_pairs_bounded_smallest_against_largest_size() -> None:
    # ranking b@1, a@3, c@1, d@1, a@2, a@1 with 10 pairs: the leader's 5, the 4 new neighbour
    # pairs, then a's smallest (a@1, position 5) against its largest (a@3, position 1); the
    # top 3 are complete, the 4th would need (1, 3)
    cells = pd.DataFrame({"model": list("bacdaa"), "train_size": [1, 3, 1, 1, 2, 1]})
    left, right, top = select_pairs(cells, 10)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [
        (0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (1, 2), (1, 5), (2, 3), (3, 4), (4, 5)]
    assert top == 3


def test_pairwise_tests_holm_raises_the_permutations() -> None:
    per = {k: v for k, v in _separated().items() if k[0] != "d"}
    cells = _table(per)
    table, labels = pairwise_tests(cells, per, HIB, {"s": 1.0}, n_boot=50, seed=4)
    assert labels == ["a@1", "b@1", "c@2"]
    assert list(table.columns) == ["cell_a", "cell_b", "position_a", "position_b", "p_raw",
                                   "p_value", "p_bound", "n_permutations"]
    assert list(table["cell_a"]) == ["a@1", "a@1", "b@1"]
    assert list(table["cell_b"]) == ["b@1", "c@2", "c@2"]
    assert list(table["position_a"]) == [1, 1, 2] and list(table["position_b"]) == [2, 3, 3]
    # 3 pairs at alpha 0.05: max(50, 2 * 3 / 0.05) = 120 permutations; raw p = 1/121 each,
    # Holm: 3/121 for the smallest, max(3/121, 2/121, 1/121) for the others
    np.testing.assert_allclose(table["p_value"], [3 / 121] * 3, rtol=1e-12)
    np.testing.assert_allclose(table["p_raw"], [1 / 121] * 3, rtol=1e-12)
    assert table["p_bound"].all() and (table["n_permutations"] == 120).all()
    strict, _ = pairwise_tests(cells, per, HIB, {"s": 1.0}, n_boot=50, seed=4, alpha=0.01)
    np.testing.assert_allclose(strict["p_value"], [3 / 601] * 3, rtol=1e-12)  # 600 perms
    many, _ = pairwise_tests(cells, per, HIB, {"s": 1.0}, n_boot=999, seed=4)
    np.testing.assert_allclose(many["p_value"], [3 / 1000] * 3, rtol=1e-12)


def test_pvalue_matrix_keeps_pairs_within_the_top() -> None:
    tests = pd.DataFrame({"position_a": [1, 1, 2, 1], "position_b": [2, 3, 3, 4],
                          "p_value": [0.1, 0.2, 0.3, 0.4]})
    matrix = pvalue_matrix(tests, ["x", "y", "z"])
    assert list(matrix.columns) == ["cell", "x", "y", "z"]
    assert list(matrix["cell"]) == ["x", "y", "z"]
    np.testing.assert_array_equal(matrix[["x", "y", "z"]].to_numpy(), [
        [np.nan, 0.1, 0.2], [0.1, np.nan, 0.3], [0.2, 0.3, np.nan]])


def test_pairwise_matrix_hand_worked_and_bounded() -> None:
    per = {k: v for k, v in _separated().items() if k[0] != "d"}
    cells = _table(per)
    full = pairwise_matrix(cells, per, HIB, {"s": 1.0}, n_boot=50, seed=4)
    p = 3 / 121  # 120 permutations for 3 pairs, Holm over 3
    np.testing.assert_allclose(full.drop(columns="cell").to_numpy(), [
        [np.nan, p, p], [p, np.nan, p], [p, p, np.nan]], rtol=1e-12)
    # at most 2 pairs: (a, b) and (a, c); the matrix shows the complete top 2. The walk
    # splits a from b (2/51 < 0.1 with 50 permutations), then needs (b, c): the family grows
    # to 3 pairs, max(50, 2 * 3 / 0.1) = 60 permutations, Holm 3/61 everywhere
    bounded = pairwise_matrix(cells, per, HIB, {"s": 1.0}, n_boot=50, seed=4, alpha=0.1,
                              max_pairs=2)
    assert list(bounded["cell"]) == ["a@1", "b@1"]
    np.testing.assert_allclose(bounded.drop(columns="cell").to_numpy(),
                               [[np.nan, 3 / 61], [3 / 61, np.nan]], rtol=1e-12)
    tests, _ = pairwise_tests(cells, per, HIB, {"s": 1.0}, n_boot=50, seed=4, alpha=0.1,
                              max_pairs=2)
    assert list(zip(tests["cell_a"], tests["cell_b"], strict=True)) == [
        ("a@1", "b@1"), ("a@1", "c@2"), ("b@1", "c@2")]
    ranked = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=50, seed=4, alpha=0.1,
                        max_pairs=2)
    assert list(ranked["rank_group"]) == [1, 2, 3]
    # no pair allowed: no test, the leader alone
    none = pairwise_matrix(cells, per, HIB, {"s": 1.0}, n_boot=50, max_pairs=0)
    assert list(none.columns) == ["cell", "a@1"] and list(none["cell"]) == ["a@1"]
    assert none["a@1"].isna().all()


# --- the significance table --------------------------------------------------------------------

def test_adjacent_significance_hand_worked() -> None:
    per = _separated()
    sig = adjacent_significance(_table(per), per, HIB, {"s": 1.0}, n_boot=99, seed=2)
    assert list(sig.columns) == [
        "metric", "position", "better_model", "better_train_size", "worse_model",
        "worse_train_size", "better_value", "worse_value", "difference", "n_pairs", "test",
        "p_raw", "p_value", "p_bound", "n_permutations", "significant"]
    assert list(sig["metric"]) == ["overall_score"] * 2 + ["s"] * 2 + ["acc"] * 3 + ["err"] * 3
    assert list(sig["position"]) == [1, 2, 1, 2, 1, 2, 3, 1, 2, 3]
    pairs = list(zip(sig["better_model"], sig["better_train_size"], sig["worse_model"],
                     sig["worse_train_size"], strict=True))
    ab, bc = ("a", 1, "b", 1), ("b", 1, "c", 2)
    # acc: a 1.0, then b and d tie at 0.5 (by model name), then c 0.0;
    # err (lower is better): d 0.1, b 0.2, a 0.5, c 0.8
    assert pairs == [ab, bc, ab, bc, ab, ("b", 1, "d", 1), ("d", 1, "c", 2),
                     ("d", 1, "b", 1), ("b", 1, "a", 1), ("a", 1, "c", 2)]
    np.testing.assert_allclose(sig["better_value"], [0.9, 0.6, 0.9, 0.6, 1, 0.5, 0.5,
                                                     0.1, 0.2, 0.5])
    np.testing.assert_allclose(sig["worse_value"], [0.6, 0.3, 0.6, 0.3, 0.5, 0.5, 0,
                                                    0.2, 0.5, 0.8])
    np.testing.assert_allclose(sig["difference"], [0.3, 0.3, 0.3, 0.3, 0.5, 0, 0.5,
                                                   -0.1, -0.3, -0.3], atol=1e-12)
    assert list(sig["n_pairs"]) == [N] * 10
    assert list(sig["test"]) == ["permutation"] * 4 + ["mcnemar"] * 3 + ["permutation"] * 3
    # acc: a vs b 10 discordant pairs all one way; b vs d 5 each way; d vs c 10 one way
    q = sps.binomtest(0, 10, 0.5).pvalue
    raw = [1 / 121] * 2 + [0.01] * 2 + [q, 1.0, q] + [1 / 121] * 3
    np.testing.assert_allclose(sig["p_raw"], raw, rtol=1e-12)
    # overall: the ranking's family (3 pairs, 120 permutations, Holm 3/121); s: its 2
    # adjacent pairs (99 permutations, Holm 2/100); acc: Holm over 3 McNemar tests; err: 3
    # pairs, 120 permutations
    adjusted = [3 / 121] * 2 + [0.02] * 2 + [3 * q, 1.0, 3 * q] + [3 / 121] * 3
    np.testing.assert_allclose(sig["p_value"], adjusted, rtol=1e-12)
    assert list(sig["p_bound"]) == [True] * 4 + [False] * 3 + [True] * 3
    assert list(sig["n_permutations"]) == [120] * 2 + [99] * 2 + [0] * 3 + [120] * 3
    assert sig["significant"].dtype == "boolean"
    assert list(sig["significant"]) == [True] * 5 + [False] + [True] * 4
    assert list(sig.index) == list(range(10))
    # alpha 0.005: more permutations keep the permutation tests significant (the floor never
    # decides); the McNemar p-values 3q = 0.0059 are not below it
    strict = adjacent_significance(_table(per), per, HIB, {"s": 1.0}, n_boot=99, seed=2,
                                   alpha=0.005)
    assert list(strict["significant"]) == [True] * 4 + [False] * 3 + [True] * 3
    np.testing.assert_allclose(strict["p_value"].iloc[:4], [3 / 1201] * 2 + [2 / 801] * 2,
                               rtol=1e-12)
    at = adjacent_significance(_table(per), per, HIB, {"s": 1.0}, n_boot=99, seed=2, alpha=0.01)
    assert list(at["significant"]) == [True] * 5 + [False] + [True] * 4


def test_adjacent_significance_counts_shared_examples_and_skips_short_rankings() -> None:
    per = {("a", 1): _frame(s=0.9 + NOISE, acc=np.ones(N)),
           ("b", 1): _frame(s=0.6 + NOISE).iloc[5:],  # no e00..e04, no acc
           ("c", 1): _frame(s=0.3 + NOISE).iloc[:17]}  # no e17..e19
    cells = _table(per).assign(acc=[1.0, np.nan, np.nan], err=[0.3, 0.2, 0.1])
    sig = adjacent_significance(cells, per, HIB, {"s": 1.0}, n_boot=99)
    # acc: one cell only, no pair; err (lower is better): c, b, a without per-example values
    assert list(sig["metric"]) == ["overall_score"] * 2 + ["s"] * 2 + ["err"] * 2
    assert list(sig["n_pairs"]) == [15, 12, 15, 12, 0, 0]
    assert list(sig["test"]) == ["permutation"] * 4 + ["", ""]


def test_adjacent_significance_without_examples_or_pairs() -> None:
    cells = pd.DataFrame({"model": ["x", "y"], "train_size": [1, 1], "s": [0.2, 0.4]})
    sig = adjacent_significance(cells, {}, HIB, {"s": 1.0}, n_boot=20)
    assert list(sig["metric"]) == ["overall_score", "s"]
    assert list(sig["test"]) == ["", ""] and sig["p_value"].isna().all()
    assert list(sig["n_pairs"]) == [0, 0] and sig["significant"].isna().all()
    assert sig["significant"].dtype == "boolean"
    one = adjacent_significance(cells.iloc[:1], {}, HIB, {"s": 1.0}, n_boot=20)
    assert one.empty and one["significant"].dtype == "boolean"
    assert list(one.columns) == list(sig.columns)


def test_one_cell_has_an_empty_family() -> None:
    per = {("a", 1): _frame(s=0.9 + NOISE)}
    tests, labels = pairwise_tests(_table(per), per, HIB, {"s": 1.0}, n_boot=20)
    assert tests.empty and labels == ["a@1"]
    assert list(tests.columns) == ["cell_a", "cell_b", "position_a", "position_b", "p_raw",
                                   "p_value", "p_bound", "n_permutations"]
    ranked = rank_cells(_table(per), per, HIB, {"s": 1.0}, n_boot=20)
    assert list(ranked["rank_group"]) == [1] and np.isnan(ranked["p_vs_next"].iloc[0])


def test_max_pairs_reaches_the_family_and_a_table_keeps_its_example_counts() -> None:
    # four indistinguishable cells: one rank group, so the walk asks for no pair; with at most
    # 3 pairs only the leader's are tested and neighbours 2-3, 3-4 have no p-value
    rng = np.random.default_rng(0)
    base = rng.normal(0.5, 0.1, N)
    per = {(m, 1): _frame(s=base + rng.normal(0, 0.05, N)) for m in "abcd"}
    cells = _table(per)
    full = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=50)
    bounded = rank_cells(cells, per, HIB, {"s": 1.0}, n_boot=50, max_pairs=3)
    assert list(bounded["rank_group"]) == [1, 1, 1, 1]
    assert full["p_vs_next"].iloc[:3].notna().all()
    assert bounded["p_vs_next"].iloc[0] > 0 and bounded["p_vs_next"].iloc[1:].isna().all()
    sig = adjacent_significance(cells, per, HIB, {"s": 1.0}, n_boot=50, max_pairs=3)
    assert sig[sig["metric"] == "overall_score"]["p_value"].iloc[1:].isna().all()
    # exactly max_pairs pairs: all of them are tested
    assert select_pairs(cells, 6)[2] == 4 and len(select_pairs(cells, 6)[0]) == 6
    # a per-model table's own n_examples is kept where there are no per-example scores
    table = cells.assign(n_examples=[7, 8, 9, 10])
    ranked = rank_cells(table, {}, HIB, {"s": 1.0}, n_boot=20)
    assert sorted(ranked["n_examples"].tolist()) == [7, 8, 9, 10]
