"""Summary tables (pipeline.aggregate.tables) on a small hand-made ranked table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pipeline.aggregate import tables as tb

HIB = {"task_acc": True, "task_err": False, "perplexity": False}


@pytest.fixture
def ranked() -> pd.DataFrame:
    """Three models x two sizes; m-big gets worse with more data, task_err is lower-better."""
    rows = [  # model, family, params_b, train_size, overall, task_acc, task_err, perplexity
        ("m-big", "X", 10.0, 100, 0.70, 0.9, 0.30, 4.0),
        ("m-big", "X", 10.0, 1000, 0.65, 0.8, 0.25, 5.0),
        ("m-small", "X", 1.0, 1000, 0.60, 0.7, 0.20, 6.0),
        ("n-mid", "Y", 5.0, 1000, 0.595, 0.6, 0.10, 7.0),
        ("m-small", "X", 1.0, 100, 0.50, 0.5, 0.40, 8.0),
        ("n-mid", "Y", 5.0, 100, 0.40, 0.4, 0.50, 9.0),
    ]
    frame = pd.DataFrame(rows, columns=["model", "family", "params_b", "train_size",
                                        "overall_score", "task_acc", "task_err", "perplexity"])
    return frame.assign(rank=range(1, 7), rank_group=[1, 1, 1, 1, 2, 2])


def test_efficiency_uses_largest_size_and_pareto(ranked: pd.DataFrame) -> None:
    eff = tb.efficiency(ranked).set_index("model")
    assert list(eff.index) == ["m-big", "m-small", "n-mid"]  # by score at size 1000
    assert (eff["train_size"] == 1000).all()
    assert eff.loc["m-small", "score_per_billion"] == pytest.approx(0.60)
    assert eff.loc["m-big", "score_per_billion"] == pytest.approx(0.065)
    assert eff.loc["n-mid", "score_per_billion"] == pytest.approx(0.119)
    # n-mid is dominated by m-small (0.60 >= 0.595 with 1B <= 5B).
    assert eff["pareto"].to_dict() == {"m-big": True, "m-small": True, "n-mid": False}


def test_pareto_front_ties_and_nan() -> None:
    front = tb.pareto_front(np.array([0.5, 0.5, 0.4, 0.9]), np.array([1.0, 1.0, 1.0, np.nan]))
    assert list(front) == [True, True, False, False]


def test_scaling_deltas(ranked: pd.DataFrame) -> None:
    sc = tb.scaling(ranked)
    assert list(sc["model"]) == ["m-small", "m-small", "m-big", "m-big", "n-mid", "n-mid"]
    deltas = sc.dropna(subset=["delta"]).set_index("model")
    assert deltas.loc["m-small", "delta"] == pytest.approx(0.10)
    assert deltas.loc["m-small", "delta_pct"] == pytest.approx(20.0)
    assert deltas.loc["m-big", "delta"] == pytest.approx(-0.05)
    assert deltas.loc["m-big", "delta_pct"] == pytest.approx(-100 * 0.05 / 0.70)
    assert deltas.loc["n-mid", "delta_pct"] == pytest.approx(48.75)
    assert sc["delta"].isna().sum() == 3


def test_train_size_summary(ranked: pd.DataFrame) -> None:
    s = tb.train_size_summary(ranked).set_index("train_size")
    assert s.loc[100, "mean_score"] == pytest.approx((0.70 + 0.50 + 0.40) / 3)
    assert s.loc[1000, "mean_score"] == pytest.approx((0.65 + 0.60 + 0.595) / 3)
    assert (s.loc[100, "best_model"], s.loc[100, "worst_model"]) == ("m-big", "n-mid")
    assert (s.loc[1000, "max_score"], s.loc[1000, "min_score"]) == (0.65, 0.595)
    assert s.loc[1000, "n_cells"] == 3


def test_family_comparison_at_largest_size(ranked: pd.DataFrame) -> None:
    fam = tb.family_comparison(ranked, HIB).set_index("metric")
    assert fam.loc["overall_score", "X"] == pytest.approx((0.65 + 0.60) / 2)
    assert fam.loc["overall_score", "Y"] == pytest.approx(0.595)
    assert fam.loc["overall_score", "best_family"] == "X"
    assert fam.loc["task_err", "best_family"] == "Y"  # lower is better: 0.10 < 0.225
    assert fam.loc["perplexity", "best_family"] == "X"
    tied = tb.family_comparison(ranked.assign(task_acc=0.5), HIB).set_index("metric")
    assert tied.loc["task_acc", "best_family"] == "X, Y"


def test_task_leaders_respect_direction(ranked: pd.DataFrame) -> None:
    lead = tb.task_leaders(ranked, HIB).set_index("metric")
    assert list(lead.index) == ["overall_score", "task_acc", "task_err", "perplexity"]
    assert (lead.loc["task_acc", "best_model"], lead.loc["task_acc", "best_value"]) == (
        "m-big", 0.9)
    err = lead.loc["task_err"]
    assert (err["best_model"], err["best_train_size"], err["best_value"]) == ("n-mid", 1000, 0.10)
    assert (err["worst_model"], err["worst_value"]) == ("n-mid", 0.50)
    assert err["spread"] == pytest.approx(0.40)
    assert lead.loc["perplexity", "best_value"] == 4.0


def test_factor_correlations_match_scipy(ranked: pd.DataFrame) -> None:
    fc = tb.factor_correlations(ranked).set_index("factor")
    for factor in ("train_size", "params_b", "perplexity"):
        assert fc.loc[factor, "pearson"] == pytest.approx(
            sps.pearsonr(ranked[factor], ranked["overall_score"]).statistic)
        assert fc.loc[factor, "spearman"] == pytest.approx(
            sps.spearmanr(ranked[factor], ranked["overall_score"]).statistic)
        assert fc.loc[factor, "n"] == 6


def test_correlations_need_three_varying_points(ranked: pd.DataFrame) -> None:
    fc = tb.factor_correlations(ranked.assign(perplexity=[np.nan] * 4 + [1.0, 2.0],
                                              train_size=100)).set_index("factor")
    assert np.isnan(fc.loc["perplexity", "pearson"]) and fc.loc["perplexity", "n"] == 2
    assert "< 3" in fc.loc["perplexity", "note"]
    assert fc.loc["train_size", "note"] == "constant values"


def test_metric_correlations_long_format(ranked: pd.DataFrame) -> None:
    mc = tb.metric_correlations(ranked, HIB)
    assert list(mc[["metric_a", "metric_b"]].iloc[0]) == ["task_acc", "task_err"]
    assert len(mc) == 1 and mc["n"].iloc[0] == 6
    assert mc["pearson"].iloc[0] == pytest.approx(
        sps.pearsonr(ranked["task_acc"], ranked["task_err"]).statistic)
    assert mc["spearman"].iloc[0] == pytest.approx(
        sps.spearmanr(ranked["task_acc"], ranked["task_err"]).statistic)


def _human_inputs():
    rng = np.random.default_rng(3)
    per, human, cells = {}, [], []
    for k, model in enumerate(["a", "b", "c", "d"]):
        ids = [f"e{i}" for i in range(5 if model != "d" else 4)]  # d misses e4
        score = rng.random(len(ids)) + 0.2 * k
        per[(model, 1)] = pd.DataFrame({"id": ids, "m1": score, "m2": rng.random(len(ids))})
        human.append(pd.DataFrame({"model": model, "train_size": 1, "id": ids,
                                   "human_fluency": score + rng.normal(0, 0.3, len(ids))}))
        cells.append({"model": model, "train_size": 1})
    return per, pd.DataFrame(cells), pd.concat(human, ignore_index=True)


def test_human_correlations_system_and_summary_levels() -> None:
    per, cells, human = _human_inputs()
    out = tb.human_correlations(per, cells, human).set_index(["metric", "aspect", "level"])
    joined = pd.concat([f.assign(model=m) for (m, _), f in per.items()]).merge(
        human, on=["model", "id"])
    sys_means = joined.groupby("model")[["m1", "human_fluency"]].mean()
    row = out.loc[("m1", "human_fluency", "system")]
    assert row["n"] == 4
    assert row["pearson"] == pytest.approx(sps.pearsonr(sys_means["m1"],
                                                        sys_means["human_fluency"])[0])
    assert row["kendall"] == pytest.approx(sps.kendalltau(sys_means["m1"],
                                                          sys_means["human_fluency"])[0])
    per_id = {m: [] for m in ("pearson", "spearman", "kendall")}
    for _, grp in joined.groupby("id"):
        per_id["pearson"].append(sps.pearsonr(grp["m1"], grp["human_fluency"])[0])
        per_id["spearman"].append(sps.spearmanr(grp["m1"], grp["human_fluency"])[0])
        per_id["kendall"].append(sps.kendalltau(grp["m1"], grp["human_fluency"])[0])
    row = out.loc[("m1", "human_fluency", "summary")]
    assert row["n"] == 5
    for method, values in per_id.items():
        assert row[method] == pytest.approx(np.mean(values))


def test_human_correlations_without_per_example() -> None:
    _, cells, human = _human_inputs()
    assert tb.human_correlations({}, cells, human).empty
