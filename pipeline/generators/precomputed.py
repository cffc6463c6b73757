"""The ``precomputed`` generator: load the cell's predictions from ``model.predictions``."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from pipeline.core.errors import InputError, MissingModelError
from pipeline.core.io import TABLE_SUFFIXES, file_sha256
from pipeline.core.registry import GENERATORS
from pipeline.data.dataset import Dataset
from pipeline.generators.base import Generation
from pipeline.generators.predictions import load_predictions

log = logging.getLogger(__name__)


def find_predictions(cfg: DictConfig) -> Path | None:
    """The file ``model.predictions`` names for this cell, or None when unset or absent.

    A relative path is resolved against the launch directory. When the exact file does not
    exist, the one file with the same name and another table extension (``.jsonl``,
    ``.json``, ``.csv``, ``.parquet``; given without one, they are added) is used; several
    such files, or a directory, are an :class:`InputError`.
    """
    pattern = cfg.model.predictions
    if not pattern:
        return None
    path = Path(to_absolute_path(str(pattern)))
    if path.is_dir():
        raise InputError(path, "model.predictions names a directory; give a predictions "
                               f"file ({'/'.join(TABLE_SUFFIXES)})")
    if path.exists():
        return path
    stem = path.with_suffix("") if path.suffix.lower() in TABLE_SUFFIXES else path
    found = [c for c in (stem.with_name(stem.name + s) for s in TABLE_SUFFIXES) if c.is_file()]
    if len(found) > 1:
        raise InputError(path, "not found, and several files could be meant: "
                               f"{', '.join(c.name for c in found)}; give the extension in "
                               "model.predictions")
    return found[0] if found else None


@GENERATORS.register("precomputed")
def precomputed(cfg: DictConfig, dataset: Dataset, test: list[dict]) -> Generation:
    """Read and validate the predictions file of this (model, train_size) cell."""
    pattern = cfg.model.predictions
    if not pattern:
        raise MissingModelError(f"model {cfg.model.name!r} has no predictions file: set "
                                "model.predictions=<file.jsonl|.csv|.parquet>")
    path = find_predictions(cfg)
    if path is None:
        raise MissingModelError(
            f"predictions for model {cfg.model.name!r} at train_size={cfg.train_size} not "
            f"found: model.predictions resolves to '{to_absolute_path(str(pattern))}' (any "
            f"of {'/'.join(TABLE_SUFFIXES)}). Put the file there or set "
            "model.predictions=<file>")
    log.info("loading predictions from %s", path)
    preds = load_predictions(path, dataset.tasks, [r["id"] for r in dataset.test],
                             [r["id"] for r in test], cfg.model.get("system_column"),
                             cfg.model.name)
    return Generation(predictions=preds, info={"predictions_file": str(path),
                                               "predictions_sha256": file_sha256(path)[:16]})
