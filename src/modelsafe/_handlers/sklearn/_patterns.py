"""Regular expressions from a file: refused when matching can take exponential time.

A text vectorizer keeps its ``token_pattern`` as a string and hands it to ``re`` on
every ``transform``. ``re`` backtracks: a pattern in which one part can match the same
text in more than one way, repeatedly (``(\\w+\\s?)+$``, ``(a|ab)*c``), takes time
exponential in the length of a document it fails on. A file is a few bytes of JSON; the
``transform`` it sets up would never end. So a pattern read from a file is checked
before the vectorizer gets it: :func:`check_pattern` refuses one whose matching can take
exponential time, and backreferences (whose matching is NP-hard).

The check is the classic one for exponential backtracking (exponential degree of
ambiguity): the pattern's position automaton, whose transitions carry how many ways
the pattern derives them, has a state from which two different paths return to it on
the same text. It is computed on ``re``'s own parse of the pattern (the tree ``re``
compiles, after its own simplifications, such as ``(a|b)`` becoming ``[ab]``), and errs
on the side of refusing: lookarounds and anchors count as matching anything, atomic
groups and possessive repeats as ordinary ones, and a bounded repeat of more than four
as an unbounded one. A lookaround's own pattern is checked the same way.

What it does not refuse: patterns of polynomial time, such as ``\\w+x`` on a long word
without an ``x`` (quadratic in its length), which legitimate patterns share with
crafted ones. The documentation says so (docs/handlers/sklearn.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# re's parser and compiler: the parse tree is what re compiles, so the check sees the
# pattern as re runs it. (Present as re._parser / re._compiler since Python 3.11.)
from re import _compiler as _re_compiler  # type: ignore[attr-defined]
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser as _re_parser  # type: ignore[attr-defined]
from typing import Any

# What a part of a pattern gives the automaton: the ways it matches the empty text,
# {first state: ways}, {last state: ways}; ways are counted up to 2.
_Ways = dict[int, int]
_Part = tuple[int, _Ways, _Ways]

MAX_PATTERN = 1000  # characters: sklearn's default is 13; a pattern this long is not a token
MAX_POSITIONS = 256  # characters the pattern matches one at a time, repeats unrolled
MAX_STEPS = 1_000_000  # edges of the pair graph walked before the check gives up
_UNROLL = 4  # a repeat bounded by at most this many copies is unrolled exactly

# Characters each single-character part of a pattern is tried on: ASCII, some characters
# \w, \d and \s treat differently under Unicode, characters with unusual case folding,
# and every character the pattern names (added per pattern).
_SAMPLES = "".join(chr(i) for i in range(128)) + (
    "\x85\xa0\xaa\xb2\xb5\xba\xc0\xdf\xe9\xff\u0130\u0131\u017f\u0300\u03a3\u03c2\u03c3"
    "\u0660\u0966\u1680\u2003\u2028\u2029\u202f\u20ac\u212a\u212b\u3000\u4e2d\ufb00"
    "\uff10\uffff\U0001d7ce\U0001f600"
)
_CHAR_OPS = frozenset({_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN})
_REPEATS = frozenset({_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT})
_EMPTY_OPS = frozenset({_c.AT})
_LOOKAROUNDS = frozenset({_c.ASSERT, _c.ASSERT_NOT})


class PatternError(ValueError):
    """A pattern a file may not hand to ``re``."""


def check_pattern(where: str, pattern: Any) -> None:
    """Raise ``ValueError`` naming ``where`` when ``pattern`` (a ``str`` for ``re``, or None)
    can make matching take exponential time, refers back to a group, or is not a
    pattern ``re`` compiles. The verdict of each pattern is kept (a few hundred)."""
    if pattern is None:  # (a vectorizer given its own tokenizer)
        return
    if type(pattern) is not str:
        raise TypeError(f"{where} must be a str, not {type(pattern).__name__}")
    problem = _verdict(pattern)
    if problem is not None:
        shown = pattern if len(pattern) <= 80 else pattern[:77] + "..."
        raise PatternError(f"{where} = {shown!r} {problem}")


@functools.lru_cache(maxsize=256)
def _verdict(pattern: str) -> str | None:
    """Why ``pattern`` is refused, or None."""
    if len(pattern) > MAX_PATTERN:
        return f"has {len(pattern)} characters, over the {MAX_PATTERN} a token pattern may have"
    try:
        tree = _re_parser.parse(pattern, 0)
        _Automaton(tree.state, _alphabet(tree), list(tree.data), tree.state.flags).check()
    except re.error as exc:
        return f"is not a regular expression re compiles: {exc}"
    except (RecursionError, OverflowError):
        return "nests too deeply to check"
    except PatternError as exc:
        return str(exc)
    return None


class _Automaton:
    """The position automaton of a parsed pattern: one state per single-character part
    (``masks[p]``: which sample characters it matches, as bits), and ``follow[p][q]``:
    in how many ways (1, or 2 for two or more) the pattern lets ``q`` come right after
    ``p``. State 0 is the start."""

    def __init__(self, state: Any, alphabet: str, items: list[Any], flags: int) -> None:
        self.state, self.base, self.alphabet = state, state.flags, alphabet
        self.masks: list[int] = [0]
        self.follow: list[_Ways] = [{}]
        _nullable, first, _last = self._build(items, flags)
        self.follow[0] = dict(first)

    # -- construction (each part of the pattern gives a _Part) -------------------------------

    def _position(self, node: tuple[Any, Any], flags: int) -> int:
        if len(self.masks) > MAX_POSITIONS:
            raise PatternError(
                f"matches over {MAX_POSITIONS} characters one at a time (repeats unrolled): "
                "too large to check"
            )
        self.masks.append(self._mask(node, flags))
        self.follow.append({})
        return len(self.masks) - 1

    def _mask(self, node: tuple[Any, Any], flags: int) -> int:
        """Which sample characters the single-character part ``node`` matches, found by
        compiling it alone with ``re`` under the flags in force where it stands."""
        add, remove = flags & ~self.base, self.base & ~flags
        alone = _re_parser.SubPattern(self.state, [node])
        sub = _re_parser.SubPattern(self.state, [(_c.SUBPATTERN, (None, add, remove, alone))])
        match = _re_compiler.compile(sub, 0).fullmatch
        mask = 0
        for i, ch in enumerate(self.alphabet):
            if match(ch):
                mask |= 1 << i
        return mask

    def _link(self, last: _Ways, first: _Ways) -> None:
        for p, a in last.items():
            row = self.follow[p]
            for q, b in first.items():
                row[q] = min(2, row.get(q, 0) + a * b)

    def _sequence(self, parts: Iterable[_Part]) -> _Part:
        """Parts one after the other: each one's last states are followed by the next
        one's first, and one that can match nothing lets its neighbours through."""
        nullable, first, last = _empty()
        for n2, f2, l2 in parts:
            self._link(last, f2)
            first = _plus(first, _times(f2, nullable))
            last = _plus(l2, _times(last, n2))
            nullable = min(2, nullable * n2)
        return nullable, first, last

    def _build(self, items: list[tuple[Any, Any]], flags: int) -> _Part:
        return self._sequence(self._part(op, av, flags) for op, av in items)

    def _part(self, op: Any, av: Any, flags: int) -> _Part:
        if op in _CHAR_OPS:
            p = self._position((op, av), flags)
            return 0, {p: 1}, {p: 1}
        if op in _EMPTY_OPS:
            return _empty()
        if op in _LOOKAROUNDS:
            _direction, body = av
            _Automaton(self.state, self.alphabet, list(body.data), flags).check()
            return _empty()
        if op is _c.SUBPATTERN:
            _group, add, remove, body = av
            return self._build(list(body.data), (flags | add) & ~remove)
        if op is _c.ATOMIC_GROUP:
            return self._build(list(av.data), flags)
        if op is _c.BRANCH:
            nullable = 0
            first: _Ways = {}
            last: _Ways = {}
            for body in av[1]:
                n2, f2, l2 = self._build(list(body.data), flags)
                nullable = min(2, nullable + n2)
                first, last = _plus(first, f2), _plus(last, l2)
            return nullable, first, last
        if op in _REPEATS:
            return self._repeat(av, flags)
        if op in (_c.GROUPREF, _c.GROUPREF_EXISTS):
            raise PatternError("refers back to a group, whose matching can take exponential time")
        raise PatternError(f"uses {op}, which this check does not know")

    def _repeat(self, av: Any, flags: int) -> _Part:
        low, high, body = av
        items = list(body.data)
        if high == 0:
            return _empty()
        if high <= _UNROLL:  # body{low,high}: low copies, then (body (body ...)?)?
            copies = [self._build(items, flags) for _ in range(low)]
            return self._sequence([*copies, self._optional(items, flags, high - low)])
        # An unbounded (or long) repeat: body+ when it needs a copy, else body*. A copy
        # that matches the empty text does not count as a way of matching (re stops a
        # repeat whose copy matched nothing).
        n2, first, last = self._build(items, flags)
        self._link(last, first)
        return (1 if low == 0 else n2), first, last

    def _optional(self, items: list[tuple[Any, Any]], flags: int, copies: int) -> _Part:
        """(body (body ...)?)? with ``copies`` bodies: one way to match each count."""
        if copies == 0:
            return _empty()
        _n, first, last = self._sequence(
            [self._build(items, flags), self._optional(items, flags, copies - 1)]
        )
        return 1, first, last  # the empty text: no copy (a copy matching it is not a way)

    # -- the check ---------------------------------------------------------------------------

    def check(self) -> None:
        """Refuse when two different paths leave a state and come back to it reading the
        same characters: the pairs of states two paths can be in after the same text form
        a graph, and a strongly connected part of it holding a pair (p, p) together with
        a pair (p, q), p != q, or with a transition two ways make, is such a state."""
        masks, follow = self.masks, self.follow
        index: dict[tuple[int, int], int] = {(0, 0): 0}
        nodes: list[tuple[int, int]] = [(0, 0)]
        edges: list[list[tuple[int, bool]]] = []
        steps = 0
        i = 0
        while i < len(nodes):
            p1, p2 = nodes[i]
            out: list[tuple[int, bool]] = []
            row1, row2 = follow[p1], follow[p2]
            for q1, w1 in row1.items():
                m1 = masks[q1]
                for q2 in row2:
                    steps += 1
                    if not m1 & masks[q2]:
                        continue
                    key = (q1, q2)
                    j = index.get(key)
                    if j is None:
                        j = index[key] = len(nodes)
                        nodes.append(key)
                    # Two ways along one transition: the same pair of states, twice.
                    out.append((j, p1 == p2 and q1 == q2 and w1 > 1))
            if steps > MAX_STEPS:
                raise PatternError("is too complex to check (too many ways to match)")
            edges.append(out)
            i += 1
        component = _components(edges)
        diagonal = {component[k] for k, (a, b) in enumerate(nodes) if a == b}
        for u, out in enumerate(edges):
            cu = component[u]
            if cu not in diagonal:
                continue
            a, b = nodes[u]
            for v, twice in out:
                if component[v] == cu and (twice or a != b):
                    raise PatternError(
                        "can take time exponential in the length of the text it reads: a part "
                        "of it repeats and can match the same text in more than one way "
                        "(a repeat inside a repeat, or alternatives that overlap)"
                    )


def _empty() -> _Part:
    return 1, {}, {}


def _plus(a: _Ways, b: _Ways) -> _Ways:
    if not a:
        return dict(b)
    out = dict(a)
    for k, w in b.items():
        out[k] = min(2, out.get(k, 0) + w)
    return out


def _times(a: _Ways, n: int) -> _Ways:
    if n == 1:
        return a
    if n == 0:
        return {}
    return {k: min(2, w * n) for k, w in a.items()}


def _alphabet(tree: Any) -> str:
    """The sample characters, and every character the pattern names, with its other
    cases and its neighbours (so that ranges which touch are seen to)."""
    named = set()

    def walk(items: Any) -> None:
        for op, av in items:
            if op in (_c.LITERAL, _c.NOT_LITERAL):
                named.add(av)
            elif op is _c.IN:
                for op2, av2 in av:
                    if op2 in (_c.LITERAL, _c.NOT_LITERAL):
                        named.add(av2)
                    elif op2 is _c.RANGE:
                        named.update((av2[0] - 1, av2[0], av2[1], av2[1] + 1))
            elif op is _c.SUBPATTERN:
                walk(av[3].data)
            elif op is _c.ATOMIC_GROUP:
                walk(av.data)
            elif op is _c.BRANCH:
                for body in av[1]:
                    walk(body.data)
            elif op in _REPEATS or op in _LOOKAROUNDS:
                walk(av[-1].data)

    walk(tree.data)
    chars = set(_SAMPLES)
    for code in named:
        if 0 <= code <= 0x10FFFF:
            ch = chr(code)
            chars.add(ch)
            chars.update(c for c in (ch.lower(), ch.upper(), ch.casefold()) if len(c) == 1)
    return "".join(sorted(chars))


def _components(edges: list[list[tuple[int, bool]]]) -> list[int]:
    """Tarjan's strongly connected components of a graph given as out-edge lists,
    without recursion: each node's component number."""
    n = len(edges)
    order = [0] * n  # discovery index + 1 (0: not seen)
    low = [0] * n
    component = [-1] * n
    stack: list[int] = []
    on_stack = [False] * n
    counter = 0
    found = 0
    for root in range(n):
        if order[root]:
            continue
        work = [(root, 0)]
        while work:
            v, k = work.pop()
            if k == 0:
                counter += 1
                order[v] = low[v] = counter
                stack.append(v)
                on_stack[v] = True
            out = edges[v]
            while k < len(out):
                w = out[k][0]
                k += 1
                if not order[w]:
                    work.append((v, k))
                    work.append((w, 0))
                    break
                if on_stack[w]:
                    low[v] = min(low[v], order[w])
            else:
                if low[v] == order[v]:
                    while True:
                        w = stack.pop()
                        on_stack[w] = False
                        component[w] = found
                        if w == v:
                            break
                    found += 1
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[v])
    return component
