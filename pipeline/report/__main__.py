"""``python -m pipeline.report``: write ``<output_dir>/report/index.html`` (run aggregate first).

    python -m pipeline.report output_dir=/tmp/x
    python -m pipeline.report report.model=demo-knn report.train_size=500

When nothing the report reads changed since it was built, it is kept (``force=true``
rebuilds it). With ``tracking=mlflow`` the report is attached to the sweep's MLflow run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from pipeline.aggregate.tracking import track_report
from pipeline.core.cli import exit_with_failures, hydra_command
from pipeline.core.paths import OutputPaths
from pipeline.report.freshness import is_current, record, report_inputs

log = logging.getLogger(__name__)


@hydra_command(lambda cfg: "report")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    paths = OutputPaths(Path(cfg.output_dir))
    inputs = report_inputs(cfg, paths)
    if not cfg.force and is_current(paths, inputs):
        log.info("report inputs unchanged since %s was built: kept, not rebuilt "
                 "(force=true rebuilds it)", paths.report_dir / "index.html")
        print(f"report: {paths.report_dir / 'index.html'} (unchanged)")
    else:
        from pipeline.report.build import build_report  # pandas, plotly: only when building

        build_report(cfg)
        record(paths, inputs)
    track_report(cfg)  # tracking=mlflow: attach the report to the sweep's run


if __name__ == "__main__":
    exit_with_failures(main)
