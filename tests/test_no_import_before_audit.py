"""Nothing named by a file is imported before the audit passes.

With ``builtins.__import__`` and ``importlib.import_module`` replaced by hooks
that record every request and refuse any module not already loaded, loading
a file that names an untrusted class still ends in ``UntrustedTypesError``,
and the hooks were never asked for that class's module. A positive control
shows the same hooks let a trusted file load, so the test is not vacuous.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelsafe

from ._crafting import craft, deep_equal

REPO = Path(__file__).resolve().parent.parent
VICTIM = "tests._victim_module"  # importing it writes $MODELSAFE_TEST_VICTIM_MARKER
# modelsafe and its declared dependencies: loading may use these, nothing else.
PREIMPORTED = (
    "modelsafe",
    "modelsafe._handlers.numpy",
    "modelsafe._handlers.stdlib",
    "numpy",
    "blake3",
    "zstandard",
    "lz4.frame",
)


class Blocked(ImportError):
    pass


def _absolute(name: str, globals_: dict[str, Any] | None, level: int) -> str:
    """The absolute module name of an ``import`` statement (importlib's rule)."""
    if level == 0:
        return name
    g = globals_ or {}
    package = g.get("__package__") or g.get("__name__", "").rpartition(".")[0]
    base = package.rsplit(".", level - 1)[0]
    return f"{base}.{name}" if name else base


def _refuse_unless_loaded(full: str, fromlist: Any) -> None:
    if full not in sys.modules:
        raise Blocked(f"import of {full!r} blocked by the test")
    module = sys.modules[full]
    for item in fromlist or ():
        if item != "*" and not hasattr(module, item) and f"{full}.{item}" not in sys.modules:
            raise Blocked(f"import of {full}.{item!r} blocked by the test")


@contextlib.contextmanager
def guarded_imports(*, warm: bool = True) -> Iterator[list[str]]:
    """Record every import request; refuse those of modules not yet loaded.

    ``warm`` first reads one trusted file, so that whatever modelsafe imports once
    per process (whether or not it should) is loaded before the guard goes up;
    :func:`test_first_load_in_a_fresh_process_imports_nothing_new` runs cold.
    """
    for name in PREIMPORTED:
        importlib.import_module(name)
    if warm:
        modelsafe.loads(modelsafe.dumps([np.arange(3), (1,)]))
    asked: list[str] = []
    real_import = builtins.__import__

    def hook(
        name: str,
        globals: dict[str, Any] | None = None,
        locals: Any = None,
        fromlist: Any = (),
        level: int = 0,
    ) -> Any:
        full = _absolute(name, globals, level)
        asked.append(full)
        _refuse_unless_loaded(full, fromlist)
        return real_import(name, globals, locals, fromlist, level)

    def import_module(name: str, package: str | None = None) -> Any:
        full = importlib.util.resolve_name(name, package) if name.startswith(".") else name
        asked.append(full)
        _refuse_unless_loaded(full, ())
        return sys.modules[full]

    saved = builtins.__import__, importlib.import_module
    builtins.__import__, importlib.import_module = hook, import_module
    try:
        yield asked
    finally:
        builtins.__import__, importlib.import_module = saved


def _forget_victim() -> None:
    """Undo an import of the victim module, so each test starts without it."""
    import tests

    sys.modules.pop(VICTIM, None)
    if hasattr(tests, "_victim_module"):
        delattr(tests, "_victim_module")


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The file the victim module writes if it is ever imported."""
    path = tmp_path / "VICTIM_WAS_IMPORTED"
    monkeypatch.setenv("MODELSAFE_TEST_VICTIM_MARKER", str(path))
    _forget_victim()
    yield path
    _forget_victim()


_WRITER = """
import sys
import numpy as np
import modelsafe
from tests._victim_module import Payload, make

out = sys.argv[1]
modelsafe.save({"w": np.arange(10.0), "payload": Payload(3)}, f"{out}/instance.msafe")
modelsafe.save({"w": np.zeros(5000), "p": [Payload(1)]}, f"{out}/compressed.msafe",
               compress="zstd")
modelsafe.save({"factory": make}, f"{out}/function.msafe")
modelsafe.save([1, Payload], f"{out}/class.msafe")
"""


@pytest.fixture(scope="module")
def untrusted_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files naming the victim module: written by modelsafe itself (in a child that may
    import it) and crafted by hand."""
    out = tmp_path_factory.mktemp("untrusted")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("MODELSAFE_TEST_VICTIM_MARKER", None)
    subprocess.run(
        [sys.executable, "-c", _WRITER, str(out)], cwd=REPO, env=env, check=True, timeout=120
    )
    files = {p.stem: p for p in out.glob("*.msafe")}
    crafted = {
        "crafted call": {"$": "call", "module": VICTIM, "name": "make", "args": [1]},
        "crafted obj in a tuple": {
            "$": "tuple",
            "v": [{"$": "obj", "module": VICTIM, "name": "Payload", "state": {"value": 2}}],
        },
        "crafted global of a submodule": {"$": "global", "module": f"{VICTIM}.sub", "name": "X"},
    }
    for name, root in crafted.items():
        files[name] = out / f"{name}.msafe"
        files[name].write_bytes(craft(root))
    return files


FILES = [
    "instance",
    "compressed",
    "function",
    "class",
    "crafted call",
    "crafted obj in a tuple",
    "crafted global of a submodule",
]
LOADS: dict[str, Callable[[Path, bytes], Any]] = {
    "load": lambda path, blob: modelsafe.load(path),
    "load(mmap=False)": lambda path, blob: modelsafe.load(path, mmap=False),
    "loads": lambda path, blob: modelsafe.loads(blob),
    "load, another name trusted": lambda path, blob: modelsafe.load(
        path, trusted=[f"{VICTIM}.Other"]
    ),
}


@pytest.mark.parametrize("entry", list(LOADS))
@pytest.mark.parametrize("name", FILES)
def test_untrusted_file_is_refused_without_importing_its_module(
    name: str, entry: str, untrusted_files: dict[str, Path], marker: Path
) -> None:
    path = untrusted_files[name]
    blob = path.read_bytes()
    with guarded_imports() as asked:
        try:
            LOADS[entry](path, blob)
        except BaseException as exc:
            caught: BaseException | None = exc
        else:
            caught = None
    assert isinstance(caught, modelsafe.UntrustedTypesError), repr(caught)
    assert caught.types and all(t.startswith(VICTIM) for t in caught.types)
    assert not [m for m in asked if m.startswith(VICTIM)], f"asked to import: {asked}"
    assert VICTIM not in sys.modules
    assert not marker.exists()


@pytest.mark.parametrize("name", FILES)
def test_untrusted_types_and_inspect_import_nothing(
    name: str, untrusted_files: dict[str, Path], marker: Path
) -> None:
    path = untrusted_files[name]
    blob = path.read_bytes()
    with guarded_imports() as asked:
        listed = [modelsafe.untrusted_types(path), modelsafe.untrusted_types(blob)]
        listed += [modelsafe.inspect(path).untrusted, modelsafe.inspect(blob).untrusted]
    for names in listed:
        assert names and all(t.startswith(VICTIM) for t in names), names
    assert not [m for m in asked if m.startswith(VICTIM)], f"asked to import: {asked}"
    assert VICTIM not in sys.modules
    assert not marker.exists()


def test_the_guard_blocks_imports(marker: Path) -> None:
    """Control: inside the guard, importing the victim really is refused."""
    with guarded_imports() as asked:
        with pytest.raises(ImportError):
            importlib.import_module(VICTIM)
        with pytest.raises(ImportError):
            __import__(VICTIM)
        with pytest.raises(ImportError):
            exec(f"from tests import {VICTIM.rpartition('.')[2]}")
    assert asked.count(VICTIM) >= 2
    assert not marker.exists()


def test_the_untrusted_files_load_once_trusted(
    untrusted_files: dict[str, Path], marker: Path
) -> None:
    """Control: the refusals above are about trust, not about broken files."""
    trusted = [f"{VICTIM}.Payload", f"{VICTIM}.make"]
    got = modelsafe.load(untrusted_files["instance"], trusted=trusted)
    assert got["payload"].value == 3
    assert modelsafe.loads(untrusted_files["crafted call"].read_bytes(), trusted=trusted).value == 1
    assert marker.exists()  # loading a trusted file does import the module, after the audit


def trusted_sample() -> dict[str, Any]:
    import collections
    import datetime

    rng = np.random.RandomState(0)
    return {
        "big": np.arange(100_000, dtype=np.float64),
        "small": np.arange(6, dtype=np.int16).reshape(2, 3),
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "structured": np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")]),
        "objects": np.array([1, "two", None], dtype=object),
        "scalar": np.float32(2.5),
        "dtype": np.dtype("<M8[s]"),
        "rng": rng,
        "funcs": [np.log1p, len, np.add],
        "builtins": (1, 2.5, None, True, "s", b"b" * 300, bytearray(b"x"), 1 + 2j, 2**80),
        "containers": [{1, 2}, frozenset({"a"}), {(1, 2): "tuple key"}, range(3), slice(1, 5)],
        "floats": [float("nan"), float("inf")],
        "packed": list(range(100)) + [0.5] * 70,
        "stdlib": [
            collections.OrderedDict(a=1),
            collections.defaultdict(list, b=[2]),
            datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        ],
    }


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.random.RandomState):
        return isinstance(b, np.random.RandomState) and a.randint(1 << 30) == b.randint(1 << 30)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return deep_equal(a, b)


@pytest.mark.parametrize("compress", [None, "zstd", "lz4"])
def test_trusted_file_loads_under_the_same_guard(compress: str | None, tmp_path: Path) -> None:
    """Positive control: the guard does not stop a file of trusted names from loading."""
    obj = trusted_sample()
    path = modelsafe.save(obj, tmp_path / "trusted.msafe", compress=compress, fsync=False)
    blob = path.read_bytes()
    mmaps: list[Any] = [None, False] + (["r", "c"] if compress is None else [])
    with guarded_imports() as asked:
        results = [modelsafe.loads(blob)] + [modelsafe.load(path, mmap=m) for m in mmaps]
        modelsafe.untrusted_types(path)
        modelsafe.inspect(path)
    for got in results:
        assert _same(got, trusted_sample())
    assert asked, "the guard saw no import at all: is it installed?"


_COLD = """
import json, sys
from tests.test_no_import_before_audit import guarded_imports, trusted_sample, _same
import modelsafe

blob = modelsafe.dumps(trusted_sample())
blocked, got = [], None
with guarded_imports(warm=False) as asked:
    for entry in (modelsafe.untrusted_types, modelsafe.inspect, modelsafe.loads):
        try:
            got = entry(blob)
        except ImportError as exc:
            blocked.append(f"{entry.__name__}: {exc}")
print(json.dumps({"blocked": blocked, "same": got is not None and _same(got, trusted_sample())}))
"""


def test_first_load_in_a_fresh_process_imports_nothing_new() -> None:
    """The same positive control, cold: the first load in a process may import nothing
    beyond modelsafe and its dependencies (here numpy, blake3, zstandard, lz4)."""
    proc = subprocess.run(
        [sys.executable, "-c", _COLD],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not out["blocked"], "reading a trusted file imported new modules: " + "; ".join(
        out["blocked"]
    )
    assert out["same"]


def test_import_modelsafe_stays_light() -> None:
    """``import modelsafe`` (and loading a numpy file) must not import the big libraries."""
    script = """
import json, sys
import numpy as np
import modelsafe
after_import = sorted(sys.modules)
modelsafe.loads(modelsafe.dumps({"w": np.arange(3.0), "t": (1, {2})}))
print(json.dumps([after_import, sorted(sys.modules)]))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    heavy = ("scipy", "pandas", "sklearn", "torch", "cryptography")  # signing: only when asked
    for when, modules in zip(("import", "a load"), json.loads(proc.stdout), strict=True):
        found = sorted(m for m in modules if m.split(".")[0] in heavy)
        assert not found, f"{when} of modelsafe imported {found[:10]}"
