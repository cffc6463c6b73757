"""Registered dataset builders: ``demo`` (built-in synthetic corpus), ``files`` (yours) and
``hf`` (a Hugging Face dataset)."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from pipeline.core.io import (
    InputError,
    read_json,
    read_records,
    write_json,
    write_jsonl,
)
from pipeline.core.paths import OutputPaths
from pipeline.core.registry import DATASETS, TASKS
from pipeline.core.tasks import get_task
from pipeline.data.dataset import Dataset, read_split

log = logging.getLogger(__name__)


@DATASETS.register("demo")
def build_demo(cfg: DictConfig, paths: OutputPaths) -> Dataset:
    """Build (once) and load the synthetic demo corpus under ``<output_dir>/data/demo``."""
    from pipeline.data.demo_corpus import build_demo_corpus

    folder = paths.data_dir(cfg.name)
    info_path = folder / "info.json"
    wanted = {"seed": int(cfg.seed), "n_train": int(cfg.n_train), "n_test": int(cfg.n_test)}
    train_path, test_path = folder / "train.jsonl", folder / "test.jsonl"
    if not (info_path.exists() and train_path.exists() and test_path.exists()
            and read_json(info_path).get("params") == wanted):
        log.info("building demo corpus %s in %s", wanted, folder)
        train, test = build_demo_corpus(**wanted)
        write_jsonl(train_path, train)
        write_jsonl(test_path, test)
        write_json(info_path, {"params": wanted})  # written last: the corpus is complete
    tasks = list(cfg.tasks)
    train, train_sha = read_split(train_path, tasks)
    test, test_sha = read_split(test_path, tasks)
    return Dataset(name=cfg.name, train=train, test=test, tasks=tasks,
                   source={"train": train_sha[:16], "test": test_sha[:16]},
                   train_sha256=train_sha)


def tasks_in(path: Path) -> list[str]:
    """Every registered task whose reference field is in every record of ``path``."""
    rows = [rec for _, rec in read_records(path)]
    found = [n for n in TASKS.names() if rows and all(get_task(n).field in r for r in rows)]
    if not found:
        fields = ", ".join(get_task(n).field for n in TASKS.names())
        raise InputError(path, f"no task reference field ({fields}) is in every record; set "
                               "data.tasks=[...]")
    return found


@DATASETS.register("files")
def build_files(cfg: DictConfig, paths: OutputPaths) -> Dataset:
    """Your own data: ``data.options.test`` (and optional ``train``) JSONL/CSV/parquet files."""
    test_path = cfg.options.get("test")
    if not test_path:
        raise InputError("config", "data.options.test must name the test file", field="test")
    tasks = list(cfg.tasks) or tasks_in(Path(test_path))
    test, test_sha = read_split(Path(test_path), tasks)
    train_path = cfg.options.get("train")
    train, train_sha = read_split(Path(train_path), tasks) if train_path else ([], None)
    source = {"test": test_sha[:16]}
    if train_sha:
        source["train"] = train_sha[:16]
    return Dataset(name=cfg.name, train=train, test=test, tasks=tasks, source=source,
                   train_sha256=train_sha)


@DATASETS.register("hf")
def build_hf(cfg: DictConfig, paths: OutputPaths) -> Dataset:
    """A Hugging Face dataset (``data.options.path``, ``split``, ``train_split``, ``columns``;
    see :mod:`pipeline.data.hf_source`)."""
    from pipeline.data.hf_source import read_hf

    test, train, tasks, source = read_hf(cfg)
    return Dataset(name=cfg.name, train=train, test=test, tasks=tasks, source=source)


def load_dataset(cfg: DictConfig, paths: OutputPaths) -> Dataset:
    """Build or read the dataset named by ``cfg`` (the ``data`` config node)."""
    return DATASETS.get(cfg.builder)(cfg, paths)
