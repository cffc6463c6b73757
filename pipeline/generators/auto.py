"""The ``auto`` generator: a demo learner, else precomputed predictions, else the checkpoint
(``hf`` generator with its default options), else a clear error."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from pipeline.core.errors import MissingModelError
from pipeline.core.registry import GENERATORS
from pipeline.data.dataset import Dataset
from pipeline.generators.base import Generation


@GENERATORS.register("auto")
def auto(cfg: DictConfig, dataset: Dataset, test: list[dict]) -> Generation:
    """Choose how to obtain the predictions of a cell from what the model config offers."""
    model = cfg.model
    if model.learner:
        return GENERATORS.get("demo")(cfg, dataset, test)
    if model.predictions and Path(model.predictions).exists():
        return GENERATORS.get("precomputed")(cfg, dataset, test)
    if model.checkpoint and Path(model.checkpoint).exists():
        return GENERATORS.get("hf")(cfg, dataset, test)
    where = f"model {model.name!r} at train_size={cfg.train_size}"
    pred = f"'{model.predictions}'" if model.predictions else "(not set)"
    ckpt = f"'{model.checkpoint}'" if model.checkpoint else "(not set)"
    raise MissingModelError(
        f"{where} has nothing to evaluate: no predictions file at model.predictions={pred} "
        f"and no checkpoint at model.checkpoint={ckpt}. Set model.predictions=<file> "
        "(JSONL/CSV/parquet with id and task fields) or model.checkpoint=<dir>")
