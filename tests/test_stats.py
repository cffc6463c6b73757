"""Resampling statistics (pipeline.aggregate.stats) and the ranking built on them (ranking)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pipeline.aggregate import stats
from pipeline.aggregate.ranking import (
    adjacent_significance,
    pairwise_matrix,
    pairwise_tests,
    rank_cells,
)


def test_bootstrap_ci_covers_known_mean_about_95_percent() -> None:
    rng = np.random.default_rng(123)
    hits = 0
    for k in range(200):
        low, high = stats.bootstrap_ci(rng.normal(0.3, 1.0, 60), n_boot=500, seed=k)
        hits += low <= 0.3 <= high
    assert 0.90 <= hits / 200 <= 0.98


def test_bootstrap_ci_2d_matches_columns_and_handles_nan() -> None:
    x = np.random.default_rng(0).random((30, 3))
    x[:, 2] = np.nan
    x[5, 0] = np.nan
    low, high = stats.bootstrap_ci(x, n_boot=200, seed=4)
    assert (low[0], high[0]) == pytest.approx(stats.bootstrap_ci(x[:, 0], n_boot=200, seed=4))
    assert low[1] < x[:, 1].mean() < high[1]
    assert np.isnan(low[2]) and np.isnan(high[2])
    assert all(np.isnan(v) for v in stats.bootstrap_ci([], n_boot=10))


def test_permutation_exact_small_sample_by_hand() -> None:
    # d = (1, 2, 3): of the 8 sign patterns only +++ and --- reach |mean| >= 2.
    assert stats.paired_permutation_test([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], n_perm=1000) == 0.25
    assert stats.paired_permutation_test([1.0, 2.0], [1.0, 2.0]) == 1.0


def test_permutation_monte_carlo_p_is_smoothed_exactly() -> None:
    # d = 1 everywhere on 40 pairs: |sum| of a random sign flip reaches 40 only for all-plus or
    # all-minus (chance 2 / 2**40), so no resample hits and p = (0 + 1) / (999 + 1) exactly.
    a, b = np.ones(40), np.zeros(40)
    assert stats.paired_permutation_test(a, b, n_perm=999, seed=3) == 1 / 1000
    assert stats.paired_permutation_test(b, a, n_perm=499, seed=0) == 1 / 500
    # identical columns: every resample hits, p = (999 + 1) / (999 + 1)
    assert stats.paired_permutation_test(a, a, n_perm=999) == 1.0
    p = stats.pairwise_pvalues(np.column_stack([a, b, a]), n_perm=999)
    np.testing.assert_array_equal(p, [[np.nan, 1e-3, 1.0], [1e-3, np.nan, 1e-3],
                                      [1.0, 1e-3, np.nan]])


def test_permutation_p_uniform_under_null_and_small_under_shift() -> None:
    rng = np.random.default_rng(7)
    ps = np.array([stats.paired_permutation_test(rng.normal(size=40), rng.normal(size=40),
                                                 n_perm=400, seed=k) for k in range(200)])
    assert sps.kstest(ps, "uniform").pvalue > 0.01
    assert 0.01 <= (ps < 0.05).mean() <= 0.10
    base = rng.normal(size=40)
    assert stats.paired_permutation_test(base + 0.8 + rng.normal(0, 0.3, 40), base) < 0.01


def test_permutation_2d_matches_1d() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    p = stats.paired_permutation_test(a, b, n_perm=300, seed=2)
    assert p[1] == pytest.approx(stats.paired_permutation_test(a[:, 1], b[:, 1], n_perm=300,
                                                               seed=2))


def test_mcnemar_exact_by_hand() -> None:
    a = [1, 1, 1, 0, 0, 1]
    b = [0, 0, 0, 0, 1, 1]  # n01 = 3, n10 = 1
    stat, p = stats.mcnemar_test(a, b)
    assert stat == 1.0
    assert p == pytest.approx(2 * (math.comb(4, 0) + math.comb(4, 1)) / 2**4)  # 0.625
    assert stats.mcnemar_test([1, 0], [1, 0]) == (0.0, 1.0)


def test_mcnemar_chi_square_with_continuity_by_hand() -> None:
    a = [1] * 30 + [0] * 10 + [1] * 5
    b = [0] * 30 + [1] * 10 + [1] * 5  # n01 = 30, n10 = 10
    stat, p = stats.mcnemar_test(a, b)
    assert stat == pytest.approx((abs(30 - 10) - 1) ** 2 / 40)  # 9.025
    assert p == pytest.approx(math.erfc(math.sqrt(stat / 2)))  # chi2(1) survival


def test_holm_by_hand() -> None:
    out = stats.holm_adjust([0.01, 0.04, 0.03, np.nan])
    np.testing.assert_allclose(out, [0.03, 0.06, 0.06, np.nan])


def test_rank_groups_compare_with_group_leader() -> None:
    p = np.full((4, 4), 0.5)
    p[0, 2] = p[2, 0] = 0.01  # third cell is worse than the leader -> new group
    assert list(stats.rank_groups(p)) == [1, 1, 2, 2]
    q = np.full((3, 3), 0.3)
    q[1, 2] = q[2, 1] = 0.001  # neighbours differ, but the leader does not differ from either
    assert list(stats.rank_groups(q)) == [1, 1, 1]
    assert np.isnan(stats.rank_groups(np.full((2, 2), np.nan))).all()


def test_rank_intervals_separated_and_fixed() -> None:
    rng = np.random.default_rng(0)
    x = np.array([0.0, 1.0, 2.0]) + rng.normal(0, 0.01, (30, 3))
    low, high = stats.rank_intervals(x, n_boot=200)
    assert list(low) == [3, 2, 1] and list(high) == [3, 2, 1]
    x[:, 1] = np.nan
    low, high = stats.rank_intervals(x, fixed=np.array([0.0, 5.0, 0.0]), n_boot=100)
    assert list(low) == [3, 1, 2]


HIB = {"task_rouge": True, "task_accuracy": True, "task_length_error": False, "perplexity": False}


def _cells(means: dict[str, float], n: int = 60, seed: int = 0):
    """Cells (one train size) whose per-example rouge has the given means; 0/1 accuracy."""
    rng = np.random.default_rng(seed)
    per, rows = {}, []
    noise = rng.normal(0, 0.05, n)  # shared across cells: paired design
    for model, mean in means.items():
        frame = pd.DataFrame({"id": [f"e{i}" for i in range(n)],
                              "task_rouge": mean + noise + rng.normal(0, 0.01, n),
                              "task_accuracy": (rng.random(n) < mean).astype(float),
                              "task_length_error": rng.random(n)})
        per[(model, 10)] = frame
        rows.append({"model": model, "family": model[0], "params_b": 1.0, "train_size": 10,
                     "perplexity": np.nan, **frame.drop(columns="id").mean()})
    return pd.DataFrame(rows), per


def test_rank_cells_columns_order_groups_and_cis() -> None:
    cells, per = _cells({"a": 0.6, "b": 0.6, "c": 0.3})
    ranked = rank_cells(cells, per, HIB, {"task_rouge": 1.0}, n_boot=200)
    assert list(ranked.columns[:14]) == [
        "rank", "rank_group", "model", "family", "params_b", "train_size", "n_examples",
        "overall_score", "overall_score_ci_low", "overall_score_ci_high", "rank_low",
        "rank_high", "p_vs_next", "p_vs_next_bound"]
    assert list(ranked.columns[14:17]) == ["task_rouge", "task_rouge_ci_low",
                                           "task_rouge_ci_high"]
    assert ranked.columns[-1] == "perplexity"
    assert list(ranked["model"].iloc[2:]) == ["c"]
    assert list(ranked["rank_group"]) == [1, 1, 2]
    # b vs c: no permutation as extreme (200 of them): Holm over 3 pairs of the floor 1/201
    assert ranked["p_vs_next"].iloc[1] <= 3 / 201 and ranked["p_vs_next_bound"].iloc[1]
    assert np.isnan(ranked["p_vs_next"].iloc[2])
    assert (ranked["overall_score_ci_low"] <= ranked["overall_score"]).all()
    assert (ranked["overall_score"] <= ranked["overall_score_ci_high"]).all()
    assert ranked["rank_low"].iloc[2] == ranked["rank_high"].iloc[2] == 3


def test_rank_cells_ties_sorted_by_model_then_size_and_overall_given() -> None:
    cells = pd.DataFrame({"model": ["z", "a", "a"], "family": "f", "params_b": 1.0,
                          "train_size": [5, 9, 2], "perplexity": np.nan,
                          "overall_score": [0.5, 0.5, 0.5], "task_rouge": [0.1, 0.2, 0.3]})
    ranked = rank_cells(cells, {}, HIB, {}, n_boot=50)
    order = list(zip(ranked["model"], ranked["train_size"], strict=True))
    assert order == [("a", 2), ("a", 9), ("z", 5)]
    assert list(ranked["rank"]) == [1, 1, 1]
    assert ranked["overall_score_ci_low"].isna().all() and ranked["rank_group"].isna().all()


def test_weights_must_be_higher_is_better() -> None:
    cells, per = _cells({"a": 0.5})
    with pytest.raises(ValueError, match="lower-is-better"):
        rank_cells(cells, per, HIB, {"task_length_error": 1.0})
    with pytest.raises(ValueError, match="no direction"):
        rank_cells(cells, per, HIB, {"unknown": 1.0})


def test_overall_is_weighted_mean() -> None:
    cells, per = _cells({"a": 0.5, "b": 0.4})
    ranked = rank_cells(cells, per, HIB, {"task_rouge": 3.0, "task_accuracy": 1.0}, n_boot=50)
    row = ranked.iloc[0]
    assert row["overall_score"] == pytest.approx((3 * row["task_rouge"]
                                                  + row["task_accuracy"]) / 4)


def test_adjacent_significance_picks_mcnemar_for_binary() -> None:
    cells, per = _cells({"a": 0.8, "b": 0.3})
    sig = adjacent_significance(cells, per, HIB, {"task_rouge": 1.0}, n_boot=100)
    tests = dict(zip(sig["metric"], sig["test"], strict=True))
    assert tests == {"overall_score": "permutation", "task_rouge": "permutation",
                     "task_accuracy": "mcnemar", "task_length_error": "permutation"}
    acc = sig[sig["metric"] == "task_accuracy"].iloc[0]
    assert acc["p_value"] == stats.mcnemar_test(per[("a", 10)]["task_accuracy"],
                                                per[("b", 10)]["task_accuracy"])[1]
    err = sig[sig["metric"] == "task_length_error"].iloc[0]
    assert err["better_value"] <= err["worse_value"]  # lower is better


def test_pairwise_matrix_symmetric_and_holm_not_below_raw() -> None:
    cells, per = _cells({"a": 0.6, "b": 0.55, "c": 0.3})
    holm = pairwise_matrix(cells, per, HIB, {"task_rouge": 1.0}, n_boot=100)
    tests, _ = pairwise_tests(cells, per, HIB, {"task_rouge": 1.0}, n_boot=100)
    h = holm.drop(columns="cell").to_numpy()
    np.testing.assert_array_equal(h, h.T)
    assert np.isnan(np.diag(h)).all()
    assert (tests["p_value"] >= tests["p_raw"]).all()
    np.testing.assert_allclose(h[tests["position_a"] - 1, tests["position_b"] - 1],
                               tests["p_value"], rtol=0)
    assert list(holm["cell"]) == ["a@10", "b@10", "c@10"]


def test_mcnemar_drops_nan_pairs_and_switches_to_chi_square_at_25() -> None:
    a = [1, 1, 1, 0, 0, 1, np.nan, 1]
    b = [0, 0, 0, 0, 1, 1, 1, np.nan]  # the NaN pairs would add one discordant pair each
    assert stats.mcnemar_test(a, b) == stats.mcnemar_test(a[:6], b[:6])
    assert stats.mcnemar_test(a, b)[1] == pytest.approx(0.625)
    # 25 discordant pairs (20 vs 5): chi-square with continuity, (|20 - 5| - 1)^2 / 25
    stat, p = stats.mcnemar_test([1] * 20 + [0] * 5, [0] * 20 + [1] * 5)
    assert stat == pytest.approx(14**2 / 25) and p == pytest.approx(math.erfc(math.sqrt(stat / 2)))
    # 24 (19 vs 5): exact, min count 5
    stat, p = stats.mcnemar_test([1] * 19 + [0] * 5, [0] * 19 + [1] * 5)
    assert stat == 5.0
    assert p == pytest.approx(2 * sum(math.comb(24, i) for i in range(6)) / 2**24)


def test_pairwise_pvalues_use_the_given_seed() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=40)
    b = a + rng.normal(0.3, 1, 40)
    p = [stats.pairwise_pvalues(np.column_stack([a, b]), n_perm=200, seed=s)[0, 1]
         for s in (0, 5)]
    assert p == [stats.paired_permutation_test(a, b, n_perm=200, seed=s) for s in (0, 5)]
    assert p[0] != p[1]


def test_rank_groups_single_cell_and_alpha() -> None:
    assert list(stats.rank_groups(np.array([[np.nan]]))) == [1]
    p = np.array([[np.nan, 0.1], [0.1, np.nan]])  # NaN diagonal, as pairwise_pvalues gives
    assert list(stats.rank_groups(p)) == [1, 1]
    assert list(stats.rank_groups(p, alpha=0.2)) == [1, 2]


def test_rank_intervals_are_order_statistics_of_bootstrap_ranks() -> None:
    # Close columns with 0/1 values: bootstrap means tie often (ties share the best rank).
    rng = np.random.default_rng(11)
    x = (rng.random((12, 3)) < [0.5, 0.45, 0.4]).astype(float)
    for alpha, seed in ((0.05, 0), (0.3, 4)):
        low, high = stats.rank_intervals(x, n_boot=400, seed=seed, alpha=alpha)
        means = stats.bootstrap_means(x, 400, seed)
        ranks = np.array([[1 + np.sum(row > v) for v in row] for row in means])  # "min" ranks
        r = np.sort(ranks, axis=0)
        np.testing.assert_array_equal(low, r[int(np.floor(alpha / 2 * 399))])
        np.testing.assert_array_equal(high, r[int(np.ceil((1 - alpha / 2) * 399))])


def test_permutation_exact_up_to_2_pow_n_then_monte_carlo() -> None:
    d, zeros = np.arange(1.0, 11.0), np.zeros(10)  # 10 pairs: 1024 sign patterns
    # all 1024 enumerated: only all-plus and all-minus reach |sum| = 55
    assert stats.paired_permutation_test(d, zeros, n_perm=1024) == 2 / 1024
    mc = stats.paired_permutation_test(d, zeros, n_perm=100)  # (hits + 1) / (100 + 1)
    assert mc * 101 == pytest.approx(round(mc * 101)) and mc >= 1 / 101
    assert stats.paired_permutation_test([1.0, 2.0, 3.0], [0.0] * 3, n_perm=8) == 0.25


def test_permutation_accumulates_over_several_blocks() -> None:
    # 400 pairs: a block holds ~10,000 sign patterns, so 25,000 take three blocks.
    n_perm = 25_000
    a, b = np.ones(400), np.zeros(400)
    assert stats.paired_permutation_test(a, b, n_perm=n_perm) == 1 / (n_perm + 1)
    assert stats.paired_permutation_test(a, a, n_perm=n_perm) == 1.0


def test_permutation_drops_pairs_with_a_nan_and_returns_types() -> None:
    p = stats.paired_permutation_test([1.0, 2.0, 3.0, np.nan, 9.0], [0.0, 0.0, 0.0, 5.0, np.nan])
    assert p == 0.25 and isinstance(p, float)
    assert stats.paired_permutation_test([1.0, np.nan], [0.0, 1.0]) == 1.0  # one pair left
    assert np.isnan(stats.paired_permutation_test([np.nan, np.nan], [1.0, 2.0]))
    a = np.column_stack([[1.0, 2.0, 3.0], [np.nan] * 3])
    p2 = stats.paired_permutation_test(a, np.zeros((3, 2)))
    assert p2[0] == 0.25 and np.isnan(p2[1])


def test_bootstrap_means_resample_every_row_and_skip_nan() -> None:
    assert (stats.bootstrap_means([[2.0]], n_boot=5) == 2.0).all()
    first = stats.bootstrap_means([100.0, 0.0, 0.0], n_boot=200, seed=1)
    assert (first > 0).any() and set(np.unique(first * 3).round(6)) <= {0, 100, 200, 300}
    means = stats.bootstrap_means([5.0, np.nan, 7.0], n_boot=200, seed=2)[:, 0]
    seen = means[~np.isnan(means)]
    assert ((seen >= 5) & (seen <= 7)).all() and len(seen) > 150


def test_bootstrap_ci_is_the_percentile_interval_of_the_given_seed() -> None:
    x = np.random.default_rng(5).normal(size=25)
    for alpha, seed in ((0.05, 3), (0.2, 0)):
        means = stats.bootstrap_means(x, 300, seed)[:, 0]
        want = np.quantile(means, [alpha / 2, 1 - alpha / 2])
        assert stats.bootstrap_ci(x, n_boot=300, alpha=alpha, seed=seed) == pytest.approx(want)


def test_p_values_are_capped_at_one() -> None:
    np.testing.assert_allclose(stats.holm_adjust([0.6, 0.7]), [1.0, 1.0])
    assert stats.mcnemar_test([1, 1, 0, 0], [0, 0, 1, 1]) == (2.0, 1.0)  # 2 * 11/16 capped
