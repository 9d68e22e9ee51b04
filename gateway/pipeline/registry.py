"""Stage registry: sniffed type id -> stage instance.

Built-in stages are imported on first use, by family: a PDF-only batch never
imports the mail or image stages (start-up time is part of every CLI call).
Plugins (extra modules that call ``register``) are loaded by name, e.g. in
every worker process at start-up, and take precedence.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from gateway.pipeline.api import Stage

#: family (the part of a type id before the first dot) -> module holding its stage
BUILTIN_STAGES: dict[str, str] = {
    "pdf": "gateway.stages.pdf",
    "image": "gateway.stages.image",
    "html": "gateway.stages.html",
    "svg": "gateway.stages.svg",
    "archive": "gateway.stages.archive",
    "rtf": "gateway.stages.rtf",
    "mail": "gateway.stages.mail",
    "ooxml": "gateway.stages.ooxml",
    "ole": "gateway.stages.ole",
    "text": "gateway.stages.text",
    "odf": "gateway.stages.odf",
}
BUILTIN_MODULES: tuple[str, ...] = tuple(dict.fromkeys(BUILTIN_STAGES.values()))

_by_type: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Register a stage instance for every type id in ``stage.formats``."""
    for type_id in stage.formats:
        _by_type[type_id] = stage
    return stage


def load_plugins(modules: Iterable[str]) -> None:
    for name in modules:
        importlib.import_module(name)


def stage_for(type_id: str) -> Stage | None:
    stage = _by_type.get(type_id)
    if stage is None:
        module = BUILTIN_STAGES.get(type_id.split(".", 1)[0])
        if module is not None:
            importlib.import_module(module)  # registers its stage
            stage = _by_type.get(type_id)
    return stage


def known_types() -> frozenset[str]:
    load_plugins(BUILTIN_MODULES)
    return frozenset(_by_type)
