"""Stage 3, generate: a cell's predictions from the demo learners, a predictions file, a
Hugging Face checkpoint or an OpenAI-compatible server (``generator.name``).

Reads the dataset (and ``model.predictions`` / ``model.checkpoint``); returns a
:class:`Generation` to the cell runner, which writes ``runs/<model>/<train_size>/
predictions.jsonl``. Generators register by name in ``GENERATORS`` and are imported lazily.
"""

from pipeline.core.errors import MissingModelError
from pipeline.generators.base import Generation, Generator

__all__ = ["Generation", "Generator", "MissingModelError"]
