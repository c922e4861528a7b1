"""One small adapter per tool: how it saves, how it loads, what it imports.

Every adapter imports its library lazily, so a child process measures the memory
of exactly one tool, and a missing library only removes its own rows.
"""

from __future__ import annotations

import importlib
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Saver = Callable[[Any, str], None]
Loader = Callable[[str], Any]


@dataclass(frozen=True)
class Tool:
    """A row of the results table."""

    name: str
    suffix: str
    imports: tuple[str, ...]
    save: Saver
    load: Loader
    note: str


def _pickle_save(obj: Any, path: str) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=5)


def _pickle_save_fsync(obj: Any, path: str) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=5)
        f.flush()
        os.fsync(f.fileno())


def _pickle_load(path: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def _joblib_save(obj: Any, path: str) -> None:
    import joblib

    joblib.dump(obj, path)


def _joblib_load(path: str) -> Any:
    import joblib

    return joblib.load(path)


def _joblib_load_mmap(path: str) -> Any:
    import joblib

    return joblib.load(path, mmap_mode="r")


def _cloudpickle_save(obj: Any, path: str) -> None:
    import cloudpickle

    with open(path, "wb") as f:
        cloudpickle.dump(obj, f, protocol=5)


def _cloudpickle_load(path: str) -> Any:
    import cloudpickle

    with open(path, "rb") as f:
        return cloudpickle.load(f)  # the same function as pickle.load


def _skops_save(obj: Any, path: str) -> None:
    import skops.io

    skops.io.dump(obj, path)


def _skops_load(path: str) -> Any:
    import skops.io

    return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))


def _modelsafe() -> Any:
    return importlib.import_module("modelsafe")


def _ms_save(**kwargs: Any) -> Saver:
    def save(obj: Any, path: str) -> None:
        _modelsafe().save(obj, path, **kwargs)

    return save


def _ms_load(**kwargs: Any) -> Loader:
    def load(path: str) -> Any:
        return _modelsafe().load(path, **kwargs)

    return load


_MS = ("modelsafe",)

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("pickle", ".pkl", ("pickle",), _pickle_save, _pickle_load, "protocol 5, open file"),
        Tool(
            "pickle+fsync",
            ".pkl",
            ("pickle",),
            _pickle_save_fsync,
            _pickle_load,
            "flush + os.fsync before close (durable, like modelsafe's default save)",
        ),
        Tool("joblib", ".joblib", ("joblib",), _joblib_save, _joblib_load, "no compression"),
        Tool(
            "joblib-mmap",
            ".joblib",
            ("joblib",),
            _joblib_save,
            _joblib_load_mmap,
            'load(mmap_mode="r")',
        ),
        Tool(
            "skops",
            ".skops",
            ("skops.io",),
            _skops_save,
            _skops_load,
            "load(trusted=get_untrusted_types(file=...))",
        ),
        Tool(
            "cloudpickle",
            ".pkl",
            ("cloudpickle",),
            _cloudpickle_save,
            _cloudpickle_load,
            "protocol 5; classes of importable modules are pickled by reference, as pickle does",
        ),
        Tool(
            "modelsafe",
            ".msafe",
            _MS,
            _ms_save(),
            _ms_load(),
            "defaults: fsync=True; copy-on-write map, BLAKE3 verified",
        ),
        Tool(
            "modelsafe-mmap",
            ".msafe",
            _MS,
            _ms_save(),
            _ms_load(mmap="r", verify=True),
            'load(mmap="r", verify=True)',
        ),
        Tool(
            "modelsafe-mmap-noverify",
            ".msafe",
            _MS,
            _ms_save(),
            _ms_load(mmap="r", verify=False),
            'load(mmap="r", verify=False)',
        ),
        Tool(
            "modelsafe-nofsync",
            ".msafe",
            _MS,
            _ms_save(fsync=False),
            _ms_load(),
            "save(fsync=False)",
        ),
        Tool(
            "modelsafe-zstd",
            ".msafe",
            _MS,
            _ms_save(compress="zstd"),
            _ms_load(),
            'save(compress="zstd")',
        ),
    )
}

# The rows of each suite, in table order. The numpy suite predates cloudpickle and
# keeps its rows; the zoo compares the tools a user picks between for a fitted model.
NUMPY_TOOLS = tuple(name for name in TOOLS if name != "cloudpickle")
MODEL_TOOLS = (
    "pickle",
    "joblib",
    "joblib-mmap",
    "skops",
    "cloudpickle",
    "modelsafe",
    "modelsafe-mmap",
)


def is_modelsafe(tool: Tool) -> bool:
    """Whether the row needs the modelsafe library itself."""
    return "modelsafe" in tool.imports


def load_code(tool: Tool, path: str) -> tuple[str, ...]:
    """The modules of the tool's own code that loading ``path`` runs, when importing the
    tool leaves them to the first load.

    ``import joblib`` or ``import skops.io`` brings in all of that tool's code, and pickle's
    is part of the interpreter; ``import modelsafe`` stays light and imports its digest
    library and the handler module of each library a file uses on the first load. The
    memory child imports these before its baseline, as it does the other tools' code, so
    that peak RSS compares models rather than libraries (the report gives their cost).
    The libraries are those of the types the file's header lists: a LightGBM classifier
    holds a scikit-learn ``LabelEncoder`` and ``collections`` dicts too.
    """
    if not is_modelsafe(tool) or not os.path.exists(path):
        return ()
    from modelsafe._container.reader import open_container
    from modelsafe._handlers import _BY_PACKAGE

    packages = ("numpy", *(name.split(".")[0] for name in open_container(path).header["types"]))
    handlers = dict.fromkeys(h for h in map(_BY_PACKAGE.get, packages) if h)
    return ("blake3", *handlers)
