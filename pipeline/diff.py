"""``python -m pipeline.diff before=<output_dir> after=<output_dir>``.

One sweep against another, cell by cell (code in :mod:`pipeline.versus.diff`).
"""

from __future__ import annotations

from omegaconf import DictConfig

from pipeline.core.cli import exit_with_failures, hydra_command


@hydra_command(lambda cfg: "diff")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    from pipeline.versus.diff import diff

    diff(cfg)


if __name__ == "__main__":
    exit_with_failures(main)
