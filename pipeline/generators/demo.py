"""The ``demo`` generator: train a registered demo learner on the first train_size examples."""

from __future__ import annotations

import logging
import time

from omegaconf import DictConfig, OmegaConf

from pipeline.core.errors import ConfigError
from pipeline.core.registry import GENERATORS, LEARNERS
from pipeline.data.dataset import Dataset
from pipeline.generators.base import Generation

log = logging.getLogger(__name__)


@GENERATORS.register("demo")
def demo(cfg: DictConfig, dataset: Dataset, test: list[dict]) -> Generation:
    """Fit ``model.learner`` on ``train[:train_size]`` and predict the test examples."""
    if not cfg.model.learner:
        raise ConfigError(f"model {cfg.model.name!r} has no 'learner': generator=demo only "
                         "runs the demo models (conf/model/demo-*.yaml)")
    n = int(cfg.train_size)
    if n < 0 or n > len(dataset.train):
        raise ConfigError(f"train_size={n} but the training pool of {dataset.name!r} has "
                         f"{len(dataset.train)} examples")
    options = OmegaConf.to_container(cfg.model.learner_options, resolve=True)
    learner = LEARNERS.get(cfg.model.learner)(seed=int(cfg.seed), **options)
    log.info("generating predictions for %d examples: demo learner %s trained on %d "
             "examples", len(test), cfg.model.learner, n)
    start = time.perf_counter()
    learner.fit(dataset.train[:n])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    preds = learner.predict(test)
    return Generation(predictions=preds, num_parameters=int(learner.num_parameters()),
                      info={"learner": cfg.model.learner, "options": options,
                            "fit_seconds": fit_s,
                            "predict_seconds": time.perf_counter() - start})
