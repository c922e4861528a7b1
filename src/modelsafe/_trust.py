"""The default trust set and the trust policy.

Trust is by exact qualified name, and says *how* a name may be used:

- ``node``: a node kind of modelsafe's own (arrays, tuples, dates, ...);
- ``value``: referenced as a value (a function or class object, e.g. ``np.log1p``);
- ``new``: instantiated with ``cls.__new__`` and given its state;
- ``call``: called with arguments from the file.

The default set is data (:func:`default_trusted`), not code spread over the
handlers: builtins and numpy from the tables below, every other library from
the lists in ``modelsafe/_trustlists/*.txt``. Names passed in ``trusted=[...]``
are trusted for every use. Some names can never be trusted, because they turn
a file into code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

NODE, VALUE, NEW, CALL = "node", "value", "new", "call"

_BUILTIN_NODES = ("tuple", "set", "frozenset", "bytes", "bytearray", "complex", "slice", "range")
_BUILTIN_VALUES = (
    "bool", "int", "float", "complex", "str", "bytes", "bytearray", "list", "dict",
    "tuple", "set", "frozenset", "object", "slice", "range", "len", "abs", "min", "max",
    "sum", "round",
)  # fmt: skip
_STDLIB_NODES = (
    "collections.OrderedDict",
    "collections.defaultdict",
    "datetime.datetime",
    "datetime.date",
    "datetime.time",
    "datetime.timedelta",
    "datetime.timezone",
    "decimal.Decimal",
    "pathlib.PurePosixPath",
    "pathlib.PureWindowsPath",
    "pathlib.PosixPath",
    "pathlib.WindowsPath",
)
_NUMPY_FUNCTIONS = (
    "mean", "median", "average", "sum", "prod", "std", "var", "min", "max", "amin", "amax",
    "argmin", "argmax", "nanmean", "nanmedian", "nansum", "nanstd", "nanvar", "nanmin",
    "nanmax", "percentile", "quantile", "nanpercentile", "nanquantile", "cumsum", "cumprod",
    "clip", "round", "ptp", "all", "any",
)  # fmt: skip
_BITGENS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")

# Names that run code, touch the file system or the process, whatever the caller says.
_NEVER_MODULES = frozenset(
    {
        "os", "posix", "nt", "sys", "subprocess", "importlib", "runpy", "pickle", "_pickle",
        "marshal", "shutil", "socket", "ctypes", "code", "codeop", "pty", "multiprocessing",
        "webbrowser", "types", "io", "_io", "tempfile", "signal",
        "threading", "_thread", "asyncio", "pdb", "bdb", "inspect", "gc", "operator",
        "functools.reduce", "copyreg", "shelve", "dbm", "zipimport", "pkgutil",
    }
)  # fmt: skip
_NEVER_BUILTINS = frozenset(
    {
        "eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
        "globals", "locals", "vars", "breakpoint", "input", "help", "exit", "quit", "type",
        "memoryview", "super", "classmethod", "staticmethod", "property", "__build_class__",
    }
)  # fmt: skip
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


@functools.lru_cache(maxsize=4096)  # a save asks once an object: hundreds of times a forest
def never_trustable(name: str) -> bool:
    """True for names that would let a file run code or reach outside the process."""
    parts = name.split(".")
    if parts[0] == "builtins" and len(parts) > 1 and parts[1] in _NEVER_BUILTINS:
        return True
    return any(".".join(parts[:i]) in _NEVER_MODULES for i in range(1, len(parts) + 1))


# Names share their few distinct sets of uses (8 in the default set), not one each.
_USE_SETS: dict[frozenset[str], frozenset[str]] = {}


def _shared(uses: frozenset[str]) -> frozenset[str]:
    return _USE_SETS.setdefault(uses, uses)


def _add(table: dict[str, frozenset[str]], name: str, uses: Iterable[str]) -> None:
    """Add ``uses`` to ``name``'s entry, as one of the shared frozensets."""
    table[name] = _shared(table.get(name, frozenset()).union(uses))


_USES = frozenset({NODE, VALUE, NEW, CALL})
LISTS_DIR = Path(__file__).with_name("_trustlists")


def _fixed() -> dict[str, frozenset[str]]:
    """The names trusted by code rather than by the lists: builtins, the standard
    library's value types and numpy's classes other than its scalar types."""
    table: dict[str, frozenset[str]] = {}
    for names, uses in (
        ((f"builtins.{n}" for n in _BUILTIN_NODES), (NODE,)),
        ((f"builtins.{n}" for n in _BUILTIN_VALUES), (VALUE,)),
        (_STDLIB_NODES, (NODE,)),
        (("numpy.ndarray", "numpy.dtype"), (NODE, VALUE)),
        (("numpy.ma.MaskedArray", "numpy.matrix", "numpy.random.RandomState"), (NODE,)),
        (("numpy.random.Generator", *(f"numpy.random.{n}" for n in _BITGENS)), (NODE,)),
    ):
        for name in names:
            _add(table, name, uses)
    return table


_FIXED = _fixed()


@functools.cache
def _scalar_types() -> frozenset[str]:
    """The names of numpy's scalar types (``float64``, ``int32``, ``bool``, ...)."""
    import numpy as np

    return frozenset(t.__name__ for t in set(np.sctypeDict.values()))


def _numpy_uses(attr: str) -> set[str]:
    """How ``numpy.<attr>`` is trusted: its scalar types as nodes and values, its ufuncs
    and the reductions scikit-learn is commonly given (``_NUMPY_FUNCTIONS``) as values."""
    import numpy as np

    uses: set[str] = set()
    if attr in _scalar_types():
        uses.update((NODE, VALUE))
    # vars(), not getattr(): numpy imports some submodules lazily on attribute access.
    value = vars(np).get(attr)
    if isinstance(value, np.ufunc) or (attr in _NUMPY_FUNCTIONS and callable(value)):
        uses.add(VALUE)
    return uses


@functools.cache
def _lists_text() -> tuple[str, tuple[tuple[int, str], ...]]:
    """The trust lists joined into one text (each line preceded by a newline), and where
    each list starts in it. Read as plain files (package data): importlib.resources would
    import modules on first use."""
    parts, starts, at = [], [], 0
    for entry in sorted(LISTS_DIR.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".txt"):
            text = "\n" + entry.read_text("utf-8").rstrip("\n")
            starts.append((at, entry.name))
            parts.append(text)
            at += len(text)
    return "".join(parts) + "\n", tuple(starts)


@functools.cache
def _listed_modules() -> frozenset[str]:
    """The modules the trust lists name something of: a name of any other module is
    answered without a search of the lists (a crafted file may name 100,000 types of
    modules of its own)."""
    text, _ = _lists_text()
    return frozenset(_LISTED_MODULE.findall(text))


_LISTED_MODULE = re.compile(r"\n([A-Za-z_][A-Za-z0-9_.]*)\.[A-Za-z0-9_]+[ \t]")


@functools.lru_cache(maxsize=256)
def _module_lines(module: str) -> str:
    """The lines of the trust lists that name something of ``module``, each preceded by a
    newline. A search of the lists' text rather than a table of their ~500 names: a table held
    ~110 KiB in every process that loads a file and took ~2 ms to build, where a load
    asks about a few dozen names (``default_uses`` keeps the answers)."""
    text, _ = _lists_text()
    needle = f"\n{module}."
    lines = []
    at = text.find(needle)
    while at >= 0:
        end = text.index("\n", at + 1)
        lines.append(text[at:end])
        at = text.find(needle, end)
    return "".join(lines) + "\n"


def _listed_uses(name: str) -> set[str]:
    """The uses the trust lists give ``name``: the words after it on every line it starts."""
    module = name.rpartition(".")[0]
    uses: set[str] = set()
    if module not in _listed_modules():
        return uses
    lines = _module_lines(module)
    needle = "\n" + name
    at = lines.find(needle)
    while at >= 0:
        end = at + len(needle)
        if lines[end] in " \t":  # the whole first word, not a prefix of a longer name
            line = lines[end : lines.index("\n", end)]
            words = line.split("#", 1)[0].split()
            if not words or not _USES.issuperset(words):
                text, starts = _lists_text()
                place = _where(text.find(f"\n{name}{line}\n") + 1, starts)
                raise RuntimeError(f"{place}: bad line {name + line!r}")
            uses.update(words)
        at = lines.find(needle, end)
    return uses


def _where(at: int, starts: tuple[tuple[int, str], ...]) -> str:
    """``modelsafe/_trustlists/FILE:LINE`` of position ``at`` in :func:`_lists_text`."""
    begin, file = max(s for s in starts if s[0] < at)
    text, _ = _lists_text()
    return f"modelsafe/_trustlists/{file}:{text.count(chr(10), begin + 1, at) + 1}"


@functools.lru_cache(maxsize=4096)
def default_uses(name: str) -> frozenset[str]:
    """The uses ``name`` is trusted for by default (empty: not trusted by default)."""
    if not _NAME.fullmatch(name) or never_trustable(name):  # spaces, tabs, newlines: refused
        return frozenset()
    uses = set(_FIXED.get(name, ()))
    module, _, attr = name.rpartition(".")
    if module == "numpy":
        uses |= _numpy_uses(attr)
    uses |= _listed_uses(name)
    return _shared(frozenset(uses))


def default_trusted() -> Mapping[str, frozenset[str]]:
    """Every name trusted without asking, with the uses it is trusted for (for listing:
    a load asks :func:`default_uses` about the names its file holds)."""
    import numpy as np

    candidates = dict.fromkeys(
        [
            *_FIXED,
            *(f"numpy.{n}" for n in sorted({*vars(np), *_scalar_types()})),
            *trust_lists(),
        ]
    )
    table = {}
    for name in candidates:
        uses = default_uses.__wrapped__(name)  # not cached: a listing asks about every name
        if uses:
            table[name] = uses
    return table


@functools.cache
def trust_lists() -> Mapping[str, frozenset[str]]:
    """The names of ``modelsafe/_trustlists/*.txt``, with their uses (read, never
    imported), every line checked: for listing and for the lists' tests."""
    text, starts = _lists_text()
    ends = [begin for begin, _ in starts[1:]] + [len(text) - 1]
    table: dict[str, frozenset[str]] = {}
    for (begin, file), end in zip(starts, ends, strict=True):
        for number, line in enumerate(text[begin + 1 : end].split("\n"), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            name, uses = words[0], set(words[1:])
            if not line.startswith(name) or not _NAME.fullmatch(name) or not uses or uses - _USES:
                raise RuntimeError(f"modelsafe/_trustlists/{file}:{number}: bad line {line!r}")
            _add(table, name, uses)
    return table


def check_trusted(trusted: object) -> frozenset[str]:
    """Validate the ``trusted=`` argument of load: an iterable of qualified names."""
    if trusted is True or trusted is False:
        raise TypeError(
            "trusted=True is not accepted: list the names you trust, e.g. "
            "trusted=['mypkg.MyEstimator'] (modelsafe.untrusted_types(path) shows them)"
        )
    if trusted is None:
        return frozenset()
    if isinstance(trusted, str):
        trusted = [trusted]
    if not isinstance(trusted, Iterable):
        raise TypeError(f"trusted must be a list of qualified names, not {type(trusted).__name__}")
    names = []
    for name in trusted:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"trusted names must look like 'package.module.Name', not {name!r}")
        if never_trustable(name):
            raise ValueError(
                f"refusing to trust {name!r}: it would let a file run code or reach outside "
                f"the process, which modelsafe never allows"
            )
        names.append(name)
    return frozenset(names)


class Policy:
    """Decides, by name and use, whether a file may reference something."""

    def __init__(self, trusted: object = ()) -> None:
        self.extra = check_trusted(trusted)

    def allows(self, name: str, use: str) -> bool:
        return name in self.extra or use in default_uses(name)

    def untrusted(self, needs: Mapping[str, set[str]]) -> list[str]:
        return sorted(n for n, uses in needs.items() if not all(self.allows(n, u) for u in uses))
