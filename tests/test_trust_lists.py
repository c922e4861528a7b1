"""The default trust lists (src/modelsafe/_trustlists/*.txt) are well-formed and safe."""

from __future__ import annotations

import itertools
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
    _trust._lists_text.cache_clear()
    _trust.trust_lists.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"x.txt:1: bad line"):
            _trust.trust_lists()
    finally:
        monkeypatch.undo()
        _trust._lists_text.cache_clear()
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


def test_a_load_asks_name_by_name_and_gets_the_listed_table() -> None:
    """A load asks ``default_uses`` about the names its file holds (the lists' text is
    searched, not made into a table): every answer matches the full listing, and near
    misses (a prefix, a longer name, a different case) are not trusted."""
    table = _trust.default_trusted()
    assert len(table) > 500
    for name, uses in table.items():
        assert _trust.default_uses(name) == uses, name
    for name in list(table)[::7]:
        for near in (name[:-1], name + "x", name + ".x", name.upper(), name.rpartition(".")[0]):
            if near not in table:
                assert _trust.default_uses(near) == frozenset(), near
    assert _trust.default_uses("numpy.os") == frozenset()  # a module, not a ufunc
    assert _trust.default_uses("numpy.log1p") == {"value"}
    assert _trust.default_uses("numpy.float64") == {"node", "value"}


def _with_lists(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    monkeypatch.setattr(_trust, "LISTS_DIR", directory)
    for cached in (_trust._lists_text, _trust._listed_modules, _trust._module_lines,
                   _trust.default_uses, _trust.trust_lists):  # fmt: skip
        cached.cache_clear()


@pytest.fixture
def own_lists(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    _with_lists(monkeypatch, tmp_path)
    yield tmp_path
    monkeypatch.undo()
    for cached in (_trust._lists_text, _trust._listed_modules, _trust._module_lines,
                   _trust.default_uses, _trust.trust_lists):  # fmt: skip
        cached.cache_clear()


def test_the_name_search_reads_every_line_of_every_list(own_lists: Path) -> None:
    (own_lists / "a.txt").write_text("# comment\npkg.mod.A new  # why\npkg.mod.AB value\n")
    (own_lists / "b.txt").write_text("pkg.mod.A\tcall\n\npkg.mod.C node")  # no final newline
    assert _trust.default_uses("pkg.mod.A") == {"new", "call"}
    assert _trust.default_uses("pkg.mod.AB") == {"value"}
    assert _trust.default_uses("pkg.mod.C") == {"node"}
    assert _trust.default_uses("pkg.mod") == frozenset()
    assert _trust.default_uses("mod.A") == frozenset()


def test_the_name_search_refuses_a_malformed_line_with_its_place(own_lists: Path) -> None:
    (own_lists / "a.txt").write_text("pkg.mod.A new\n")
    (own_lists / "b.txt").write_text("# two\n# comments\npkg.mod.B newx\n")
    assert _trust.default_uses("pkg.mod.A") == {"new"}
    with pytest.raises(RuntimeError, match=r"_trustlists/b.txt:3: bad line 'pkg.mod.B newx'"):
        _trust.default_uses("pkg.mod.B")


def test_a_list_cannot_trust_what_is_never_trustable(own_lists: Path) -> None:
    (own_lists / "a.txt").write_text("os.system call value\nbuiltins.eval call\n")
    assert _trust.default_uses("os.system") == frozenset()
    assert _trust.default_uses("builtins.eval") == frozenset()
    assert "os.system" not in _trust.default_trusted()


def test_a_name_spanning_lines_of_a_list_is_not_trusted() -> None:
    """The search looks for a newline and the name: a name from a crafted file that
    holds a newline must not match one line's end and the next line's start."""
    text, _ = _trust._lists_text()
    lines = text.split("\n")
    pairs = [(a, b) for a, b in itertools.pairwise(lines) if a[:1].isalpha() and b[:1].isalpha()]
    a, b = pairs[0]
    spanning = f"{a}\n{b.split()[0]}"  # "pkg.A new\npkg.B": a search would find it whole
    assert f"\n{spanning} " in text
    assert _trust.default_uses(spanning) == frozenset()
    assert _trust.default_uses(b.split()[0]) != frozenset()
    assert _trust.default_uses(a.split()[0] + " ") == frozenset()


def test_a_name_of_a_module_no_list_names_is_answered_without_a_search(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lists' modules are known: a crafted file naming 100,000 types of modules of
    its own is refused without 100,000 searches of the lists' text."""
    modules = _trust._listed_modules()
    assert {"sklearn.ensemble._forest", "sklearn.tree._tree", "xgboost.core"} <= modules
    assert "pkg.m0" not in modules and "sklearn" not in modules
    searched: list[str] = []
    real = _trust._module_lines.__wrapped__

    def spy(module: str) -> str:
        searched.append(module)
        return real(module)

    monkeypatch.setattr(_trust, "_module_lines", spy)
    _trust.default_uses.cache_clear()
    try:
        names = [f"pkg.m{i}.C" for i in range(1000)] + ["sklearn.nope.Thing"]
        assert all(_trust.default_uses(n) == frozenset() for n in names)
        assert searched == []
        assert _trust.default_uses("sklearn.ensemble._forest.RandomForestClassifier") == {"new"}
        assert searched == ["sklearn.ensemble._forest"]
    finally:
        _trust.default_uses.cache_clear()


def test_a_name_with_spaces_or_tabs_in_it_is_not_trusted() -> None:
    """Names come from the file: one of a listed module whose last part holds a space or
    a tab must not match the start of a line and take the uses after it."""
    assert _trust.default_uses("sklearn.tree._tree.Tree") == {"call", "node"}
    for crafted in (
        "sklearn.tree._tree.Tree call",
        "sklearn.tree._tree.Tree\tcall",
        "sklearn.tree._tree.Tree ",
        "sklearn.tree._tree.Tree\n",
    ):
        assert _trust.default_uses(crafted) == frozenset(), repr(crafted)


def test_the_listing_reads_every_list_with_its_own_line_numbers(own_lists: Path) -> None:
    """The listing reads the lists' joined text: a bad line is named in its own file, at
    its own line, whatever the files before it hold."""
    (own_lists / "a.txt").write_text("pkg.a.A new\n\n# note\n")
    (own_lists / "b.txt").write_text("pkg.b.B value\npkg.a.A call  # again\n\n")
    (own_lists / "c.txt").write_text("")
    assert _trust.trust_lists() == {"pkg.a.A": {"new", "call"}, "pkg.b.B": {"value"}}
    (own_lists / "c.txt").write_text("# one\npkg.c.C\n")
    _trust._lists_text.cache_clear()
    _trust.trust_lists.cache_clear()
    with pytest.raises(RuntimeError, match=r"_trustlists/c.txt:2: bad line 'pkg.c.C'"):
        _trust.trust_lists()
