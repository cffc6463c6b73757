"""The ``precomputed`` generator: load the cell's predictions from ``model.predictions``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from pipeline.core.errors import MissingModelError
from pipeline.core.io import file_sha256
from pipeline.core.registry import GENERATORS
from pipeline.data.dataset import Dataset
from pipeline.generators.base import Generation
from pipeline.generators.predictions import load_predictions


@GENERATORS.register("precomputed")
def precomputed(cfg: DictConfig, dataset: Dataset, test: list[dict]) -> Generation:
    """Read and validate the predictions file of this (model, train_size) cell."""
    pattern = cfg.model.predictions
    if not pattern:
        raise MissingModelError(f"model {cfg.model.name!r} has no predictions file: set "
                                "model.predictions=<file.jsonl|.csv|.parquet>")
    path = Path(pattern)
    if not path.exists():
        raise MissingModelError(
            f"predictions for model {cfg.model.name!r} at train_size={cfg.train_size} not "
            f"found: model.predictions resolves to '{path}'. Put the file there or set "
            "model.predictions=<file>")
    preds = load_predictions(path, dataset.tasks, [r["id"] for r in dataset.test],
                             [r["id"] for r in test])
    return Generation(predictions=preds, info={"predictions_file": str(path),
                                               "predictions_sha256": file_sha256(path)[:16]})
