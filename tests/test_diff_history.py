"""pipeline.diff: a tiny significant change is negligible (aggregate.min_effect), and three or
more sweeps (diff.sweeps) give each cell's score history."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.versus.diff import diff
from tests.test_diff import WEIGHTED, _scores, make_sweep


def test_tiny_significant_change_is_negligible(small_cfg, tmp_path):
    before = make_sweep(tmp_path / "b", {("m", 100): _scores()})
    after = make_sweep(tmp_path / "a", {("m", 100): _scores(0.004)})  # every example +0.004
    cfg = small_cfg(f"before={before}", f"after={after}", "aggregate.n_boot=500",
                    "aggregate.min_effect=0.005")
    out = diff(cfg)
    changes = pd.read_csv(out / "changes.csv").set_index("metric")
    row = changes.loc["summarization_rougeL"]
    assert row["change"] == pytest.approx(0.004, abs=1e-9)
    assert (row["significant"], row["verdict"]) == ("yes", "negligible")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_significant"] == {"better": 0, "worse": 0}
    assert summary["n_negligible"] >= 5 and summary["min_effect"] == 0.005
    # with no threshold the same change is called better
    out = diff(small_cfg(f"before={before}", f"after={after}", "aggregate.n_boot=500",
                         "aggregate.min_effect=0"))
    assert pd.read_csv(out / "changes.csv").set_index("metric").loc[
        "summarization_rougeL", "verdict"] == "better"


def test_three_sweeps_draw_each_cells_history(small_cfg, tmp_path):
    roots = [make_sweep(tmp_path / f"v{i}", {("m", 100): _scores(shift),
                                              ("n", 100): _scores(0.1 - shift, seed=1)})
             for i, shift in enumerate((0.0, 0.05, 0.02))]
    out = diff(small_cfg(f"diff.sweeps=[{','.join(map(str, roots))}]", "aggregate.n_boot=200"))
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == ["cell", "model", "family", "0: v0", "1: v1", "2: v2"]
    # overall = equal-weight mean of the six default weighted columns: the five shifted
    # continuous ones and type_accuracy (20 of 40 right = 0.5, unshifted)
    base = {c: _scores()[c].mean() for c in WEIGHTED}
    m = history.set_index("cell").loc["m@100"]
    expected = [(sum(base[c] + s for c in WEIGHTED) + 0.5) / 6 for s in (0.0, 0.05, 0.02)]
    assert [m["0: v0"], m["1: v1"], m["2: v2"]] == pytest.approx(expected, abs=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["before"].endswith("v1") and summary["after"].endswith("v2")
    page = (out / "index.html").read_text()
    assert "Score history" in page and "2 cell(s) tracked over 3 sweeps" in page
