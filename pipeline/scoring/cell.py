"""One cell of the grid (model x train_size): predictions -> scores -> metrics -> manifest.

Files written to ``<output_dir>/runs/<model>/<train_size>/``: ``predictions.jsonl``,
``scores.parquet``, ``metrics.json`` and ``manifest.json``, all first into a staging folder
beside it that then replaces the run folder as a whole (:mod:`pipeline.core.staging`), so
a failed or interrupted re-run leaves the previous finished cell intact.
A cell is finished when its manifest exists; a finished cell is skipped unless
``force=true`` while its config hash and the checksums of its inputs' content (test records,
training records of a demo learner, predictions file, checkpoint weights:
:mod:`pipeline.generators.inputs`) are unchanged; the log says what changed otherwise. When
only some settings changed, the cell recomputes only what they affect: predictions are
reused while model, data, generator, train_size, seed and every input are unchanged, and
each task's metric is reused while its own options and the files it reads (an encoder's
weights, an evaluate module: ``metric_inputs`` in the manifest) are unchanged.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from pipeline.core.errors import ConfigError, reporting_storage_errors
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
from pipeline.core.staging import recover, staged
from pipeline.data import Dataset, load_dataset
from pipeline.finetune import finetune
from pipeline.generators import Generation
from pipeline.generators.base import PERPLEXITY_DEFINITION
from pipeline.generators.inputs import INPUT_NAMES, example_digests, input_checksums
from pipeline.generators.predictions import (
    HUMAN_PREFIX,
    load_predictions,
    validate_predictions,
)
from pipeline.scoring.metrics.options import metric_input_checksums, validate_metrics

if TYPE_CHECKING:  # scoring (pandas, the encoder) is imported once a cell is computed, so
    from pipeline.scoring.score import PreviousScores  # skipping finished cells stays fast

log = logging.getLogger(__name__)


def _manifest(run_dir: Path) -> dict[str, Any] | None:
    """The cell's manifest, or None when it is absent or unreadable (unfinished)."""
    try:
        old = read_json(run_file(run_dir, "manifest"))
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) else None


def changed_metric_inputs(old: dict[str, Any], metric_inputs: dict[str, str]) -> list[str]:
    """The metrics whose files (``MetricSpec.inputs``) differ from those the manifest ``old``
    records, or that it records none for."""
    recorded = old.get("metric_inputs")
    recorded = recorded if isinstance(recorded, dict) else {}
    return [m for m, checksum in metric_inputs.items() if recorded.get(m) != checksum]


def perplexity_outdated(old: dict[str, Any] | None) -> bool:
    """Whether the manifest ``old`` has a perplexity computed under an earlier definition
    than :data:`~pipeline.generators.base.PERPLEXITY_DEFINITION`."""
    gen = (old or {}).get("generator")
    return (isinstance(gen, dict) and bool(gen.get("perplexity_tokens"))
            and gen.get("perplexity_definition") != PERPLEXITY_DEFINITION)


def stale_reason(run_dir: Path, old: dict[str, Any] | None, chash: str,
                 inputs: dict[str, str], metric_inputs: dict[str, str]) -> str | None:
    """Why the cell must be computed, or None when its manifest ``old`` records this config
    hash, these input checksums and these metric file checksums, and its files are there."""
    if old is None:
        return "not finished yet"
    if not all(run_file(run_dir, k).exists() for k in ("predictions", "scores", "metrics")):
        return "files missing"
    reasons = ["config changed"] if old.get("config_hash") != chash else []
    recorded = old.get("inputs")
    if not isinstance(recorded, dict):
        reasons.append("no input checksums recorded")
    else:
        reasons += [f"{name} changed" for key, name in INPUT_NAMES.items()
                    if recorded.get(key) != inputs.get(key)]
    recorded_files = old.get("metric_inputs") or {}
    reasons += [f"{m} files changed" if m in recorded_files else f"{m} files not checksummed"
                for m in changed_metric_inputs(old, metric_inputs)]
    if perplexity_outdated(old):
        reasons.append(f"perplexity definition changed (now {PERPLEXITY_DEFINITION})")
    return "; ".join(reasons) or None


def _check_owner(run_dir: Path, model: str) -> None:
    """Refuse a run folder whose finished cell belongs to another model.

    Folder names are unique per model name, but names differing only in case share a
    folder on a case-insensitive file system: the second would overwrite the first.
    """
    try:
        owner = read_json(run_file(run_dir, "manifest")).get("model")
    except (OSError, ValueError, AttributeError):
        return  # no (readable) manifest: nothing finished to protect
    if owner is not None and owner != model:
        raise ConfigError(f"model.name={model!r}: its run folder {run_dir} holds a finished "
                          f"cell of model {owner!r} (names differing only in case on a "
                          "case-insensitive file system?); rename one of the models or move "
                          "that folder away")


def _previous(run_dir: Path, old: dict[str, Any] | None, cfg: DictConfig, dataset: Dataset,
              test: list[dict], inputs: dict[str, str], metric_inputs: dict[str, str]
              ) -> tuple[Generation, PreviousScores] | None:
    """The earlier predictions and still-valid scores of this cell, when reusable: same
    generation settings and same input checksums as the manifest ``old``; a metric's scores
    stay valid while its options and files are unchanged."""
    if (cfg.force or old is None or old.get("generation_hash") != generation_hash(cfg)
            or old.get("inputs") != inputs):
        return None
    import pandas as pd

    from pipeline.scoring.score import PreviousScores

    try:
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
    changed = set(changed_metric_inputs(old, metric_inputs))
    valid = {k for k, h in score_hashes(cfg).items()
             if old_hashes.get(k) == h and k.split("/", 1)[1] not in changed}
    return gen, PreviousScores(table, metrics.get("metrics", {}), valid)


def _encoder(cfg: DictConfig) -> dict[str, Any] | None:
    uses = any("bertscore" in t.metrics for t in cfg.tasks.values())
    if not uses:
        return None
    from pipeline.scoring.metrics.bertscore import scorer_for

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
    validate_metrics(cfg.tasks, cfg.metrics)  # bad metric options fail before any work
    if cfg.get("finetune") and int(cfg.train_size) > 0:  # before an adapter is trained
        refusal = GENERATORS.meta(cfg.generator.name).get("no_adapters")
        if refusal:
            raise ConfigError(refusal)
    paths = OutputPaths(Path(cfg.output_dir))
    run_dir = paths.run_dir(cfg.model.name, cfg.train_size)
    chash = config_hash(cfg)
    label = f"{cfg.model.name} @ train_size={cfg.train_size}"
    _check_owner(run_dir, cfg.model.name)
    recover(run_dir)  # what a re-run killed mid-swap left beside the run folder
    start = time.perf_counter()
    dataset = load_dataset(cfg.data, paths)
    test = dataset.test_subset(cfg.data.limit)
    cfg, tuned = finetune(cfg, dataset)  # finetune=lora: train (or reuse) the adapter first
    inputs = input_checksums(cfg, dataset, test)
    metric_inputs = metric_input_checksums(cfg.tasks, cfg.metrics, cfg.cache_dir)
    old = _manifest(run_dir)
    why = "force=true" if cfg.force else stale_reason(run_dir, old, chash, inputs,
                                                      metric_inputs)
    if why is None:
        log.info("%s: already finished (config %s, inputs unchanged), skipping; force=true "
                 "recomputes", label, chash)
        return run_dir
    log.info("%s: computing (%s)", label, why)
    from pipeline.scoring.score import score_cell

    reuse = _previous(run_dir, old, cfg, dataset, test, inputs, metric_inputs)
    if reuse and not perplexity_outdated(old):
        log.info("%s: predictions unchanged, reusing them", label)
        gen, previous = reuse
    else:
        # an outdated perplexity alone: the generator finds its outputs in the generation
        # cache and computes only the perplexity; scores stay valid for equal predictions
        gen, previous = GENERATORS.get(cfg.generator.name)(cfg, dataset, test), None
    ids = [r["id"] for r in test]
    preds = validate_predictions(list(enumerate(gen.predictions, 1)),
                                 f"<{cfg.generator.name} generator output>", dataset.tasks,
                                 ids, ids)
    if reuse and previous is None and preds == reuse[0].predictions:
        previous = reuse[1]
    gen_s = time.perf_counter() - start
    log.info("%s: scoring", label)
    scores, values = score_cell(test, preds, cfg.tasks, cfg.metrics, dataset.tasks,
                                cfg.cache_dir, previous, refresh_caches=cfg.force)
    total_s = time.perf_counter() - start
    manifest = {
        "config_hash": chash,
        "inputs": inputs,
        "metric_inputs": metric_inputs,
        "generation_hash": generation_hash(cfg),
        "score_hashes": score_hashes(cfg),
        "config": resolved(cfg),
        "model": cfg.model.name,
        "train_size": int(cfg.train_size),
        "dataset": {"name": dataset.name, **dataset.source, "n_scored": len(test)},
        "example_digests": example_digests(test),
        "generator": {"name": cfg.generator.name, **gen.info},
        **({"finetune": tuned} if tuned else {}),
        "encoder": _encoder(cfg),
        "packages": package_versions(),
        "git_commit": git_commit(),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": {"generate": round(gen_s, 3), "total": round(total_s, 3)},
    }
    with reporting_storage_errors(run_dir), staged(run_dir) as stage:
        write_jsonl(run_file(stage, "predictions"), preds)
        write_parquet(run_file(stage, "scores"), scores)
        write_json(run_file(stage, "metrics"), _metrics_record(cfg, gen, preds, values))
        write_json(run_file(stage, "manifest"), manifest)
    log.info("%s: done in %.1f s -> %s", label, total_s, run_dir)
    return run_dir
