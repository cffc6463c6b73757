"""One cell of the grid (model x train_size): predictions -> scores -> metrics -> manifest.

Files written to ``<output_dir>/runs/<model>/<train_size>/`` (all atomically):
``predictions.jsonl``, ``scores.parquet``, ``metrics.json`` and, last, ``manifest.json``.
A cell is finished when its manifest exists; a finished cell whose config hash matches is
skipped unless ``force=true``. When only some settings changed, the cell recomputes only
what they affect: predictions are reused while model, data, generator, train_size and seed
are unchanged, and each task's metric is reused while its own options are unchanged.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig

from pipeline.core.io import read_json, write_json, write_jsonl, write_parquet
from pipeline.core.paths import OutputPaths, run_file
from pipeline.core.provenance import (
    config_hash,
    generation_hash,
    git_commit,
    package_versions,
    resolved,
    score_hashes,
)
from pipeline.core.registry import GENERATORS
from pipeline.data import Dataset, load_dataset
from pipeline.generators import Generation
from pipeline.generators.predictions import (
    HUMAN_PREFIX,
    load_predictions,
    validate_predictions,
)
from pipeline.scoring.metrics.bertscore import scorer_for
from pipeline.scoring.score import PreviousScores, score_cell

log = logging.getLogger(__name__)


def is_finished(run_dir: Path, chash: str) -> bool:
    """True when the cell's manifest exists with this config hash and its files are there."""
    manifest = run_file(run_dir, "manifest")
    if not manifest.exists():
        return False
    try:
        done = read_json(manifest).get("config_hash") == chash
    except ValueError:
        return False
    return done and all(run_file(run_dir, k).exists() for k in ("predictions", "scores",
                                                                "metrics"))


def _previous(run_dir: Path, cfg: DictConfig, dataset: Dataset,
              test: list[dict]) -> tuple[Generation, PreviousScores] | None:
    """The earlier predictions and still-valid scores of this cell, when reusable."""
    manifest_path = run_file(run_dir, "manifest")
    if cfg.force or not manifest_path.exists():
        return None
    try:
        old = read_json(manifest_path)
        if old.get("generation_hash") != generation_hash(cfg):
            return None
        ids = [r["id"] for r in test]
        preds = load_predictions(run_file(run_dir, "predictions"), dataset.tasks, ids, ids)
        metrics = read_json(run_file(run_dir, "metrics"))
        table = pd.read_parquet(run_file(run_dir, "scores"))
    except (OSError, ValueError, KeyError):
        return None
    gen = Generation(predictions=preds, perplexity=metrics.get("perplexity"),
                     num_parameters=metrics.get("num_parameters"),
                     info={**old.get("generator", {}), "reused": True})
    old_hashes = old.get("score_hashes", {})
    valid = {k for k, h in score_hashes(cfg).items() if old_hashes.get(k) == h}
    return gen, PreviousScores(table, metrics.get("metrics", {}), valid)


def _encoder(cfg: DictConfig) -> dict[str, Any] | None:
    uses = any("bertscore" in t.metrics for t in cfg.tasks.values())
    if not uses:
        return None
    options = dict(cfg.metrics.get("bertscore", {}))
    return scorer_for(options, cfg.cache_dir).describe()


def _metrics_record(cfg: DictConfig, gen: Generation, preds: list[dict],
                    values: dict[str, float]) -> dict[str, Any]:
    """``metrics.json``; ``human_fields`` (only when present) names the ``human_*`` fields
    of the predictions, so the aggregate reads the predictions only for those cells."""
    params_b = cfg.model.params_b
    if params_b is None and gen.num_parameters is not None:
        params_b = gen.num_parameters / 1e9
    record = {"model": cfg.model.name, "family": cfg.model.family, "params_b": params_b,
              "num_parameters": gen.num_parameters, "train_size": int(cfg.train_size),
              "n_examples": len(preds), "perplexity": gen.perplexity, "metrics": values}
    human = sorted({k for p in preds for k in p if k.startswith(HUMAN_PREFIX)})
    if human:
        record["human_fields"] = human
    return record


def run_cell(cfg: DictConfig) -> Path:
    """Produce (or skip, when already finished) the run folder of one cell."""
    paths = OutputPaths(Path(cfg.output_dir))
    run_dir = paths.run_dir(cfg.model.name, cfg.train_size)
    chash = config_hash(cfg)
    label = f"{cfg.model.name} @ train_size={cfg.train_size}"
    if not cfg.force and is_finished(run_dir, chash):
        log.info("%s: already finished (config %s), skipping; force=true recomputes",
                 label, chash)
        return run_dir
    start = time.perf_counter()
    dataset = load_dataset(cfg.data, paths)
    test = dataset.test_subset(cfg.data.limit)
    reuse = _previous(run_dir, cfg, dataset, test)
    if reuse:
        log.info("%s: predictions unchanged, reusing them", label)
        gen, previous = reuse
    else:
        log.info("%s: generating predictions for %d examples", label, len(test))
        gen, previous = GENERATORS.get(cfg.generator.name)(cfg, dataset, test), None
    ids = [r["id"] for r in test]
    preds = validate_predictions(list(enumerate(gen.predictions, 1)),
                                 f"<{cfg.generator.name} generator output>", dataset.tasks,
                                 ids, ids)
    gen_s = time.perf_counter() - start
    run_file(run_dir, "manifest").unlink(missing_ok=True)  # the cell is unfinished from here
    for stale in run_dir.glob(".*.tmp"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    write_jsonl(run_file(run_dir, "predictions"), preds)
    log.info("%s: scoring", label)
    scores, values = score_cell(test, preds, cfg.tasks, cfg.metrics, dataset.tasks,
                                cfg.cache_dir, previous)
    write_parquet(run_file(run_dir, "scores"), scores)
    write_json(run_file(run_dir, "metrics"), _metrics_record(cfg, gen, preds, values))
    total_s = time.perf_counter() - start
    write_json(run_file(run_dir, "manifest"), {
        "config_hash": chash,
        "generation_hash": generation_hash(cfg),
        "score_hashes": score_hashes(cfg),
        "config": resolved(cfg),
        "model": cfg.model.name,
        "train_size": int(cfg.train_size),
        "dataset": {"name": dataset.name, **dataset.source, "n_scored": len(test)},
        "generator": {"name": cfg.generator.name, **gen.info},
        "encoder": _encoder(cfg),
        "packages": package_versions(),
        "git_commit": git_commit(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": {"generate": round(gen_s, 3), "total": round(total_s, 3)},
    })
    log.info("%s: done in %.1f s -> %s", label, total_s, run_dir)
    return run_dir
