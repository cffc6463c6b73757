"""Name -> object registries for metrics, tasks, generators, learners and datasets.

Adding a metric, a generator or a demo learner is one decorated function or class in
one file; YAML selects it by name. Built-in entries are imported lazily, one module per
looked-up name (metric ``rouge`` lives in ``pipeline/scoring/metrics/rouge.py``), so a
light stage that asks for a metric's direction never imports a generator's libraries.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pipeline.core.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of objects with optional metadata per entry.

    ``builtins`` names where the built-in entries are registered: a package whose module
    ``<package>.<name>`` registers entry ``name`` (imported on first lookup of that name;
    every module of the package is imported only to list names or find an entry whose
    module is named differently), or a single module that registers them all.
    """

    def __init__(self, kind: str, builtins: str) -> None:
        self.kind = kind
        self.builtins = builtins
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
        """Return the entry called ``name``; an unknown name is a ``ConfigError`` listing
        the known ones."""
        if name not in self._items:
            self._load(name)
        if name not in self._items:
            known = ", ".join(self.names()) or "(none)"
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}")
        return self._items[name]

    def meta(self, name: str) -> dict[str, Any]:
        """Metadata given at registration."""
        self.get(name)
        return self._meta[name]

    def names(self) -> list[str]:
        """Sorted registered names (imports every built-in module)."""
        self._load(None)
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        if name not in self._items:
            self._load(name)
        return name in self._items

    def _load(self, name: str | None) -> None:
        """Import the module that registers ``name`` (all built-in modules for None)."""
        root = importlib.import_module(self.builtins)
        if not hasattr(root, "__path__"):  # a single module registers every entry
            return
        if name is not None and importlib.util.find_spec(f"{self.builtins}.{name}"):
            importlib.import_module(f"{self.builtins}.{name}")
            if name in self._items:
                return
        for info in pkgutil.iter_modules(root.__path__):
            importlib.import_module(f"{self.builtins}.{info.name}")


METRICS: Registry[Any] = Registry("metric", "pipeline.scoring.metrics")
TASKS: Registry[Any] = Registry("task", "pipeline.core.tasks")
GENERATORS: Registry[Any] = Registry("generator", "pipeline.generators")
LEARNERS: Registry[Any] = Registry("demo learner", "pipeline.generators.demo_learners")
DATASETS: Registry[Any] = Registry("dataset", "pipeline.data.builders")
