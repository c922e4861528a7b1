"""Everything a LightGBM model text must satisfy before LightGBM parses it.

LightGBM's loader (``GBDT::LoadModelFromString``, ``Tree::Tree(const char*)``)
jumps to tree offsets taken from the file, reads ``key=value`` lines by
scanning for ``=`` without an end, sizes arrays from counts in the file and
indexes features, nodes, leaves and category bitsets with numbers from it. So
the text must match, line for line, the grammar ``Booster.model_to_string()``
writes (docs/handlers/boosting.md), and every tree the invariants prediction
relies on; anything else is refused with a ``ValueError`` that names the tree,
the line, the position and the broken rule.

The trees, nearly all of a model, are read for all trees at once with numpy
(``_Scanned``: where each line starts, its key, the values' counts and the
integers); a text this reader does not recognise is matched tree by tree against
the grammar written as a regular expression (``_Matched``), which names the tree
and the rule a crafted text breaks. The node invariants are then checked on all
trees' nodes at once, so a 500-tree model takes a few milliseconds.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import repeat
from typing import Any, NoReturn

import numpy as np

from ..._container.layout import DEFAULT_LIMITS, json_structure

# Prediction allocates a vector of this many doubles per row, and the text names each
# feature (a Python str of each name is ~50 bytes, from 2 bytes of text): XGBoost's bound.
MAX_FEATURES = 1 << 24
MAX_CLASSES = 1 << 24
_HEADER_LINES = 12  # the most the header has (tree, version, ..., tree_sizes)
_TAIL_LINES = 4096  # after the trees, beyond a line per feature (LightGBM 4 writes ~150)
_INT32 = 2**31 - 1
# decision_type: bit 0 categorical, bit 1 default left, bits 2-3 missing type (0, 1, 2).
_CATEGORICAL = 1
_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_OBJECTIVE = re.compile(
    r"(?P<plain>regression|regression_l1|huber|fair|poisson|quantile|mape|gamma|tweedie"
    r"|cross_entropy|cross_entropy_lambda|lambdarank|rank_xendcg)(?: sqrt)?"
    rf"|binary sigmoid:(?P<sigmoid>{_NUMBER})"
    r"|multiclass num_class:(?P<softmax>[0-9]{1,8})"
    rf"|multiclassova num_class:(?P<ova>[0-9]{{1,8}}) sigmoid:(?P<ova_sigmoid>{_NUMBER})"
)
_NAME = re.compile(r"[^ ]+")  # control characters are refused for the whole text
_BOUND = rf"(?:{_NUMBER}|-?inf|nan)"
_INFO = re.compile(rf"none|\[{_BOUND}:{_BOUND}\]|-?[0-9]+(?::-?[0-9]+)*")
_PARAM = re.compile(r"\[[a-z][a-z0-9_]*: [^\"\\]*\]")
_IMPORTANCE = re.compile(r"[^ ]+=[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]{1,10}")
_INTS = r"[-0-9 ]*"
_FLOATS = r"[^\n]*"
_TREE = re.compile(
    r"Tree=([0-9]{1,10})\n"
    r"num_leaves=([0-9]{1,10})\n"
    r"num_cat=([0-9]{1,10})\n"
    rf"split_feature=({_INTS})\n"
    rf"split_gain=({_FLOATS})\n"
    rf"threshold=({_FLOATS})\n"
    rf"decision_type=({_INTS})\n"
    rf"left_child=({_INTS})\n"
    rf"right_child=({_INTS})\n"
    rf"leaf_value=({_FLOATS})\n"
    rf"leaf_weight=({_FLOATS})\n"
    rf"leaf_count=({_INTS})\n"
    rf"internal_value=({_FLOATS})\n"
    rf"internal_weight=({_FLOATS})\n"
    rf"internal_count=({_INTS})\n"
    rf"(?:cat_boundaries=({_INTS})\ncat_threshold=({_INTS})\n)?"
    r"is_linear=([01])\n"
    rf"(?:leaf_const=({_FLOATS})\nnum_features=({_INTS})\n"
    rf"leaf_features=({_INTS})\nleaf_coeff=({_FLOATS})\n)?"
    rf"shrinkage=({_FLOATS})\n\n\n"
)
# The groups of _TREE, in order.
_FIELDS = (
    "index",
    "num_leaves",
    "num_cat",
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "leaf_value",
    "leaf_weight",
    "leaf_count",
    "internal_value",
    "internal_weight",
    "internal_count",
    "cat_boundaries",
    "cat_threshold",
    "is_linear",
    "leaf_const",
    "num_features",
    "leaf_features",
    "leaf_coeff",
    "shrinkage",
)
# Lines with one value per internal node (num_leaves - 1) and per leaf (num_leaves).
_PER_SPLIT = (
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "internal_value",
    "internal_weight",
    "internal_count",
)
_PER_LEAF = ("leaf_value", "leaf_weight", "leaf_count")


@dataclass(frozen=True)
class Summary:
    """What the rest of the handler needs to know about a checked model."""

    num_class: int
    num_features: int
    n_trees: int
    n_iterations: int
    pandas_categorical: Any


def _fail(message: str) -> NoReturn:
    raise ValueError(message)


def check(raw: bytes) -> Summary:
    """Check ``raw``, the model as ``model_to_string()`` writes it, in UTF-8.

    The bytes are read as they are, before any str is made of them: only the header's and
    the tail's lines are decoded (a UnicodeDecodeError where they are not UTF-8), so the
    check's scratch memory never sits beside a decoded copy of the whole text."""
    u8 = np.frombuffer(raw, dtype=np.uint8)
    for start in range(0, len(u8), _SCAN):  # a slice at a time: little scratch memory
        part = u8[start : start + _SCAN]
        control = ((part < 0x20) & (part != 0x0A)) | (part == 0x7F)
        if control.any():
            at = start + int(np.flatnonzero(control)[0])
            _fail(f"byte {at} is a control character ({u8[at]:#04x}); only newlines may appear")
    return _Model(raw, u8).summary


_SCAN = 1 << 18
# Bytes of trees whose number lines are checked at once: each byte takes about six of
# scratch (its class, the class pairs, the masks), which the load's peak memory holds.
_RUN = 1 << 17


def _ints(text: str, where: str, single: bool = True) -> np.ndarray[Any, Any]:
    """Integers separated by single spaces (LightGBM's own writing; ``single=False``: by
    any spaces) as int64. The text holds only digits, '-' and spaces (the grammar or the
    caller sees to it), whose values LightGBM's ``Atoi`` reads the same way."""
    if single and ("  " in text or text[:1] == " " or text[-1:] == " "):
        _fail(f"{where}: values must be separated by single spaces")
    if not single:
        text = text.strip(" ")  # numpy reads a lone separator as one value
    if "- " in text or "--" in text or text[-1:] == "-":
        _fail(f"{where}: a '-' without digits is not an integer")
    try:
        values = np.fromstring(text, dtype=np.int64, sep=" ")
    except ValueError:
        _fail(f"{where}: not a list of integers")
    if single and len(values) != _count(text):
        _fail(f"{where}: not a list of integers")
    return values


def _int(text: str, where: str, low: int, high: int) -> int:
    if not _DECIMAL.fullmatch(text):
        _fail(f"{where} = {text!r} is not an integer")
    value = int(text)
    if not low <= value <= high:
        _fail(f"{where} = {value} is outside [{low}, {high}]")
    return value


def _count(line: str) -> int:
    return line.count(" ") + 1 if line else 0


class _Model:
    def __init__(self, raw: bytes, u8: np.ndarray[Any, Any]) -> None:
        first = raw.find(b"\nTree=") + 1
        if first == 0:
            _fail("the model has no trees")
        sizes = self._header(raw[:first].decode())
        if int(sizes.max()) > len(raw):  # (so that their sum cannot overflow int64)
            _fail("tree_sizes gives a tree more bytes than the whole text has")
        end = first + int(sizes.sum())  # tree_sizes counts bytes
        if not raw.startswith(b"end of trees\n", end):
            _fail("the trees are not followed by 'end of trees' where tree_sizes says they end")
        # The whole text is ASCII but for exotic feature names: then check the trees' part.
        if not raw.isascii() and not all(
            raw[at : min(at + _SCAN, end)].isascii() for at in range(first, end, _SCAN)
        ):
            _fail("the trees hold a non-ASCII character")
        scanned = _Scanned.read(u8[first:end], sizes) if end - first < _MAX_SCANNED else None
        lines = scanned or _Matched(raw[first:end].decode("ascii"), 0, sizes)
        trees = _Trees(lines, self.max_feature_idx)
        n_trees = len(sizes)
        if n_trees % self.num_class:
            _fail(f"{n_trees} trees are not whole iterations of {self.num_class} trees")
        pandas = self._tail(raw[end + len(b"end of trees\n") :].decode())
        trees.check()
        self.summary = Summary(
            self.num_class, self.max_feature_idx + 1, n_trees, n_trees // self.num_class, pandas
        )

    # -- header ------------------------------------------------------------------------------
    def _header(self, head: str) -> np.ndarray[Any, Any]:
        if head.count("\n") > _HEADER_LINES + 1:  # (not split first: a million empty lines)
            _fail("the header has more lines than the 12 LightGBM writes and an empty one")
        lines = head.split("\n")
        if lines[-2:] != ["", ""]:
            _fail("the header must end with an empty line before the first tree")
        lines = lines[:-2]
        expected = [
            ("tree", True),
            ("version", True),
            ("num_class", True),
            ("num_tree_per_iteration", True),
            ("label_index", True),
            ("max_feature_idx", True),
            ("objective", False),
            ("average_output", False),
            ("feature_names", True),
            ("monotone_constraints", False),
            ("feature_infos", True),
            ("tree_sizes", True),
        ]
        names = [key for key, _ in expected]
        values: dict[str, str] = {}
        k = 0
        for number, line in enumerate(lines, 1):
            key, eq, value = line.partition("=")
            if key not in names[k:]:
                _fail(f"header line {number}: unknown or repeated line {line[:40]!r}")
            found = names.index(key, k)
            skipped = [name for name, required in expected[k:found] if required]
            if skipped:
                _fail(f"header line {number}: {skipped[0]!r} must come before {line[:40]!r}")
            if bool(eq) == (key in ("tree", "average_output")):
                _fail(f"header line {number}: malformed {line[:40]!r}")
            values[key] = value
            k = found + 1
        missing = [key for key, required in expected[k:] if required]
        if missing:
            _fail(f"the header lacks {missing}")
        if values["version"] not in ("v3", "v4"):
            _fail(f"model version {values['version']!r} is not one this reader knows (v3, v4)")
        self.num_class = _int(values["num_class"], "num_class", 1, MAX_CLASSES)
        per_iteration = _int(
            values["num_tree_per_iteration"], "num_tree_per_iteration", 1, MAX_CLASSES
        )
        if per_iteration != self.num_class:
            _fail(
                f"num_tree_per_iteration = {per_iteration} differs from num_class = "
                f"{self.num_class}, whose outputs prediction allocates"
            )
        _int(values["label_index"], "label_index", 0, _INT32)
        self.max_feature_idx = _int(
            values["max_feature_idx"], "max_feature_idx", 0, MAX_FEATURES - 1
        )
        n_features = self.max_feature_idx + 1
        self._objective(values.get("objective"))
        # The counts first: a list of names is made only for as many as the model has.
        if _count(values["feature_names"]) != n_features or not all(
            map(_NAME.fullmatch, values["feature_names"].split(" "))
        ):
            _fail(f"feature_names must be {n_features} names separated by single spaces")
        if _count(values["feature_infos"]) != n_features or not all(
            map(_INFO.fullmatch, values["feature_infos"].split(" "))
        ):
            _fail(f"feature_infos must be {n_features} ranges or category lists")
        if "monotone_constraints" in values:
            mono = _ints(values["monotone_constraints"], "monotone_constraints")
            if len(mono) != n_features or not np.isin(mono, (-1, 0, 1)).all():
                _fail(f"monotone_constraints must be {n_features} values among -1, 0 and 1")
        sizes = _ints(values["tree_sizes"], "tree_sizes")
        if len(sizes) == 0 or (sizes < 1).any():
            _fail("tree_sizes must list the size of every tree")
        return sizes

    def _objective(self, text: str | None) -> None:
        if text is None:  # a custom objective: LightGBM outputs the raw scores
            return
        match = _OBJECTIVE.fullmatch(text)
        if match is None:
            _fail(f"objective {text[:40]!r} is not one LightGBM writes")
        classes = match["softmax"] or match["ova"]
        if classes is not None:
            if int(classes) != self.num_class or self.num_class < 2:
                _fail(f"objective {text!r} does not match num_class = {self.num_class}")
        elif self.num_class != 1:
            _fail(f"objective {text!r} has one output, but num_class = {self.num_class}")
        sigmoid = match["sigmoid"] or match["ova_sigmoid"]
        if sigmoid is not None and not float(sigmoid) > 0:
            _fail(f"objective {text!r}: sigmoid must be positive")

    # -- after the trees ---------------------------------------------------------------------
    def _tail(self, tail: str) -> Any:
        if tail.count("\n") > self.max_feature_idx + 1 + _TAIL_LINES:
            _fail("the trees are followed by more lines than features and parameters")
        lines = tail.split("\n")
        if len(lines) < 5 or lines[:2] != ["", "feature_importances:"] or lines[-1] != "":
            _fail("the trees must be followed by the feature importances")
        i = 2
        while i < len(lines) and lines[i] and _IMPORTANCE.fullmatch(lines[i]):
            i += 1
        if lines[i : i + 2] == ["", "parameters:"]:
            i += 2
            while i < len(lines) and _PARAM.fullmatch(lines[i]):
                i += 1
            if lines[i : i + 2] != ["", "end of parameters"]:
                _fail(f"parameters line {lines[i][:40]!r} is not '[name: value]'")
            i += 2
        last = lines[i + 1] if i + 1 < len(lines) else ""
        if lines[i:] != ["", last, ""] or not last.startswith("pandas_categorical:"):
            _fail(f"unknown or misplaced line {lines[i][:40]!r} after the trees")
        return _pandas_categorical(last[len("pandas_categorical:") :])


def _no_constant(name: str) -> NoReturn:
    _fail(f"pandas_categorical holds {name}")


def _pandas_categorical(text: str) -> Any:
    """The category lists LightGBM's Python package applies to DataFrames (JSON), of at
    most as many values as a file's header (LightGBM parses them again)."""
    values = json_structure(text, DEFAULT_LIMITS.max_header_values)
    if values is not None:
        _fail(
            f"pandas_categorical has {values} JSON values, over the limit of "
            f"{DEFAULT_LIMITS.max_header_values}"
        )
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        _fail(f"pandas_categorical is not JSON: {exc}")
    except RecursionError:
        _fail("pandas_categorical nests too deeply")
    if value is None:
        return None
    scalars = {str, int, float, bool}
    if type(value) is not list or not all(
        type(c) is list and set(map(type, c)) <= scalars for c in value
    ):
        _fail("pandas_categorical must be null or a list of category lists")
    return value


class _Matched:
    """The trees matched block by block against the grammar (``_TREE``): the reader of the
    texts ``_Scanned`` does not recognise, whose errors name the tree and the rule."""

    def __init__(self, text: str, pos: int, sizes: np.ndarray[Any, Any]) -> None:
        """The trees of ``text`` from ``pos`` on (matched in place: no copy of them)."""
        rows = []
        for t, size in enumerate(sizes.tolist()):
            match = _TREE.match(text, pos)
            if match is None or match.end() != pos + size:
                line = text[pos : text.find("\n", pos)][:40]
                _fail(
                    f"tree {t} (from {line!r}) does not have the lines of a LightGBM tree "
                    f"in the {size} characters tree_sizes gives it"
                )
            rows.append(match.groups())
            pos += size
        self.col = dict(zip(_FIELDS, zip(*rows, strict=True), strict=True))
        self.n = len(rows)
        lines = [(f, False, False) for f in _INT_LINES] + [(f, True, False) for f in _FLOAT_LINES]
        for field, floats, loose in lines + [(f, fl, True) for f, fl in _LOOSE_LINES]:
            for t, line in enumerate(self.col[field]):
                if line and not _tokens_ok(
                    np.frombuffer((line + "\n").encode(), dtype=np.uint8),
                    floats=floats,
                    loose=loose,
                ):
                    _fail(
                        f"tree {t}: {field} holds a value that is not a "
                        + ("decimal number" if floats else "decimal integer")
                        + " as LightGBM writes it (single spaces between values)"
                    )

    def numbers(self, field: str) -> np.ndarray[Any, Any]:
        """One small integer per tree (``Tree=``, ``num_leaves``, ``num_cat``, ``is_linear``)."""
        return np.array(self.col[field], dtype=np.int64)

    def present(self, field: str) -> np.ndarray[Any, Any]:
        """Whether each tree has the line (the categorical and linear lines are optional)."""
        return np.array([line is not None for line in self.col[field]], dtype=bool)

    def line(self, field: str, t: int) -> str | None:
        """The values of one line of tree ``t``, None when the tree does not have it."""
        line: str | None = self.col[field][t]
        return line

    def ints(self, field: str) -> np.ndarray[Any, Any]:
        """All trees' integers of one line, concatenated."""
        lines = [line for line in self.col[field] if line]
        return _ints(" ".join(lines), field)

    def counts(self, fields: tuple[str, ...]) -> np.ndarray[Any, Any]:
        """Values per line of each field (rows) in each tree (columns), in one C-level pass."""
        lines = [line for field in fields for line in self.col[field]]
        total = len(lines)
        spaces = np.fromiter(map(str.count, lines, repeat(" ")), dtype=np.int64, count=total)
        filled = np.fromiter(map(bool, lines), dtype=np.int64, count=total)
        return (spaces + filled).reshape(len(fields), self.n)


# A tree's lines: the fields of _FIELDS in order, the optional groups present or not, and
# the two empty lines after shrinkage. The line count tells the layout (19, 21, 23, 25).
_KEYS = {field: field for field in _FIELDS} | {"index": "Tree"}
_CAT_LINES = ("cat_boundaries", "cat_threshold")
_LINEAR_LINES = ("leaf_const", "num_features", "leaf_features", "leaf_coeff")
_LAYOUTS = {
    len(layout) + 2: layout
    for layout in (
        _FIELDS[:15] + cat + ("is_linear",) + linear + ("shrinkage",)
        for cat in ((), _CAT_LINES)
        for linear in ((), _LINEAR_LINES)
    )
}
_SMALL = ("index", "num_leaves", "num_cat")  # [0-9]{1,10}
_PARSED = ("split_feature", "decision_type", "left_child", "right_child")  # values used
# [-0-9 ]*: only the characters are checked here (counts and values where needed later).
_INT_LINES = (
    "leaf_count",
    "internal_count",
    "cat_boundaries",
    "cat_threshold",
    "num_features",
)
# Lines of decimal numbers (LightGBM reads them with its Atof, which ends the process on
# a token it does not know): each token is checked against _FLOAT_TOKEN.
_FLOAT_LINES = (
    "split_gain",
    "threshold",
    "leaf_value",
    "leaf_weight",
    "internal_value",
    "internal_weight",
    "leaf_const",
    "shrinkage",
)
# leaf_features and leaf_coeff of a linear tree: each leaf's values, leaves separated by
# two spaces (and a leaf without features by none): checked with loose=True.
_LOOSE_LINES = (("leaf_features", False), ("leaf_coeff", True))
_POWERS = 10 ** np.arange(19, dtype=np.int64)
_POS = np.int32  # positions in the trees' bytes: the numpy reader reads less than 2 GiB
_MAX_SCANNED = 1 << 31
_Keyed = list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]


@functools.cache
def _layout_keys(layout: tuple[str, ...]) -> tuple[np.ndarray[Any, Any], ...]:
    """For a tree layout: the fields' rows in ``_FIELDS``; the keys ('name=') as one byte
    string, with each byte's line and offset in it; each key's size."""
    keys = [f"{_KEYS[field]}=".encode() for field in layout]
    return (
        np.array([_FIELDS.index(field) for field in layout]),
        np.frombuffer(b"".join(keys), dtype=np.uint8),
        np.concatenate([np.full(len(k), j) for j, k in enumerate(keys)]),
        np.concatenate([np.arange(len(k), dtype=_POS) for k in keys]),
        np.array([len(k) for k in keys]),
    )


class _Scanned:
    """The trees read for all trees at once: where every line starts and ends, each line's
    key, the values' counts (spaces per line) and the integers, with numpy.

    ``read`` gives None for anything it does not recognise, and ``_Matched`` reads that
    text instead: whatever this reader accepts, the grammar accepts too, with the same
    values (a test compares them on seeded edits).
    """

    def __init__(
        self,
        seg: np.ndarray[Any, Any],
        at: np.ndarray[Any, Any],
        begin: np.ndarray[Any, Any],
        end: np.ndarray[Any, Any],
        spaces: np.ndarray[Any, Any],
        tree_starts: np.ndarray[Any, Any],
    ) -> None:
        self.seg, self.at, self.begin, self.end, self.spaces = seg, at, begin, end, spaces
        self.tree_starts = tree_starts  # where each tree's bytes start
        self.n = at.shape[1]
        self.values: dict[str, np.ndarray[Any, Any]] = {}

    @classmethod
    def read(cls, seg: np.ndarray[Any, Any], sizes: np.ndarray[Any, Any]) -> _Scanned | None:
        """The trees in ``seg`` (their bytes: ASCII without control characters but
        newlines, ``sizes.sum()`` long), or None."""
        ends = np.concatenate(  # every line's newline (a slice at a time: little scratch)
            [np.flatnonzero(seg[i : i + _SCAN] == 10) + i for i in range(0, len(seg), _SCAN)]
        )
        if not len(ends) or ends[-1] != len(seg) - 1:
            return None
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        tree_starts = np.cumsum(sizes) - sizes
        first = np.searchsorted(starts, tree_starts)  # each tree's first line
        if first[-1] >= len(starts) or (starts[first] != tree_starts).any():
            return None
        lines = np.diff(first, append=len(starts))
        keyed_bytes: _Keyed = []  # per layout: its trees, where their keys' bytes are (a row each)
        at = np.full((len(_FIELDS), len(sizes)), -1, dtype=np.int64)  # line of field, tree
        begin = np.full(at.shape, -1, dtype=np.int64)  # where its values start
        end = np.full(at.shape, -1, dtype=np.int64)  # and end (its newline)
        for count in np.unique(lines).tolist():
            layout = _LAYOUTS.get(count)
            if layout is None:
                return None
            rows, keys, line_of, offset, size = _layout_keys(layout)
            trees = np.flatnonzero(lines == count)
            block = first[trees, None] + np.arange(count)
            if (starts[block[:, -2:]] != ends[block[:, -2:]]).any():  # the two empty lines
                return None
            # Every line's key, for all these trees in one gather (a short line meets its
            # newline, or the last one, where the key has a letter or '=').
            where = np.minimum(starts[block[:, line_of]].astype(_POS) + offset, len(seg) - 1)
            if (seg[where] != keys).any():
                return None
            keyed_bytes.append((trees, where))
            keyed = block[:, : len(layout)].T
            at[rows[:, None], trees] = keyed
            begin[rows[:, None], trees] = starts[keyed] + size[:, None]
            end[rows[:, None], trees] = ends[keyed]
        self = cls(seg, at, begin, end, _spaces(seg, starts, ends), tree_starts)
        # The keys' bytes serve the number lines' check only: not kept for the trees'.
        return self if self._values() and self._numbers_ok(keyed_bytes) else None

    def _values(self) -> bool:
        """Parse the small numbers and the used integer lines. False where any of it
        differs from the grammar."""
        numbers = _parse(self._gather(_SMALL), signed=False)
        # One number a line, of 1 to 10 digits.
        if numbers is None or (self.counts(_SMALL) != 1).any() or (self.width(_SMALL) > 10).any():
            return False
        for i, field in enumerate(_SMALL):
            self.values[field] = numbers[i * self.n : (i + 1) * self.n]
        row = _FIELDS.index("is_linear")
        flag = self.seg[self.begin[row]]
        if (self.width(("is_linear",)) != 1).any() or ((flag != 48) & (flag != 49)).any():
            return False
        self.values["is_linear"] = flag.astype(np.int64) - 48
        totals = self.counts(_PARSED).sum(axis=1).tolist()
        for field, total in zip(_PARSED, totals, strict=True):  # a line at a time: less scratch
            values = _parse(self._gather((field,)), signed=True)
            if values is None or len(values) != total:
                return False
            self.values[field] = values
        return True

    def _numbers_ok(self, keyed_bytes: _Keyed) -> bool:
        """Every value of the number lines is a number as LightGBM writes it, and every
        value of the integer lines an integer, checked about ``_RUN`` bytes of trees at a
        time (little scratch memory); ``keyed_bytes``: per layout, its trees and where
        their keys' bytes are."""
        step = max(1, self.n * _RUN // max(len(self.seg), 1))
        linear = bool(self.values["is_linear"].any())
        for t in range(0, self.n, step):
            trees = slice(t, t + step)
            if not linear:
                if not self._chunk_ok(t, min(t + step, self.n), keyed_bytes):
                    return False
            elif not (  # linear trees' loose lines: the lines gathered and checked apart
                _tokens_ok(self._gather(_INT_LINES, trees), floats=False)
                and _tokens_ok(self._gather(_FLOAT_LINES, trees), floats=True)
                and _tokens_ok(self._gather(("leaf_features",), trees), floats=False, loose=True)
                and _tokens_ok(self._gather(("leaf_coeff",), trees), floats=True, loose=True)
            ):
                return False
        return True

    def _chunk_ok(self, first: int, stop: int, keyed_bytes: _Keyed) -> bool:
        """Trees ``first`` to ``stop`` (without linear models) as one run of bytes: every
        line's value tokens read as numbers (``_FLOAT_TOKEN``), with the keys, already
        matched, standing aside as a class of their own."""
        lo = int(self.tree_starts[first])
        hi = int(self.tree_starts[stop]) if stop < self.n else len(self.seg)
        marked = bytearray(self.seg[lo:hi]).translate(_RUN_CLASS)  # a class per byte
        cls = np.frombuffer(marked, dtype=np.uint8)
        for trees, where in keyed_bytes:
            a, b = np.searchsorted(trees, (first, stop))
            cls[where[a:b].ravel() - lo] = _R_KEY
        if not _run_ok(cls, marked, self.seg[lo:hi]):
            return False
        # The integer lines' tokens, numbers as the run's, are integers: no '.', exponent
        # or letter among their values (the largest of each line's value bytes' classes,
        # from its first value byte to its newline, is below _R_DOT).
        begin, end = self._filled(_INT_LINES, slice(first, stop))
        if not len(begin):
            return True
        bounds = np.empty(2 * len(begin), dtype=np.int64)
        bounds[0::2] = begin - lo
        bounds[1::2] = end - lo
        top = np.maximum.reduceat(cls, bounds)[0::2]  # (odd slots: between lines, unused)
        return not (top >= _R_DOT).any()

    def width(self, fields: tuple[str, ...]) -> np.ndarray[Any, Any]:
        """Characters of each field's line (rows) in each tree (columns)."""
        rows = [_FIELDS.index(field) for field in fields]
        width: np.ndarray[Any, Any] = self.end[rows] - self.begin[rows]
        return width

    def _filled(
        self, fields: tuple[str, ...], trees: slice
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """Where the values of the fields' non-empty lines start and end (their newline),
        field by field, tree by tree; ``trees``: of these trees only."""
        rows = [_FIELDS.index(field) for field in fields]
        begin, end = self.begin[rows, trees].ravel(), self.end[rows, trees].ravel()
        keep = end > begin  # absent lines (-1, -1) and empty ones
        return begin[keep], end[keep]

    def _gather(self, fields: tuple[str, ...], trees: slice = slice(None)) -> np.ndarray[Any, Any]:
        """The values of the fields' non-empty lines (field by field, tree by tree), each
        with its newline; ``trees``: of these trees only."""
        begin, end = self._filled(fields, trees)
        size = end - begin + 1
        # Positions: +1 from byte to byte, a jump from each line's end to the next's start.
        index = np.ones(int(size.sum()), dtype=_POS)
        if len(begin):
            index[0] = begin[0]
            index[np.cumsum(size[:-1])] = begin[1:] - (begin[:-1] + size[:-1] - 1)
        gathered: np.ndarray[Any, Any] = self.seg[np.cumsum(index, out=index)]
        return gathered

    def numbers(self, field: str) -> np.ndarray[Any, Any]:
        return self.values[field]

    def present(self, field: str) -> np.ndarray[Any, Any]:
        present: np.ndarray[Any, Any] = self.at[_FIELDS.index(field)] >= 0
        return present

    def line(self, field: str, t: int) -> str | None:
        i = _FIELDS.index(field)
        if self.at[i, t] < 0:
            return None
        return self.seg[self.begin[i, t] : self.end[i, t]].tobytes().decode("ascii")

    def ints(self, field: str) -> np.ndarray[Any, Any]:
        return self.values[field]

    def counts(self, fields: tuple[str, ...]) -> np.ndarray[Any, Any]:
        """Values per line of each field (rows) in each tree (columns); fields every
        layout has."""
        rows = [_FIELDS.index(field) for field in fields]
        count: np.ndarray[Any, Any] = self.spaces[self.at[rows]] + (
            self.end[rows] > self.begin[rows]
        )
        return count


def _parse(buf: np.ndarray[Any, Any], *, signed: bool) -> np.ndarray[Any, Any] | None:
    """The integers of ``buf``: decimal tokens (an optional '-' when ``signed``, then 1 to
    18 digits) each followed by one space or newline; None for anything else. ``buf``
    holds no control character but newlines."""
    if not len(buf):
        return np.zeros(0, dtype=np.int64)
    stop = np.flatnonzero(buf <= 32).astype(_POS)  # after each token: a space or newline
    if not len(stop) or stop[-1] != len(buf) - 1:
        return None
    size = np.empty_like(stop)  # the token's characters
    size[0] = stop[0]
    np.subtract(stop[1:], stop[:-1] + 1, out=size[1:])
    minus = buf[stop - size] == 45
    if not signed and minus.any():
        return None
    size -= minus  # its digits
    if size.min() < 1 or size.max() > 18:
        return None
    digit = buf - np.uint8(48)
    # Every other byte is a digit: the separators and the leading minus signs are all.
    if np.count_nonzero(digit >= 10) != len(stop) + np.count_nonzero(minus):
        return None
    stop -= 1  # the last digit
    value = digit[stop].astype(np.int64)
    for k in range(1, int(size.max())):
        stop -= 1
        value += np.where(size > k, digit[np.maximum(stop, 0)], 0) * _POWERS[k]
    np.negative(value, out=value, where=minus)
    return value


# Byte classes for the number checks: the keys of a run of tree lines (marked apart, as
# they are matched elsewhere), space, newline, digits, '-', '.', 'e'/'E', '+', the letters
# of inf and nan, anything else: the classes of the bytes an integer does not have come
# last, from _R_DOT on.
(_R_KEY, _R_SPACE, _R_NL, _R_DIG, _R_MINUS, _R_DOT, _R_EXP, _R_PLUS, _R_LETTER, _R_BAD) = range(10)
_RUN_CLASS = bytearray([_R_BAD]) * 256  # a translate table: byte to class
for _c, _k in (
    (b" ", _R_SPACE),
    (b"\n", _R_NL),
    (b"0123456789", _R_DIG),
    (b".", _R_DOT),
    (b"eE", _R_EXP),
    (b"-", _R_MINUS),
    (b"+", _R_PLUS),
    (b"infa", _R_LETTER),
):
    for _byte in _c:
        _RUN_CLASS[_byte] = _k
_TOKEN_START = (_R_DIG, _R_DOT, _R_MINUS, _R_LETTER)
_ENDS = (_R_SPACE, _R_NL)


def _pairs(rules: dict[int, tuple[int, ...]]) -> bytes:
    """A translate table: byte ``a * 16 + b`` to 1 where class ``b`` may follow ``a``."""
    table = bytearray(256)
    for a, followers in rules.items():
        for b in followers:
            table[a * 16 + b] = 1
    return bytes(table)


# Byte after byte: a key runs into its value's first token (or the newline of an empty
# line); tokens are separated by single spaces; a line starts with a key or a token.
_RUN_FOLLOWS = _pairs(
    {
        _R_KEY: (_R_KEY, _R_NL, *_TOKEN_START),
        _R_NL: (_R_KEY, _R_NL, *_TOKEN_START),
        _R_SPACE: _TOKEN_START,
        _R_DIG: (_R_DIG, _R_DOT, _R_EXP, *_ENDS),
        _R_DOT: (_R_DIG, _R_EXP, *_ENDS),
        _R_EXP: (_R_DIG, _R_MINUS, _R_PLUS),
        _R_MINUS: (_R_DIG, _R_DOT, _R_LETTER),
        _R_PLUS: (_R_DIG,),
        _R_LETTER: (_R_LETTER, *_ENDS),
    }
)
# The bytes but digits, in order (an exponent's '-' counted as '+'): a token reads
# [-] [.] [e [sign]] or [-] letters, so no second dot or exponent, no dot after one.
_AFTER_SEPARATOR = (_R_KEY, _R_SPACE, _R_NL, _R_MINUS, _R_DOT, _R_EXP, _R_LETTER)
_RUN_FOLLOWS_SKIPPING = _pairs(
    {
        _R_KEY: _AFTER_SEPARATOR,
        _R_NL: _AFTER_SEPARATOR,
        _R_SPACE: _AFTER_SEPARATOR,
        _R_DOT: (_R_EXP, *_ENDS),
        _R_EXP: (_R_PLUS, *_ENDS),
        _R_MINUS: (_R_DOT, _R_EXP, _R_LETTER, *_ENDS),
        _R_PLUS: _ENDS,
        _R_LETTER: (_R_LETTER, *_ENDS),
    }
)
# Integers: -?[0-9]+ separated by single spaces.
_INT_FOLLOWS = _pairs(
    {
        _R_SPACE: (_R_DIG, _R_MINUS),
        _R_NL: (_R_DIG, _R_MINUS),
        _R_DIG: (_R_DIG, *_ENDS),
        _R_MINUS: (_R_DIG,),
    }
)
_WORDS = {b"inf", b"-inf", b"nan", b"-nan"}
_FLOAT_TOKEN = re.compile(
    r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|-?inf|-?nan", re.ASCII
)


def _tokens_ok(buf: np.ndarray[Any, Any], *, floats: bool, loose: bool = False) -> bool:
    """Whether ``buf``, lines of values each ending with a newline, holds only tokens
    separated by single spaces that are decimal numbers as LightGBM writes them
    (``_FLOAT_TOKEN``; ``floats=False``: ``-?[0-9]+``). LightGBM's own number reader
    ends the process (std::terminate) on a token it does not know, such as ``0*1``,
    ``--1`` or ``inf5``. ``loose``: tokens separated by any spaces, lines of spaces
    only allowed (a linear tree's ``leaf_features`` and ``leaf_coeff``)."""
    if loose:
        buf = _squeezed(buf)
    if not len(buf):
        return True
    marked = bytearray(buf).translate(_RUN_CLASS)
    cls = np.frombuffer(marked, dtype=np.uint8)
    if bytes((_R_NL, _R_NL)) in marked or cls[0] not in _TOKEN_START:  # no empty line
        return False
    if not floats:
        return bool(cls[-1] == _R_NL) and _pairs_ok(cls, _INT_FOLLOWS)
    return _run_ok(cls, marked, buf)


def _pairs_ok(cls: np.ndarray[Any, Any], table: bytes) -> bool:
    """Whether every byte's class may follow the class before it (``table``: ``_pairs``)."""
    pair = np.multiply(cls[:-1], np.uint8(16))  # (numpy shifts uint8 ten times slower)
    pair |= cls[1:]
    return 0 not in bytearray(pair).translate(table)  # (bytes.translate is slower)


def _run_ok(cls: np.ndarray[Any, Any], marked: bytearray, raw: np.ndarray[Any, Any]) -> bool:
    """Whether lines of bytes, ``cls`` the class of each (``marked`` the same classes,
    ``raw`` the bytes themselves), hold tokens of ``_FLOAT_TOKEN`` separated by single
    spaces, each line after a key (the keys of a run of whole trees, marked apart) or
    not. The lines start with a key or a token and end with a newline. Mostly
    ``bytes.translate``, whose table lookups are several times faster than numpy's
    indexing."""
    if not len(cls) or cls[0] not in (_R_KEY, *_TOKEN_START) or cls[-1] != _R_NL:
        return False
    if not _pairs_ok(cls, _RUN_FOLLOWS):  # also refuses any other byte: no pair has _R_BAD
        return False
    # A dot needs a digit before it unless one follows it ('1.', '.5'; not '.', '-.' or
    # '.e5'), which also gives an exponent after a dot a digit before the dot.
    digit = cls == _R_DIG
    lone = cls[1:-1] == _R_DOT
    lone &= ~digit[:-2]
    lone &= ~digit[2:]
    if lone.any() or (cls[0] == _R_DOT and not digit[1]):
        return False
    kinds = cls[np.flatnonzero(~digit)]
    sign = kinds[1:] == _R_MINUS
    sign &= kinds[:-1] == _R_EXP  # (in the bytes, a '-' after an exponent is its sign)
    kinds[1:][sign] = _R_PLUS
    if not _pairs_ok(kinds, _RUN_FOLLOWS_SKIPPING):
        return False
    if _R_LETTER in marked:  # inf and nan are rare: check those tokens one by one
        text = raw.tobytes()
        for at in np.flatnonzero(cls == _R_LETTER).tolist():
            start = max(text.rfind(sep, 0, at) for sep in (b" ", b"=", b"\n")) + 1
            stop = min(i for i in (text.find(b" ", at), text.find(b"\n", at)) if i >= 0)
            if text[start:stop] not in _WORDS:
                return False
    return True


def _squeezed(buf: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``buf`` with the spaces that do not separate two tokens, and empty lines, removed."""
    if not len(buf):
        return buf
    space = buf == 32
    keep = ~space
    keep[:-1] |= space[:-1] & (buf[1:] != 32) & (buf[1:] != 10)  # a space before a token
    keep[0] &= not space[0]
    out = buf[keep]
    starts = np.flatnonzero(out[:-1] == 10) + 1  # no space first on a line
    drop = np.zeros(len(out), dtype=bool)
    if len(out) and out[0] == 32:
        drop[0] = True
    drop[starts[out[starts] == 32]] = True
    out = out[~drop]
    newline = out == 10  # no empty line
    empty = newline.copy()
    empty[1:] &= newline[:-1]
    squeezed: np.ndarray[Any, Any] = out[~empty]
    return squeezed


def _spaces(
    seg: np.ndarray[Any, Any], starts: np.ndarray[Any, Any], ends: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Spaces in each line, summed a run of lines of about ``_SCAN`` bytes at a time (little
    scratch memory), in 16 bits where no line of the run reaches 2**16 bytes."""
    spaces = np.empty(len(starts), dtype=np.int64)
    cuts = np.unique(np.searchsorted(starts, np.arange(0, len(seg), _SCAN)))
    for a, b in zip(cuts.tolist(), [*cuts[1:].tolist(), len(starts)], strict=True):
        lo, hi = int(starts[a]), int(ends[b - 1]) + 1
        wide = int((ends[a:b] - starts[a:b]).max()) >= 1 << 16
        spaces[a:b] = np.add.reduceat(
            (seg[lo:hi] == 32).view(np.uint8),
            starts[a:b] - lo,
            dtype=np.int64 if wide else np.uint16,
        )
    return spaces


class _Trees:
    """The trees' node invariants, checked on all trees' nodes at once."""

    def __init__(self, lines: _Matched | _Scanned, max_feature_idx: int) -> None:
        self.lines = lines
        self.n = lines.n
        self.max_feature_idx = max_feature_idx

    def text(self, field: str, t: int) -> str:
        """A line of tree ``t`` that the layout checks have shown present."""
        return self.lines.line(field, t) or ""

    def _first(self, bad: np.ndarray[Any, Any], message: Callable[[int], str]) -> None:
        hits = np.flatnonzero(bad)
        if hits.size:
            _fail(message(int(hits[0])))

    def check(self) -> None:
        n = self.n
        index = self.lines.numbers("index")
        self._first(index != np.arange(n), lambda t: f"tree {t} is headed 'Tree={index[t]}'")
        leaves = self.lines.numbers("num_leaves")
        self._first(leaves < 1, lambda t: f"tree {t}: num_leaves = 0, a tree has a leaf")
        for field, have in zip(_PER_SPLIT, self.lines.counts(_PER_SPLIT), strict=True):
            self._length(field, have, leaves - 1, have != leaves - 1, "num_leaves - 1")
        for field, have in zip(_PER_LEAF, self.lines.counts(_PER_LEAF), strict=True):
            # A single-leaf tree may omit its leaf statistics; LightGBM does not read them.
            ok = (have == leaves) | ((leaves == 1) & (have == 0) & (field != "leaf_value"))
            self._length(field, have, leaves, ~ok, "num_leaves")
        self.leaves = leaves
        self.splits = leaves - 1
        self.leaf_first = np.cumsum(leaves) - leaves
        self.leaf_tree = np.repeat(np.arange(n), leaves)
        self.tree_of = np.repeat(np.arange(n), self.splits)
        self.local = np.arange(int(self.splits.sum())) - np.repeat(
            np.cumsum(self.splits) - self.splits, self.splits
        )
        self._nodes()
        self._categorical()
        self._linear()

    def _length(
        self,
        field: str,
        have: np.ndarray[Any, Any],
        want: np.ndarray[Any, Any],
        bad: np.ndarray[Any, Any],
        what: str,
    ) -> None:
        hits = np.flatnonzero(bad)
        if hits.size:
            t = int(hits[0])
            _fail(f"tree {t}: {field} has {have[t]} values for {what} = {want[t]}")

    def fail_at(self, bad: np.ndarray[Any, Any], message: Callable[[int, int], str]) -> None:
        hits = np.flatnonzero(bad)
        if hits.size:
            i = int(hits[0])
            _fail(f"tree {self.tree_of[i]}: {message(int(self.local[i]), i)}")

    def _nodes(self) -> None:
        ints = self.lines.ints
        feature, dtype = ints("split_feature"), ints("decision_type")
        left, right = ints("left_child"), ints("right_child")
        local, splits = self.local, self.splits[self.tree_of]
        leaves = self.leaves[self.tree_of]
        top = self.max_feature_idx
        self.fail_at(
            (feature < 0) | (feature > top),
            lambda j, i: (
                f"split_feature[{j}] = {feature[i]} is outside [0, {top}] (max_feature_idx)"
            ),
        )
        self.fail_at(
            (dtype < 0) | (dtype > 15) | ((dtype >> 2) & 3 == 3),
            lambda j, i: f"decision_type[{j}] = {dtype[i]} is not a LightGBM decision type",
        )
        self._children("left_child", left, local, splits, leaves)
        self._children("right_child", right, local, splits, leaves)
        # Every internal node but the root, and every leaf, has exactly one parent.
        inner_base = np.repeat(np.cumsum(self.splits) - self.splits, self.splits)
        leaf_base = np.repeat(np.cumsum(self.leaves) - self.leaves, self.splits)
        inner_refs = np.zeros(len(local), dtype=np.int64)
        leaf_refs = np.zeros(int(self.leaves.sum()), dtype=np.int64)
        for child in (left, right):  # one side at a time: half the scratch of both at once
            inner = child >= 0
            inner_refs += np.bincount(child[inner] + inner_base[inner], minlength=len(local))
            leaf = ~inner
            leaf_refs += np.bincount(~child[leaf] + leaf_base[leaf], minlength=len(leaf_refs))
        self.fail_at(
            inner_refs > 1,
            lambda j, i: (
                f"internal node {j} is the child of {inner_refs[i]} nodes; a node has one parent"
            ),
        )
        self._leaf_parents(leaf_refs > 1, leaf_refs, "a leaf has one parent")
        self.fail_at(
            inner_refs < (local > 0),
            lambda j, i: (
                f"internal node {j} is the child of no node: each node but the root has a parent"
            ),
        )
        self._leaf_parents(
            (leaf_refs == 0) & (self.leaves > 1)[self.leaf_tree],
            leaf_refs,
            "each leaf of a tree with splits has a parent",
        )
        self.decision = dtype

    def _children(
        self,
        name: str,
        child: np.ndarray[Any, Any],
        local: np.ndarray[Any, Any],
        splits: np.ndarray[Any, Any],
        leaves: np.ndarray[Any, Any],
    ) -> None:
        """An internal child comes after its parent (no cycles); a leaf ~k has k < num_leaves."""
        bad = np.where(child >= 0, (child <= local) | (child >= splits), child < -leaves)
        self.fail_at(
            bad,
            lambda j, i: (
                f"{name}[{j}] = {child[i]} is outside: an internal child is in ({j}, "
                f"{splits[i]}) (after its parent: no cycles), a leaf ~k has k < {leaves[i]}"
            ),
        )

    def _leaf_parents(
        self, bad: np.ndarray[Any, Any], refs: np.ndarray[Any, Any], rule: str
    ) -> None:
        hits = np.flatnonzero(bad)
        if hits.size:
            k = int(hits[0])
            t = int(self.leaf_tree[k])
            leaf = k - int(self.leaf_first[t])
            _fail(f"tree {t}: leaf {leaf} is the child of {refs[k]} nodes; {rule}")

    def _categorical(self) -> None:
        num_cat = self.lines.numbers("num_cat")
        present = self.lines.present("cat_boundaries")
        self._first(
            present != (num_cat > 0),
            lambda t: (
                f"tree {t}: num_cat = {num_cat[t]} but cat_boundaries is "
                + ("present" if present[t] else "missing")
            ),
        )
        is_cat = (self.decision & _CATEGORICAL) == _CATEGORICAL
        per_tree = np.bincount(self.tree_of[is_cat], minlength=self.n)
        self._first(
            per_tree != num_cat,
            lambda t: f"tree {t}: {per_tree[t]} splits are categorical but num_cat = {num_cat[t]}",
        )
        first = np.cumsum(self.splits) - self.splits
        for t in np.flatnonzero(num_cat).tolist():
            at = int(first[t])
            self._categorical_tree(t, int(num_cat[t]), is_cat[at : at + int(self.splits[t])])

    def _categorical_tree(self, t: int, num_cat: int, is_cat: np.ndarray[Any, Any]) -> None:
        where = f"tree {t}"
        bounds = _ints(self.text("cat_boundaries", t), f"{where}: cat_boundaries")
        bits = _ints(self.text("cat_threshold", t), f"{where}: cat_threshold")
        if len(bounds) != num_cat + 1 or bounds[0] != 0 or bounds[-1] != len(bits):
            _fail(
                f"{where}: cat_boundaries must be num_cat + 1 = {num_cat + 1} offsets from 0 "
                f"to the {len(bits)} cat_threshold words"
            )
        if (np.diff(bounds) < 0).any():
            _fail(f"{where}: cat_boundaries must not decrease")
        if ((bits < 0) | (bits > 0xFFFFFFFF)).any():
            _fail(f"{where}: cat_threshold holds a value outside 32 bits")
        tokens = self.text("threshold", t).split(" ")
        used = []
        for j in np.flatnonzero(is_cat).tolist():
            token = tokens[j]
            if not token.isascii() or not token.isdigit() or int(token) >= num_cat:
                _fail(
                    f"{where}: threshold[{j}] = {token[:20]!r} of a categorical split must be "
                    f"a category set index in [0, {num_cat})"
                )
            used.append(int(token))
        if sorted(used) != list(range(num_cat)):
            _fail(f"{where}: each of the {num_cat} category sets belongs to exactly one split")

    def _linear(self) -> None:
        linear = self.lines.numbers("is_linear") == 1
        present = self.lines.present("leaf_const")
        self._first(
            present != linear,
            lambda t: (
                f"tree {t}: is_linear = {int(linear[t])} but the linear model lines are "
                + ("present" if present[t] else "missing")
            ),
        )
        top = self.max_feature_idx
        for t in np.flatnonzero(linear).tolist():
            where = f"tree {t}"
            leaves = int(self.leaves[t])
            if _count(self.text("leaf_const", t)) != leaves:
                _fail(f"{where}: leaf_const must have num_leaves = {leaves} values")
            per_leaf = _ints(self.text("num_features", t), f"{where}: num_features")
            features = _ints(self.text("leaf_features", t), f"{where}: leaf_features", False)
            coeffs = self.text("leaf_coeff", t).split()
            if len(per_leaf) != leaves or (per_leaf < 0).any():
                _fail(f"{where}: num_features must be {leaves} counts")
            total = int(per_leaf.sum())
            if len(features) != total or len(coeffs) != total:
                _fail(
                    f"{where}: num_features add up to {total}, but leaf_features has "
                    f"{len(features)} and leaf_coeff {len(coeffs)} values"
                )
            if ((features < 0) | (features > top)).any():
                _fail(f"{where}: leaf_features holds a feature outside [0, {top}]")
