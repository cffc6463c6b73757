"""Learning curves: is more training data likely to pay, per model?

For each model with at least :data:`MIN_SIZES` train sizes above 0 (train size 0, zero-shot,
is left out), the overall score is fitted by a saturating power law

    score(n) = a - b * n ** (-c),   c > 0

(``a`` is the ceiling; ``b > 0`` rises towards it, ``b < 0`` falls towards it, ``b = 0`` is
flat). Least squares on the per-size mean scores: for a fixed ``c`` the model is linear in
``x = (n / n0) ** -c`` (``n0``: the smallest size), so ``(a, b)`` have a closed form; ``c``
is the least-squares choice on :data:`C_GRID`, refined by a golden-section search between
its grid neighbours. All of it runs on arrays, so each bootstrap replicate is refitted the
same way at little cost.

The CI resamples test examples: the ids shared by all of a model's fitted cells are drawn
jointly (paired) across its sizes, the per-size means recomputed, the curve refitted and the
prediction read off; a percentile interval at level ``1 - alpha``. Without per-example scores
(a per-model table, ``input=``) the curve is fitted and the CI columns are NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce

import numpy as np
import pandas as pd

from pipeline.aggregate.ranking import OVERALL
from pipeline.aggregate.stats import bootstrap_means
from pipeline.core.errors import ConfigError, UserError

MIN_SIZES = 3
# c from 0.01 (practically a straight line in log n) to 10 (flat right after the smallest size)
C_GRID = np.logspace(-2, 1, 61)
GOLDEN_STEPS = 40  # shrinks the bracket (two grid steps) by 0.618**40, below 1e-8 in log10 c
N_BAND = 25  # log-spaced sizes per model in the bands table (plus measured and target sizes)
WORTH, NOT_WORTH, UNCERTAIN = "worth it", "not worth it", "uncertain"
PHRASES = {WORTH: "more data is likely worth it", NOT_WORTH: "more data is not worth it",
           UNCERTAIN: "whether more data pays is uncertain"}

CURVE_COLUMNS = ["model", "family", "n_sizes", "smallest_train_size", "largest_train_size",
                 "at_train_size", "extrapolated", "predicted_score", "predicted_ci_low",
                 "predicted_ci_high", "fitted_at_largest", "gain", "gain_ci_low",
                 "gain_ci_high", "a", "b", "c", "rmse", "needed_train_size", "verdict",
                 "verdict_basis", "n_examples", "note"]
SIZE_COLUMNS = ["n_sizes", "smallest_train_size", "largest_train_size", "at_train_size",
                "needed_train_size", "n_examples"]
BAND_COLUMNS = ["model", "train_size", "predicted_score", "ci_low", "ci_high", "extrapolated"]


def _lines(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line ``y = a + s * x`` of each row of the ``(r, k)`` arrays:
    ``(a, s, sse)``."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    slope = (xc * yc).sum(axis=1) / (xc * xc).sum(axis=1)
    a = y.mean(axis=1) - slope * x.mean(axis=1)
    resid = yc - slope[:, None] * xc  # summed directly: no cancellation near the optimum
    return a, slope, (resid * resid).sum(axis=1)


def fit_power_law(sizes: np.ndarray,
                  scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares ``a, b, c`` of ``scores ~ a - b * sizes ** -c`` for each row of
    ``scores`` (shape ``(k,)`` or ``(r, k)``; ``sizes``: ``k >= 3`` distinct positive sizes).

    ``b`` is returned for sizes relative to the smallest one: ``a - b * (n / n0) ** -c``
    (:func:`absolute_b` converts it). A row with a NaN gives NaN.
    """
    y = np.atleast_2d(np.asarray(scores, dtype=float))
    logr = np.log(np.asarray(sizes) / np.min(sizes))
    u = np.log10(C_GRID)
    # grid: SSE of every (row, c) at once, from centred dot products
    xg = np.exp(-C_GRID[:, None] * logr)
    xg = xg - xg.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    sxy = yc @ xg.T
    sse = (yc * yc).sum(axis=1)[:, None] - sxy ** 2 / (xg * xg).sum(axis=1)
    best = np.argmin(sse, axis=1)  # a row with a NaN: any c, its a and b are NaN
    lo = u[np.maximum(best - 1, 0)]
    hi = u[np.minimum(best + 1, len(u) - 1)]

    def sse_at(uu: np.ndarray) -> np.ndarray:
        return _lines(np.exp(-(10.0 ** uu)[:, None] * logr), y)[2]

    ratio = (np.sqrt(5.0) - 1) / 2
    for _ in range(GOLDEN_STEPS):
        p, q = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        left = sse_at(p) <= sse_at(q)  # the minimum lies in [lo, q]
        hi = np.where(left, q, hi)
        lo = np.where(left, lo, p)
    c = 10.0 ** ((lo + hi) / 2)
    a, slope, _ = _lines(np.exp(-c[:, None] * logr), y)
    return (a, -slope, c) if y.ndim == np.ndim(scores) else (a[0], -slope[0], c[0])


def predict(a: np.ndarray, b: np.ndarray, c: np.ndarray, n0: float,
            sizes: np.ndarray) -> np.ndarray:
    """``a - b * (sizes / n0) ** -c``; parameters of shape ``(r,)`` give ``(r, len(sizes))``."""
    a, b, c = (np.atleast_1d(v)[:, None] for v in (a, b, c))
    return a - b * (np.asarray(sizes) / n0) ** -c


def absolute_b(b: float, c: float, n0: float) -> float:
    """``b`` of ``a - b * n ** -c`` from the ``b`` fitted on sizes relative to ``n0``."""
    return float(b * n0 ** c) + 0.0  # no signed zero for a flat curve


def needed_size(a: float, b: float, c: float, n0: float, start: float,
                min_effect: float) -> float:
    """Smallest train size (whole examples) where the curve gains ``min_effect`` over its
    value at ``start``; NaN when the ceiling ``a`` is not more than ``min_effect`` above it."""
    target = float(predict(a, b, c, n0, [start])[0, 0]) + min_effect
    if not a > target:
        return np.nan
    # rounded first: a thousandth of an example is fitting noise, not a reason to round up
    return float(np.ceil(np.round(n0 * (b / (a - target)) ** (1 / c), 3)))


def verdict(gain: float, low: float, high: float, min_effect: float) -> str:
    """``worth it`` when the gain's whole CI is at least ``min_effect``, ``not worth it`` when
    it is wholly below, else ``uncertain``; without a CI (NaN bounds) the point estimate
    decides between the first two."""
    if np.isnan(low) or np.isnan(high):
        return WORTH if gain >= min_effect else NOT_WORTH
    if low >= min_effect:
        return WORTH
    return NOT_WORTH if high < min_effect else UNCERTAIN


def paired_scores(model: str, sizes: list[int],
                  example_scores: Mapping | None) -> np.ndarray | None:
    """``(ids, sizes)`` per-example scores of the model's cells on the ids they all have
    (sorted), or None when a cell has no scores or fewer than 2 ids are shared."""
    cols = {s: None if example_scores is None else example_scores.get((model, s))
            for s in sizes}
    if any(col is None for col in cols.values()):
        return None
    for size, col in cols.items():
        if col.index.duplicated().any():
            raise UserError(f"per-example scores of {model}@{size} repeat an id")
    shared = reduce(pd.Index.intersection, (col.index for col in cols.values())).sort_values()
    if len(shared) < 2:
        return None
    return np.column_stack([col.loc[shared].to_numpy() for col in cols.values()])


def _band_sizes(lo: float, hi: float, measured: np.ndarray, target: int) -> np.ndarray:
    grid = np.rint(np.geomspace(lo, hi, N_BAND))
    return np.unique(np.concatenate([grid, measured, [target]])).astype(int)


def _quantiles(values: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    return tuple(np.nanquantile(values, [alpha / 2, 1 - alpha / 2], axis=0))


def _fit_model(model: str, family: str, rows: pd.DataFrame, example_scores: Mapping | None,
               min_effect: float, extrapolate_to: int | None, n_boot: int, seed: int,
               alpha: float) -> tuple[dict, pd.DataFrame]:
    sizes = rows["train_size"].to_numpy()
    n0, largest = float(sizes[0]), int(sizes[-1])
    at = int(extrapolate_to) if extrapolate_to is not None else 2 * largest
    a, b, c = fit_power_law(sizes, rows[OVERALL].to_numpy())
    fitted = predict(a, b, c, n0, sizes)[0]
    band = _band_sizes(min(n0, at), max(largest, at), sizes, at)
    curve = predict(a, b, c, n0, band)[0]
    values = paired_scores(model, sizes.tolist(), example_scores)
    i_at, i_largest = (int(np.flatnonzero(band == n)[0]) for n in (at, largest))
    low = high = np.full(len(band), np.nan)
    gain_low = gain_high = np.nan
    if values is not None:
        means = bootstrap_means(values, n_boot, seed)
        draws = predict(*fit_power_law(sizes, means), n0, band)
        low, high = _quantiles(draws, alpha)
        gain_low, gain_high = _quantiles(draws[:, i_at] - draws[:, i_largest], alpha)
    gain = float(curve[i_at] - fitted[-1])
    low_end, high_end = np.isclose(c, C_GRID[0]), np.isclose(c, C_GRID[-1])
    note = (f"c at the end of its grid ({C_GRID[0]:g} to {C_GRID[-1]:g}): "
            + ("no saturation shows, the curve is a straight line in log n and a is no "
               "ceiling" if low_end else "the curve is flat beyond the smallest size")
            if (low_end or high_end) and np.ptp(fitted) > 1e-12 else "")  # flat: no c to find
    row = {"model": model, "family": family, "n_sizes": len(sizes),
           "smallest_train_size": int(n0), "largest_train_size": largest,
           "at_train_size": at, "extrapolated": not n0 <= at <= largest,
           "predicted_score": float(curve[i_at]), "predicted_ci_low": float(low[i_at]),
           "predicted_ci_high": float(high[i_at]), "fitted_at_largest": float(fitted[-1]),
           "gain": gain, "gain_ci_low": float(gain_low), "gain_ci_high": float(gain_high),
           "a": float(a), "b": absolute_b(b, c, n0), "c": float(c),
           "rmse": float(np.sqrt(np.mean((fitted - rows[OVERALL].to_numpy()) ** 2))),
           "needed_train_size": needed_size(a, b, c, n0, largest, min_effect),
           "verdict": verdict(gain, gain_low, gain_high, min_effect),
           "verdict_basis": "point estimate (no per-example scores)" if values is None
           else f"{1 - alpha:.0%} bootstrap CI of the gain",
           "n_examples": np.nan if values is None else len(values), "note": note}
    bands = pd.DataFrame({"model": model, "train_size": band, "predicted_score": curve,
                          "ci_low": low, "ci_high": high,
                          "extrapolated": (band < n0) | (band > largest)})
    return row, bands


def learning_curves(ranked: pd.DataFrame,
                    example_scores: Mapping[tuple[str, int], pd.Series] | None,
                    min_effect: float, extrapolate_to: int | None = None, n_boot: int = 1000,
                    seed: int = 0, alpha: float = 0.05) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-model learning curves and their bands (``tables/learning_curves.csv`` and
    ``tables/learning_curve_bands.csv``).

    ``ranked``: the cells (model, family, train_size, overall_score; one row per cell).
    ``example_scores[(model, train_size)]``: that cell's per-example overall score indexed by
    example id; None or a missing cell: no CI for that model. ``extrapolate_to``: the train
    size to predict at for every model (default: twice each model's largest size).

    The curves table has one row per model (best predicted score first); a model with fewer
    than :data:`MIN_SIZES` sizes above 0 is listed with its ``note`` and no fit. The bands
    table gives the fitted curve and its CI on :data:`N_BAND` log-spaced sizes from the
    smallest measured (or target) size to the largest, plus the measured and target sizes.
    """
    if extrapolate_to is not None and not int(extrapolate_to) > 0:
        raise ConfigError(f"aggregate.extrapolate_to={extrapolate_to}: must be a train size "
                          "above 0 (or null: twice each model's largest size)")
    cells = ranked[(ranked["train_size"] > 0) & ranked[OVERALL].notna()]
    families = ranked.drop_duplicates("model").set_index("model")["family"]
    rows, bands = [], []
    for model, family in families.items():
        mine = cells[cells["model"] == model].sort_values("train_size")
        if mine["train_size"].nunique() < MIN_SIZES:
            rows.append({"model": model, "family": family,
                         "n_sizes": mine["train_size"].nunique(),
                         "note": f"{mine['train_size'].nunique()} train size(s) above 0 with "
                                 f"a score: a curve needs at least {MIN_SIZES}"})
            continue
        row, band = _fit_model(str(model), family, mine, example_scores, min_effect,
                               extrapolate_to, n_boot, seed, alpha)
        rows.append(row)
        bands.append(band)
    curves = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    for col in SIZE_COLUMNS:  # whole numbers, None where missing (an empty cell when written)
        curves[col] = pd.Series([None if pd.isna(v) else int(v) for v in curves[col]],
                                dtype=object)
    # stable: ties and the unfitted (NaN, last) keep the order of ``ranked``
    curves = curves.sort_values("predicted_score", ascending=False, kind="stable")
    band_table = pd.concat(bands, ignore_index=True) if bands else pd.DataFrame(
        columns=BAND_COLUMNS)
    return curves.reset_index(drop=True), band_table


def _num(value: float, digits: int = 4) -> str:
    return f"{value:.{digits}f}"


def _model_line(row: pd.Series, min_effect: float, level: str) -> str:
    where = (f"at {row['at_train_size']:,.0f} examples (extrapolated: measured "
             f"{row['smallest_train_size']:,.0f} to {row['largest_train_size']:,.0f})"
             if row["extrapolated"] else f"at {row['at_train_size']:,.0f} examples")
    has_ci = pd.notna(row["gain_ci_low"])
    pred_ci = (f" ({level} CI {_num(row['predicted_ci_low'])} to "
               f"{_num(row['predicted_ci_high'])})" if has_ci else "")
    gain_ci = (f" (CI {row['gain_ci_low']:+.4f} to {row['gain_ci_high']:+.4f})"
               if has_ci else " (no CI: no per-example scores)")
    needed = (f"; the curve gains {min_effect:g} by {row['needed_train_size']:,.0f} examples"
              if pd.notna(row["needed_train_size"]) else
              f"; its ceiling a = {_num(row['a'])} is within {min_effect:g} of that, so more "
              "data cannot gain it")
    return (f"- **{row['model']}**: {PHRASES[row['verdict']]}. The curve predicts "
            f"{_num(row['predicted_score'])}{pred_ci} {where}, {row['gain']:+.4f}{gain_ci} "
            f"over its fitted {_num(row['fitted_at_largest'])} at "
            f"{row['largest_train_size']:,.0f}{needed}."
            + (f" Note: {row['note']}." if isinstance(row["note"], str) and row["note"]
               else ""))


def learning_curve_section(curves: pd.DataFrame, min_effect: float,
                           alpha: float = 0.05) -> str | None:
    """The ``## Learning curves`` section of ``analysis.md``; None when ``curves`` is empty."""
    if curves.empty:
        return None
    level = f"{1 - alpha:.0%}"
    fitted = curves[curves["verdict"].notna()]
    skipped = curves[curves["verdict"].isna()]
    lines = ["## Learning curves", ""]
    if fitted.empty:
        lines.append(f"No model has {MIN_SIZES} train sizes above 0, so no learning curve is "
                     "fitted.")
        return "\n".join(lines) + "\n"
    lines += [f"Each model with at least {MIN_SIZES} train sizes above 0 is fitted a "
              "saturating power law, score = a - b * n^(-c) (least squares on its overall "
              f"scores). More data is **worth it** when the whole {level} bootstrap CI of the "
              "gain (the predicted score at the target size minus the fitted score at the "
              f"largest measured size) is at least min_effect = {min_effect:g}, **not worth "
              "it** when the whole CI is below it, **uncertain** otherwise; without "
              "per-example scores the point estimate decides. Predictions beyond the measured "
              "sizes are extrapolations. Table: tables/learning_curves.csv.", ""]
    lines += [_model_line(row, min_effect, level) for _, row in fitted.iterrows()]
    if not skipped.empty:
        lines.append("- Not fitted: " + "; ".join(f"{r['model']} ({r['note']})"
                                                  for _, r in skipped.iterrows()) + ".")
    return "\n".join(lines) + "\n"
