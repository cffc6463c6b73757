"""Whole tables of pipeline.aggregate.tables against literal expected frames (worked out by hand,
correlations and tests from scipy), including the edge cases: ties, missing values, zero or
unknown sizes, empty inputs, exact margins, the wording of recommendations."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pipeline.aggregate import tables as tb

NAN = np.nan
HIB = {"task_acc": True, "task_err": False, "perplexity": False}
RANKED = ["model", "family", "params_b", "train_size", "overall_score"]


def _frame(rows: list[tuple], columns: list[str] = RANKED, **extra: list) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns).assign(**extra)


def _expect(got: pd.DataFrame, rows: list[list], columns: list[str]) -> None:
    want = pd.DataFrame(rows, columns=columns)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-12)


# --- efficiency, Pareto front, scaling, sizes -------------------------------------------------

def test_efficiency_zero_and_unknown_sizes_ties_and_missing_scores() -> None:
    ranked = _frame([("b", "Y", 2.0, 20, 0.50), ("b", "Y", 2.0, 10, 0.30),
                     ("a", "X", 0.0, 20, 0.40), ("c", "X", NAN, 20, 0.60),
                     ("d", "X", 4.0, 20, 0.50), ("e", "Y", 1.0, 20, NAN)])
    # d ties b's score with more parameters: dominated; a (0 B) has no score per billion but
    # nothing as good is as small; c (unknown size) and e (no score) are never on the front.
    _expect(tb.efficiency(ranked), [
        ["c", "X", NAN, 20, 0.60, NAN, False],
        ["b", "Y", 2.0, 20, 0.50, 0.25, True],
        ["d", "X", 4.0, 20, 0.50, 0.125, False],
        ["a", "X", 0.0, 20, 0.40, NAN, True],
        ["e", "Y", 1.0, 20, NAN, NAN, False],
    ], [*RANKED, "score_per_billion", "pareto"])


def test_pareto_front_of_plain_lists_with_none() -> None:
    assert list(tb.pareto_front([0.5, None, 0.4, 0.5], [1.0, 2.0, None, 3.0])) == [
        True, False, False, False]


def test_scaling_order_deltas_and_a_zero_previous_score() -> None:
    ranked = _frame([("b", "Y", 2.0, 20, 0.5), ("b", "Y", 2.0, 10, 0.0),
                     ("c", "X", NAN, 20, 0.6), ("c", "X", NAN, 10, 0.3),
                     ("a", "X", 1.0, 10, 0.4), ("a", "X", 1.0, 20, 0.5)])
    _expect(tb.scaling(ranked), [
        ["X", "a", 1.0, 10, 0.4, NAN, NAN],
        ["X", "a", 1.0, 20, 0.5, 0.1, 25.0],
        ["X", "c", NAN, 10, 0.3, NAN, NAN],  # unknown size: after the known ones
        ["X", "c", NAN, 20, 0.6, 0.3, 100.0],
        ["Y", "b", 2.0, 10, 0.0, NAN, NAN],
        ["Y", "b", 2.0, 20, 0.5, 0.5, NAN],  # no percentage of a zero score
    ], ["family", "model", "params_b", "train_size", "overall_score", "delta", "delta_pct"])


TS_COLUMNS = ["train_size", "n_cells", "mean_score", "best_model", "max_score", "worst_model",
              "min_score"]


def test_train_size_summary_sorted_by_size_with_an_unscored_size() -> None:
    ranked = _frame([("b", "Y", 1.0, 20, 0.5), ("a", "X", 1.0, 20, 0.7),
                     ("c", "X", 1.0, 10, 0.2), ("d", "X", 1.0, 30, NAN)])
    _expect(tb.train_size_summary(ranked), [
        [10, 1, 0.2, "c", 0.2, "c", 0.2],
        [20, 2, 0.6, "a", 0.7, "b", 0.5],
        [30, 1, NAN, "", NAN, "", NAN],
    ], TS_COLUMNS)
    assert list(tb.train_size_summary(ranked.iloc[:0]).columns) == TS_COLUMNS


# --- families and leaders ---------------------------------------------------------------------

def test_family_comparison_sorted_families_tolerances_and_missing_values() -> None:
    cols = [*RANKED, "task_acc", "task_err", "perplexity"]
    ranked = _frame([("y1", "Y", 1.0, 20, 0.4, 0.1, 0.3, NAN),
                     ("x1", "X", 1.0, 20, 0.5 + 1e-9, 0.15, NAN, NAN),
                     ("y2", "Y", 1.0, 20, 0.6, 0.2, NAN, NAN),
                     ("x1", "X", 1.0, 10, 0.9, 0.9, 0.0, NAN)], cols)  # smaller size: ignored
    # X beats Y by 1e-9 overall (a real difference); on task_acc Y's mean (0.1 + 0.2) / 2 is
    # 0.15 up to float round-off (a tie); no family has perplexity, so it has no row.
    _expect(tb.family_comparison(ranked, HIB), [
        ["overall_score", True, 0.5 + 1e-9, 0.5, "X"],
        ["task_acc", True, 0.15, 0.15, "X, Y"],
        ["task_err", False, NAN, 0.3, "Y"],
    ], ["metric", "higher_is_better", "X", "Y", "best_family"])
    assert list(tb.family_comparison(ranked.iloc[:0], HIB).columns) == [
        "metric", "higher_is_better", "best_family"]


LEADER_COLUMNS = ["metric", "higher_is_better", "n_cells", "best_model", "best_train_size",
                  "best_value", "worst_model", "worst_train_size", "worst_value", "spread"]


def test_task_leaders_skip_a_metric_without_values_and_keep_the_rest() -> None:
    cols = [*RANKED, "task_acc", "task_err", "perplexity"]
    ranked = _frame([("a", "F", 1.0, 10, 0.5, NAN, 0.2, 3.0),
                     ("b", "F", 1.0, 20, 0.7, NAN, 0.4, 2.0),
                     ("c", "F", 1.0, 10, 0.7, NAN, 0.1, NAN)], cols)
    _expect(tb.task_leaders(ranked, HIB), [
        ["overall_score", True, 3, "b", 20, 0.7, "a", 10, 0.5, 0.2],  # b, c tie: by model
        ["task_err", False, 3, "c", 10, 0.1, "b", 20, 0.4, 0.3],
        ["perplexity", False, 2, "b", 20, 2.0, "a", 10, 3.0, 1.0],
    ], LEADER_COLUMNS)
    assert list(tb.task_leaders(ranked.iloc[:0], HIB).columns) == LEADER_COLUMNS


# --- correlations -----------------------------------------------------------------------------

def test_factor_correlations_at_three_points_carry_n_and_no_p_value() -> None:
    score = [0.2, 0.5, 0.4]
    ranked = _frame([("a", "F", 0.0, 10, score[0]), ("b", "F", 0.0, 20, score[1]),
                     ("c", "F", 0.0, 30, score[2])], perplexity=[NAN, 1.0, 2.0])
    pr, sr = sps.pearsonr([10, 20, 30], score), sps.spearmanr([10, 20, 30], score)
    _expect(tb.factor_correlations(ranked), [
        ["train_size", 3, pr.statistic, NAN, sr.statistic, NAN, "n = 3 < 5: no p-value"],
        ["params_b", 3, NAN, NAN, NAN, NAN, "constant values"],  # constant 0 < every score
        ["perplexity", 2, NAN, NAN, NAN, NAN, "n = 2 < 3"],
    ], ["factor", "n", "pearson", "pearson_p", "spearman", "spearman_p", "note"])


def test_correlate_undefined_cases_keep_every_key() -> None:
    nan_keys = {"pearson": NAN, "pearson_p": NAN, "spearman": NAN, "spearman_p": NAN}
    got = tb.correlate(pd.Series([1.0, 2.0, NAN]), pd.Series([3.0, NAN, 4.0]))
    assert got.keys() == {"n", *nan_keys, "note"}
    assert (got["n"], got["note"]) == (1, "n = 1 < 3")
    assert all(np.isnan(got[k]) for k in nan_keys)


def test_correlations_of_nullable_pandas_columns() -> None:
    x = pd.Series([10, 20, 30, 40, 50, 60], dtype="Int64")
    y = pd.Series([0.2, 0.5, pd.NA, 0.4, 0.9, 0.7], dtype="Float64")
    pr = sps.pearsonr([10, 20, 40, 50, 60], [0.2, 0.5, 0.4, 0.9, 0.7])
    got = tb.correlate(x, y)
    assert got["n"] == 5 and got["note"] == ""
    assert (got["pearson"], got["pearson_p"]) == pytest.approx((pr.statistic, pr.pvalue))


def test_correlation_tables_without_pairs_keep_their_header() -> None:
    ranked = _frame([("a", "F", 1.0, 10, 0.5)], m_a=[1.0])
    assert list(tb.factor_correlations(ranked[["model", "overall_score"]]).columns) == [
        "factor", "n", "pearson", "pearson_p", "spearman", "spearman_p", "note"]
    assert list(tb.metric_correlations(ranked, {"m_a": True}).columns) == [
        "metric_a", "metric_b", "pearson", "spearman", "n", "note"]


def test_metric_correlations_every_pair_with_notes() -> None:
    hib = {"m_a": True, "m_b": False, "m_c": True}
    ranked = _frame([("a", "F", 1.0, 10, 0.5), ("b", "F", 1.0, 20, 0.6),
                     ("c", "F", 1.0, 30, 0.7), ("d", "F", 1.0, 40, 0.1)],
                    m_a=[1.0, 2.0, 4.0, 3.0], m_b=[0.3, 0.1, 0.2, 0.4], m_c=[0.0] * 4)
    pr, sr = sps.pearsonr(ranked["m_a"], ranked["m_b"]), sps.spearmanr(ranked["m_a"],
                                                                        ranked["m_b"])
    _expect(tb.metric_correlations(ranked, hib), [
        ["m_a", "m_b", pr.statistic, sr.statistic, 4, "n = 4 < 5: no p-value"],
        ["m_a", "m_c", NAN, NAN, 4, "constant values"],
        ["m_b", "m_c", NAN, NAN, 4, "constant values"],
    ], ["metric_a", "metric_b", "pearson", "spearman", "n", "note"])


# --- recommendations --------------------------------------------------------------------------

N_EX = 20
BASE = 0.6 + 0.01 * np.tile([-2.0, -1.0, 0.0, 1.0, 2.0], 4)
WOBBLE = 0.05 * np.where(np.arange(N_EX) % 2 == 0, 1.0, -1.0)


def _decision(cells: list[tuple], columns: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """A ranked frame (best first) of (model, params_b, train_size) with the per-example
    overall scores ``columns`` (one column per cell, in that order) and their means."""
    ranked = pd.DataFrame(cells, columns=["model", "params_b", "train_size"]).assign(
        family="F", n_examples=N_EX, overall_score=columns.mean(axis=0))
    return ranked, columns


def _direct_upper(d: np.ndarray, n_boot: int, seed: int, q: float) -> float:
    """The ``q`` quantile of bootstrap means of ``d``, resampled directly with numpy."""
    idx = np.random.default_rng(seed).integers(0, len(d), size=(n_boot, len(d)))
    return float(np.quantile(d[idx].mean(axis=1), q))


def test_recommendation_non_inferiority_on_constructed_cells() -> None:
    # big (8B) is best; wide (0.5B) trails by 0.001 on average but by -0.049..0.051 per
    # example (a wide interval, not significantly worse); small (1B) trails by exactly 0.003
    # on every example: its one-sided bound is 0.003 < min_effect 0.005, so it ships
    ranked, x = _decision([("big", 8.0, 100), ("wide", 0.5, 100), ("small", 1.0, 100)],
                          np.column_stack([BASE, BASE - 0.001 + WOBBLE, BASE - 0.003]))
    rec = tb.recommendations(ranked, x, min_effect=0.005, n_boot=200, seed=1)
    assert list(rec.columns) == tb.RECOMMENDATION_COLUMNS
    assert list(rec["choice"]) == ["ship", "runner_up", "best_overall"]
    assert list(rec["model"]) == ["small", "big", "big"]
    ship = rec.iloc[0]
    assert ship["gap_to_best"] == pytest.approx(0.003)
    assert (ship["gap_ci_low"], ship["gap_ci_high"], ship["gap_upper_one_sided"]) == (
        pytest.approx(0.003), pytest.approx(0.003), pytest.approx(0.003))
    assert bool(ship["non_inferior"]) and ship["params_saved_b"] == 7.0
    assert ship["train_size_saved"] == 0
    assert ship["reason"].startswith(
        "The cheapest cell shown to be no worse than the best (big@100) by more than "
        "min_effect 0.005: overall 0.5970, 0.0030 below the best (95% CI 0.0030 to 0.0030; "
        "one-sided upper bound 0.0030). It saves 7B parameters")
    # wide: the bound is the 95th percentile of its bootstrap mean gap, well above 0.005
    d = BASE - (BASE - 0.001 + WOBBLE)
    gaps = tb.gaps_to_best(x, n_boot=200, seed=1)
    assert gaps.loc[1, "gap_upper_one_sided"] == pytest.approx(_direct_upper(d, 200, 1, 0.95))
    assert gaps.loc[1, "gap_ci_low"] < 0 < 0.005 < gaps.loc[1, "gap_upper_one_sided"]
    # the runner-up is the next non-inferior cell in cost order: the best cell itself
    assert rec.iloc[1]["gap_to_best"] == 0 and bool(rec.iloc[1]["non_inferior"])
    assert rec.iloc[1]["reason"] == ("Overall 0.6000 (8B parameters, train size 100); "
                                     "non-inferior to the best (within min_effect 0.005).")


def test_recommendation_falls_back_to_the_best_cell() -> None:
    ranked, x = _decision([("big", 8.0, 100), ("wide", 0.5, 100), ("small", 1.0, 100)],
                          np.column_stack([BASE, BASE - 0.001 + WOBBLE, BASE - 0.003]))
    # min_effect 0.002: small's bound 0.003 is not below it; nothing cheaper passes
    rec = tb.recommendations(ranked, x, min_effect=0.002, n_boot=200, seed=1)
    assert list(rec["model"]) == ["big", "wide", "big"]
    assert rec.iloc[0]["reason"] == (
        "The best overall score (0.6000); no cheaper cell is shown to be within min_effect "
        "0.002 of it (one-sided 95% bound), so the best cell is recommended.")
    assert rec.iloc[1]["reason"].endswith("not shown to be within min_effect 0.002 of the best.")
    # no per-example scores (a per-model table): the best cell, said so
    table = tb.recommendations(ranked, None, min_effect=0.005)
    assert table.iloc[0]["model"] == "big" and table["gap_ci_low"].isna().all()
    assert "No cheaper cell could be tested for non-inferiority" in table.iloc[0]["reason"]
    assert list(tb.recommendations(ranked.iloc[:0], None, 0.005).columns) == (
        tb.RECOMMENDATION_COLUMNS)


def test_recommendation_cost_order_and_ties() -> None:
    # a and b tie for the best score; c (unknown size) is cheaper by train size only after
    # every known size: known sizes come first
    ranked, x = _decision([("a", 2.0, 200), ("b", 1.0, 200), ("c", NAN, 50)],
                          np.column_stack([BASE, BASE, BASE]))
    rec = tb.recommendations(ranked, x, min_effect=0.005, n_boot=50)
    assert list(rec["model"]) == ["b", "a", "a"]  # b: 1B < 2B; then a; c: unknown size, last
    assert rec.iloc[2]["reason"] == "Highest overall score 0.6000, tied with b@200, c@50."
    order = tb.cost_order(ranked)
    assert list(order["model"]) == ["b", "a", "c"]
    # the best cell itself tied: the reason says tie, not lead
    ranked, x = _decision([("a", 1.0, 200), ("b", 2.0, 200)], np.column_stack([BASE, BASE]))
    rec = tb.recommendations(ranked, x, min_effect=0.005, n_boot=50)
    assert rec.iloc[0]["model"] == "a"
    assert rec.iloc[0]["reason"] == (
        "Ties for the best overall score (0.6000) with b@200; no cheaper cell is shown to be "
        "within min_effect 0.005 of it (one-sided 95% bound), so the best cell is recommended.")


def test_recommendation_reasons_word_for_word_and_the_runner_up_in_cost_order() -> None:
    # passing cells in cost order: small (1B), mid (4B), big (the best, 8B); wide (0.5B)
    # is cheaper but its interval is wide
    ranked, x = _decision(
        [("big", 8.0, 2000), ("wide", 0.5, 500), ("mid", 4.0, 1000), ("small", 1.0, 500)],
        np.column_stack([BASE, BASE - 0.001 + WOBBLE, BASE - 0.002, BASE - 0.003]))
    rec = tb.recommendations(ranked, x, min_effect=0.005, n_boot=200, seed=1)
    assert list(rec["model"]) == ["small", "mid", "big"]
    assert rec["non_inferior"].tolist() == [True, True, True]
    assert list(rec["train_size_saved"]) == [1500, 1000, 0]
    assert list(rec["params_saved_b"]) == [7.0, 4.0, 0.0]
    assert list(rec["reason"]) == [
        "The cheapest cell shown to be no worse than the best (big@2000) by more than "
        "min_effect 0.005: overall 0.5970, 0.0030 below the best (95% CI 0.0030 to 0.0030; "
        "one-sided upper bound 0.0030). It saves 7B parameters and 1500 training examples "
        "(1B parameters, train size 500).",
        "Overall 0.5980 (4B parameters, train size 1000), 0.0020 below the best (95% CI "
        "0.0020 to 0.0020; one-sided upper bound 0.0020); non-inferior to the best (within "
        "min_effect 0.005).",
        "Highest overall score 0.6000."]
    # the two-sided interval and the one-sided bound at alpha = 0.1, from the same resamples
    d = BASE - (BASE - 0.001 + WOBBLE)
    gaps = tb.gaps_to_best(x, n_boot=200, seed=1, alpha=0.1)
    assert gaps.loc[1].tolist() == pytest.approx(
        [_direct_upper(d, 200, 1, q) for q in (0.05, 0.95, 0.9)])
    # defaults: 1000 resamples of seed 0, alpha 0.05
    pd.testing.assert_frame_equal(tb.gaps_to_best(x), tb.gaps_to_best(x, 1000, 0, 0.05))
    assert gaps.loc[1, "gap_ci_high"] != tb.gaps_to_best(x, 200, 2, 0.1).loc[1, "gap_ci_high"]
    pd.testing.assert_frame_equal(tb.recommendations(ranked, x, 0.005),
                                  tb.recommendations(ranked, x, 0.005, 1000, 0, 0.05))
    ninety = tb.recommendations(ranked, x, 0.005, 200, 1, alpha=0.1)
    assert "(90% CI 0.0030 to 0.0030;" in ninety["reason"].iloc[0]


def test_recommendation_edges() -> None:
    # the bound exactly at min_effect does not pass (0.25 is exact in binary)
    ranked, x = _decision([("best", 2.0, 10), ("cheap", 1.0, 10)],
                          np.column_stack([np.full(N_EX, 0.75), np.full(N_EX, 0.5)]))
    assert tb.recommendations(ranked, x, 0.25, n_boot=20)["model"].iloc[0] == "best"
    assert tb.recommendations(ranked, x, 0.2500001, n_boot=20)["model"].iloc[0] == "cheap"
    # two cells with per-example scores: the cheaper one was tested, and failed
    assert tb.recommendations(ranked, x, 0.1, n_boot=20)["reason"].iloc[0].endswith(
        "(one-sided 95% bound), so the best cell is recommended.")
    # a cheaper cell that shares no example with the best is never shipped
    lone = np.column_stack([np.full(N_EX, 0.75), np.full(N_EX, np.nan)])
    rec = tb.recommendations(ranked.assign(overall_score=[0.75, 0.74]), lone, 0.25, n_boot=20)
    assert rec["model"].iloc[0] == "best" and not rec["non_inferior"].iloc[1]
    assert np.isnan(rec["gap_ci_low"].iloc[1])
    # no per-example scores at all: the best cell, said so in full
    rec = tb.recommendations(ranked, None, 0.25)
    assert rec["reason"].iloc[0] == (
        "The best overall score (0.7500). No cheaper cell could be tested for "
        "non-inferiority (no per-example scores), so the best cell is recommended.")
    # one cell: it ships; no runner-up
    one = tb.recommendations(ranked.iloc[:1], x[:, :1], 0.25, n_boot=20)
    assert list(one["choice"]) == ["ship", "best_overall"]
    # a best cell of unknown size: a cheaper known one saves nothing measurable
    ranked, x = _decision([("best", NAN, 500), ("known", 1.0, 1000)],
                          np.column_stack([BASE, BASE - 0.001]))
    rec = tb.recommendations(ranked, x, 0.005, n_boot=20)
    assert rec["reason"].iloc[0].endswith(
        "It saves nothing measurable (1B parameters, train size 1000).")
    assert rec["reason"].iloc[1].startswith("Overall 0.6000 (unknown size, train size 500);")
    # a difference of 1e-10 is not a tie
    ranked, x = _decision([("a", 1.0, 10), ("b", 2.0, 10)],
                          np.column_stack([BASE + 1e-10, BASE]))
    assert tb.recommendations(ranked, x, 0.0, n_boot=20)["reason"].iloc[2] == (
        "Highest overall score 0.6000.")


def test_cost_order_prefers_the_better_score_between_equal_costs() -> None:
    frame = pd.DataFrame({"model": ["a", "b"], "params_b": [1.0, 1.0], "train_size": [10, 10],
                          "overall_score": [0.5, 0.6]})
    assert list(tb.cost_order(frame)["model"]) == ["b", "a"]
    assert list(tb.cost_order(frame).columns) == list(frame.columns)


# --- human correlations -----------------------------------------------------------------------

def _human_case():
    """Five systems (cell 'a' has no per-example scores), integer ids in the per-example
    frames, a non-key column shared with the human table, a metric missing for one system."""
    rng = np.random.default_rng(5)
    per, human = {}, []
    for k, model in enumerate(["b", "c", "d", "e", "f"]):
        ids = np.arange(6 if model != "f" else 5)
        m1 = rng.random(len(ids)) + 0.3 * k
        m2 = np.full(len(ids), NAN) if model == "e" else rng.random(len(ids))
        per[(model, 1)] = pd.DataFrame({"id": ids, "m1": m1, "m2": m2, "split": "test",
                                        "label": "x"})
        human.append(pd.DataFrame({"model": model, "train_size": 1, "id": ids.astype(str),
                                   "human_q": m1 + rng.normal(0, 0.4, len(ids)),
                                   "split": "other"}))
    cells = pd.DataFrame({"model": ["a", "b", "c", "d", "e", "f"], "train_size": 1})
    return per, cells, pd.concat(human, ignore_index=True)


def _reference(per: dict, human: pd.DataFrame, weights: dict[str, float]) -> dict:
    """System means and (documents x systems) matrices built directly with pandas."""
    frames = []
    for (model, size), frame in per.items():
        frame = frame.assign(model=model, train_size=size, id=frame["id"].astype(str))
        frame["overall_score"] = sum(w * frame[m] for m, w in weights.items()) / sum(
            weights.values())
        frames.append(frame)
    joined = pd.concat(frames).merge(human.drop(columns="split"),
                                     on=["model", "train_size", "id"])
    cols = ["m1", "m2", "overall_score", "human_q"]
    means = joined.groupby("model")[cols].mean()
    wide = {c: joined.pivot(index="id", columns="model", values=c).sort_index() for c in cols}
    return {"means": means, "wide": wide}


def _corr(x: np.ndarray, y: np.ndarray, method: str) -> float:
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return NAN
    fn = {"pearson": sps.pearsonr, "spearman": sps.spearmanr, "kendall": sps.kendalltau}
    return float(fn[method](x, y).statistic)


def _direct_ci(metric: np.ndarray, aspect: np.ndarray, method: str, n_boot: int, seed: int,
               alpha: float) -> dict[str, tuple[float, float]]:
    """Resample documents (``default_rng(seed).integers(0, n_docs, (n_boot, n_docs))``); per
    resample: the correlation of the per-system means, and the mean per-document correlation."""
    per_doc = np.array([_corr(m, a, method) for m, a in zip(metric, aspect, strict=True)])
    draws = np.random.default_rng(seed).integers(0, len(metric), (n_boot, len(metric)))
    system, summary = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for rows in draws:
            system.append(_corr(np.nanmean(metric[rows], axis=0),
                                np.nanmean(aspect[rows], axis=0), method))
            summary.append(np.nanmean(per_doc[rows]))
    out = {}
    for level, values in (("system", system), ("summary", summary)):
        v = np.array(values)[~np.isnan(values)]
        out[level] = tuple(np.quantile(v, [alpha / 2, 1 - alpha / 2]))
    return out


def test_human_correlations_values_p_values_and_intervals_by_direct_computation() -> None:
    per, cells, human = _human_case()
    weights = {"m1": 1.0, "m2": 3.0}
    out = tb.human_correlations(per, cells, human, weights, n_boot=40, seed=2, alpha=0.2)
    assert list(out.columns) == tb.HUMAN_COLUMNS
    assert sorted(set(out["metric"])) == ["m1", "m2", "overall_score"]  # not train_size
    ref = _reference(per, human, weights)
    out = out.set_index(["metric", "aspect", "level"])
    for metric in ("m1", "m2", "overall_score"):
        x, y = ref["means"][metric].to_numpy(), ref["means"]["human_q"].to_numpy()
        wm, wa = ref["wide"][metric].to_numpy(), ref["wide"]["human_q"].to_numpy()
        system, summary = out.loc[(metric, "human_q", "system")], out.loc[
            (metric, "human_q", "summary")]
        assert system["n"] == (~np.isnan(x)).sum()
        for method in ("pearson", "spearman", "kendall"):
            assert system[method] == pytest.approx(_corr(x, y, method), rel=1e-9)
            keep = ~np.isnan(x)
            fn = {"pearson": sps.pearsonr, "spearman": sps.spearmanr,
                  "kendall": sps.kendalltau}[method]
            if keep.sum() < tb.MIN_N_FOR_P:  # too few systems: n, no p-value
                assert np.isnan(system[f"{method}_p"])
            else:
                assert system[f"{method}_p"] == pytest.approx(fn(x[keep], y[keep]).pvalue,
                                                              rel=1e-9)
            per_doc = np.array([_corr(m, a, method) for m, a in zip(wm, wa, strict=True)])
            per_doc = per_doc[~np.isnan(per_doc)]
            assert summary["n"] == len(per_doc)
            assert summary[method] == pytest.approx(per_doc.mean(), rel=1e-9)
            assert summary[f"{method}_p"] == pytest.approx(
                sps.ttest_1samp(per_doc, 0.0).pvalue, rel=1e-9)
            ci = _direct_ci(wm, wa, method, 40, 2, 0.2)
            for level, row in (("system", system), ("summary", summary)):
                assert (row[f"{method}_ci_low"], row[f"{method}_ci_high"]) == pytest.approx(
                    ci[level], rel=1e-9)


def test_human_correlations_default_intervals_are_1000_resamples_of_seed_0() -> None:
    per, cells, human = _human_case()
    out = tb.human_correlations(per, cells, human).set_index(["metric", "aspect", "level"])
    ref = _reference(per, human, {"m1": 1.0})
    ci = _direct_ci(ref["wide"]["m1"].to_numpy(), ref["wide"]["human_q"].to_numpy(),
                    "pearson", 1000, 0, 0.05)
    for level in ("system", "summary"):
        row = out.loc[("m1", "human_q", level)]
        assert (row["pearson_ci_low"], row["pearson_ci_high"]) == pytest.approx(ci[level],
                                                                                rel=1e-9)
    assert "overall_score" not in set(out.index.get_level_values("metric"))  # no weights


def test_human_correlations_with_two_systems_are_undefined_without_warnings() -> None:
    per, cells, human = _human_case()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = tb.human_correlations({k: per[k] for k in [("b", 1), ("c", 1)]}, cells, human,
                                    n_boot=20)
    summary = out[out["level"] == "summary"].iloc[0]
    assert summary["n"] == 0 and np.isnan(summary["pearson"]) and np.isnan(summary["pearson_p"])
    assert list(tb.human_correlations(per, cells, human.drop(columns="human_q")).columns) == \
        tb.HUMAN_COLUMNS


def test_human_correlations_of_nullable_pandas_columns_equal_the_float_ones() -> None:
    per, cells, human = _human_case()  # m2 of system e is all missing: <NA> once nullable
    nullable = {k: f.astype({"m1": "Float64", "m2": "Float64"}) for k, f in per.items()}
    got = tb.human_correlations(nullable, cells, human.astype({"human_q": "Float64"}),
                                n_boot=20)
    pd.testing.assert_frame_equal(got, tb.human_correlations(per, cells, human, n_boot=20))


def test_recommendation_forwards_its_settings_and_words_equal_sizes() -> None:
    # a noisy but non-inferior cheaper cell: its gap interval depends on n_boot, seed, alpha
    noisy = BASE - 0.001 + 0.1 * WOBBLE
    ranked, x = _decision([("big", 1.0, 2000), ("small", 1.0, 500)],
                          np.column_stack([BASE, noisy]))
    rec = tb.recommendations(ranked, x, 0.05, n_boot=300, seed=3, alpha=0.2)
    ship = rec.iloc[0]
    assert ship["model"] == "small"
    d = BASE - noisy
    assert [ship["gap_ci_low"], ship["gap_ci_high"], ship["gap_upper_one_sided"]] == \
        pytest.approx([_direct_upper(d, 300, 3, q) for q in (0.1, 0.9, 0.8)])
    default = tb.recommendations(ranked, x, 0.05).iloc[0]
    assert default["gap_ci_high"] == pytest.approx(_direct_upper(d, 1000, 0, 0.975))
    # the same parameter count: only the training examples are saved
    assert "It saves 1500 training examples (1B parameters, train size 500)." in ship["reason"]
    # a three-way tie names both others
    ranked, x = _decision([("a", 1.0, 10), ("b", 2.0, 10), ("c", 3.0, 10)],
                          np.column_stack([BASE, BASE, BASE]))
    assert tb.recommendations(ranked, x, 0.0, n_boot=20)["reason"].iloc[0].startswith(
        "Ties for the best overall score (0.6000) with b@10, c@10;")
