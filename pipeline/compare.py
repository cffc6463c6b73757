"""Run one cell, or with ``-m`` the whole grid, of the model x train_size sweep.

    python -m pipeline.compare model=llama-3.2-1b train_size=2000
    python -m pipeline.compare -m                      # the grid in conf/config.yaml
    python -m pipeline.compare -m train_size=500,2000 output_dir=/tmp/x data.limit=20
"""

from __future__ import annotations

from omegaconf import DictConfig

from pipeline.core.cli import exit_with_failures, hydra_command
from pipeline.scoring.cell import run_cell


@hydra_command(lambda cfg: f"{cfg.model.name} @ train_size={cfg.train_size}")
def main(cfg: DictConfig) -> None:
    """Hydra entry point: one cell per job."""
    run_cell(cfg)


if __name__ == "__main__":
    exit_with_failures(main)
