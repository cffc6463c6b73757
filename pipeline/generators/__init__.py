"""Generators (``generator.name``) and demo learners, registered by name."""

from pipeline.generators import (  # noqa: F401
    auto,
    demo,
    demo_learners,
    hf,
    openai_compat,
    precomputed,
)
from pipeline.generators.base import Generation, Generator, MissingModelError

__all__ = ["Generation", "Generator", "MissingModelError"]
