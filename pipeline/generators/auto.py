"""The ``auto`` generator: a demo learner, else precomputed predictions, else the checkpoint
(``hf`` generator with its default options), else a clear error."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from pipeline.core.errors import ConfigError, MissingModelError
from pipeline.core.registry import GENERATORS
from pipeline.data.dataset import Dataset
from pipeline.generators.base import Generation
from pipeline.generators.precomputed import find_predictions


def choose(cfg: DictConfig) -> str:
    """The generator that produces the cell's predictions: ``generator.name``, or for
    ``auto`` the first of demo learner, predictions file, checkpoint.

    A demo model given ``model.predictions`` or ``model.checkpoint`` too is a
    :class:`ConfigError` under ``auto``/``demo``: the learner would silently win.
    """
    name, model = cfg.generator.name, cfg.model
    if name in ("auto", "demo") and model.learner:
        for key in ("predictions", "checkpoint"):
            if model[key]:
                raise ConfigError(
                    f"model.{key}={model[key]!r} would be ignored: model {model.name!r} is a "
                    f"demo learner (model.learner={model.learner}) and generator={name} trains "
                    f"it instead. To evaluate that {key}, set model.learner=null and "
                    f"model.name=<your model> (or generator=precomputed/hf); otherwise drop "
                    f"model.{key}")
    if name != "auto":
        return name
    if model.learner:
        return "demo"
    if find_predictions(cfg) is not None:
        return "precomputed"
    if model.checkpoint and Path(model.checkpoint).exists():
        return "hf"
    where = f"model {model.name!r} at train_size={cfg.train_size}"
    pred = f"'{model.predictions}'" if model.predictions else "(not set)"
    ckpt = f"'{model.checkpoint}'" if model.checkpoint else "(not set)"
    raise MissingModelError(
        f"{where} has nothing to evaluate: no predictions file at model.predictions={pred} "
        f"and no checkpoint at model.checkpoint={ckpt}. Set model.predictions=<file> "
        "(JSONL/CSV/parquet with id and task fields) or model.checkpoint=<dir>")


@GENERATORS.register("auto")
def auto(cfg: DictConfig, dataset: Dataset, test: list[dict]) -> Generation:
    """Choose how to obtain the predictions of a cell from what the model config offers."""
    return GENERATORS.get(choose(cfg))(cfg, dataset, test)
