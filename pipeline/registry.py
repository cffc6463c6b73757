"""Name -> object registries for metrics, tasks, generators, learners and datasets.

Adding a metric, a generator or a demo learner is one decorated function or class in
one file; YAML selects it by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of objects with optional metadata per entry."""

    def __init__(self, kind: str, builtins: str) -> None:
        self.kind = kind
        self.builtins = builtins  # module whose import registers the built-in entries
        self._items: dict[str, T] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator that registers ``obj`` under ``name`` with ``meta``."""

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return deco

    def get(self, name: str) -> T:
        """Return the entry called ``name``; unknown names list the known ones."""
        self._load_builtins()
        if name not in self._items:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}")
        return self._items[name]

    def meta(self, name: str) -> dict[str, Any]:
        """Metadata given at registration."""
        self.get(name)
        return self._meta[name]

    def names(self) -> list[str]:
        """Sorted registered names."""
        self._load_builtins()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load_builtins()
        return name in self._items

    def _load_builtins(self) -> None:
        """Import the module of built-in entries once, so its decorators run."""
        importlib.import_module(self.builtins)


METRICS: Registry[Any] = Registry("metric", "pipeline.metrics")
TASKS: Registry[Any] = Registry("task", "pipeline.tasks")
GENERATORS: Registry[Any] = Registry("generator", "pipeline.generators")
LEARNERS: Registry[Any] = Registry("demo learner", "pipeline.generators")
DATASETS: Registry[Any] = Registry("dataset", "pipeline.data")
