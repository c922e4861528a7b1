"""Thin subclasses of every class modelsafe validates, as users write them
(``class MyVectorizer(CountVectorizer)`` with a preprocessing step of their own), for
the tests that a subclass someone trusts is held to its base class's checks.

``SUBCLASSES`` maps a validated class's qualified name to its subclass's; a class that
cannot be subclassed (a final extension type) has none. Importing this module imports
the libraries of the validated classes.
"""

from __future__ import annotations

import importlib
from typing import Any


def _validated() -> list[str]:
    """The qualified names of the classes (and functions) the handlers validate."""
    from modelsafe._handlers import _BY_PACKAGE, _module

    names: list[str] = []
    for module_name in sorted(set(_BY_PACKAGE.values())):
        module = _module(module_name)
        names += list(getattr(module, "VALIDATORS", None) or {})
    return names


def _resolve(qualified: str) -> Any:
    """The object named ``qualified``: the longest importable module, then attributes."""
    parts = qualified.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            target = getattr(target, part)
        return target
    raise ImportError(qualified)


def local_name(qualified: str) -> str:
    return "User_" + qualified.replace(".", "_")


SUBCLASSES: dict[str, str] = {}
for _name in _validated():
    _base = _resolve(_name)
    if not isinstance(_base, type):
        continue  # a function (a Cython unpickler): nothing to subclass
    try:
        _sub = type(
            local_name(_name),
            (_base,),
            {"__module__": __name__, "__doc__": f"A user's {_base.__name__}."},
        )
    except TypeError:  # a final class: no subclass of it can exist
        continue
    globals()[local_name(_name)] = _sub
    SUBCLASSES[_name] = f"{__name__}.{local_name(_name)}"
