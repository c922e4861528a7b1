"""Handlers: one module per library, found by name and imported lazily.

A handler module exposes ``encoder_for(type) -> encode function | None``,
``TAGS``, a mapping from node tag to :class:`Tag` (audit + build), and
optionally ``VALIDATORS``, a mapping from a class's qualified name to a
:class:`Validator` that checks what the file gives that class before it is
constructed (for compiled code that indexes memory with values from the file).

Which module serves a type is decided from the type's top-level package *name*,
which module serves a node from its tag (or the tag's prefix, ``"pd.frame"`` ->
``"pd."``), and which validates a class from the class's top-level package, so
asking "is this a numpy array?" never imports anything that is not already
loaded, and a file can only ever reach the handlers listed here (or registered
by an installed package through the ``modelsafe.handlers`` entry point group).
"""

from __future__ import annotations

import functools
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
    "scipy": "modelsafe._handlers.scipy",
    "pandas": "modelsafe._handlers.pandas",
    "sklearn": "modelsafe._handlers.sklearn",
    "xgboost": "modelsafe._handlers.xgboost",
    "lightgbm": "modelsafe._handlers.lightgbm",
}
# Every tag starting with one of these belongs to that handler's module.
_BY_TAG_PREFIX = {
    "sp.": "modelsafe._handlers.scipy",
    "pd.": "modelsafe._handlers.pandas",
    "sk.": "modelsafe._handlers.sklearn",
    "xgb.": "modelsafe._handlers.xgboost",
    "lgb.": "modelsafe._handlers.lightgbm",
}
_BY_TAG = {
    "nd": "modelsafe._handlers.numpy",
    "npscalar": "modelsafe._handlers.numpy",
    "dtype": "modelsafe._handlers.numpy",
    "randomstate": "modelsafe._handlers.numpy",
    "generator": "modelsafe._handlers.numpy",
    "bitgen": "modelsafe._handlers.numpy",
    "ma": "modelsafe._handlers.numpy",
    "npmatrix": "modelsafe._handlers.numpy",
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


@dataclass(frozen=True)
class Validator:
    """Checks on what a file gives one class, run before the class sees any of it.

    ``args(args, kwargs)`` runs before the class is called or its ``__new__`` is;
    ``state(obj, state)`` before the state is applied, with ``state=None`` when
    the file gives none. Either raises ``ValueError`` or ``TypeError`` naming the
    broken invariant, which the loader reports as a
    :class:`~modelsafe.errors.FormatError` naming the class.

    ``private(state, own)`` runs before ``state`` and returns the state with each array
    that compiled code indexes by its values replaced by ``own(array)``, a copy in the
    process's memory when the array views a mapped file: the checks then hold for as
    long as the object lives, whatever happens to the file.
    """

    args: Callable[[list[Any], dict[str, Any]], None] | None = None
    state: Callable[[Any, Any], None] | None = None
    private: Callable[[Any, Callable[[Any], Any]], Any] | None = None


def plain_attributes(obj: Any, state: Any) -> dict[str, Any] | None:
    """``state`` as the attributes of an instance of ``type(obj)`` whose state is its
    ``__dict__`` (a wrapper estimator's): None when the file gives none; else a dict of
    plain names, none private to Python and none hiding what the class defines (a
    method, a property). For validators; raises ``TypeError`` or ``ValueError``."""
    if state is None:
        return None
    if type(state) is not dict:
        raise TypeError(f"the state must be a dict of attributes, not {type(state).__name__}")
    cls = type(obj)
    defined = set().union(*map(vars, cls.__mro__))  # read now: a class may gain methods
    for key in state:
        if type(key) is not str or not key.isidentifier() or key.startswith("__"):
            raise ValueError(f"{key!r} is not an attribute name the estimator may have")
        if key in defined:
            raise ValueError(f"attribute {key!r} would hide {cls.__name__}.{key}")
    return state


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


def _module(name: str) -> ModuleType | None:
    """A handler module, or None when it is not part of this installation."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def encoder_for(t: type) -> Callable[[Any, Any], Any] | None:
    """The handler's encode function for type ``t``, or None for the generic path."""
    package = (getattr(t, "__module__", "") or "").split(".")[0]
    name = _BY_PACKAGE.get(package)
    if name is None and not _entry_points_loaded:
        _load_entry_points()
        name = _BY_PACKAGE.get(package)
    module = None if name is None else _module(name)
    if module is None:
        return None
    fn: Callable[[Any, Any], Any] | None = module.encoder_for(t)
    return fn


def _tag_module(tag: str) -> str | None:
    name = _BY_TAG.get(tag)
    if name is None:
        prefix = tag.split(".", 1)[0] + "."
        if prefix != tag[: len(prefix)]:
            return None
        name = _BY_TAG_PREFIX.get(prefix)
    return name


def tag_for(tag: str) -> Tag | None:
    """The audit/build pair for a node tag, or None when no handler serves it."""
    name = _tag_module(tag)
    module = None if name is None else _module(name)
    if module is None:
        return None
    spec: Tag | None = module.TAGS.get(tag)
    return spec


def known_tag(tag: str) -> bool:
    """True when ``tag`` names a handler node (checked without importing it)."""
    if _tag_module(tag) is not None:
        return True
    _load_entry_points()
    return tag in _BY_TAG


@functools.cache
def validator_for(qualified_name: str) -> Validator | None:
    """The validator of a class (by qualified name), once loading has passed the audit."""
    name = _BY_PACKAGE.get(qualified_name.split(".", 1)[0])
    module = None if name is None else _module(name)
    if module is None:
        return None
    found: Validator | None = getattr(module, "VALIDATORS", {}).get(qualified_name)
    return found


@functools.cache
def validator_of(cls: type) -> tuple[str, Validator] | None:
    """The validator for instances of ``cls``, with the qualified name of the class it is
    for: ``cls``'s own, else that of its nearest base class that has one. A subclass
    someone trusts (``MyVectorizer(CountVectorizer)`` with its own preprocessing) hands
    its state to the base class's compiled code as the base class does, so it is held
    to the same invariants."""
    from .._graph.names import qualname

    for base in cls.__mro__:
        name = qualname(base)
        found = validator_for(name)
        if found is not None:
            return name, found
    return None
