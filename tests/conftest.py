"""Shared fixtures: the real config composed with Hydra's compose API, pointed at tmp dirs."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from pipeline.core.schema import register_schema

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "conf"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# A small demo corpus keeps end-to-end tests fast while exercising every stage.
SMALL = ["data.n_train=300", "data.n_test=16"]


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding cache for the whole session (shared by in-process and subprocess runs)."""
    path = tmp_path_factory.mktemp("cache")
    os.environ["PIPELINE_CACHE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def compose_cfg() -> Callable[..., DictConfig]:
    """``compose_cfg(*overrides)`` -> the composed config (schema-checked)."""
    register_schema()

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


@pytest.fixture
def small_cfg(compose_cfg: Callable[..., DictConfig], tmp_path: Path) -> Callable[..., DictConfig]:
    """A config on the small demo corpus with ``output_dir`` under ``tmp_path``."""

    def _small(*overrides: str) -> DictConfig:
        return compose_cfg(f"output_dir={tmp_path / 'out'}", *SMALL, *overrides)

    return _small


def run_env() -> dict[str, str]:
    """Environment for subprocess runs of the CLI."""
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
