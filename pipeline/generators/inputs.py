"""Checksums of what a cell's results depend on beyond its config: the content of the
scored test records, the training records a demo learner fits, the predictions file, the
weights of the checkpoint and of its base model (or the GGUF file ``generator=llamacpp`` runs).

The cell runner records them in ``manifest.json`` (``inputs``); a finished cell is redone,
and its predictions and scores are not reused, when any of them changed.
"""

from __future__ import annotations

from omegaconf import DictConfig

from pipeline.core.io import file_sha256
from pipeline.data.dataset import Dataset
from pipeline.finetune.weights import cell_weights
from pipeline.generators.auto import choose
from pipeline.generators.gen_cache import digest
from pipeline.generators.llamacpp import gguf_checksum
from pipeline.generators.precomputed import find_predictions

# manifest key -> what the log calls it when it changed
INPUT_NAMES = {"test": "test data", "train": "training data",
               "predictions": "predictions file", "checkpoint": "checkpoint",
               "base_model": "base model"}


def weights_checksums(cfg: DictConfig) -> dict[str, str]:
    """Checksums of the weights an ``hf`` cell loads (:func:`cell_weights`): the checkpoint
    (unless ``train_size=0`` runs the base model itself) and the base model, named by
    ``model.base_model``, ``model.gguf_file`` or a LoRA adapter's own config; memoised by
    file stat under the cache."""
    ckpt, base = cell_weights(cfg)
    sums = {"base_model": base.checksum(cfg)} if base is not None else {}
    if ckpt is not base:
        sums["checkpoint"] = ckpt.checksum(cfg)
    return sums


_TRAIN_DIGESTS: dict[tuple[str, tuple[str, ...], int], str] = {}


def train_digest(dataset: Dataset, n: int) -> str:
    """Checksum of the first ``n`` training records; memoised in this process by the sha256
    of the file they were parsed from (``Dataset.train_sha256``) and the tasks."""
    if dataset.train_sha256 is None:
        return digest(dataset.train[:n])
    key = (dataset.train_sha256, tuple(dataset.tasks), n)
    if key not in _TRAIN_DIGESTS:
        _TRAIN_DIGESTS[key] = digest(dataset.train[:n])
    return _TRAIN_DIGESTS[key]


def example_digests(test: list[dict]) -> dict[str, str]:
    """``{id: checksum}`` of every scored test record (its whole content: source text and
    references), recorded per cell so the aggregate matches examples across cells by content,
    not by id alone; ``digest(test)`` (``inputs.test``) checksums the same records as a set."""
    return {str(rec["id"]): digest(rec)[:16] for rec in test}


def input_checksums(cfg: DictConfig, dataset: Dataset, test: list[dict]) -> dict[str, str]:
    """``{input: checksum}`` of the content the cell's predictions and scores depend on
    (keys of :data:`INPUT_NAMES`, those that apply to the generator that will run)."""
    source = choose(cfg)
    sums = {"test": digest(test)}
    if source == "demo":
        sums["train"] = train_digest(dataset, int(cfg.train_size))
    elif source == "precomputed":
        path = find_predictions(cfg)
        if path is not None:
            sums["predictions"] = file_sha256(path)[:24]
    elif source == "hf":
        sums.update(weights_checksums(cfg))
    elif source == "llamacpp":
        sums["base_model"] = gguf_checksum(cfg)
    return sums
