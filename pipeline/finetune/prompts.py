"""Prompts per task from YAML templates (``conf/prompts/*.yaml``).

A template set maps each task name to a template using ``{article}`` and, for tag/type,
``{labels}`` (the labels of the training pool, comma-separated, or ``any`` when the pool has
none); the optional ``system`` entry is the system message of chat prompts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from pipeline.core.errors import ConfigError
from pipeline.core.paths import prompt_file
from pipeline.core.tasks import get_task
from pipeline.data.dataset import Dataset


def load_templates(spec: dict[str, Any] | str | None) -> dict[str, str]:
    """Templates given inline (a mapping), by name/path of a prompt YAML, or the default."""
    if not isinstance(spec, dict):
        path = prompt_file(spec or "default")
        if not path.exists():
            raise ConfigError(f"generator.options.prompts: prompt file '{path}' not found")
        spec = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    return {str(k): str(v) for k, v in spec.items()}


def training_labels(dataset: Dataset, task: str) -> list[str] | None:
    """Sorted labels of a tag/type task seen in the training pool (None when there are none)."""
    field, kind = get_task(task).field, get_task(task).kind
    if kind == "set":
        labels = {t for r in dataset.train for t in r.get(field, [])}
    else:
        labels = {r[field] for r in dataset.train if r.get(field)}
    return sorted(labels) or None


@dataclass(frozen=True)
class Prompt:
    """One request: the optional system message and the user message."""

    system: str | None
    user: str

    def messages(self) -> list[dict[str, str]]:
        """Chat messages (system first when present)."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [{"role": "user", "content": self.user}]

    def plain(self) -> str:
        """The prompt as one text, for models without a chat template."""
        return (f"{self.system}\n\n" if self.system else "") + self.user + "\n\n"


class PromptSet:
    """Renders the prompt of every (task, record); knows the allowed labels per task."""

    def __init__(self, templates: dict[str, str], dataset: Dataset) -> None:
        missing = [t for t in dataset.tasks if t not in templates]
        if missing:
            raise ConfigError(f"generator.options.prompts has no template for task(s) "
                              f"{', '.join(missing)}")
        self.templates = {t: templates[t] for t in dataset.tasks}
        self.system = templates.get("system") or None
        self.labels = {t: training_labels(dataset, t) for t in dataset.tasks
                       if get_task(t).kind != "text"}
        # A sane tag answer has at most twice the most tags of any training example.
        sizes = [len(r.get(get_task(t).field) or []) for t in dataset.tasks
                 if get_task(t).kind == "set" for r in dataset.train]
        self.max_tags = 2 * max(sizes) if any(sizes) else None

    def render(self, task: str, record: dict) -> Prompt:
        """The prompt of ``task`` for ``record``."""
        labels = ", ".join(self.labels.get(task) or ["any"])
        try:
            user = self.templates[task].format(article=record.get("article", ""), labels=labels)
        except (KeyError, IndexError) as exc:
            raise ConfigError(f"generator.options.prompts.{task}: unknown placeholder {exc}; "
                              "use {article} and {labels}") from None
        return Prompt(self.system, user)

    def digest(self) -> str:
        """Hash of the templates, system message and label lists."""
        blob = json.dumps([self.templates, self.system, self.labels], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
