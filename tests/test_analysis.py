"""analysis.md and write_all on constructed sweeps: claims must follow the data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.aggregate.publish import write_all

HIB = {"sum_rouge": True, "type_accuracy": True, "type_macro_f1": True, "perplexity": False}
WEIGHTS = {"sum_rouge": 1.0, "type_accuracy": 1.0}


def _sweep(means: dict[str, dict[int, float]], n: int = 80, seed: int = 0,
           perplexity: bool = True):
    """Cells and per-example scores; ``means[model][train_size]`` sets the score level.

    A model named ``<family>-<params>b`` gets that family and size.
    """
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 0.1, n)
    cells, per = [], {}
    for model, by_size in means.items():
        family, size_b = model.split("-")
        for size, mean in by_size.items():
            frame = pd.DataFrame({
                "id": [f"ex{i:03d}" for i in range(n)],
                "sum_rouge": np.clip(mean + shared + rng.normal(0, 0.03, n), 0, 1),
                "type_accuracy": (rng.random(n) < mean).astype(float)})
            per[(model, size)] = frame
            cells.append({"model": model, "family": family, "params_b": float(size_b[:-1]),
                          "train_size": size, "perplexity": 20 * (1 - mean) if perplexity
                          else np.nan, **frame.drop(columns="id").mean(),
                          "type_macro_f1": mean})
    return pd.DataFrame(cells), per


def _analysis(tmp_path: Path, cells, per, **kw) -> str:
    paths = write_all(tmp_path, cells, per, HIB, WEIGHTS, n_boot=200, **kw)
    return paths["analysis"].read_text()


def test_more_data_hurts_is_not_reported_as_helping(tmp_path: Path) -> None:
    cells, per = _sweep({"a-1b": {100: 0.8, 1000: 0.4}, "b-7b": {100: 0.85, 1000: 0.45}})
    text = _analysis(tmp_path, cells, per)
    assert "lowered the overall score of every model (2 of 2)" in text
    assert "raised" not in text and "helped" not in text
    assert "2 of these 2 changes are significant" in text
    scaling = pd.read_csv(tmp_path / "tables" / "scaling.csv")
    assert (scaling["delta"].dropna() < 0).all()


def test_mixed_effect_and_significance_wording(tmp_path: Path) -> None:
    cells, per = _sweep({"a-1b": {100: 0.5, 1000: 0.8}, "b-7b": {100: 0.7, 1000: 0.69}})
    text = _analysis(tmp_path, cells, per)
    assert "effect of training data is mixed" in text
    assert "rose for 1, fell for 1 and was unchanged for 0 of 2 models" in text
    line = next(s for s in text.splitlines() if s.startswith("- b-7b: 100 -> 1000"))
    assert "not significant" in line


def test_untrained_baseline_is_unchanged_not_mixed(tmp_path: Path) -> None:
    cells, per = _sweep({"a-1b": {100: 0.5, 1000: 0.8}, "base-0b": {100: 0.4, 1000: 0.4}})
    per[("base-0b", 1000)] = per[("base-0b", 100)].copy()
    same = (cells["model"] == "base-0b")
    cells.loc[same, ["sum_rouge", "type_accuracy"]] = cells.loc[
        same & (cells["train_size"] == 100), ["sum_rouge", "type_accuracy"]].to_numpy()
    text = _analysis(tmp_path, cells, per)
    assert "mixed" not in text
    assert "raised the overall score of 1 of 2 models and left 1 unchanged (none fell)" in text


def test_indistinguishable_leaders_are_not_significant(tmp_path: Path) -> None:
    cells, per = _sweep({"a-1b": {10: 0.6}, "b-2b": {10: 0.6}, "c-3b": {10: 0.2}})
    per[("b-2b", 10)] = per[("a-1b", 10)].copy()
    cells.loc[cells["model"] == "b-2b", ["sum_rouge", "type_accuracy"]] = cells.loc[
        cells["model"] == "a-1b", ["sum_rouge", "type_accuracy"]].to_numpy()
    text = _analysis(tmp_path, cells, per)
    ranked = pd.read_csv(tmp_path / "model_comparison.csv")
    assert list(ranked["rank_group"]) == [1, 1, 2]
    assert "It ties with b-2b@10 (both 0.5798): not significant, p = 1 (" in text
    # a tie is written as a tie, and the cheaper of the tied cells ships
    assert "**Ship a-1b@10**: Ties for the best overall score (0.5798) with b-2b@10" in text
    assert "2 of 3 cells share rank group 1" in text
    assert "single training-set size (10), so the effect of training data cannot" in text
    assert "| train_size | n_cells |" not in text


def test_numbers_come_from_tables_and_perplexity_section(tmp_path: Path) -> None:
    cells, per = _sweep({"a-1b": {10: 0.3, 20: 0.5, 30: 0.55},
                         "b-9b": {10: 0.6, 20: 0.7, 30: 0.72}})
    text = _analysis(tmp_path, cells, per)
    ranked = pd.read_csv(tmp_path / "model_comparison.csv")
    best = ranked.iloc[0]
    assert f"**{best['model']}@{best['train_size']}** ranks first with an overall score of " \
           f"{best['overall_score']:.4f}" in text
    assert "## Perplexity versus task score" in text
    assert "lower perplexity goes with a higher overall score" in text
    # the recommendation opens the analysis and is the same cell as the table's
    rec = pd.read_csv(tmp_path / "tables" / "recommendations.csv").set_index("choice")
    assert text.split("\n## ")[1].startswith("Recommendation")
    assert f"**Ship {rec.loc['ship', 'model']}@{rec.loc['ship', 'train_size']}**" in text
    # on 4 of these cells a correlation would carry no p-value
    four = _analysis(tmp_path / "four", cells.iloc[[0, 1, 3, 4]],
                     {k: v for k, v in per.items() if k[1] != 30})
    assert "too few cells to say more" in four and "n = 4, too few points" in four


def test_no_perplexity_no_section(tmp_path: Path) -> None:
    cells, per = _sweep({"a-1b": {10: 0.3}, "b-9b": {10: 0.6}}, perplexity=False)
    text = _analysis(tmp_path, cells, per)
    assert "Perplexity versus" not in text and "Lowest perplexity" not in text


def test_write_all_is_deterministic(tmp_path: Path) -> None:
    cells, per = _sweep({"a-1b": {10: 0.5, 20: 0.6}, "b-3b": {10: 0.55, 20: 0.5}})
    human = pd.concat([f[["id"]].assign(model=m, train_size=s, human_quality=f["sum_rouge"])
                       for (m, s), f in per.items()])
    first = write_all(tmp_path / "one", cells, per, HIB, WEIGHTS, human=human, n_boot=100)
    second = write_all(tmp_path / "two", cells.iloc[::-1], dict(reversed(per.items())), HIB,
                       WEIGHTS, human=human, n_boot=100)
    assert first.keys() == second.keys() and "human_correlations" in first
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name
        if path.parent.name == "tables":
            assert path.with_suffix(".md").exists()


def test_empty_per_example(tmp_path: Path) -> None:
    cells, _ = _sweep({"a-1b": {10: 0.5, 20: 0.6}, "b-3b": {10: 0.55, 20: 0.4}})
    text = _analysis(tmp_path, cells, {})
    ranked = pd.read_csv(tmp_path / "model_comparison.csv")
    assert ranked["overall_score_ci_low"].isna().all() and ranked["p_vs_next"].isna().all()
    assert "significance tests are left out" in text
    body = text.split("## Overview")[1]  # the recommendation's rule names the test it needs
    assert "significant" not in body.replace("significance tests", "")
    assert "No cheaper cell could be tested for non-inferiority" in text
    sig = pd.read_csv(tmp_path / "tables" / "significance.csv")
    assert sig["p_value"].isna().all()


def test_forty_cell_sweep_stays_readable(tmp_path: Path) -> None:
    means = {f"{fam}-{p}b": {s: 0.2 + 0.04 * p + 0.06 * k + (0.05 if fam == "q" else 0)
                             for k, s in enumerate((100, 200, 500, 1000))}
             for fam in ("l", "q") for p in (1, 2, 3, 5, 8)}
    cells, per = _sweep(means, n=100)
    assert len(cells) == 40
    text = _analysis(tmp_path, cells, per)
    assert "Top 5 and bottom 3 of 40 scored cells shown." in text
    assert "... and 0 more" not in text and "more (see the tables)" in text
    assert "raised the overall score of every model (10 of 10)" in text
    assert len(text.splitlines()) < 200
    # one policy: rank group 1 is exactly the cells the leader's Holm p does not separate,
    # and p_vs_next is the matrix's value for each neighbouring pair
    ranked = pd.read_csv(tmp_path / "model_comparison.csv")
    matrix = pd.read_csv(tmp_path / "tables" / "pairwise_pvalues.csv").set_index("cell")
    labels = [f"{m}@{s}" for m, s in zip(ranked["model"], ranked["train_size"], strict=True)]
    lead = matrix.loc[labels[0], labels[1:]].to_numpy()
    assert list(ranked["rank_group"].iloc[1:] == 1) == list(lead >= 0.05)
    neighbours = [matrix.loc[a, b] for a, b in zip(labels, labels[1:], strict=False)]
    np.testing.assert_allclose(ranked["p_vs_next"].iloc[:-1], neighbours, rtol=1e-12)


def test_partial_per_example_and_unscored_cell_are_reported(tmp_path: Path) -> None:
    cells, per = _sweep({"a-1b": {10: 0.5, 20: 0.6}, "b-2b": {10: 0.4, 20: 0.7}})
    cells.loc[(cells["model"] == "a-1b") & (cells["train_size"] == 10), "sum_rouge"] = np.nan
    del per[("b-2b", 10)]
    text = _analysis(tmp_path, cells, per)
    ranked = pd.read_csv(tmp_path / "model_comparison.csv")
    assert ranked["model"].iloc[-1] == "a-1b" and np.isnan(ranked["overall_score"].iloc[-1])
    assert "1 cell(s) have no overall score" in text and "listed last: a-1b@10" in text
    assert "1 cell(s) have no per-example scores" in text and "b-2b@10" in text
