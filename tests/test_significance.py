"""The one significance policy: Holm families, permutation counts, p-values at the floor."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.aggregate import stats
from pipeline.aggregate.significance import (
    _groups,
    adjusted_family,
    at_floor,
    family_tests,
    holm,
    n_permutations,
    p_text,
)


def test_permutations_grow_with_the_family() -> None:
    assert n_permutations(3, 1000, 0.05) == 1000  # 2 * 3 / 0.05 = 120 < 1000
    assert n_permutations(28, 1000, 0.05) == 1120
    assert n_permutations(3, 50, 0.01) == 600
    assert n_permutations(0, 10, 0.05) == 40  # an empty family still tests with some room
    # the smallest Holm-adjusted p-value of a family stays below alpha / 2
    for m in (1, 7, 190, 3000):
        n = n_permutations(m, 1000, 0.05)
        assert m / (n + 1) < 0.025


def test_floor_values_are_flagged_and_exact_ones_are_not() -> None:
    assert list(at_floor([1 / 101, 2 / 101, 0.5], 100)) == [True, False, False]
    # an exact enumeration (2**n <= permutations) never returns 1 / (n_perm + 1)
    x = np.column_stack([np.arange(8) + 1.0, np.zeros(8)])
    p = stats.pair_pvalues(x, np.array([0]), np.array([1]), 256, 0)
    assert p[0] == pytest.approx(2 / 256) and not at_floor(p, 256)[0]
    # a Monte-Carlo test where no permutation reaches the observed shift is at the floor
    x = np.column_stack([np.arange(40) + 1.0, np.zeros(40)])
    p = stats.pair_pvalues(x, np.array([0]), np.array([1]), 99, 0)
    assert p[0] == pytest.approx(1 / 100) and at_floor(p, 99)[0]


def test_holm_tracks_which_adjusted_values_are_bounds() -> None:
    # sorted: 1/101 (floor) x3 = 0.0297, 0.02 x2 = 0.04, 0.5 x1 = 0.5
    p, bound = holm([0.5, 1 / 101, 0.02], [False, True, False])
    np.testing.assert_allclose(p, [0.5, 3 / 101, 0.04], rtol=1e-12)
    assert list(bound) == [False, True, False]
    # 0.0011 x2 = 0.0022 < 0.001 x3 = 0.003: its adjusted value is set by the floor
    p, bound = holm([0.001, 0.0011, 0.9], [True, False, False])
    np.testing.assert_allclose(p, [0.003, 0.003, 0.9], rtol=1e-12)
    assert list(bound) == [True, True, False]
    # a value capped at 1 is exact, whatever set it; NaN is kept and not counted
    p, bound = holm([0.6, np.nan, 0.7], [True, False, False])
    np.testing.assert_allclose(p, [1.0, np.nan, 1.0])
    assert list(bound) == [False, False, False]
    # an exact term equal to the running maximum makes the value exact: 2 x 0.01 = 0.02
    p, bound = holm([0.01, 0.02], [True, False])
    np.testing.assert_allclose(p, [0.02, 0.02])
    assert list(bound) == [True, False]
    # ... and a bound term equal to an exact maximum does not make it a bound
    p, bound = holm([0.01, 0.02], [False, True])
    np.testing.assert_allclose(p, [0.02, 0.02])
    assert list(bound) == [False, False]
    # a bound term of exactly 1: "p <= 1" says nothing, so 1 is exact
    p, bound = holm([0.5, 0.9], [True, False])
    np.testing.assert_allclose(p, [1.0, 1.0])
    assert list(bound) == [False, False]
    p, bound = adjusted_family([1 / 11, 0.5], None)  # no Monte-Carlo test: no bound
    assert not bound.any()
    p, bound = adjusted_family([1 / 11, 0.5], 10)
    assert list(bound) == [True, False]


def test_p_text_prints_bounds_and_never_zero() -> None:
    assert p_text(0.0312) == "p = 0.0312" and p_text(0.001) == "p = 0.001"
    assert p_text(0.0) == "p < 0.001" and p_text(1e-300) == "p < 0.001"
    assert p_text(0.025, bound=True, n_perm=2000) == "p <= 0.025 (2,000 permutations)"
    assert p_text(0.025, bound=True) == "p <= 0.025"
    assert p_text(np.nan) == "n/a" and p_text(None) == "n/a"


def test_family_walk_adds_the_pairs_it_needs_and_adjusts_again() -> None:
    # four cells 1.0 apart on every example, 30 examples: every pair at the floor
    n = 30
    x = np.column_stack([np.full(n, 4.0 - j) + 0.01 * np.arange(n) for j in range(4)])
    # only the leader's pairs given: the walk splits at 1 and asks for the new leader's
    # chunk (1, 2), (1, 3), then (2, 3); the family grows to 6 pairs, 240 permutations
    fam = family_tests(x, [(0, 1), (0, 2), (0, 3)], n_boot=10, seed=0, alpha=0.05)
    assert [(int(a), int(b)) for a, b in zip(fam.left, fam.right, strict=True)] == [
        (0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert fam.n_perm == n_permutations(6, 10, 0.05) == 240
    np.testing.assert_allclose(fam.raw, 1 / 241, rtol=1e-12)
    np.testing.assert_allclose(fam.adjusted, 6 / 241, rtol=1e-12)
    assert fam.bound.all() and list(fam.groups) == [1, 2, 3, 4]
    assert fam.p(2, 1) == (pytest.approx(6 / 241), True) and fam.index(3, 3) is None
    assert np.isnan(fam.p(3, 3)[0]) and fam.p(3, 3)[1] is False
    # with every pair given up front nothing is added, and the result is the same
    full = family_tests(x, [(i, j) for i in range(4) for j in range(i + 1, 4)], n_boot=10)
    np.testing.assert_array_equal(full.adjusted, fam.adjusted)
    # group 1 agrees with the leader's p-values: c ranks below b, which is significantly
    # worse than a, but c's gap to a is noisy (p well above alpha): c is in group 1
    b = np.full(n, 0.5)
    noise = np.random.default_rng(1).normal(0, 1, n)
    noise -= noise.mean()
    three = np.column_stack([b + 0.1, b, b - 0.01 + noise])
    fam3 = family_tests(three, [(0, 1), (0, 2), (1, 2)], n_boot=500)
    assert fam3.p(0, 1)[0] < 0.05 <= fam3.p(0, 2)[0]
    assert list(fam3.groups) == [1, 2, 1]
    # a p-value of exactly alpha is not significant: the cell stays in group 1
    lookup = {(0, 1): 0}
    assert list(_groups(2, lookup, np.array([0.05]), 0.05)) == [1, 1]
    assert list(_groups(2, lookup, np.array([0.0499]), 0.05)) == [1, 2]
    # alpha reaches the walk below group 1: c trails b by p ~ 0.013
    rng = np.random.default_rng(4)
    base, d = rng.normal(0.5, 0.1, n), rng.normal(0, 0.1, n)
    walk = np.column_stack([base + 1.0, base, base - (d + 0.04 - d.mean())])
    assert list(family_tests(walk, [(0, 1), (0, 2), (1, 2)], n_boot=2000).groups) == [1, 2, 3]
    assert list(family_tests(walk, [(0, 1), (0, 2), (1, 2)], n_boot=2000,
                             alpha=0.01).groups) == [1, 2, 2]
    # alpha reaches the walk and the permutation count: a pair 0.04 apart has p = 0.013,
    # significant at 0.05, not at 0.01
    rng = np.random.default_rng(4)
    base, d = rng.normal(0.5, 0.1, n), rng.normal(0, 0.1, n)
    noisy = np.column_stack([base + d + 0.04 - d.mean(), base])
    loose = family_tests(noisy, [(0, 1)], n_boot=2000)
    assert loose.raw[0] == pytest.approx(0.013, abs=5e-4) and list(loose.groups) == [1, 2]
    strict = family_tests(noisy, [(0, 1)], n_boot=2000, alpha=0.01)
    assert strict.raw[0] == loose.raw[0] and list(strict.groups) == [1, 1]
    assert family_tests(noisy, [(0, 1)], n_boot=10, alpha=0.001).n_perm == 2000
    # seed 0 by default; another seed draws other sign flips
    assert family_tests(noisy, [(0, 1)]).raw[0] == family_tests(noisy, [(0, 1)], seed=0).raw[0]
    assert family_tests(noisy, [(0, 1)]).raw[0] != family_tests(noisy, [(0, 1)], seed=1).raw[0]
    # one cell: group 1; data never shared by two cells: no groups
    assert list(family_tests(x[:, :1], [], n_boot=10).groups) == [1]
    disjoint = np.array([[0.9, np.nan], [np.nan, 0.1], [0.8, np.nan], [np.nan, 0.2]])
    assert np.isnan(family_tests(disjoint, [(0, 1)], n_boot=10).groups).all()
    # no shared data at all: no groups, no p-values
    empty = family_tests(np.full((3, 2), np.nan), [(0, 1)], n_boot=10)
    assert np.isnan(empty.groups).all() and np.isnan(empty.raw).all()
