"""Stage registry: sniffed type id -> stage instance.

Built-in stages are imported on first use. Plugins (extra modules that call
``register``) are loaded by name, e.g. in every worker process at start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from gateway.pipeline.api import Stage

BUILTIN_MODULES: tuple[str, ...] = (
    "gateway.stages.pdf",
    "gateway.stages.image",
    "gateway.stages.html",
    "gateway.stages.svg",
    "gateway.stages.archive",
    "gateway.stages.rtf",
    "gateway.stages.mail",
)

_by_type: dict[str, Stage] = {}
_loaded = False


def register(stage: Stage) -> Stage:
    """Register a stage instance for every type id in ``stage.formats``."""
    for type_id in stage.formats:
        _by_type[type_id] = stage
    return stage


def _ensure_builtins() -> None:
    global _loaded  # noqa: PLW0603 - one-time lazy import of the built-in stages
    if not _loaded:
        _loaded = True
        load_plugins(BUILTIN_MODULES)


def load_plugins(modules: Iterable[str]) -> None:
    for name in modules:
        importlib.import_module(name)


def stage_for(type_id: str) -> Stage | None:
    _ensure_builtins()
    return _by_type.get(type_id)


def known_types() -> frozenset[str]:
    _ensure_builtins()
    return frozenset(_by_type)
