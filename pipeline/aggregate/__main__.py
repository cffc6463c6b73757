"""``python -m pipeline.aggregate``: rank every finished cell and write the tables.

    python -m pipeline.aggregate                         # reads <output_dir>/runs
    python -m pipeline.aggregate output_dir=/tmp/x
    python -m pipeline.aggregate input=metrics.csv       # a per-model table instead
"""

from __future__ import annotations

from omegaconf import DictConfig

from pipeline.aggregate.stage import aggregate
from pipeline.core.cli import exit_with_failures, hydra_command


@hydra_command(lambda cfg: "aggregate")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    aggregate(cfg)


if __name__ == "__main__":
    exit_with_failures(main)
