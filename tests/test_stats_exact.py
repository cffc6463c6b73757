"""Exact values of pipeline.aggregate.stats against written-out references: hand-worked numbers,
brute-force sign enumeration, and textbook resampling loops that make the documented seeded
draws (``default_rng(seed).integers``) one resample at a time. Small slips in the vectorised
code (a default, a boundary, a chunk, a dropped argument) change these numbers."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from pipeline.aggregate import stats

# d = a - b on 12 pairs (2**12 > 1001 sign patterns, so Monte Carlo). Worked out with the direct
# reference below: p = 50/1001 < 0.05 with 1000 draws of seed 0, but 51/1002 with 1001 draws
# and 62/1001 with seed 1, so the default n_perm, seed and alpha all decide its rank group.
D12 = np.array([-2, 0, 1, 3, 4, -3, 0, 2, 2, 5, 5, 4], dtype=float)


def _direct_bootstrap(x: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """The textbook bootstrap with the documented draws: resample n rows with replacement
    (``default_rng(seed).integers(0, n, (n_boot, n))``), take each column's nanmean."""
    x = np.asarray(x, dtype=float).reshape(len(x), -1)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN resamples give NaN
        return np.stack([np.nanmean(x[rows], axis=0) for rows in idx])


def _direct_mc_p(d: np.ndarray, n_perm: int, seed: int) -> float:
    """Monte Carlo sign-flip p-value, one documented draw per row:
    signs = 1 - 2 * default_rng(seed).integers(0, 2, (n_perm, n)); p = (1 + hits) / (n_perm + 1)."""
    signs = 1 - 2 * np.random.default_rng(seed).integers(0, 2, (n_perm, len(d)))
    hits = sum(abs(float(s @ d)) >= abs(d.sum()) for s in signs)
    return (hits + 1) / (n_perm + 1)


def _exact_p(d: np.ndarray) -> float:
    """Exact sign-flip p-value by enumerating every sign pattern (integer-valued ``d``)."""
    patterns = list(itertools.product((1.0, -1.0), repeat=len(d)))
    return sum(abs(np.dot(s, d)) >= abs(d.sum()) for s in patterns) / len(patterns)


def _rank_order_stats(means: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Rank each resample's columns (1 + number of strictly better columns, so ties share the
    best rank), then take the lower alpha/2 and higher 1 - alpha/2 order statistics."""
    ranks = np.sort([[1 + np.sum(row > v) for v in row] for row in means], axis=0)
    last = len(means) - 1
    return ranks[math.floor(alpha / 2 * last)], ranks[math.ceil((1 - alpha / 2) * last)]


# --- bootstrap --------------------------------------------------------------------------------

def test_bootstrap_means_equal_a_direct_resampling_loop() -> None:
    x = np.random.default_rng(2).random((7, 3))
    x[1, 0] = x[4, 2] = np.nan
    got = stats.bootstrap_means(x, n_boot=50, seed=9)
    np.testing.assert_allclose(got, _direct_bootstrap(x, 50, 9), rtol=1e-12)
    # documented defaults: 1000 resamples, seed 0
    np.testing.assert_allclose(stats.bootstrap_means(x), _direct_bootstrap(x, 1000, 0),
                               rtol=1e-12)


def test_bootstrap_means_of_no_rows_are_float_nan() -> None:
    out = stats.bootstrap_means(np.empty((0, 2)), n_boot=3)
    assert out.shape == (3, 2) and out.dtype == float and np.isnan(out).all()


def test_bootstrap_ci_defaults_are_the_95_percent_interval_of_1000_resamples_of_seed_0() -> None:
    x = np.random.default_rng(8).normal(size=20)
    want = np.quantile(_direct_bootstrap(x, 1000, 0)[:, 0], [0.025, 0.975])
    assert stats.bootstrap_ci(x) == pytest.approx(want, rel=1e-12)
    [(low, high)] = stats.bootstrap_ci_blocks([x[:, None]])
    assert (low[0], high[0]) == pytest.approx(want, rel=1e-12)


def test_bootstrap_ci_blocks_split_into_several_batches() -> None:
    # 1000 resamples batch at most ~524 columns: the 300-column blocks of 4 rows need two batches
    # (300 + 300, then 300); the 5-row block is batched on its own.
    rng = np.random.default_rng(4)
    blocks = [rng.random((4, 300)), rng.random((5, 2)), rng.random((4, 300)),
              rng.random((4, 300))]
    blocks[2][0, 7] = np.nan
    got = stats.bootstrap_ci_blocks(blocks, 1000, 0.1, 6)
    assert len(got) == 4
    for block, (low, high) in zip(blocks, got, strict=True):
        # resamples that drew no value of a column are left out of its percentiles
        want = np.nanquantile(_direct_bootstrap(block, 1000, 6), [0.05, 0.95], axis=0)
        np.testing.assert_allclose(low, want[0], rtol=1e-12)
        np.testing.assert_allclose(high, want[1], rtol=1e-12)


def test_missing_values_emit_no_warnings() -> None:
    x = np.array([[1.0, np.nan, 5.0], [np.nan, np.nan, 6.0], [3.0, np.nan, 7.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        means = stats.bootstrap_means(x[:, 0], n_boot=200, seed=0)[:, 0]
        assert np.isnan(means).any() and not np.isnan(means).all()  # some drew only the NaN
        low, high = stats.bootstrap_ci(x, n_boot=100)
        low_r, high_r = stats.rank_intervals(x, n_boot=100)
    assert np.isnan(low[1]) and np.isnan(high[1]) and 1 <= low[0] <= high[0] <= 3 <= low[2]
    assert np.isnan(low_r[1]) and np.isnan(high_r[1])
    assert list(low_r[[0, 2]]) == [2, 1] and list(high_r[[0, 2]]) == [2, 1]


def test_none_counts_as_a_missing_value() -> None:
    col = [1.0, None, 3.0]
    np.testing.assert_allclose(stats.bootstrap_means(col, n_boot=30, seed=1),
                               _direct_bootstrap(np.array([1.0, np.nan, 3.0]), 30, 1))
    assert stats.bootstrap_ci(col, n_boot=30) == pytest.approx(
        np.nanquantile(_direct_bootstrap(np.array([1.0, np.nan, 3.0]), 30, 0), [0.025, 0.975]))
    assert stats.paired_permutation_test([1, 2, 3, None], [0, 0, 0, 0]) == 0.25  # 2 of 8
    # n01 = 3, n10 = 1 once the None pairs are dropped: exact p = 2 * 5/16
    assert stats.mcnemar_test([1, 1, 1, 0, 0, 1, None, 1],
                              [0, 0, 0, 0, 1, 1, 1, None]) == (1.0, 0.625)
    np.testing.assert_allclose(stats.holm_adjust([0.01, None, 0.04]), [0.02, np.nan, 0.04])
    assert list(stats.rank_groups([[None, 0.01], [0.01, None]])) == [1, 2]


# --- permutation tests ------------------------------------------------------------------------

def test_permutation_defaults_are_1000_draws_of_seed_0() -> None:
    a, b = D12, np.zeros(12)
    want = _direct_mc_p(D12, 1000, 0)
    assert want == 50 / 1001
    assert stats.paired_permutation_test(a, b) == pytest.approx(want, rel=1e-12)
    x = np.column_stack([a, b])
    np.testing.assert_allclose(stats.pair_pvalues(x, [0], [1]), [want], rtol=1e-12)
    np.testing.assert_allclose(stats.pairwise_pvalues(x), [[np.nan, want], [want, np.nan]],
                               rtol=1e-12)
    assert stats.paired_permutation_test(a, b, n_perm=500, seed=4) == pytest.approx(
        _direct_mc_p(D12, 500, 4), rel=1e-12)


def test_pair_pvalues_over_many_pairs_and_missing_values_in_both_columns() -> None:
    # 8 distinct pairs, each repeated 1100 times (more pairs than one chunk of 4096 holds):
    # four between complete columns, four involving the columns with a NaN (rows 4 and 5).
    x = np.array([[3, 1, 4, 1, 5, 9], [2, 6, 5, 3, 5, 8], [9, 7, 9, 3, 2, 3],
                  [8, 4, 6, 2, 6, 4], [np.nan, 3, 3, 8, 3, 2], [7, np.nan, 9, 5, 0, 2]],
                 dtype=float)
    pairs = [(2, 3), (3, 4), (4, 5), (5, 2), (0, 1), (0, 2), (1, 3), (1, 5)]
    left, right = (np.tile([p[i] for p in pairs], 1100) for i in (0, 1))
    got = stats.pair_pvalues(x, left, right, n_perm=1000, seed=0)  # <= 2**6 patterns: exact
    for k, (a, b) in enumerate(pairs):
        keep = ~np.isnan(x[:, a] - x[:, b])
        want = _exact_p(x[keep, a] - x[keep, b])
        np.testing.assert_array_equal(got[k::len(pairs)], want)


# --- rank groups ------------------------------------------------------------------------------

def test_walk_asks_the_leader_64_cells_at_a_time_and_needs_p_below_alpha() -> None:
    calls: list[tuple[int, list[int]]] = []

    def leader_p(leader: int, cols: np.ndarray) -> np.ndarray:
        calls.append((leader, list(cols)))
        return np.where((leader == 0) & (cols == 65), 0.01, 0.05)  # 0.05 is not < alpha

    groups = stats.walk_groups(100, leader_p)
    assert list(groups) == [1] * 65 + [2] * 35
    assert calls == [(0, list(range(1, 65))), (0, list(range(65, 100))),
                     (65, list(range(66, 100)))]
    assert list(stats.walk_groups(3, lambda leader, cols: np.full(len(cols), 0.049))) == [1, 2, 3]
    with pytest.raises(ValueError):  # a callback that answers for fewer cells
        stats.walk_groups(3, lambda leader, cols: np.array([0.5]))


def test_rank_groups_of_small_cases_by_hand() -> None:
    assert list(stats.rank_groups_of(np.array([[0.2], [0.4]]))) == [1]
    ones, zeros = np.ones(12), np.zeros(12)
    assert list(stats.rank_groups_of(np.column_stack([ones, zeros]), n_perm=100)) == [1, 2]
    assert list(stats.rank_groups_of(np.column_stack([ones, ones]))) == [1, 1]  # p = 1
    apart = np.array([[1.0, np.nan], [1.0, np.nan], [np.nan, 0.0], [np.nan, 0.0]])
    assert np.isnan(stats.rank_groups_of(apart)).all()  # no example has both cells


def test_rank_groups_of_defaults_and_the_given_seed_and_alpha() -> None:
    x = np.column_stack([D12, np.zeros(12)])
    assert list(stats.rank_groups_of(x)) == [1, 2]  # p = 50/1001 (1000 draws of seed 0)
    assert list(stats.rank_groups_of(x, 1000, 1)) == [1, 1]  # p = 62/1001
    assert list(stats.rank_groups_of(x, 1000, 1, alpha=0.07)) == [1, 2]
    assert list(stats.rank_groups_of(x, 1001, 0)) == [1, 1]  # p = 51/1002


# --- rank intervals ---------------------------------------------------------------------------

def test_rank_intervals_equal_order_statistics_of_direct_bootstrap_ranks() -> None:
    x = np.random.default_rng(12).normal(0, 1, (15, 20)) + np.linspace(0, 0.8, 20)
    low, high = stats.rank_intervals(x, n_boot=400, seed=3, alpha=0.1)
    want_low, want_high = _rank_order_stats(_direct_bootstrap(x, 400, 3), 0.1)
    np.testing.assert_array_equal(low, want_low)
    np.testing.assert_array_equal(high, want_high)
    assert (low < high).any()  # the intervals are not degenerate
    # documented defaults: 1000 resamples of seed 0, 95% intervals
    low, high = stats.rank_intervals(x)
    want_low, want_high = _rank_order_stats(_direct_bootstrap(x, 1000, 0), 0.05)
    np.testing.assert_array_equal(low, want_low)
    np.testing.assert_array_equal(high, want_high)


def test_rank_intervals_ties_share_the_best_rank() -> None:
    a = np.random.default_rng(1).random(10)
    low, high = stats.rank_intervals(np.column_stack([a, a, a - 1]), n_boot=50)
    assert list(low) == [1, 1, 3] and list(high) == [1, 1, 3]
