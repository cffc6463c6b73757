"""Structured-config schema: every YAML file and command-line override is checked against it.

A typo (``modle=...``, ``data.limmit=5``) or a wrong type (``train_size=abc``) fails before
any work starts, with Hydra's message naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from pipeline.core.paths import log_dir


@dataclass
class ModelConfig:
    """One model of the sweep (``conf/model/<name>.yaml``)."""

    name: str = MISSING
    family: str = MISSING
    # Parameter count in billions. Demo learners report their own count instead.
    params_b: float | None = None
    # Demo models: name of a registered learner and its options.
    learner: str | None = None
    learner_options: dict[str, Any] = field(default_factory=dict)
    # Real models: where the fine-tuned checkpoint / precomputed predictions of a cell live.
    # Patterns may use ${model.name} and ${train_size}.
    checkpoint: str | None = None
    predictions: str | None = None
    # One long-format predictions file for many systems: the column naming each row's system
    # (the cell keeps the rows where it equals model.name).
    system_column: str | None = None
    # generator=hf: base model of a LoRA adapter checkpoint (default: the adapter's own
    # base_model_name_or_path) and the hub revision of a checkpoint given as a hub id.
    base_model: str | None = None
    revision: str | None = None
    # generator=hf: a GGUF file as the base model (dequantised on load; needs `gguf`);
    # generator=llamacpp: the GGUF file it runs.
    gguf_file: str | None = None
    description: str = ""


@dataclass
class DataConfig:
    """The evaluation data (``conf/data/<name>.yaml``)."""

    name: str = MISSING
    builder: str = MISSING  # registered dataset builder
    seed: int = 13
    n_train: int = 2000
    n_test: int = 200
    limit: int | None = None  # score only the first N test examples (smoke tests)
    tasks: list[str] = field(default_factory=list)  # empty: every task the data carries
    options: dict[str, Any] = field(default_factory=dict)  # builder-specific settings


@dataclass
class GeneratorConfig:
    """How the predictions of a cell are obtained (``conf/generator/<name>.yaml``)."""

    name: str = "auto"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskConfig:
    """Which registered metrics score one task."""

    metrics: list[str] = field(default_factory=list)


@dataclass
class AggregateConfig:
    """How cells are combined into the ranking (``conf/aggregate/<name>.yaml``)."""

    weights: dict[str, float] = field(default_factory=dict)
    n_boot: int = 1000
    alpha: float = 0.05
    seed: int = 0
    # smallest change (score units) called better/worse; smaller significant ones: negligible.
    # Also the recommendation's non-inferiority margin (a cell within it of the best may ship)
    min_effect: float = 0.005
    # all-pairs tests: at most this many pairs (Holm over the tested ones); above it: leader vs
    # every cell, each cell vs the next, each model's smallest vs largest size, top cells' pairs
    max_pairs: int = 3000
    # cells scored on different examples: largest (rank the largest comparable group, leave
    # the others out), common (rank all on their shared examples) or error (exit 2)
    examples: str = "largest"
    # learning curves predict each model's score at this train size (null: 2x its largest)
    extrapolate_to: int | None = None


@dataclass
class PairwiseConfig:
    """Model against model (``conf/pairwise/default.yaml``)."""

    # Per metric (a registered metric name, e.g. bertscore, matched as a part of the column
    # name): quality band name -> inclusive lower bound. Metrics without bands get none.
    bands: dict[str, dict[str, float]] = field(default_factory=lambda: {"bertscore": {
        "Poor": 0.0, "Fair": 0.7, "Good": 0.8, "Excellent": 0.9}})
    n_lowest: int = 10  # lowest-agreement examples shown side by side in index.html


@dataclass
class DiffConfig:
    """Sweep against sweep (``conf/diff/default.yaml``); tests use ``aggregate`` settings."""

    top_k: int = 5  # report the cells that entered or left the top-k ranks
    # more than two output folders, oldest first: the history of each cell's score is drawn
    # (the last two are compared unless before/after are given)
    sweeps: list[str] = field(default_factory=list)


@dataclass
class SliceConfig:
    """Slice heatmaps: metrics broken down by two example attributes (``meta.<key>`` or a
    record field)."""

    rows: str = "meta.length_bucket"
    cols: str = "type"
    metrics: list[str] = field(default_factory=lambda: ["overall_score"])
    min_n: int = 5  # slices with fewer examples are grey and not compared
    length_bins: int = 0  # computed length buckets (no length attribute); 0: as data allow


@dataclass
class ReportConfig:
    """The HTML report (``conf/report/<name>.yaml``)."""

    model: str | None = None  # the cell shown in detail; None: the top-ranked cell
    train_size: int | None = None  # with model: None means the model's best-ranked cell
    bertscore: list[str] = field(default_factory=list)  # column prefixes for the suite
    bands: dict[str, float] = field(default_factory=dict)  # band name -> lower bound
    slices: SliceConfig = field(default_factory=SliceConfig)
    n_errors: int = 10
    error_metric: str = "overall_score"
    export_images: bool = False  # static copies of every figure (needs kaleido)
    top_n: int = 30  # models drawn in the per-model charts (the leaderboard lists every cell)
    max_matrix: int = 30  # cells in the significance heatmap (the top ones)
    f1_range: list[float] = field(default_factory=lambda: [0.5, 1.0])  # fixed F1 grid scale
    image_format: str = "png"


@dataclass
class TrackingConfig:
    """Experiment tracking of the aggregate stage (``conf/tracking/<name>.yaml``)."""

    backend: str = "none"  # none | mlflow
    uri: str | None = None  # mlflow: None is sqlite:///<output_dir>/mlflow.db
    experiment: str | None = None  # mlflow experiment; None: the output_dir folder's name


@dataclass
class Config:
    """The whole configuration of one cell (and of the aggregation)."""

    model: ModelConfig = MISSING
    data: DataConfig = MISSING
    generator: GeneratorConfig = MISSING
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    aggregate: AggregateConfig = field(default_factory=AggregateConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    pairwise: PairwiseConfig = field(default_factory=PairwiseConfig)
    diff: DiffConfig = field(default_factory=DiffConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    # finetune=lora: train model.checkpoint from model.base_model first (conf/finetune/).
    finetune: dict[str, Any] | None = None
    output_dir: str = "outputs"
    cache_dir: str | None = None  # None: $PIPELINE_CACHE_DIR or the user's cache directory
    train_size: int = 2000
    seed: int = 0
    force: bool = False  # recompute cells that are already finished
    input: str | None = None  # aggregate: a per-model CSV table instead of run folders
    candidate: str | None = None  # pairwise: run folder or predictions file being judged
    reference: str | None = None  # pairwise: run folder or predictions file taken as truth
    before: str | None = None  # diff: output_dir of the earlier sweep
    after: str | None = None  # diff: output_dir of the later sweep


def register_schema() -> None:
    """Store the schema so ``conf/config.yaml`` can extend it (``defaults: [schema]``)."""
    ConfigStore.instance().store(name="schema", node=Config)
    OmegaConf.register_new_resolver("log_dir", log_dir, replace=True)
