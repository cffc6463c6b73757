"""Resampling statistics for comparing cells on the same test examples.

All functions are vectorised numpy with a fixed seed, so equal inputs give equal outputs.
NaN marks a missing per-example value and is ignored (pairwise for paired tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import chain

import numpy as np
from scipy import stats as sps

_CHUNK_ELEMENTS = 1 << 22  # bound on a (resamples x examples) block, ~32 MB as float64
MCNEMAR_EXACT_BELOW = 25  # discordant pairs below this use the exact binomial test


def _row_chunks(n_rows: int, n_cols: int) -> Iterator[int]:
    """Sizes of row blocks that keep a block of ``n_cols`` columns under the memory bound."""
    step = max(1, _CHUNK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield min(step, n_rows - start)


def _as_2d(values: np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    return arr[:, None] if arr.ndim == 1 else arr


def bootstrap_means(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap distribution of the column means of an ``(n, k)`` array, shape ``(n_boot, k)``.

    Rows (examples) are resampled jointly across columns, so columns stay paired. NaN entries
    are left out of each mean; a resample with no value left gives NaN.
    """
    x = _as_2d(values)
    n = len(x)
    if n == 0:
        return np.full((n_boot, x.shape[1]), np.nan)
    ok = ~np.isnan(x)
    filled, present = np.where(ok, x, 0.0), ok.astype(float)
    rng = np.random.default_rng(seed)
    out = []
    for rows in _row_chunks(n_boot, n):
        idx = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n).astype(float)
        with np.errstate(invalid="ignore"):  # 0/0 where a resample drew no value
            out.append((counts @ filled) / (counts @ present))
    return np.vstack(out)


def bootstrap_ci(values: np.ndarray, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> tuple:
    """Percentile bootstrap CI of the mean.

    1-D ``values`` give ``(low, high)`` floats; an ``(n, k)`` array gives two length-k arrays
    (one interval per column). Columns without any value give NaN.
    """
    x = _as_2d(values)
    empty = ~(~np.isnan(x)).any(axis=0)
    means = bootstrap_means(x, n_boot, seed)
    means[:, empty] = 0.0  # silence all-NaN warnings; overwritten below
    low, high = np.nanquantile(means, [alpha / 2, 1 - alpha / 2], axis=0)
    low[empty], high[empty] = np.nan, np.nan
    if np.ndim(values) == 1:
        return float(low[0]), float(high[0])
    return low, high


def bootstrap_ci_blocks(blocks: Sequence[np.ndarray], n_boot: int = 1000, alpha: float = 0.05,
                        seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`bootstrap_ci` of each ``(n_i, c_i)`` block, batched: blocks with the same number
    of rows are stacked side by side (up to a fixed number of columns per batch), so they share
    one set of seeded resamples, exactly as each would draw alone."""
    by_rows: dict[int, list[list[int]]] = {}
    width = max(1, _CHUNK_ELEMENTS // max(n_boot, 1) // 8)  # columns of means per batch
    for i, block in enumerate(blocks):
        batches = by_rows.setdefault(len(block), [[]])
        if sum(blocks[b].shape[1] for b in batches[-1]) >= width:
            batches.append([])
        batches[-1].append(i)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for batch in chain.from_iterable(by_rows.values()):
        low, high = bootstrap_ci(np.hstack([blocks[b] for b in batch]), n_boot, alpha, seed)
        edges = np.cumsum([0] + [blocks[b].shape[1] for b in batch])
        for b, lo, hi in zip(batch, edges[:-1], edges[1:], strict=True):
            out[b] = (low[lo:hi], high[lo:hi])
    return [out[i] for i in range(len(blocks))]


def _sign_blocks(n: int, n_perm: int, seed: int) -> tuple[Iterator[np.ndarray], bool]:
    """Sign-flip matrices: all ``2**n`` patterns when that is <= ``n_perm`` (exact), else random."""
    if n < 31 and 2**n <= n_perm:
        bits = (np.arange(2**n)[:, None] >> np.arange(n)) & 1
        return iter([1.0 - 2.0 * bits]), True
    rng = np.random.default_rng(seed)
    blocks = (1.0 - 2.0 * rng.integers(0, 2, size=(rows, n)) for rows in _row_chunks(n_perm, n))
    return blocks, False


def _sign_flip_p(values: np.ndarray, left: np.ndarray, right: np.ndarray, count: np.ndarray,
                 n_perm: int, seed: int) -> np.ndarray:
    """Sign-flip p-values for the sums of ``values[:, left] - values[:, right]`` (pairwise).

    One shared set of sign flips serves every pair. Memory stays under a fixed budget: each
    block of sign patterns is applied in row slices, and the pairs are compared in chunks, so
    neither ``permutations x columns`` nor ``permutations x pairs`` is ever held at once.
    """
    observed = np.abs(values[:, left].sum(axis=0) - values[:, right].sum(axis=0))
    threshold = observed * (1 - 1e-9)  # tolerate float round-off between equal statistics
    blocks, exact = _sign_blocks(len(values), n_perm, seed)
    hits = np.zeros(len(left))
    pair_step = max(1, min(len(left), _CHUNK_ELEMENTS // 1024))
    row_step = max(1, _CHUNK_ELEMENTS // max(values.shape[1], pair_step))
    total = 0
    for signs in blocks:
        for start in range(0, len(signs), row_step):
            flipped = signs[start:start + row_step] @ values
            for lo in range(0, len(left), pair_step):
                sl = slice(lo, lo + pair_step)
                diff = np.subtract(flipped[:, left[sl]], flipped[:, right[sl]])
                np.abs(diff, out=diff)
                hits[sl] += np.count_nonzero(diff >= threshold[sl], axis=0)
        total += len(signs)
    p = hits / total if exact else (hits + 1) / (total + 1)
    return np.where(count > 0, p, np.nan)


def paired_permutation_test(a: np.ndarray, b: np.ndarray, n_perm: int = 1000,
                            seed: int = 0) -> float | np.ndarray:
    """Two-sided sign-flip permutation test of ``mean(a - b) == 0`` on paired examples.

    ``a`` and ``b`` are 1-D (one test, returns a float) or ``(n, k)`` (k tests on the same
    examples, returns an array). Pairs with a NaN are dropped. With ``2**n <= n_perm`` all
    sign patterns are enumerated (exact p); otherwise
    ``p = (1 + #{|perm mean| >= |observed mean|}) / (n_perm + 1)``.
    """
    a2, b2 = _as_2d(a), _as_2d(b)
    ok = ~(np.isnan(a2) | np.isnan(b2))
    k = a2.shape[1]
    values = np.hstack([np.where(ok, a2, 0.0), np.where(ok, b2, 0.0)])
    p = _sign_flip_p(values, np.arange(k), k + np.arange(k), ok.sum(axis=0), n_perm, seed)
    return float(p[0]) if np.ndim(a) == 1 else p


def mcnemar_test(a_correct: np.ndarray, b_correct: np.ndarray) -> tuple[float, float]:
    """McNemar's test on paired 0/1 outcomes; returns ``(statistic, p_value)``.

    With fewer than ``MCNEMAR_EXACT_BELOW`` discordant pairs: exact two-sided binomial test,
    statistic = min(n01, n10), p = min(1, 2 * BinomCDF(min; n01 + n10, 0.5)). Otherwise the
    chi-square test with continuity correction, statistic = (|n01 - n10| - 1)^2 / (n01 + n10)
    on 1 df (the same formulas as statsmodels' ``mcnemar``). Pairs with a NaN are dropped.
    """
    a, b = np.asarray(a_correct, dtype=float), np.asarray(b_correct, dtype=float)
    ok = ~(np.isnan(a) | np.isnan(b))
    a, b = a[ok] > 0.5, b[ok] > 0.5
    n01, n10 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = n01 + n10
    if n < MCNEMAR_EXACT_BELOW:  # n = 0 gives (0, 1): BinomCDF(0; 0, 0.5) = 1
        stat = min(n01, n10)
        return float(stat), float(min(1.0, 2 * sps.binom.cdf(stat, n, 0.5)))
    stat = (abs(n01 - n10) - 1) ** 2 / n
    return float(stat), float(sps.chi2.sf(stat, 1))


def holm_adjust(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (NaN entries are kept and not counted)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid])]  # tied p-values get equal adjusted values
    m = len(order)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def pair_pvalues(x: np.ndarray, left: np.ndarray, right: np.ndarray, n_perm: int = 1000,
                 seed: int = 0) -> np.ndarray:
    """Paired sign-flip p-values of the column pairs ``(left[i], right[i])`` of ``(n, k)``.

    Equal to :func:`paired_permutation_test` on each pair (same seed, same sign flips), but
    vectorised: only the columns named are used, and pairs of two complete columns share one
    matrix product per cell instead of one per pair. NaN rows are dropped per pair.
    """
    x = _as_2d(x)
    left, right = np.asarray(left, dtype=int), np.asarray(right, dtype=int)
    p = np.full(len(left), np.nan)
    if not len(left):
        return p
    complete = ~np.isnan(x).any(axis=0)
    direct = complete[left] & complete[right]
    if direct.any():
        cols, idx = np.unique(np.concatenate([left[direct], right[direct]]),
                              return_inverse=True)
        m = int(direct.sum())
        p[direct] = _sign_flip_p(x[:, cols], idx[:m], idx[m:], np.full(m, len(x)), n_perm, seed)
    rest = ~direct
    if rest.any():
        p[rest] = paired_permutation_test(x[:, left[rest]], x[:, right[rest]], n_perm, seed)
    return p


def pairwise_pvalues(x: np.ndarray, n_perm: int = 1000, seed: int = 0) -> np.ndarray:
    """Raw paired-permutation p-values between all columns of ``(n, k)``.

    Symmetric ``(k, k)`` matrix with a NaN diagonal.
    """
    x = _as_2d(x)
    k = x.shape[1]
    out = np.full((k, k), np.nan)
    i, j = np.triu_indices(k, 1)
    out[i, j] = out[j, i] = pair_pvalues(x, i, j, n_perm, seed)
    return out


def rank_groups(p_values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Rank groups for cells already sorted best first, from their pairwise p-value matrix.

    Rule: walk the ranking; the first cell leads group 1; each next cell joins the current
    group unless it is significantly different from the group's leader (p < alpha), in which
    case it starts a new group and leads it. A NaN p-value (no paired data) is treated as
    "not significantly different". Returns 1-based group numbers; all-NaN input gives NaN.
    """
    p = np.asarray(p_values, dtype=float)
    k = len(p)
    if k == 0 or (k > 1 and np.isnan(p[~np.eye(k, dtype=bool)]).all()):
        return np.full(k, np.nan)
    return walk_groups(k, lambda leader, cols: p[leader, cols], alpha)


def walk_groups(k: int, leader_p: Callable[[int, np.ndarray], np.ndarray],
                alpha: float = 0.05, chunk: int = 64) -> np.ndarray:
    """The walk of :func:`rank_groups`, asking ``leader_p(leader, cols)`` only for the p-values
    it needs (the current leader against the next ``chunk`` cells), so a ranking of k cells
    costs about k tests instead of k(k-1)/2."""
    groups = np.ones(k)
    leader, j = 0, 1
    while j < k:
        cols = np.arange(j, min(k, j + chunk))
        j = cols[-1] + 1
        for col, pv in zip(cols, leader_p(leader, cols), strict=True):
            new = pv < alpha
            groups[col] = groups[col - 1] + new
            if new:
                leader, j = col, col + 1
                break
    return groups


def rank_groups_of(x: np.ndarray, n_perm: int = 1000, seed: int = 0,
                alpha: float = 0.05) -> np.ndarray:
    """:func:`rank_groups` of the columns of ``(n, k)`` (sorted best first), computing only the
    leader-vs-cell p-values the walk reads; equal to ``rank_groups(pairwise_pvalues(x))``."""
    x = _as_2d(x)
    k = x.shape[1]
    shared = (~np.isnan(x)).sum(axis=1) >= 2  # rows where some pair of cells has data
    if k == 0 or (k > 1 and not shared.any()):
        return np.full(k, np.nan)
    return walk_groups(k, lambda leader, cols: pair_pvalues(
        x, np.full(len(cols), leader), cols, n_perm, seed), alpha)


def rank_intervals(x: np.ndarray, fixed: np.ndarray | None = None, n_boot: int = 1000,
                   seed: int = 0, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap rank intervals of the column means of ``(n, k)`` (higher mean = better).

    Rows (example ids) are resampled jointly across columns; in every resample the columns are
    ranked (1 = best, ties share the best rank) and each column's ``alpha/2`` and
    ``1 - alpha/2`` rank percentiles are returned (lower/higher order statistics, so integers).
    A column with no values takes its score from ``fixed`` (ranked, but without sampling
    variance); without a fixed score it gets NaN.
    """
    x = _as_2d(x)
    means = bootstrap_means(x, n_boot, seed)
    if fixed is not None:
        missing = np.isnan(x).all(axis=0)
        means[:, missing] = np.asarray(fixed, dtype=float)[missing]
    ranks = sps.rankdata(-means, axis=1, method="min", nan_policy="omit").astype(float)
    all_nan = np.isnan(ranks).all(axis=0)
    ranks[:, all_nan] = 0.0  # silence all-NaN warnings; overwritten below
    low = np.nanquantile(ranks, alpha / 2, axis=0, method="lower")
    high = np.nanquantile(ranks, 1 - alpha / 2, axis=0, method="higher")
    low[all_nan], high[all_nan] = np.nan, np.nan
    return low, high
