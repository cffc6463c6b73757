"""What a generator returns, and the errors it raises for a cell it cannot produce."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from omegaconf import DictConfig

from pipeline.data.dataset import Dataset

# What perplexity measures (recorded per cell; a cell scored under another one re-scores
# its perplexity): the reference as the chat template's assistant turn, as LoRA trains it.
PERPLEXITY_DEFINITION = "assistant-turn"


@dataclass
class Generation:
    """Predictions of one cell (in test order) plus what the generator knows of the model."""

    predictions: list[dict]
    perplexity: float | None = None  # None when the generator has no language model
    num_parameters: int | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    """``generator(cfg, dataset, test) -> Generation``; registered in ``GENERATORS``."""

    def __call__(self, cfg: DictConfig, dataset: Dataset, test: list[dict]) -> Generation: ...
