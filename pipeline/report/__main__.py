"""``python -m pipeline.report``: write ``<output_dir>/report/index.html`` (run aggregate first).

    python -m pipeline.report output_dir=/tmp/x
    python -m pipeline.report report.model=demo-knn report.train_size=500
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pipeline.cli import catch_user_errors, exit_with_failures
from pipeline.report.build import build_report
from pipeline.schema import register_schema

register_schema()


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
@catch_user_errors(lambda cfg: "report")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    build_report(cfg)


if __name__ == "__main__":
    exit_with_failures(main)
