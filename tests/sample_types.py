"""Importable user-defined types for the round-trip tests.

They live in a module of their own so that they have a stable qualified name
(``tests.sample_types.X``) that a test can pass in ``trusted=[...]``.
"""

from __future__ import annotations

import enum
import reprlib
from collections import namedtuple
from typing import Any, NamedTuple

Point = namedtuple("Point", ["x", "y"])


class Pair(NamedTuple):
    """A typing.NamedTuple, whose class is built differently from ``namedtuple``."""

    left: Any
    right: Any


class Color(enum.Enum):
    RED = 1
    GREEN = "green"
    BLUE = (3, 4)


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Plain:
    """State in ``__dict__``, restored without calling ``__init__``."""

    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        return f"Plain({self.__dict__!r})"


class Slotted:
    """State in ``__slots__``; some slots may be unset."""

    __slots__ = ("a", "b")

    def __init__(self, a: Any = None, b: Any = None) -> None:
        self.a = a
        self.b = b

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        return f"Slotted(a={getattr(self, 'a', '<unset>')!r}, b={getattr(self, 'b', '<unset>')!r})"


class SlottedChild(Slotted):
    """Slots and a ``__dict__``: pickle's ``(dict, slots)`` state."""

    def __init__(self, a: Any = None, b: Any = None, **attrs: Any) -> None:
        super().__init__(a, b)
        self.__dict__.update(attrs)


class WithState:
    """Custom ``__getstate__``/``__setstate__``: the state is a tuple, not a dict."""

    def __init__(self, value: Any = None, cache: Any = None) -> None:
        self.value = value
        self.cache = cache  # dropped on save, rebuilt on load

    def __getstate__(self) -> Any:
        return ("v1", self.value)

    def __setstate__(self, state: Any) -> None:
        version, self.value = state
        assert version == "v1"
        self.cache = "rebuilt"

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        return f"WithState({self.value!r})"


def make_reduced(a: Any, b: Any) -> Reduced:
    """The callable ``Reduced.__reduce__`` names."""
    obj = Reduced.__new__(Reduced)
    obj.a, obj.b = a, b
    obj.made_by = "make_reduced"
    return obj


class Reduced:
    """``__reduce__`` returning a module-level callable and its arguments."""

    def __init__(self, a: Any, b: Any) -> None:
        self.a, self.b = a, b
        self.made_by = "__init__"

    def __reduce__(self) -> Any:
        return (make_reduced, (self.a, self.b))

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        return f"Reduced({self.a!r}, {self.b!r})"


class MyList(list):  # type: ignore[type-arg]
    """A list subclass with an attribute."""

    tag: Any = None


class MyDict(dict):  # type: ignore[type-arg]
    """A dict subclass with an attribute."""

    tag: Any = None


class Node:
    """A linked node, for cycles and deep chains."""

    def __init__(self, value: Any = None, next: Any = None) -> None:
        self.value = value
        self.next = next


def module_function(x: Any) -> Any:
    """A plain importable function (stored by name)."""
    return x


class Holder:
    """Holds a value in ``.func``; used to place unsupported values at a known path."""

    def __init__(self, func: Any) -> None:
        self.func = func


SAMPLE_TYPES = (
    Point,
    Pair,
    Color,
    Level,
    Plain,
    Slotted,
    SlottedChild,
    WithState,
    Reduced,
    MyList,
    MyDict,
    Node,
    Holder,
)
TRUSTED = sorted(
    {f"{__name__}.{t.__qualname__}" for t in SAMPLE_TYPES}
    | {f"{__name__}.make_reduced", f"{__name__}.module_function"}
)
