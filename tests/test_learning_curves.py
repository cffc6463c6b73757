"""Learning curves: a power law recovered by hand, flat models, the paired bootstrap CI, the
verdict rule, the table-only mode, and the report chart drawn from the two tables."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.aggregate import learning_curves as lc
from pipeline.aggregate.learning_curves import (
    fit_power_law,
    learning_curve_section,
    learning_curves,
    needed_size,
    predict,
    verdict,
)
from pipeline.core.errors import ConfigError, UserError
from pipeline.report.html import write_report
from pipeline.report.learning_chart import PALETTE, learning_sections

# score = 0.8 - 2 * n^-0.5: 0.6 at 100, 0.7 at 400, 0.75 at 1600; at 3200 (2x the largest)
# 0.8 - 2 / sqrt(3200) = 0.76464466; a gain of 0.01 over 0.75 needs 2 / sqrt(n) = 0.04,
# n = 2500
A, B, C = 0.8, 2.0, 0.5
SIZES = (100, 400, 1600)


def truth(n: object) -> np.ndarray:
    return A - B * np.asarray(n, dtype=float) ** -C


def table(model: str, sizes: tuple[int, ...], scores: object, family: str = "fam",
          ci: float | None = None) -> pd.DataFrame:
    rows = pd.DataFrame({"model": model, "family": family, "params_b": 1.0,
                         "train_size": list(sizes), "overall_score": scores})
    if ci is not None:
        rows["overall_score_ci_low"] = rows["overall_score"] - ci
        rows["overall_score_ci_high"] = rows["overall_score"] + ci
    return rows


def noisy(sizes: tuple[int, ...], seed: int, n_ex: int = 300, sd: float = 0.1,
          item_sd: float = 0.1, model: str = "m") -> tuple[pd.DataFrame, dict]:
    """Per-example scores around the true curve: an example effect shared by every size (so
    the cells are paired) plus independent noise; the table holds their means."""
    rng = np.random.default_rng(seed)
    ids = [f"e{i}" for i in range(n_ex)]
    item = rng.normal(0, item_sd, n_ex)
    scores = {(model, s): pd.Series(truth(s) + item + rng.normal(0, sd, n_ex), index=ids)
              for s in sizes}
    return table(model, sizes, [scores[(model, s)].mean() for s in sizes]), scores


def row_of(curves: pd.DataFrame, model: str) -> pd.Series:
    return curves.set_index("model").loc[model]


# --- the fit -------------------------------------------------------------------------------

def test_recovers_a_known_power_law_and_its_prediction() -> None:
    ranked = pd.concat([table("m", (0, *SIZES), [0.1, *truth(SIZES)])])
    curves, bands = learning_curves(ranked, None, min_effect=0.01)
    row = row_of(curves, "m")
    assert row["a"] == pytest.approx(A, abs=1e-9)
    assert row["b"] == pytest.approx(B, rel=1e-8)
    assert row["c"] == pytest.approx(C, rel=1e-8)
    assert row["rmse"] == pytest.approx(0, abs=1e-9)
    assert row["family"] == "fam"
    assert (row["n_sizes"], row["smallest_train_size"], row["largest_train_size"],
            row["at_train_size"]) == (3, 100, 1600, 3200)
    assert row["extrapolated"]
    assert row["predicted_score"] == pytest.approx(0.76464466, abs=1e-8)
    assert row["fitted_at_largest"] == pytest.approx(0.75, abs=1e-9)
    assert row["gain"] == pytest.approx(0.01464466, abs=1e-8)
    assert row["needed_train_size"] == 2500
    assert row["verdict"] == "worth it"
    # the band passes through the measured points and the prediction
    mine = bands[bands["model"] == "m"].set_index("train_size")
    assert mine.loc[list(SIZES), "predicted_score"].to_numpy() == pytest.approx(
        [0.6, 0.7, 0.75], abs=1e-9)
    assert mine.loc[3200, "predicted_score"] == pytest.approx(row["predicted_score"])
    assert mine.index.min() == 100 and mine.index.max() == 3200
    assert mine.index.is_monotonic_increasing and lc.N_BAND <= len(mine) <= lc.N_BAND + 2
    assert bands["train_size"].dtype.kind == "i"
    assert mine.loc[1600, "extrapolated"] is np.False_ and mine.loc[1601:, "extrapolated"].all()
    assert not mine.loc[:1600, "extrapolated"].any()


def test_fit_is_least_squares_on_noisy_points() -> None:
    """Five points off the curve: the fit is within the points' noise of the truth, and no
    nearby (a, b, c) has a smaller squared error."""
    sizes = np.array([100, 200, 400, 800, 1600])
    y = truth(sizes) + np.array([0.004, -0.003, 0.002, -0.004, 0.001])
    a, b, c = fit_power_law(sizes, y)
    sse = float(((predict(a, b, c, 100, sizes)[0] - y) ** 2).sum())
    rng = np.random.default_rng(0)
    for da, db, dc in rng.normal(0, [0.003, 0.01, 0.01], (200, 3)):
        other = predict(a + da, b + db, c + dc, 100, sizes)[0]
        assert float(((other - y) ** 2).sum()) >= sse
    assert a == pytest.approx(A, abs=0.02) and c == pytest.approx(C, rel=0.15)
    row = row_of(learning_curves(table("m", tuple(sizes), y), None, 0.01)[0], "m")
    assert row["rmse"] == pytest.approx(math.sqrt(sse / 5))
    assert (row["a"], row["c"]) == pytest.approx((a, c))


def test_fit_rows_are_independent_and_nan_rows_are_nan() -> None:
    sizes = np.array(SIZES)
    rising = truth(sizes)
    falling = 0.5 + 1.0 * sizes ** -0.3  # b < 0: a curve falling to its floor
    a, b, c = fit_power_law(sizes, np.vstack([rising, falling, [0.6, np.nan, 0.7]]))
    one = fit_power_law(sizes, falling)
    assert (a[1], b[1], c[1]) == pytest.approx(one, rel=1e-9)
    assert a[1] == pytest.approx(0.5, abs=1e-8) and c[1] == pytest.approx(0.3, rel=1e-7)
    assert b[1] * 100 ** c[1] == pytest.approx(-1.0, rel=1e-7)
    assert b[0] * 100 ** c[0] == pytest.approx(B, rel=1e-7)
    assert np.isnan(a[2])


def test_c_at_the_grid_ends_is_noted() -> None:
    """Points on a straight line in log n have no saturation: c stops at the grid's low end
    and the note says so; a jump after the smallest size hits the high end."""
    sizes = (100, 1000, 10000)
    curves, _ = learning_curves(pd.concat([
        table("line", sizes, [0.5, 0.6, 0.7]), table("jump", sizes, [0.2, 0.7, 0.7])]),
        None, min_effect=0.01)
    line, jump = row_of(curves, "line"), row_of(curves, "jump")
    assert lc.C_GRID[0] == pytest.approx(0.01) and lc.C_GRID[-1] == pytest.approx(10)
    assert line["c"] == pytest.approx(0.01) and jump["c"] == pytest.approx(10)
    assert line["note"] == ("c at the end of its grid (0.01 to 10): no saturation shows, the "
                            "curve is a straight line in log n and a is no ceiling")
    assert jump["note"] == ("c at the end of its grid (0.01 to 10): the curve is flat beyond "
                            "the smallest size")
    text = learning_curve_section(curves, 0.01)
    assert f"examples. Note: {line['note']}.\n" in text and f"Note: {jump['note']}." in text
    # at c = 0.01 the fit is the least-squares line on x = (n / 100)^-0.01 (numpy's polyfit)
    x = (np.array([*sizes, 20000]) / 100) ** -lc.C_GRID[0]
    slope, icept = np.polyfit(x[:3], [0.5, 0.6, 0.7], 1)
    assert line["a"] == pytest.approx(icept) and line["gain"] == pytest.approx(
        slope * (x[3] - x[2]))
    assert line["gain"] == pytest.approx(0.1 * math.log10(2), rel=0.05)  # ~ 0.1 per decade


def test_flat_model_is_predicted_flat() -> None:
    curves, bands = learning_curves(table("flat", (200, 400, 800), [0.5, 0.5, 0.5]), None,
                                    min_effect=0.005)
    row = row_of(curves, "flat")
    assert row["b"] == 0 and math.copysign(1, row["b"]) == 1  # no "-0.0" in the table
    assert row["a"] == pytest.approx(0.5)
    assert row["predicted_score"] == pytest.approx(0.5) and row["gain"] == pytest.approx(0)
    assert pd.isna(row["needed_train_size"]) and row["verdict"] == "not worth it"
    assert row["note"] == ""
    assert bands["predicted_score"].to_numpy() == pytest.approx(0.5)


def test_train_size_zero_is_left_out_of_the_fit() -> None:
    base = learning_curves(table("m", SIZES, truth(SIZES)), None, 0.01)[0]
    with_zero = learning_curves(table("m", (0, *SIZES), [0.99, *truth(SIZES)]), None, 0.01)[0]
    pd.testing.assert_frame_equal(base, with_zero)
    # any size above 0 counts, 1 included: 0.8 - 2 * n^-0.5 at 1, 4, 16 is -1.2, -0.2, 0.3
    tiny = row_of(learning_curves(table("m", (0, 1, 4, 16), [0.1, -1.2, -0.2, 0.3]), None,
                                  0.01)[0], "m")
    assert tiny["n_sizes"] == 3 and tiny["predicted_score"] == pytest.approx(0.8 - 2 / 32 ** 0.5)
    # 0 plus two sizes is not enough for a curve
    two = learning_curves(table("m", (0, 100, 400), [0.1, 0.6, 0.7]), None, 0.01)[0]
    assert two["n_sizes"].tolist() == [2] and two["verdict"].isna().all()


def test_tables_write_whole_sizes_and_empty_cells(tmp_path: Path) -> None:
    """Sizes stay integers in the CSV and its Markdown; a missing value is an empty cell."""
    from pipeline.core.io import write_table

    ranked = pd.concat([table("m", SIZES, truth(SIZES)), table("flat", SIZES, [0.5] * 3),
                        table("short", (100, 200), [0.4, 0.5])])
    curves, _ = learning_curves(ranked, None, 0.01)
    write_table(tmp_path / "learning_curves.csv", curves)
    csv = (tmp_path / "learning_curves.csv").read_text().splitlines()
    assert csv[1].startswith("m,fam,3,100,1600,3200,True,")
    assert ",2500,worth it," in csv[1] and ",,not worth it," in csv[2]
    md = (tmp_path / "learning_curves.md").read_text()
    assert "<NA>" not in md and "| 2500 | worth it |" in md


def test_models_with_fewer_than_three_sizes_are_listed_unfitted() -> None:
    ranked = pd.concat([table("m", SIZES, truth(SIZES)),
                        table("short", (100, 400), [0.5, 0.6], family="other"),
                        table("gap", (100, 400, 1600), [0.5, np.nan, 0.6])])
    curves, bands = learning_curves(ranked, None, 0.01)
    assert curves["model"].tolist() == ["m", "short", "gap"]  # fitted first
    short = row_of(curves, "short")
    assert short["family"] == "other" and short["n_sizes"] == 2
    assert short["note"] == "2 train size(s) above 0 with a score: a curve needs at least 3"
    assert pd.isna(short["verdict"]) and pd.isna(short["predicted_score"])
    assert row_of(curves, "gap")["n_sizes"] == 2  # a missing score is no size
    assert set(bands["model"]) == {"m"}
    assert list(curves.columns) == lc.CURVE_COLUMNS and list(bands.columns) == lc.BAND_COLUMNS
    assert curves.index.equals(pd.RangeIndex(3))
    none, no_bands = learning_curves(table("short", (100, 400), [0.5, 0.6]), None, 0.01)
    assert len(none) == 1 and no_bands.empty and list(no_bands.columns) == lc.BAND_COLUMNS


def test_extrapolate_to_sets_the_target_for_every_model() -> None:
    ranked = pd.concat([table("m", SIZES, truth(SIZES)), table("k", (10, 20, 40),
                                                               truth((10, 20, 40)))])
    _, bands = learning_curves(ranked, None, 0.01)
    assert bands.index.equals(pd.RangeIndex(len(bands))) and set(bands["model"]) == {"m", "k"}
    inside = learning_curves(ranked, None, 0.01, extrapolate_to=1000)[0]
    assert inside["at_train_size"].tolist() == [1000, 1000]
    m = row_of(inside, "m")
    assert not m["extrapolated"] and row_of(inside, "k")["extrapolated"]
    assert m["predicted_score"] == pytest.approx(A - B / math.sqrt(1000))
    assert m["gain"] == pytest.approx(A - B / math.sqrt(1000) - 0.75)
    assert m["verdict"] == "not worth it"  # 1000 is below the largest size: a loss
    for edge in SIZES:  # the measured range itself is no extrapolation
        at = row_of(learning_curves(ranked, None, 0.01, extrapolate_to=edge)[0], "m")
        assert not at["extrapolated"] and at["at_train_size"] == edge
    one = row_of(learning_curves(ranked, None, 0.01, extrapolate_to=1)[0], "m")
    assert one["extrapolated"] and one["predicted_score"] == pytest.approx(A - B)
    below, bands = learning_curves(table("m", SIZES, truth(SIZES)), None, 0.01,
                                   extrapolate_to=50)
    assert row_of(below, "m")["extrapolated"]
    assert bands["train_size"].min() == 50 and bands["train_size"].max() == 1600
    assert bands.set_index("train_size").loc[50, "extrapolated"]
    for bad in (0, -5):
        with pytest.raises(ConfigError) as err:
            learning_curves(ranked, None, 0.01, extrapolate_to=bad)
        assert str(err.value) == (f"aggregate.extrapolate_to={bad}: must be a train size above "
                                  "0 (or null: twice each model's largest size)")


# --- needed size and verdict ---------------------------------------------------------------

def test_needed_size_by_hand() -> None:
    # relative sizes (n0 = 100): b = 2 / sqrt(100) = 0.2
    assert needed_size(A, 0.2, C, 100, 1600, 0.01) == 2500
    assert needed_size(A, 0.2, C, 100, 1600, 0.0) == 1600  # no gain needed: the largest
    assert needed_size(A, 0.2, C, 100, 400, 0.05) == 1600  # 0.7 + 0.05 = 0.75 at 1600
    # 0.7 + 0.03 = 0.8 - 0.2 / sqrt(n / 100): n = 100 * (0.2 / 0.07)^2 = 816.33 -> 817
    assert needed_size(A, 0.2, C, 100, 400, 0.03) == 817
    assert np.isnan(needed_size(A, 0.2, C, 100, 1600, 0.05))  # ceiling 0.8 = 0.75 + 0.05
    assert np.isnan(needed_size(0.5, -0.1, C, 100, 1600, 0.01))  # a falling curve


@pytest.mark.parametrize(("gain", "low", "high", "expected"), [
    (0.03, 0.01, 0.05, "worth it"), (0.03, 0.005, 0.05, "worth it"),
    (0.03, 0.0049, 0.05, "uncertain"), (0.0, -0.01, 0.005, "uncertain"),
    (0.0, -0.01, 0.0049, "not worth it"),
    (0.005, np.nan, np.nan, "worth it"), (0.0049, np.nan, np.nan, "not worth it"),
    (0.1, np.nan, 0.2, "worth it"), (0.0, 0.01, np.nan, "not worth it"),
])
def test_verdict_rule(gain: float, low: float, high: float, expected: str) -> None:
    assert verdict(gain, low, high, 0.005) == expected


# --- the bootstrap CI ----------------------------------------------------------------------

def test_bootstrap_ci_covers_the_truth_on_simulated_data() -> None:
    sizes = (100, 200, 400, 800, 1600)
    covered = gains = 0
    for seed in range(20):
        ranked, scores = noisy(sizes, seed)
        row = row_of(learning_curves(ranked, scores, 0.005, n_boot=300, seed=seed)[0], "m")
        covered += row["predicted_ci_low"] <= truth(3200) <= row["predicted_ci_high"]
        gains += row["gain_ci_low"] <= truth(3200) - truth(1600) <= row["gain_ci_high"]
        assert row["predicted_ci_high"] - row["predicted_ci_low"] < 0.06
        assert row["predicted_ci_low"] <= row["predicted_score"] <= row["predicted_ci_high"]
        assert row["n_examples"] == 300
    assert covered >= 16 and gains >= 16  # 95% intervals: 19 of 20 expected


def test_bootstrap_is_paired_seeded_and_sized_by_alpha() -> None:
    ranked, scores = noisy(SIZES, seed=1, sd=0.03, item_sd=0.2)
    curves, bands = learning_curves(ranked, scores, 0.005, n_boot=400, seed=3)
    again, _ = learning_curves(ranked, scores, 0.005, n_boot=400, seed=3)
    pd.testing.assert_frame_equal(curves, again)
    other = learning_curves(ranked, scores, 0.005, n_boot=400, seed=4)[0]
    assert other["predicted_ci_low"].iloc[0] != curves["predicted_ci_low"].iloc[0]
    wide = row_of(learning_curves(ranked, scores, 0.005, n_boot=400, seed=3, alpha=0.5)[0], "m")
    row = row_of(curves, "m")
    assert wide["predicted_ci_low"] > row["predicted_ci_low"]
    assert wide["predicted_ci_high"] < row["predicted_ci_high"]
    assert row["verdict_basis"] == "95% bootstrap CI of the gain"
    assert bands["ci_low"].notna().all()
    assert (bands["ci_low"] <= bands["predicted_score"] + 1e-12).all()
    assert (bands["predicted_score"] <= bands["ci_high"] + 1e-12).all()
    # the band's CI at the target size is the row's CI
    at = bands.set_index("train_size").loc[3200]
    assert (at["ci_low"], at["ci_high"]) == (row["predicted_ci_low"], row["predicted_ci_high"])
    # unpaired: the same per-example values with the example effect broken
    shuffled = {k: pd.Series(np.random.default_rng(i).permutation(v.to_numpy()), index=v.index)
                for i, (k, v) in enumerate(scores.items())}
    loose = row_of(learning_curves(ranked, shuffled, 0.005, n_boot=400, seed=3)[0], "m")
    assert (loose["gain_ci_high"] - loose["gain_ci_low"]
            > 3 * (row["gain_ci_high"] - row["gain_ci_low"]))


def test_ci_is_the_percentile_interval_of_refits_on_paired_resamples() -> None:
    """Recomputed from the public pieces: the shared ids' scores, the stats module's paired
    bootstrap means, a refit per replicate, percentiles of the prediction and the gain."""
    from pipeline.aggregate.stats import bootstrap_means

    ranked, scores = noisy(SIZES, seed=7, n_ex=80)
    curves, bands = learning_curves(ranked, scores, 0.005, n_boot=300, seed=11, alpha=0.1)
    row = row_of(curves, "m")
    values = lc.paired_scores("m", list(SIZES), scores)
    assert values.shape == (80, 3)
    draws = predict(*fit_power_law(np.array(SIZES), bootstrap_means(values, 300, 11)), 100,
                    [1600, 3200, 400])
    low, high = np.quantile(draws, [0.05, 0.95], axis=0)
    assert (row["predicted_ci_low"], row["predicted_ci_high"]) == pytest.approx(
        (low[1], high[1]), rel=1e-12)
    gain = draws[:, 1] - draws[:, 0]
    assert (row["gain_ci_low"], row["gain_ci_high"]) == pytest.approx(
        tuple(np.quantile(gain, [0.05, 0.95])), rel=1e-12)
    at = bands.set_index("train_size").loc[400]
    assert (at["ci_low"], at["ci_high"]) == pytest.approx((low[2], high[2]), rel=1e-12)
    assert row["verdict"] == verdict(row["gain"], row["gain_ci_low"], row["gain_ci_high"],
                                     0.005)
    # the defaults are the documented ones: 1000 replicates, seed 0, a 95% interval
    default = learning_curves(ranked, scores, 0.005)[0]
    pd.testing.assert_frame_equal(default, learning_curves(ranked, scores, 0.005, None, 1000,
                                                           0, 0.05)[0])


def test_bootstrap_uses_the_ids_shared_by_the_models_cells() -> None:
    ranked, scores = noisy(SIZES, seed=2, n_ex=50)
    part = dict(scores)
    part[("m", 400)] = scores[("m", 400)].iloc[10:]  # ids e10..e49 only
    part[("m", 1600)] = scores[("m", 1600)].iloc[:45].iloc[::-1]  # e0..e44, reordered
    row = row_of(learning_curves(ranked, part, 0.005, n_boot=200)[0], "m")
    assert row["n_examples"] == 35
    shared = {k: v.loc[[f"e{i}" for i in range(10, 45)]] for k, v in scores.items()}
    same = row_of(learning_curves(ranked, shared, 0.005, n_boot=200)[0], "m")
    assert row["predicted_ci_low"] == same["predicted_ci_low"]
    assert row["gain_ci_high"] == same["gain_ci_high"]
    # two shared ids are enough for an interval
    two = {k: v.iloc[[3, 7] if k == ("m", 100) else [7, 3, 9]] for k, v in scores.items()}
    row = row_of(learning_curves(ranked, two, 0.005, n_boot=200)[0], "m")
    assert row["n_examples"] == 2 and pd.notna(row["predicted_ci_low"])


def test_without_shared_examples_or_a_cell_there_is_no_ci() -> None:
    ranked, scores = noisy(SIZES, seed=2, n_ex=20)
    missing = {k: v for k, v in scores.items() if k != ("m", 400)}
    one = {k: v.iloc[[i]] for i, (k, v) in enumerate(scores.items())}  # no id in common
    for part in (missing, one):
        row = row_of(learning_curves(ranked, part, 0.005)[0], "m")
        assert pd.isna(row["predicted_ci_low"]) and pd.isna(row["gain_ci_high"])
        assert row["verdict_basis"] == "point estimate (no per-example scores)"
    dup = dict(scores)
    dup[("m", 100)] = pd.concat([scores[("m", 100)], scores[("m", 100)].iloc[:1]])
    with pytest.raises(UserError, match="m@100 repeat an id"):
        learning_curves(ranked, dup, 0.005)


def test_table_mode_fits_without_ci() -> None:
    ranked, scores = noisy(SIZES, seed=5)
    with_ci = learning_curves(ranked, scores, 0.005, n_boot=200)[0]
    curves, bands = learning_curves(ranked, None, 0.005)
    row = row_of(curves, "m")
    ci_cols = ["predicted_ci_low", "predicted_ci_high", "gain_ci_low", "gain_ci_high",
               "n_examples"]
    assert curves[ci_cols].isna().all().all() and bands[["ci_low", "ci_high"]].isna().all().all()
    assert row["verdict_basis"] == "point estimate (no per-example scores)"
    assert row["verdict"] == verdict(row["gain"], np.nan, np.nan, 0.005)
    # the fit itself does not depend on the per-example scores
    point = ["predicted_score", "gain", "a", "b", "c", "needed_train_size"]
    pd.testing.assert_frame_equal(curves[point], with_ci[point])


# --- analysis.md section -------------------------------------------------------------------

def test_section_states_each_verdict_with_numbers() -> None:
    ranked, scores = noisy(SIZES, seed=1)
    ranked = pd.concat([ranked, table("flat", SIZES, [0.5, 0.5, 0.5]),
                        table("short", (100, 200), [0.4, 0.5])])
    scores.update({("flat", s): pd.Series(0.5, index=scores[("m", s)].index) for s in SIZES})
    curves, _ = learning_curves(ranked, scores, 0.005, n_boot=200)
    text = learning_curve_section(curves, 0.005)
    m, flat = row_of(curves, "m"), row_of(curves, "flat")
    assert text.startswith("## Learning curves\n")
    assert "min_effect = 0.005" in text and "95% bootstrap CI" in text
    assert (f"- **m**: more data is likely worth it. The curve predicts "
            f"{m['predicted_score']:.4f} (95% CI {m['predicted_ci_low']:.4f} to "
            f"{m['predicted_ci_high']:.4f}) at 3,200 examples (extrapolated: measured 100 to "
            f"1,600), {m['gain']:+.4f} (CI {m['gain_ci_low']:+.4f} to "
            f"{m['gain_ci_high']:+.4f}) over its fitted {m['fitted_at_largest']:.4f} at 1,600; "
            f"the curve gains 0.005 by {m['needed_train_size']:,.0f} examples.") in text
    assert ("- **flat**: more data is not worth it. The curve predicts 0.5000 (95% CI 0.5000 "
            "to 0.5000)") in text
    assert f"its ceiling a = {flat['a']:.4f} is within 0.005" in text
    assert ("- Not fitted: short (2 train size(s) above 0 with a score: a curve needs at "
            "least 3).") in text
    assert "90% CI" in learning_curve_section(curves, 0.005, alpha=0.1)
    inside = learning_curves(ranked, None, 0.005, extrapolate_to=1000)[0]
    text = learning_curve_section(inside, 0.005)
    assert "at 1,000 examples," in text and "(no CI: no per-example scores)" in text
    assert "extrapolated" not in text.split("Table:")[1]


def test_section_in_table_mode_word_for_word(tmp_path: Path) -> None:
    """The whole section for hand-worked curves (see the constants at the top), also after a
    CSV round trip (empty notes read back as NaN)."""
    ranked = pd.concat([table("m", SIZES, truth(SIZES)), table("flat", SIZES, [0.5] * 3),
                        table("short", (100, 200), [0.4, 0.5]), table("one", (0, 100), [0, 1])])
    curves, _ = learning_curves(ranked, None, 0.01)
    expected = (
        "## Learning curves\n\n"
        "Each model with at least 3 train sizes above 0 is fitted a saturating power law, "
        "score = a - b * n^(-c) (least squares on its overall scores). More data is **worth "
        "it** when the whole 95% bootstrap CI of the gain (the predicted score at the target "
        "size minus the fitted score at the largest measured size) is at least min_effect = "
        "0.01, **not worth it** when the whole CI is below it, **uncertain** otherwise; without "
        "per-example scores the point estimate decides. Predictions beyond the measured sizes "
        "are extrapolations. Table: tables/learning_curves.csv.\n\n"
        "- **m**: more data is likely worth it. The curve predicts 0.7646 at 3,200 examples "
        "(extrapolated: measured 100 to 1,600), +0.0146 (no CI: no per-example scores) over "
        "its fitted 0.7500 at 1,600; the curve gains 0.01 by 2,500 examples.\n"
        "- **flat**: more data is not worth it. The curve predicts 0.5000 at 3,200 examples "
        "(extrapolated: measured 100 to 1,600), +0.0000 (no CI: no per-example scores) over "
        "its fitted 0.5000 at 1,600; its ceiling a = 0.5000 is within 0.01 of that, so more "
        "data cannot gain it.\n"
        "- Not fitted: short (2 train size(s) above 0 with a score: a curve needs at least 3); "
        "one (1 train size(s) above 0 with a score: a curve needs at least 3).\n")
    assert learning_curve_section(curves, 0.01) == expected
    curves.to_csv(tmp_path / "curves.csv", index=False)
    assert learning_curve_section(pd.read_csv(tmp_path / "curves.csv"), 0.01) == expected


def test_section_without_curves() -> None:
    assert learning_curve_section(pd.DataFrame(columns=lc.CURVE_COLUMNS), 0.005) is None
    curves, _ = learning_curves(table("short", (100, 200), [0.4, 0.5]), None, 0.005)
    assert learning_curve_section(curves, 0.005) == (
        "## Learning curves\n\nNo model has 3 train sizes above 0, so no learning curve is "
        "fitted.\n")


# --- report chart --------------------------------------------------------------------------

def _written(tmp_path: Path, curves: pd.DataFrame, bands: pd.DataFrame) -> tuple:
    """The tables as the report reads them back (CSV round trip)."""
    curves.to_csv(tmp_path / "curves.csv", index=False)
    bands.to_csv(tmp_path / "bands.csv", index=False)
    return pd.read_csv(tmp_path / "curves.csv"), pd.read_csv(tmp_path / "bands.csv")


def test_chart_draws_curves_bands_points_and_prediction(tmp_path: Path) -> None:
    ranked, scores = noisy(SIZES, seed=1)
    ranked = pd.concat([ranked.assign(overall_score_ci_low=ranked["overall_score"] - 0.01,
                                      overall_score_ci_high=ranked["overall_score"] + 0.02),
                        table("flat", (0, *SIZES), [0.5] * 4, ci=0.01),
                        table("short", (100, 200), [0.4, 0.5], ci=0.01)])
    curves, bands = _written(tmp_path, *learning_curves(ranked, scores, 0.005, n_boot=200))
    [section] = learning_sections(ranked, curves, bands)
    assert section.title == "Learning curves"
    fig = section.figures[0]
    m = [t for t in fig.data if t.legendgroup == "m"]
    flat = [t for t in fig.data if t.legendgroup == "flat"]
    assert len(m) == 6 and len(flat) == 4  # flat: no per-example scores, no band
    high, low, dotted, solid, points, target = m
    assert low.fill == "tonexty" and list(high.y) == bands.loc[bands["model"] == "m",
                                                                "ci_high"].tolist()
    assert dotted.line.dash == "dot" and list(dotted.x) == bands.loc[bands["model"] == "m",
                                                                      "train_size"].tolist()
    assert solid.name == "m" and max(solid.x) == 1600 and min(solid.x) == 100
    assert list(points.x) == list(SIZES)
    assert list(points.error_y.array) == pytest.approx([0.02] * 3)
    assert list(points.error_y.arrayminus) == pytest.approx([0.01] * 3)
    assert list(target.x) == [3200] and target.marker.symbol == "diamond-open"
    assert list(flat[2].x) == list(SIZES)  # zero-shot is not drawn: it is not fitted
    assert solid.line.color == PALETTE[0] and flat[1].line.color == PALETTE[1]
    assert fig.layout.xaxis.title.text == "train size (examples)"
    assert fig.layout.yaxis.title.text == "overall_score"
    assert "band: 95% bootstrap CI" in fig.layout.title.text
    assert ("more data is likely worth it for m; more data is not worth it for flat"
            in section.reading)
    assert "Not fitted: short." in section.reading
    html = section.content[1]
    assert "3,200 (extrapolated)" in html and "100 to 1,600 (3)" in html
    write_report(tmp_path / "report" / "index.html", "t", [section])
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Learning curves" in page and "Plotly.newPlot" in page


def test_chart_without_ci_and_with_many_models(tmp_path: Path) -> None:
    ranked = pd.concat([table(f"m{i}", SIZES, truth(SIZES) - 0.01 * i) for i in range(9)])
    curves, bands = _written(tmp_path, *learning_curves(ranked, None, 0.005))
    [section] = learning_sections(ranked, curves, bands, alpha=0.1)
    fig = section.figures[0]
    assert {t.legendgroup for t in fig.data} == {f"m{i}" for i in range(len(PALETTE))}
    assert all(t.error_y.array is None for t in fig.data)
    assert "band" not in fig.layout.title.text
    assert "No per-example scores: no CI" in section.reading
    assert f"draws the {len(PALETTE)} models with the highest predicted score" in section.reading
    assert "the table lists all 9" in section.reading


def test_no_chart_without_a_fitted_model() -> None:
    ranked = table("short", (100, 200), [0.4, 0.5])
    curves, bands = learning_curves(ranked, None, 0.005)
    [section] = learning_sections(ranked, curves, bands)
    assert not section.figures and "No model has 3 train sizes" in section.reading
    assert learning_sections(ranked, None, None) == []


def test_chart_without_the_bands_table_still_shows_points_and_predictions() -> None:
    ranked = table("m", SIZES, truth(SIZES))
    curves, _ = learning_curves(ranked, None, 0.005)
    [section] = learning_sections(ranked, curves, None)
    markers = [t for t in section.figures[0].data if t.mode == "markers"]
    assert [list(t.x) for t in markers] == [list(SIZES), [3200]]


@pytest.mark.slow  # a sweep aggregated and reported (about 9 s on this machine)
def test_report_shows_the_learning_curve_tables(tmp_path: Path, compose_cfg: Callable) -> None:
    """The aggregate writes tables/learning_curves.csv and its bands; build_report draws
    them."""
    from pipeline.aggregate.stage import aggregate
    from pipeline.core.paths import OutputPaths
    from pipeline.report.build import build_report
    from tests.test_report import make_sweep

    out = tmp_path / "out"
    make_sweep(out, 2, sizes=(200, 500, 1000))
    cfg = compose_cfg(f"output_dir={out}", "aggregate.n_boot=50")
    aggregate(cfg)
    paths = OutputPaths(out)
    curves = pd.read_csv(paths.tables / "learning_curves.csv")
    assert len(curves) == 2 and curves["predicted_ci_low"].notna().all()
    assert (paths.tables / "learning_curve_bands.csv").exists()
    assert "## Learning curves: would more data pay?" in paths.analysis_md.read_text()
    page = build_report(cfg).read_text()
    assert 'id="learning-curves"' in page
    assert "A saturating power law fitted to the overall score of each of 2 model(s)" in page
