"""Metric-vs-human correlations: row-wise correlations, p-values and bootstrap CIs.

Inputs are ``(documents, systems)`` matrices of one metric and one human aspect (NaN where a
system has no output for a document).

- System level: the correlation of per-system means across systems; the p-value is scipy's
  (``pearsonr``, ``spearmanr``, ``kendalltau``) on those means.
- Summary level: the mean over documents of the correlation across systems per document; the
  p-value is a two-sided one-sample t-test of the per-document correlations against 0
  (``scipy.stats.ttest_1samp``).
- Confidence intervals: percentile bootstrap over documents (the documents are resampled
  with replacement and both levels recomputed; Deutsch et al., 2021, "boot-inputs").
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps

METHODS = ("pearson", "spearman", "kendall")
_SCIPY = {"pearson": sps.pearsonr, "spearman": sps.spearmanr, "kendall": sps.kendalltau}


def rowwise_corr(x: np.ndarray, y: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of each row of ``x`` with the same row of ``y`` over entries present in both.

    Returns (correlations, number of pairs); fewer than 3 pairs or a constant row gives NaN.
    ``spearman`` is Pearson on average ranks; ``kendall`` is tau-b (as scipy's default).
    """
    mask = ~(np.isnan(x) | np.isnan(y))
    x, y = np.where(mask, x, np.nan), np.where(mask, y, np.nan)
    n = mask.sum(axis=1)
    if method == "spearman":
        x = sps.rankdata(x, axis=1, nan_policy="omit")
        y = sps.rankdata(y, axis=1, nan_policy="omit")
    if method == "kendall":
        i, j = np.triu_indices(x.shape[1], 1)
        sx = np.nan_to_num(np.sign(x[:, i] - x[:, j]))
        sy = np.nan_to_num(np.sign(y[:, i] - y[:, j]))
        num, den = (sx * sy).sum(axis=1), np.sqrt((sx**2).sum(axis=1) * (sy**2).sum(axis=1))
    else:
        x, y = np.where(mask, x, 0.0), np.where(mask, y, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            xc = np.where(mask, x - x.sum(axis=1, keepdims=True) / n[:, None], 0.0)
            yc = np.where(mask, y - y.sum(axis=1, keepdims=True) / n[:, None], 0.0)
        num, den = (xc * yc).sum(axis=1), np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where((n >= 3) & (den > 1e-12), num / den, np.nan)
    return np.clip(r, -1.0, 1.0), n


def system_pvalue(x: np.ndarray, y: np.ndarray, method: str) -> float:
    """scipy's two-sided p-value of the correlation of two vectors (pairs present in both)."""
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(_SCIPY[method](x, y).pvalue)


def summary_pvalue(per_doc: np.ndarray) -> float:
    """Two-sided one-sample t-test of the per-document correlations against 0."""
    r = per_doc[~np.isnan(per_doc)]
    if len(r) < 2 or np.ptp(r) == 0:
        return float("nan")
    return float(sps.ttest_1samp(r, 0.0).pvalue)


def _weighted_means(counts: np.ndarray, wide: np.ndarray) -> np.ndarray:
    """Per-column means of ``wide`` (docs x cols) with documents weighted by ``counts``."""
    present = ~np.isnan(wide)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts @ np.where(present, wide, 0.0)) / (counts @ present)


def bootstrap_ci(metric: np.ndarray, aspect: np.ndarray, method: str, n_boot: int, seed: int,
                 alpha: float) -> dict[str, tuple[float, float]]:
    """Percentile CIs of the system- and summary-level correlation, resampling documents.

    ``metric`` and ``aspect`` are ``(documents, systems)``; returns ``{"system": (low, high),
    "summary": (low, high)}`` (NaN when undefined or ``n_boot`` is 0).
    """
    n_docs = metric.shape[0]
    if n_boot <= 0 or n_docs == 0:
        return {"system": (np.nan, np.nan), "summary": (np.nan, np.nan)}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_docs, size=(n_boot, n_docs))
    counts = np.zeros((n_boot, n_docs))
    np.add.at(counts, (np.arange(n_boot)[:, None], draws), 1.0)
    system, _ = rowwise_corr(_weighted_means(counts, metric), _weighted_means(counts, aspect),
                             method)
    per_doc, _ = rowwise_corr(metric, aspect, method)
    summary = _weighted_means(counts, per_doc[:, None])[:, 0]
    return {level: _percentiles(values, alpha)
            for level, values in (("system", system), ("summary", summary))}


def _percentiles(values: np.ndarray, alpha: float) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
