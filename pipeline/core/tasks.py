"""The built-in tasks: what each predicts, from which record field, and its output kind.

A task names the record field that holds its reference(s) and the prediction field of the
same name. ``kind`` decides which metrics apply: ``text`` (ROUGE, BERTScore), ``set`` (tag
overlap) or ``label`` (classification).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.core.registry import TASKS

TaskKind = Literal["text", "set", "label"]


@dataclass(frozen=True)
class Task:
    """A registered task."""

    name: str
    field: str
    kind: TaskKind
    multi_sentence: bool = False  # ROUGE-L is computed as ROUGE-Lsum, one sentence per line
    description: str = ""


def _register(task: Task) -> Task:
    return TASKS.register(task.name, kind=task.kind)(task)


SUMMARIZATION = _register(Task("summarization", "summary", "text", multi_sentence=True,
                               description="multi-sentence summary of the article"))
TITLE = _register(Task("title", "title", "text", description="headline of the article"))
TAG = _register(Task("tag", "tags", "set", description="set of topic tags"))
TYPE = _register(Task("type", "type", "label", description="one article type"))


def get_task(name: str) -> Task:
    """The registered task called ``name``."""
    return TASKS.get(name)
