"""One small adapter per tool: how it saves, how it loads, what it imports.

Every adapter imports its library lazily, so a child process measures the memory
of exactly one tool, and a missing library only removes its own rows.
"""

from __future__ import annotations

import importlib
import mmap
import os
import pickle
import tempfile
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


class _HashingFile:
    """A file that hashes what is written to it (pickle writes its frames through it)."""

    def __init__(self, fh: Any, hasher: Any) -> None:
        self.fh, self.hasher = fh, hasher

    def write(self, data: Any) -> int:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:  # an array's buffer, written in-band
            view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        self.hasher.update(view)
        return int(self.fh.write(view))


def _digest_path(path: str) -> str:
    return path + ".blake3"


def _blake3(data: Any, size: int) -> Any:
    import blake3

    # Threads from 8 MiB, as modelsafe hashes one large buffer (modelsafe/_container/digest.py).
    return blake3.blake3(data, max_threads=blake3.blake3.AUTO if size >= 1 << 23 else 1)


def _durable_replace(path: str, write: Callable[[Any], None]) -> None:
    """``write`` a temporary file beside ``path``, flush, fsync, rename it over ``path``
    and fsync the directory: the durability of every modelsafe save. Not modelsafe's own
    ``replace_atomic``: a baseline row must not import the library it is compared with."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".bench-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dfd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _pickle_save_checked(obj: Any, path: str) -> None:
    """pickle doing the integrity and durability work of a modelsafe save: BLAKE3 of the
    stream while it is written, kept in ``PATH.blake3``, both files written durably."""
    import blake3

    hasher = blake3.blake3()
    _durable_replace(path, lambda fh: pickle.dump(obj, _HashingFile(fh, hasher), protocol=5))
    digest = hasher.hexdigest().encode()
    _durable_replace(_digest_path(path), lambda fh: fh.write(digest))


def _pickle_load_checked(path: str) -> Any:
    """pickle doing the integrity work of a modelsafe load: the file's BLAKE3 must match
    ``PATH.blake3`` before it is unpickled. A file of 1 MiB or less is read whole and
    hashed; a larger one is hashed through a map, then read (the faster of the two for
    each size, measured on the zoo)."""
    with open(_digest_path(path), "rb") as fh:
        expected = fh.read()
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size <= 1 << 20:
            data = fh.read()
            found = _blake3(data, size).hexdigest().encode()
        else:
            data = None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                found = _blake3(mm, size).hexdigest().encode()
        if found != expected:
            raise ValueError(f"{path}: BLAKE3 digest differs from {_digest_path(path)}")
        return pickle.loads(data) if data is not None else pickle.load(fh)


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
        Tool(
            "pickle+hash+fsync",
            ".pkl",
            ("pickle", "blake3"),
            _pickle_save_checked,
            _pickle_load_checked,
            "pickle doing the integrity and durability work of modelsafe, without its "
            "safety: save hashes the stream with BLAKE3, writes the file and its digest "
            "durably (temporary file, fsync, rename, fsync of the folder); load checks the "
            "digest, then unpickles",
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
# pickle+hash+fsync and keeps its rows; the zoo compares the tools a user picks between
# for a fitted model.
NUMPY_TOOLS = tuple(name for name in TOOLS if name not in ("cloudpickle", "pickle+hash+fsync"))
MODEL_TOOLS = (
    "pickle",
    "joblib",
    "joblib-mmap",
    "skops",
    "cloudpickle",
    "modelsafe",
    "modelsafe-mmap",
    # Not in the targets: the comparisons on the same work (zoo_report.same_work).
    "pickle+hash+fsync",
    "modelsafe-mmap-noverify",
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
