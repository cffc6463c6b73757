"""What ``tracking=mlflow`` logged for a sweep: one line per run (name, params, n_examples,
overall score, artifacts), read from the sweep's local MLflow store.

    .venv/bin/python scripts/mlflow_summary.py outputs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _artifacts(client, run_id: str, path: str | None = None) -> list[str]:
    """Artifact paths of a run, one level of folders expanded."""
    out = []
    for item in client.list_artifacts(run_id, path):
        out += _artifacts(client, run_id, item.path) if item.is_dir and path is None else [
            item.path + ("/" if item.is_dir else "")]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("output_dir", type=Path)
    ap.add_argument("--experiment", default=None, help="default: the output folder's name")
    args = ap.parse_args(argv)
    db = args.output_dir / "mlflow.db"
    if not db.exists():
        print(f"error: {db}: no MLflow store; run the aggregate with tracking=mlflow",
              file=sys.stderr)
        return 2
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db.resolve()}")
    experiment = client.get_experiment_by_name(args.experiment or args.output_dir.resolve().name)
    runs = sorted(client.search_runs([experiment.experiment_id]), key=lambda r: r.info.run_name)
    print(f"{'run':<26} {'params':>6} {'n_examples':>10} {'overall_score':>13}  artifacts")
    for run in runs:
        metrics = run.data.metrics
        n = f"{metrics['n_examples']:.0f}" if "n_examples" in metrics else "-"
        score = f"{metrics['overall_score']:.4f}" if "overall_score" in metrics else "-"
        files = _artifacts(client, run.info.run_id)
        shown = ", ".join(files[:4]) + (f", ... ({len(files)} files)" if len(files) > 4 else "")
        print(f"{run.info.run_name:<26} {len(run.data.params):>6} {n:>10} {score:>13}  {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
