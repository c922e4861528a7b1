"""The default trust lists (src/modelsafe/_trustlists/*.txt) are well-formed and safe."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelsafe import _trust


def _lists() -> list[str]:
    return sorted(e.name for e in _trust.LISTS_DIR.iterdir() if e.name.endswith(".txt"))


def test_every_listed_name_is_in_the_default_set() -> None:
    table = _trust.default_trusted()
    for name, uses in _trust.trust_lists().items():
        assert uses <= table[name], name


def test_no_list_names_something_that_can_never_be_trusted() -> None:
    bad = [n for n in _trust.trust_lists() if _trust.never_trustable(n)]
    assert bad == []


@pytest.mark.parametrize("list_name", _lists() or ["(none yet)"])
def test_each_list_parses_with_known_uses(list_name: str) -> None:
    if list_name == "(none yet)":
        pytest.skip("no trust list is installed yet")
    text = (_trust.LISTS_DIR / list_name).read_text("utf-8")
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            assert _trust._NAME.fullmatch(words[0]), line
            assert words[1:] and set(words[1:]) <= {"node", "value", "new", "call"}, line


def test_a_malformed_line_is_an_error_not_a_silent_gap(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A typo in a list must stop modelsafe loudly, not leave a name untrusted unnoticed."""
    (tmp_path / "x.txt").write_text("sklearn.Foo newx\n")
    monkeypatch.setattr(_trust, "LISTS_DIR", tmp_path)
    _trust.trust_lists.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"x.txt:1: bad line"):
            _trust.trust_lists()
    finally:
        monkeypatch.undo()
        _trust.trust_lists.cache_clear()


def _compiled_target(name: str) -> bool:
    """Whether ``name`` resolves to a class or function defined in a compiled extension."""
    import importlib
    import inspect

    module_name, _, attr = name.rpartition(".")
    module = importlib.import_module(module_name)
    target = getattr(module, attr)
    home = importlib.import_module(getattr(target, "__module__", module_name) or module_name)
    path = getattr(home, "__file__", "") or ""
    if inspect.isclass(target) or inspect.isroutine(target):
        return path.endswith((".so", ".pyd"))
    return False


def test_every_compiled_class_trusted_for_new_or_call_is_validated() -> None:
    """Trusting compiled code with state from a file is safe only with a validator: every
    default-trusted name that is created (`new`) or called (`call`) and lives in a compiled
    extension has one, or its handler explains why its state cannot corrupt memory."""
    from modelsafe._handlers import _BY_PACKAGE, _module, validator_for

    unguarded = []
    for name, uses in sorted(_trust.trust_lists().items()):
        if not uses & {"new", "call"} or not _compiled_target(name):
            continue
        if validator_for(name) is not None:
            continue
        handler = _module(_BY_PACKAGE.get(name.split(".", 1)[0], "")) if "." in name else None
        reviewed = getattr(handler, "REVIEWED_SAFE", {}) if handler is not None else {}
        if name not in reviewed:
            unguarded.append(name)
    assert unguarded == []
