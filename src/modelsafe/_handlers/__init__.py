"""Handlers: one module per library, found by name and imported lazily.

A handler module exposes ``encoder_for(type) -> encode function | None`` and
``TAGS``, a mapping from node tag to :class:`Tag` (audit + build). Which module
serves a type is decided from the type's top-level package *name*, and which
module serves a node from its tag, so asking "is this a numpy array?" never
imports anything that is not already loaded, and a file can only ever reach
the handlers listed here (or registered by an installed package through the
``modelsafe.handlers`` entry point group).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

_BY_PACKAGE = {
    "numpy": "modelsafe._handlers.numpy",
    "collections": "modelsafe._handlers.stdlib",
    "datetime": "modelsafe._handlers.stdlib",
    "decimal": "modelsafe._handlers.stdlib",
    "pathlib": "modelsafe._handlers.stdlib",
}
_BY_TAG = {
    "nd": "modelsafe._handlers.numpy",
    "npscalar": "modelsafe._handlers.numpy",
    "dtype": "modelsafe._handlers.numpy",
    "randomstate": "modelsafe._handlers.numpy",
    "generator": "modelsafe._handlers.numpy",
    "bitgen": "modelsafe._handlers.numpy",
    "odict": "modelsafe._handlers.stdlib",
    "ddict": "modelsafe._handlers.stdlib",
    "datetime": "modelsafe._handlers.stdlib",
    "date": "modelsafe._handlers.stdlib",
    "time": "modelsafe._handlers.stdlib",
    "timedelta": "modelsafe._handlers.stdlib",
    "timezone": "modelsafe._handlers.stdlib",
    "decimal": "modelsafe._handlers.stdlib",
    "path": "modelsafe._handlers.stdlib",
}
_entry_points_loaded = False


@dataclass(frozen=True)
class Tag:
    """How one node tag is audited (no imports, no calls) and built."""

    audit: Callable[[Any, dict[str, Any]], None]
    build: Callable[[Any, dict[str, Any]], Any]


def _load_entry_points() -> None:
    """Merge handler registrations from installed packages, once."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="modelsafe.handlers"):
        # The value names a module; its PACKAGES and TAGS say what it serves.
        module = ep.value
        try:
            mod = importlib.import_module(module)
        except Exception:  # a broken plug-in must not break saving or loading
            continue
        for pkg in getattr(mod, "PACKAGES", ()):
            _BY_PACKAGE.setdefault(pkg, module)
        for tag in getattr(mod, "TAGS", {}):
            _BY_TAG.setdefault(tag, module)


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


def encoder_for(t: type) -> Callable[[Any, Any], Any] | None:
    """The handler's encode function for type ``t``, or None for the generic path."""
    package = (getattr(t, "__module__", "") or "").split(".")[0]
    name = _BY_PACKAGE.get(package)
    if name is None and not _entry_points_loaded:
        _load_entry_points()
        name = _BY_PACKAGE.get(package)
    if name is None:
        return None
    fn: Callable[[Any, Any], Any] | None = _module(name).encoder_for(t)
    return fn


def tag_for(tag: str) -> Tag | None:
    """The audit/build pair for a node tag, or None when no handler serves it."""
    name = _BY_TAG.get(tag)
    if name is None:
        return None
    spec: Tag | None = _module(name).TAGS.get(tag)
    return spec


def known_tag(tag: str) -> bool:
    """True when ``tag`` names a handler node (checked without importing it)."""
    if tag in _BY_TAG:
        return True
    _load_entry_points()
    return tag in _BY_TAG
