"""``python -m pipeline.report``: write ``<output_dir>/report/index.html`` (run aggregate first).

    python -m pipeline.report output_dir=/tmp/x
    python -m pipeline.report report.model=demo-knn report.train_size=500
"""

from __future__ import annotations

from omegaconf import DictConfig

from pipeline.core.cli import exit_with_failures, hydra_command
from pipeline.report.build import build_report


@hydra_command(lambda cfg: "report")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    build_report(cfg)


if __name__ == "__main__":
    exit_with_failures(main)
