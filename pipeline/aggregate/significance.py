"""The one significance policy every view of a ranking reads (README "Statistics").

* **One family per ranking.** The overall score's paired tests form one family: every pair of
  ranked cells (up to ``aggregate.max_pairs``; beyond it the pairs of
  :func:`pipeline.aggregate.ranking.select_pairs`), each model's consecutive training sizes,
  and every pair the rank groups ask for. Each metric's adjacent pairs form a family of
  their own (``significance.csv``).
* **Holm-adjusted.** A difference is significant when its Holm-adjusted p-value over its family
  is below ``alpha``. Rank groups, ``p_vs_next``, ``significance.csv``, the scaling steps, the
  pairwise matrix, the report and ``diff`` all read these adjusted values, so no view calls
  significant what another calls not significant.
* **Enough permutations.** A family of ``m`` sign-flip tests uses at least
  ``2 * m / alpha`` permutations, so its smallest possible adjusted p-value is below
  ``alpha / 2`` and the resolution floor never decides significance. A p-value at the floor
  (no permuted statistic as extreme as the observed one) is an upper bound and is printed
  ``p <= 0.025 (2,000 permutations)``; never ``p = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pipeline.aggregate import stats


def n_permutations(m: int, n_boot: int, alpha: float) -> int:
    """Permutations for a family of ``m`` tests: ``n_boot``, raised to ``ceil(2 m / alpha)``."""
    return max(int(n_boot), math.ceil(2 * max(m, 1) / alpha))


def at_floor(p: np.ndarray, n_perm: int) -> np.ndarray:
    """Where a Monte-Carlo sign-flip p-value is its resolution floor ``1 / (n_perm + 1)``
    (an exact enumeration never gives that value, so exact p-values are never flagged; the
    test computes the floor as this same division, so equality is exact)."""
    return np.equal(p, 1.0 / (n_perm + 1))


def holm(p: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Holm-adjusted p-values (:func:`pipeline.aggregate.stats.holm_adjust`) and, per value,
    whether it is an upper bound: the step-down maximum that sets it comes only from raw
    p-values that are themselves bounds (an exact term equal to it makes it exact; NaN entries
    are kept and not counted; a value capped at 1 is exact)."""
    p = np.asarray(p, dtype=float)
    raw_bound = np.asarray(bound, dtype=bool)
    adjusted = stats.holm_adjust(p)
    out_bound = [False] * len(p)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid])]
    terms = (len(order) - np.arange(len(order))) * p[order]
    best, setter = -np.inf, -1
    for pos, idx in enumerate(order):
        if terms[pos] > best or (terms[pos] == best and not raw_bound[idx]):
            best, setter = terms[pos], idx
        out_bound[idx] = bool(raw_bound[setter]) and best < 1.0
    return adjusted, np.array(out_bound)


def p_text(p: float, bound: bool = False, n_perm: int | None = None) -> str:
    """``p = 0.0312``, ``p < 0.001``, or for a floor value ``p <= 0.025 (2,000 permutations)``;
    ``n/a`` for NaN. Never ``p = 0``."""
    if p is None or not np.isfinite(p):
        return "n/a"
    if bound:
        perms = f" ({n_perm:,} permutations)" if n_perm else ""
        return f"p <= {p:.3g}{perms}"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3g}"


@dataclass
class FamilyTests:
    """The overall score's family of paired tests on ranked cells (positions, best first).

    ``left < right`` are positions in the ranking; ``raw``/``adjusted`` p-values and
    ``bound`` (adjusted value is an upper bound) per pair; ``groups`` the rank groups of the
    scored cells; ``n_perm`` the permutations every test used.
    """

    left: np.ndarray
    right: np.ndarray
    raw: np.ndarray
    adjusted: np.ndarray
    bound: np.ndarray
    groups: np.ndarray
    n_perm: int

    def index(self, i: int, j: int) -> int | None:
        """Row of the pair of positions ``i`` and ``j`` (either order); None if untested."""
        a, b = min(i, j), max(i, j)
        hit = np.flatnonzero((self.left == a) & (self.right == b))
        return int(hit[0]) if len(hit) else None

    def p(self, i: int, j: int) -> tuple[float, bool]:
        """(adjusted p, is a bound) of positions ``i`` and ``j``; (NaN, False) if untested."""
        row = self.index(i, j)
        return (np.nan, False) if row is None else (float(self.adjusted[row]),
                                                    bool(self.bound[row]))


class _Missing(Exception):
    """The rank groups need pairs the family does not hold yet."""

    def __init__(self, pairs: list[tuple[int, int]]) -> None:
        super().__init__()
        self.pairs = pairs


def _groups(k: int, lookup: dict[tuple[int, int], int], adjusted: np.ndarray,
            alpha: float) -> np.ndarray:
    """Rank groups from the family's adjusted p-values: group 1 is the leader and every cell
    not significantly worse than it (so membership agrees with the leader's p-values, even
    when a noisier cell below a separated one is not separable from the leader); the other
    cells, in ranking order, follow :func:`pipeline.aggregate.stats.walk_groups` (a new group
    at the first cell significantly worse than the current group's leader; a NaN p-value, no
    shared examples, is not significant). Raises :class:`_Missing` with the pairs it needs
    when the family lacks some."""

    def p_of(keys: list[tuple[int, int]]) -> np.ndarray:
        missing = [key for key in keys if key not in lookup]
        if missing:
            raise _Missing(missing)
        return np.array([adjusted[lookup[key]] for key in keys])

    groups = np.ones(k)
    to_leader = p_of([(0, j) for j in range(1, k)])
    rest = np.flatnonzero(~(to_leader >= alpha)) + 1  # significantly worse, or untested
    if len(rest):
        groups[rest] = 1 + stats.walk_groups(len(rest), lambda leader, cols: p_of(
            [(int(rest[leader]), int(rest[c])) for c in cols]), alpha)
    return groups


def family_tests(x: np.ndarray, pairs: Iterable[tuple[int, int]], n_boot: int = 1000,
                 seed: int = 0, alpha: float = 0.05) -> FamilyTests:
    """Test the overall score's family on ``x`` (``(n_examples, k)``, columns = scored cells
    best first): the given ``pairs`` plus every pair the rank groups ask for, each with
    the paired sign-flip test of :func:`pipeline.aggregate.stats.pair_pvalues` at
    :func:`n_permutations` of the final family size, Holm-adjusted over the family.

    Rank groups (:func:`_groups`) read adjusted p-values; when they need a pair the family
    lacks, the pair joins the family (tested at the permutation count of the family so far)
    and the groups are formed again. Once they are complete, every pair not tested at the
    final family's count is tested again at it (each pair is tested at most twice, however
    often the family grew), and the groups are formed on those values.
    """
    k = x.shape[1]
    chosen = dict.fromkeys((min(i, j), max(i, j)) for i, j in pairs if i != j)
    raw: dict[tuple[int, int], float] = {}
    counted: dict[tuple[int, int], int] = {}  # pair -> permutations it was tested with
    shared = (~np.isnan(x)).sum(axis=1) >= 2
    while True:
        n_perm = n_permutations(len(chosen), n_boot, alpha)
        new = [pair for pair in chosen if pair not in raw]
        if new:
            left, right = np.array(new).T
            values = stats.pair_pvalues(x, left, right, n_perm, seed)
            raw.update({key: values[i] for i, key in enumerate(new)})
            counted.update(dict.fromkeys(new, n_perm))
        keys = list(chosen)
        p = np.array([raw[key] for key in keys])
        adjusted, bound = holm(p, at_floor(p, n_perm))
        lookup = {key: row for row, key in enumerate(keys)}
        try:
            groups = (np.full(k, np.nan) if k == 0 or (k > 1 and not shared.any())
                      else _groups(k, lookup, adjusted, alpha))
        except _Missing as need:
            chosen.update(dict.fromkeys(need.pairs))
            continue
        stale = [key for key in keys if counted[key] != n_perm]
        if not stale:
            break
        for key in stale:  # tested at a smaller family's count: test again at the final one
            del raw[key]
    pairs_at = np.array(keys, dtype=int).reshape(-1, 2)
    left, right = pairs_at[:, 0], pairs_at[:, 1]
    order = np.lexsort((right, left))
    return FamilyTests(left[order], right[order], p[order], adjusted[order], bound[order],
                       groups, n_perm)


def adjusted_family(p: np.ndarray, n_perm: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Holm over one family of raw p-values; bounds where a Monte-Carlo value sits at the
    floor of ``n_perm`` permutations (``None``: no Monte-Carlo test in the family)."""
    return holm(p, at_floor(p, n_perm) if n_perm else [False] * len(p))
