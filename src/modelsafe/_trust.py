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


@functools.cache
def default_trusted() -> Mapping[str, frozenset[str]]:
    """Every name trusted without asking, with the uses it is trusted for."""
    import numpy as np

    table: dict[str, frozenset[str]] = {}

    def add(name: str, *uses: str) -> None:
        _add(table, name, uses)

    for n in _BUILTIN_NODES:
        add(f"builtins.{n}", NODE)
    for n in _BUILTIN_VALUES:
        add(f"builtins.{n}", VALUE)
    for n in _STDLIB_NODES:
        add(n, NODE)
    add("numpy.ndarray", NODE, VALUE)
    add("numpy.dtype", NODE, VALUE)
    for t in set(np.sctypeDict.values()):
        add(f"numpy.{t.__name__}", NODE, VALUE)
    # vars(), not getattr(): numpy imports some submodules lazily on attribute access.
    namespace = vars(np)
    for n, v in namespace.items():
        if isinstance(v, np.ufunc):
            add(f"numpy.{n}", VALUE)
    for n in _NUMPY_FUNCTIONS:
        if callable(namespace.get(n)):
            add(f"numpy.{n}", VALUE)
    add("numpy.ma.MaskedArray", NODE)
    add("numpy.matrix", NODE)
    add("numpy.random.RandomState", NODE)
    add("numpy.random.Generator", NODE)
    for n in _BITGENS:
        add(f"numpy.random.{n}", NODE)
    for name, uses in trust_lists().items():
        add(name, *uses)
    return {k: v for k, v in table.items() if not never_trustable(k)}


# Every process that loads a file builds these tables; with a frozenset per name they held
# ~360 KiB. Names share their few distinct sets of uses instead (8 in the default set).
_USE_SETS: dict[frozenset[str], frozenset[str]] = {}


def _add(table: dict[str, frozenset[str]], name: str, uses: Iterable[str]) -> None:
    """Add ``uses`` to ``name``'s entry, as one of the shared frozensets."""
    merged = table.get(name, frozenset()).union(uses)
    table[name] = _USE_SETS.setdefault(merged, merged)


_USES = frozenset({NODE, VALUE, NEW, CALL})
# Read as plain files (package data): importlib.resources would import modules on first use.
LISTS_DIR = Path(__file__).with_name("_trustlists")


@functools.cache
def trust_lists() -> Mapping[str, frozenset[str]]:
    """The names of ``modelsafe/_trustlists/*.txt``, with their uses (read, never imported)."""
    table: dict[str, frozenset[str]] = {}
    for entry in sorted(LISTS_DIR.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".txt"):
            continue
        for number, line in enumerate(entry.read_text("utf-8").splitlines(), 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            name, uses = words[0], set(words[1:])
            if not _NAME.fullmatch(name) or not uses or uses - _USES:
                raise RuntimeError(
                    f"modelsafe/_trustlists/{entry.name}:{number}: bad line {line!r}"
                )
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
        self.default = default_trusted()

    def allows(self, name: str, use: str) -> bool:
        if name in self.extra:
            return True
        return use in self.default.get(name, ())

    def untrusted(self, needs: Mapping[str, set[str]]) -> list[str]:
        return sorted(n for n, uses in needs.items() if not all(self.allows(n, u) for u in uses))
