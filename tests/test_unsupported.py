"""Values that cannot be stored securely fail at save time, saying where and what to do."""

from __future__ import annotations

import collections
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelsafe

from . import sample_types as S


def _local_function() -> Any:
    def predict(x: Any) -> Any:
        return x

    return predict


def _local_class() -> type:
    class Local:
        pass

    return Local


def _generator() -> Iterator[int]:
    yield 1


@pytest.fixture
def open_file(tmp_path: Path) -> Iterator[Any]:
    with open(tmp_path / "log.txt", "w") as fh:
        yield fh


# name -> (factory, words the reason must contain)
UNSUPPORTED: dict[str, tuple[Callable[[], Any], str]] = {
    "lambda": (lambda: lambda x: x, "lambda"),
    "local_function": (_local_function, "inside a function"),
    "local_class": (_local_class, "inside a function"),
    "local_class_instance": (lambda: _local_class()(), "inside a function"),
    "lock": (threading.Lock, "lock"),
    "rlock": (threading.RLock, "RLock"),
    "generator": (_generator, "generator"),
    "bound_method": (lambda: S.Plain().__repr__, "method"),
    "memoryview": (lambda: memoryview(b"abc"), "memoryview"),
}


def _save_fails(obj: Any, tmp_path: Path) -> modelsafe.UnsupportedTypeError:
    """save() raises UnsupportedTypeError and writes nothing, not even a temporary file."""
    target = tmp_path / "out" / "m.msafe"
    target.parent.mkdir()
    with pytest.raises(modelsafe.UnsupportedTypeError) as info:
        modelsafe.save(obj, target)
    assert list(target.parent.iterdir()) == []
    return info.value


def _check_advice(err: modelsafe.UnsupportedTypeError) -> None:
    text = str(err)
    assert err.path in text
    assert "importable module" in text
    assert "trusted=" in text


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_unsupported_value_is_refused_with_its_path(tmp_path: Path, name: str) -> None:
    make, words = UNSUPPORTED[name]
    obj = make()
    err = _save_fails({"steps": [("scale", 1.0), ("model", S.Holder(obj))]}, tmp_path)
    assert isinstance(err, TypeError)
    assert err.path == "root['steps'][1][1].func"
    assert words.lower() in err.reason.lower()
    _check_advice(err)
    with pytest.raises(modelsafe.UnsupportedTypeError) as again:
        modelsafe.dumps([obj])
    assert again.value.path == "root[0]"


def test_function_defined_in_this_test_is_refused(tmp_path: Path) -> None:
    def preprocess(x: Any) -> Any:
        return x

    err = _save_fails({"steps": [("prep", S.Holder(preprocess))]}, tmp_path)
    assert err.path == "root['steps'][0][1].func"
    assert "test_function_defined_in_this_test_is_refused.<locals>.preprocess" in err.reason
    _check_advice(err)


def test_open_file_is_refused(tmp_path: Path, open_file: Any) -> None:
    err = _save_fails({"log": S.Holder(open_file)}, tmp_path)
    assert err.path == "root['log'].func"
    assert "TextIOWrapper" in err.reason
    _check_advice(err)


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        (lambda x: x, "root"),
        ((1, lambda x: x), "root[1]"),
        ({1: [0, lambda x: x]}, "root[1][1]"),
        ({"a": {"b": lambda x: x}}, "root['a']['b']"),
        (collections.OrderedDict(k=lambda x: x), "root['k']"),
        (np.array([0, lambda x: x], dtype=object), "root[1]"),
        (S.Plain(a=S.Plain(b=lambda x: x)), "root.a.b"),
        (S.MyList([0, lambda x: x]), "root[1]"),
        (S.MyDict(k=lambda x: x), "root['k']"),
        (S.Node(1, S.Node(2, [lambda x: x])), "root.next.next[0]"),
    ],
    ids=lambda x: x if isinstance(x, str) else type(x).__name__,
)
def test_path_names_the_place(obj: Any, path: str) -> None:
    with pytest.raises(modelsafe.UnsupportedTypeError) as info:
        modelsafe.dumps(obj)
    assert info.value.path == path


def test_path_through_slots_names_the_attribute() -> None:
    with pytest.raises(modelsafe.UnsupportedTypeError) as info:
        modelsafe.dumps({"m": S.Slotted(a=1, b=lambda x: x)})
    assert info.value.path == "root['m'].b"


def test_lambda_default_factory_is_refused() -> None:
    with pytest.raises(modelsafe.UnsupportedTypeError) as info:
        modelsafe.dumps({"counts": collections.defaultdict(lambda: 0)})
    assert info.value.path.startswith("root['counts']")
    _check_advice(info.value)


def test_structured_dtype_with_titles_is_refused() -> None:
    dtype = np.dtype([(("a title", "a"), "<i4")])
    for obj in (dtype, np.zeros(2, dtype=dtype)):
        with pytest.raises(modelsafe.UnsupportedTypeError, match="titles") as info:
            modelsafe.dumps({"x": [obj]})
        assert info.value.path == "root['x'][0]"


def test_existing_file_is_kept_when_save_fails(tmp_path: Path) -> None:
    path = modelsafe.save({"v": 1}, tmp_path / "m.msafe")
    before = path.read_bytes()
    with pytest.raises(modelsafe.UnsupportedTypeError):
        modelsafe.save({"v": lambda: 2}, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.msafe"]


MAIN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import modelsafe

    class Model:
        pass

    def score(y):
        return y

    results = {}
    for name, obj in [("class_instance", Model()), ("class", Model), ("function", score)]:
        try:
            modelsafe.save({"steps": [("m", obj)]}, sys.argv[1])
            results[name] = "saved"
        except modelsafe.UnsupportedTypeError as exc:
            results[name] = {"path": exc.path, "text": str(exc)}
    print(json.dumps(results))
    """
)


def test_definitions_in_main_are_refused(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(MAIN_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "m.msafe")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    results = json.loads(out.stdout)
    assert set(results) == {"class_instance", "class", "function"}
    for name, res in results.items():
        assert res != "saved", name
        assert res["path"] == "root['steps'][0][1]", name
        assert "__main__" in res["text"], name
        assert "importable module" in res["text"] and "trusted=" in res["text"], name
    assert not (tmp_path / "m.msafe").exists()


# -- nesting deeper than the limit --------------------------------------------------------------

DEEP = 10_000  # far past both the format's limit (200) and Python's recursion limit


def _deep(wrap: Callable[[Any], Any]) -> Any:
    x: Any = 0
    for _ in range(DEEP):
        x = wrap(x)
    return x


@pytest.mark.parametrize(
    "wrap",
    [
        lambda x: [x],
        lambda x: (x,),
        lambda x: {"k": x},
        lambda x: {1: x},
        lambda x: S.Node(1, x),
        lambda x: S.Point(x, 0),
        lambda x: S.WithState(x),
        lambda x: slice(None, x),
    ],
    ids=[
        "list",
        "tuple",
        "str_key_dict",
        "int_key_dict",
        "object",
        "namedtuple",
        "getstate",
        "slice",
    ],
)
def test_too_deep_is_unsupported_not_recursion_error(wrap: Callable[[Any], Any]) -> None:
    obj = _deep(wrap)
    with pytest.raises(modelsafe.UnsupportedTypeError) as info:
        modelsafe.dumps(obj)
    assert info.value.path.startswith("root")
    assert "deep" in str(info.value)


@pytest.mark.parametrize(
    "value",
    [io.BytesIO(b"x"), os.stat_result((0,) * 10)],
    ids=["io.BytesIO", "os.stat_result"],
)
def test_never_trustable_values_are_refused_at_save(value: object) -> None:
    """A value whose type can never be trusted would save but never load: refuse it now."""
    with pytest.raises(modelsafe.UnsupportedTypeError) as info:
        modelsafe.dumps({"x": [value]})
    assert info.value.path == "root['x'][0]"
    assert "no modelsafe file may hold it" in str(info.value)
