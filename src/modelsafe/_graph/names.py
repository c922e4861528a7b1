"""Qualified names of types and functions, and resolving them back."""

from __future__ import annotations

import importlib
import re
import sys
import types
from typing import Any

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
MODULE_RE = re.compile(rf"{_IDENT}(\.{_IDENT})*")
QUALNAME_RE = MODULE_RE


def qualname(t: Any) -> str:
    """Dotted ``module.qualname`` of a type or function."""
    return f"{getattr(t, '__module__', None)}.{getattr(t, '__qualname__', None) or t.__name__}"


def split_global(obj: Any) -> tuple[str, str] | str:
    """``(module, qualname)`` under which ``obj`` can be imported back, or why not."""
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if not isinstance(module, str) or not isinstance(name, str):
        return "it has no importable module and name"
    if "<lambda>" in name:
        return f"{module}.{name} is a lambda, which has no importable name"
    if "<locals>" in name:
        return f"{module}.{name} is defined inside a function, so it cannot be imported by name"
    if module == "__main__":
        return (
            f"{name} is defined in __main__ (a script or notebook), so it cannot be imported "
            f"by name elsewhere"
        )
    mod = sys.modules.get(module)
    if mod is None:
        try:
            mod = importlib.import_module(module)
        except Exception:
            return f"its module {module!r} cannot be imported"
    target: Any = mod
    for part in name.split("."):
        target = getattr(target, part, None)
    if target is not obj:
        return f"{module}.{name} does not resolve back to the same object"
    return module, name


def resolve(module: str, name: str) -> Any:
    """Import ``module`` and follow ``name``'s dotted parts. Only call after the audit.

    A class or function must name itself the same way, so one trusted dotted
    name cannot reach two different objects through two module/attribute splits.
    """
    target: Any = sys.modules.get(module)
    if target is None or getattr(getattr(target, "__spec__", None), "_initializing", False):
        target = importlib.import_module(module)  # not imported, or still importing elsewhere
    for part in name.split("."):
        target = getattr(target, part)
    own_module = getattr(target, "__module__", None)
    own_name = getattr(target, "__qualname__", None)
    if isinstance(target, type | types.FunctionType | types.BuiltinFunctionType) and (
        own_module != module or own_name != name
    ):
        raise ValueError(f"{module}.{name} resolves to {own_module}.{own_name}")
    return target
