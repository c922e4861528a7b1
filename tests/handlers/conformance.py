"""The conformance suite every handler's tests inherit (STYLE.md, "One conformance suite").

A handler's test module defines a subclass of :class:`HandlerConformance` with its
``samples`` (name -> zero-argument factory) and the top-level modules of its library
(``library``); it may override :meth:`HandlerConformance.assert_equal`. Each sample is
then checked for: round trips through bytes and through a file in every mmap mode,
default trust, identical bytes on two saves, shared references kept, an inspectable
header, and a load that imports nothing from the library before the audit has passed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

import modelsafe

from ..compare import assert_same, has_identity

REPO = Path(__file__).resolve().parents[2]


class HandlerConformance:
    """Inherit, set ``samples`` and ``library``; every test here runs on every sample."""

    samples: ClassVar[dict[str, Callable[[], Any]]] = {}
    library: ClassVar[tuple[str, ...]] = ()  # top-level modules; () for modelsafe's own deps

    def assert_equal(self, expected: Any, got: Any) -> None:
        """Equal values, types and sharing; override for types with their own equality."""
        assert_same(expected, got)

    # -- round trips ----------------------------------------------------------------
    def test_round_trip_bytes(self, sample: str) -> None:
        x = self.samples[sample]()
        self.assert_equal(x, modelsafe.loads(modelsafe.dumps(x)))

    @pytest.mark.parametrize("mmap", [None, "r", False], ids=["cow", "r", "read"])
    def test_round_trip_file(self, sample: str, mmap: Any, tmp_path: Path) -> None:
        x = self.samples[sample]()
        path = tmp_path / "x.msafe"
        modelsafe.save(x, path, fsync=False)
        self.assert_equal(x, modelsafe.load(path, mmap=mmap))

    def test_round_trip_compressed(self, sample: str) -> None:
        x = self.samples[sample]()
        self.assert_equal(x, modelsafe.loads(modelsafe.dumps(x, compress="zstd")))

    # -- trust, determinism, sharing, inspection ---------------------------------------
    def test_trusted_by_default(self, sample: str) -> None:
        assert modelsafe.untrusted_types(modelsafe.dumps(self.samples[sample]())) == []

    @pytest.fixture
    def pinned_clock(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The only varying bytes are the metadata timestamp: pin it."""
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")

    @pytest.mark.usefixtures("pinned_clock")
    def test_two_saves_give_the_same_bytes(self, sample: str) -> None:
        assert modelsafe.dumps(self.samples[sample]()) == modelsafe.dumps(self.samples[sample]())

    @pytest.mark.usefixtures("pinned_clock")
    def test_resaving_the_loaded_object_gives_the_same_bytes(self, sample: str) -> None:
        data = modelsafe.dumps(self.samples[sample]())
        assert modelsafe.dumps(modelsafe.loads(data)) == data

    def test_shared_reference_stays_shared(self, sample: str) -> None:
        x = self.samples[sample]()
        a, b = modelsafe.loads(modelsafe.dumps([x, x]))
        if has_identity(x):
            assert a is b
        self.assert_equal(x, a)
        self.assert_equal(x, b)

    def test_inspect_reads_the_header(self, sample: str) -> None:
        info = modelsafe.inspect(modelsafe.dumps(self.samples[sample]()))
        assert info.rows and info.untrusted == []

    # -- nothing imported before the audit -----------------------------------------------
    def test_untrusted_file_imports_nothing_of_the_library(
        self, sample: str, tmp_path: Path
    ) -> None:
        """With the library's imports made to fail, a file that also holds an untrusted
        class still ends in UntrustedTypesError: the audit ran before any import."""
        if not self.library:
            pytest.skip("the library is a dependency of modelsafe, imported with it")
        path = tmp_path / "x.msafe"
        from .._victim_module import Payload

        modelsafe.save([self.samples[sample](), Payload(1)], path, fsync=False)
        script = textwrap.dedent(
            f"""
            import importlib.abc, json, sys
            BLOCKED = {list(self.library)!r}

            class Block(importlib.abc.MetaPathFinder):
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] in BLOCKED or name.startswith("tests"):
                        raise ImportError("blocked by the test: " + name)
                    return None

            sys.meta_path.insert(0, Block())
            import modelsafe
            try:
                modelsafe.load({str(path)!r})
            except modelsafe.UntrustedTypesError as exc:
                print(json.dumps({{"ok": True, "types": exc.types}}))
            except BaseException as exc:
                print(json.dumps({{"ok": False, "error": type(exc).__name__, "msg": str(exc)}}))
            else:
                print(json.dumps({{"ok": False, "error": "loaded"}}))
            print(json.dumps(sorted(m for m in sys.modules
                                    if m.split(".")[0] in BLOCKED)))
            """
        )
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        verdict, imported = (json.loads(line) for line in proc.stdout.splitlines()[-2:])
        assert verdict == {"ok": True, "types": ["tests._victim_module.Payload"]}, verdict
        assert imported == [], f"imported before the audit: {imported}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``sample`` over the class's samples (hooked up in conftest.py)."""
    cls = metafunc.cls
    if cls is not None and "sample" in metafunc.fixturenames:
        metafunc.parametrize("sample", list(cls.samples))
