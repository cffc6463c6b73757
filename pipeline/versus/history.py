"""Each cell's overall score across several output folders (``diff.sweeps``, oldest first).

The score of a cell in a sweep is the weighted mean of its metric means with the configured
``aggregate.weights`` (restricted to the weighted columns every sweep has), as the aggregate
stage computes it; a cell missing from a sweep is left empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from pipeline.aggregate.ranking import cell_label, weighted_overall
from pipeline.aggregate.runs import SweepResults


def sweep_labels(roots: Sequence[Path]) -> list[str]:
    """``<i>: <folder name>`` per sweep (the index keeps equal folder names apart)."""
    return [f"{i}: {Path(r).name}" for i, r in enumerate(roots)]


def score_history(sweeps: Sequence[tuple[Path, SweepResults]],
                  weights: Mapping[str, float]) -> pd.DataFrame:
    """Columns ``cell, model, family, <label per sweep>...``: overall score per cell and sweep
    (``sweeps`` = (folder, finished cells), oldest first), rows ordered by the score in the
    last sweep (best first, missing last)."""
    common = [c for c, w in weights.items() if w > 0
              and all(c in results.cells.columns for _, results in sweeps)]
    labels = sweep_labels([root for root, _ in sweeps])
    frames = []
    for label, (_, results) in zip(labels, sweeps, strict=True):
        cells = results.cells
        score = weighted_overall(cells, {c: float(weights[c]) for c in common})
        frames.append(pd.DataFrame({
            "cell": [cell_label(m, t) for m, t in zip(cells["model"], cells["train_size"],
                                                      strict=True)],
            "model": cells["model"].astype(str), "family": cells["family"].astype(str),
            label: score if score is not None else pd.Series(float("nan"), index=cells.index),
        }))
    out = frames[0]
    for frame in frames[1:]:
        out = out.merge(frame, on=["cell", "model", "family"], how="outer")
    out = out.sort_values([labels[-1], "cell"], ascending=[False, True], na_position="last")
    return out.reset_index(drop=True).rename_axis(None)[["cell", "model", "family", *labels]]

