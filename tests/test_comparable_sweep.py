"""A smoke-test cell beside full cells in one output folder: ranked apart, named everywhere."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.aggregate.stage import aggregate
from pipeline.core.errors import ConfigError
from pipeline.core.paths import run_file
from pipeline.scoring.cell import run_cell


def test_smoke_cell_in_a_sweep_folder_is_left_out_end_to_end(small_cfg, caplog) -> None:
    """A data.limit=4 smoke-test cell beside full cells: not ranked, named everywhere."""
    base = ["aggregate.n_boot=50"]
    for model in ("demo-lead", "demo-nb"):
        run_cell(small_cfg(f"model={model}", "train_size=100", *base))
    smoke = run_cell(small_cfg("model=demo-knn", "train_size=100", "data.limit=4", *base))
    manifest = json.loads(run_file(smoke, "manifest").read_text())
    assert len(manifest["example_digests"]) == 4
    cfg = small_cfg(*base)
    with caplog.at_level("WARNING"):
        aggregate(cfg)
    assert "left out of the ranking: demo-knn@100 (4 examples)" in caplog.text
    out = smoke.parents[2]
    ranked = pd.read_csv(out / "model_comparison.csv")
    assert sorted(ranked["model"]) == ["demo-lead", "demo-nb"]
    assert (ranked["n_examples"] == 16).all()
    excluded = pd.read_csv(out / "tables" / "excluded_cells.csv")
    assert list(excluded["model"]) == ["demo-knn"] and list(excluded["n_examples"]) == [4]
    text = (out / "analysis.md").read_text()
    assert "## Cells left out of the ranking" in text and "demo-knn@100 (4 examples" in text
    assert "scored examples: 16 examples, checksum" in text  # provenance
    for name in ("scaling", "efficiency", "pairwise_tests", "significance"):
        assert "demo-knn" not in (out / "tables" / f"{name}.csv").read_text(), name
    # common: all three on the 4 examples they share
    aggregate(small_cfg(*base, "aggregate.examples=common"))
    ranked = pd.read_csv(out / "model_comparison.csv")
    assert sorted(ranked["model"]) == ["demo-knn", "demo-lead", "demo-nb"]
    assert (ranked["n_examples"] == 4).all()
    assert "ranked on the 4 test examples all 3 cells share" in (out / "analysis.md").read_text()
    with pytest.raises(ConfigError, match="in 2 groups"):
        aggregate(small_cfg(*base, "aggregate.examples=error"))
