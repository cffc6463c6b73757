"""The Hydra configuration: composition, schema checks and the sweep grid."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from pipeline.core.paths import OutputPaths
from pipeline.core.schema import register_schema
from pipeline.scoring.metrics import directions

REAL_MODELS = ["llama-3.2-1b", "llama-3.2-3b", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b",
               "qwen3-8b"]
CONF = Path(__file__).resolve().parent.parent / "conf"


def test_default_config_composes(compose_cfg):
    cfg = compose_cfg()
    assert cfg.output_dir == "outputs"
    assert cfg.train_size == 2000 and isinstance(cfg.train_size, int)
    assert cfg.data.builder == "demo"
    assert set(cfg.tasks) == {"summarization", "title", "tag", "type"}


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "model").glob("*.yaml")))
def test_every_model_config_composes(compose_cfg, name):
    cfg = compose_cfg(f"model={name}")
    assert cfg.model.family
    if name == "precomputed":  # any system: model.name and model.predictions are required
        assert OmegaConf.is_missing(cfg.model, "name")
        assert cfg.model.predictions is None and cfg.model.family == "precomputed"
        return
    if name == "hf":  # any checkpoint: model.name (and a checkpoint) come from the command line
        assert OmegaConf.is_missing(cfg.model, "name") and cfg.model.params_b is None
        return
    assert cfg.model.name == name
    assert cfg.model.learner or (cfg.model.params_b and cfg.model.checkpoint
                                 and cfg.model.predictions)


@pytest.mark.parametrize("name", REAL_MODELS)
def test_real_model_paths_follow_the_cell(compose_cfg, name):
    cfg = compose_cfg(f"model={name}", "train_size=500")
    assert cfg.model.checkpoint == f"checkpoints/{name}-500"
    assert cfg.model.predictions == f"predictions/{name}/500.jsonl"


def test_typo_in_key_is_an_error(compose_cfg):
    with pytest.raises(ConfigCompositionException, match="limmit"):
        compose_cfg("data.limmit=5")


def test_wrong_type_is_an_error(compose_cfg):
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_cfg("train_size=many")


def test_unknown_top_level_key_is_an_error(compose_cfg):
    with pytest.raises((ConfigCompositionException, ConfigKeyError)):
        compose_cfg("modle=qwen3-8b")


def test_output_dir_redirects_every_path(compose_cfg, tmp_path):
    cfg = compose_cfg(f"output_dir={tmp_path}")
    paths = OutputPaths(Path(cfg.output_dir))
    for p in (paths.runs, paths.comparison_csv, paths.tables, paths.data_root,
              paths.run_dir("m", 500), paths.analysis_md):
        assert tmp_path in p.parents


def test_sweep_grid_lives_in_config():
    register_schema()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose(config_name="config", return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params.train_size == "500,1000,1500,2000"
    assert len(params.model.split(",")) >= 4


def test_weights_name_real_columns(compose_cfg):
    cfg = compose_cfg()
    known = directions(cfg.tasks)
    assert set(cfg.aggregate.weights) <= set(known)
    assert all(known[c] for c in cfg.aggregate.weights)
