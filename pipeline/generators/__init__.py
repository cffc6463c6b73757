"""Generators (``generator.name``) and demo learners, registered by name."""

from pipeline.generators import auto, demo, demo_learners, precomputed  # noqa: F401
from pipeline.generators.base import Generation, Generator, MissingModelError

__all__ = ["Generation", "Generator", "MissingModelError"]
