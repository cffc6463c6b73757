"""``python -m pipeline.pairwise candidate=<run dir|file> reference=<run dir|file>``.

One model's outputs scored against another's (code in :mod:`pipeline.versus.pairwise`).
"""

from __future__ import annotations

from omegaconf import DictConfig

from pipeline.core.cli import exit_with_failures, hydra_command


@hydra_command(lambda cfg: "pairwise")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    from pipeline.versus.pairwise import run_pairwise

    run_pairwise(cfg)


if __name__ == "__main__":
    exit_with_failures(main)
