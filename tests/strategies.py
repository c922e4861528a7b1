"""Hypothesis strategies for every kind of value the codec claims to support.

The building blocks are exported one by one (``floats``, ``ndarrays``, ...) so
that a test can target one kind; :func:`values` mixes them all, nested, with
shared references and cycles. Every user-defined type comes from
:mod:`tests.sample_types`, so loading needs ``trusted=sample_types.TRUSTED``.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import pathlib
from collections.abc import Callable
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import strategies as st

from . import sample_types as S

T = st.SearchStrategy[Any]

# -- Python scalars ----------------------------------------------------------------------------

INT64_EDGES = (-(1 << 63) - 1, -(1 << 63), (1 << 63) - 1, 1 << 63, (1 << 64) - 1, 1 << 64)
ints: T = st.one_of(
    st.integers(),
    st.integers(min_value=-(1 << 256), max_value=1 << 256),
    st.sampled_from(INT64_EDGES),
)
SPECIAL_FLOATS = (
    float("nan"),
    float("inf"),
    float("-inf"),
    -0.0,
    0.0,
    5e-324,
    1.7976931348623157e308,
)
floats: T = st.floats() | st.sampled_from(SPECIAL_FLOATS)
complexes: T = st.complex_numbers(allow_nan=True, allow_infinity=True) | st.builds(
    complex, st.sampled_from(SPECIAL_FLOATS), st.sampled_from(SPECIAL_FLOATS)
)
# The header is JSON written with ensure_ascii=True, so lone surrogates survive: include them,
# and the characters JSON and the node format treat specially.
_chars = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),
    st.sampled_from(["$", "\x00", '"', "\\", "\u2028", "\ufeff", "\U0001f600"]),
)
texts: T = st.text(_chars, max_size=12)
short_bytes: T = st.binary(max_size=16)
long_bytes: T = st.binary(min_size=257, max_size=700)  # stored as a buffer, not inline
byte_strings: T = short_bytes | long_bytes
bytearrays: T = byte_strings.map(bytearray)

json_atoms: T = st.none() | st.booleans() | ints | floats | texts

# -- standard library values -----------------------------------------------------------------

_opt_int = st.none() | ints
slices: T = st.builds(slice, _opt_int, _opt_int, _opt_int)
ranges: T = st.builds(range, ints, ints, ints.filter(bool))

_DAY = dt.timedelta(days=1) - dt.timedelta(microseconds=1)
fixed_timezones: T = st.one_of(
    st.just(dt.UTC),
    st.builds(dt.timezone, st.timedeltas(min_value=-_DAY, max_value=_DAY)),
    st.builds(dt.timezone, st.timedeltas(min_value=-_DAY, max_value=_DAY), texts),
)
_tz: T = st.none() | fixed_timezones


def _with_fold(x: Any, fold: int) -> Any:
    return x.replace(fold=fold)


datetimes: T = st.builds(_with_fold, st.datetimes(timezones=_tz), st.integers(0, 1))
times: T = st.builds(_with_fold, st.times(timezones=_tz), st.integers(0, 1))
dates: T = st.dates()
timedeltas: T = st.timedeltas()
decimals: T = st.decimals(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [
        decimal.Decimal(s)
        for s in ("-0", "0E-7", "NaN", "-NaN", "sNaN", "NaN123", "Infinity", "-Infinity", "1E+999")
    ]
)
_path_text = st.text(st.sampled_from("ab./\\: ~"), max_size=10)
# Paths are stored as their parts, as pickle stores them; CPython 3.11 cannot rebuild a
# few odd Windows paths from their parts (PureWindowsPath("/a:") comes back as "a:"),
# for pickle and for us alike, so those are left out.
paths: T = st.builds(
    lambda cls, s: cls(s),
    st.sampled_from([pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath]),
    _path_text,
).filter(lambda p: type(p)(*p.parts) == p)
enums: T = st.sampled_from([*S.Color, *S.Level])
functions: T = st.sampled_from([len, max, np.log1p, np.add, S.module_function, int, list])

stdlib_atoms: T = st.one_of(
    complexes,
    byte_strings,
    bytearrays,
    slices,
    ranges,
    datetimes,
    times,
    dates,
    timedeltas,
    decimals,
    paths,
    enums,
)

# -- numpy dtypes ------------------------------------------------------------------------------

_LONG = [np.dtype(np.longdouble), np.dtype(np.clongdouble)]
_EXTRA_DTYPES = [
    *_LONG,
    *(d.newbyteorder() for d in _LONG),
    *map(np.dtype, ["<M8[10s]", ">m8[25us]", "<M8[2D]", "V1", "V5", ">f2", "<c8"]),
]
_GENERIC_TIME = [np.dtype("M8"), np.dtype(">m8")]  # no unit: arrays of these hold only NaT
simple_dtypes: T = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?", sizes=(16, 32, 64)),
    hnp.complex_number_dtypes(endianness="?"),
    hnp.datetime64_dtypes(min_period="as", endianness="?"),
    hnp.timedelta64_dtypes(min_period="as", endianness="?"),
    hnp.byte_string_dtypes(max_len=6),
    hnp.unicode_string_dtypes(endianness="?", max_len=6),
    st.sampled_from(_EXTRA_DTYPES),
)
# hypothesis has no elements for raw void fields
field_dtypes: T = simple_dtypes.filter(lambda d: d.kind != "V")
_field_names = st.lists(
    st.text(st.characters(categories=["L", "N"]) | st.just("$"), min_size=1, max_size=4),
    min_size=1,
    max_size=4,
    unique=True,
)


@st.composite
def padded_struct_dtypes(draw: Any, depth: int = 0) -> np.dtype[Any]:
    """Structured dtypes with explicit offsets, gaps, trailing padding, subarrays, nesting."""
    names = draw(_field_names)
    formats: list[np.dtype[Any]] = []
    for _ in names:
        base = draw(field_dtypes if depth else field_dtypes | padded_struct_dtypes(depth + 1))
        shape = draw(st.sampled_from([(), (), (2,), (2, 3), (0,)]))
        formats.append(np.dtype((base, shape)) if shape else base)
    offsets = []
    end = 0
    for f in formats:
        end += draw(st.integers(0, 5))
        offsets.append(end)
        end += f.itemsize
    itemsize = max(end + draw(st.integers(0, 7)), 1)
    spec = {"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize}
    return np.dtype(spec)


def _no_titles(d: np.dtype[Any]) -> bool:
    # Field titles are refused at save time (test_unsupported.py).
    return d.fields is None or all(len(v) == 2 for v in d.fields.values())


struct_dtypes: T = st.one_of(
    hnp.array_dtypes(field_dtypes, allow_subarrays=True).filter(_no_titles),
    padded_struct_dtypes(),
)
array_dtypes: T = simple_dtypes | struct_dtypes | st.sampled_from(_GENERIC_TIME)
dtype_objects: T = array_dtypes | st.just(np.dtype(object))

# -- numpy arrays ------------------------------------------------------------------------------

shapes: T = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
LAYOUTS = ("C", "F", "T", "step", "reverse")


def relayout(a: np.ndarray[Any, Any], layout: str) -> np.ndarray[Any, Any]:
    """The same values in another memory layout: F order, a transpose, or a strided view."""
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "T":
        return np.ascontiguousarray(a.T).T  # F-contiguous view, values of a
    if layout == "step" and a.ndim:
        shape = (*a.shape[:-1], 2 * a.shape[-1])
        big = np.zeros(shape, dtype=a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if layout == "reverse" and a.ndim:
        return np.ascontiguousarray(a[::-1])[::-1]
    return a


def _void_array(raw: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    n = raw.shape[-1]
    return np.ascontiguousarray(raw).view(f"V{n}").reshape(raw.shape[:-1])


@st.composite
def _raw_arrays(draw: Any, dtypes: T, shapes: T = shapes) -> np.ndarray[Any, Any]:
    dtype = draw(dtypes)
    shape = draw(shapes)
    if dtype.kind == "V" and dtype.names is None:  # hypothesis has no elements for raw void
        raw = draw(hnp.arrays(np.uint8, (*shape, dtype.itemsize)))
        return _void_array(raw)
    if dtype.kind in "mM" and np.datetime_data(dtype)[0] == "generic":  # holds only NaT
        return np.full(shape, "NaT", dtype=dtype)
    return draw(hnp.arrays(dtype, shape))


@st.composite
def ndarrays(draw: Any, dtypes: T = array_dtypes, shapes: T = shapes) -> np.ndarray[Any, Any]:
    """Arrays of any non-object dtype, any shape (0-d and empty too), in any layout."""
    return relayout(draw(_raw_arrays(dtypes, shapes)), draw(st.sampled_from(LAYOUTS)))


def object_array(items: list[Any], shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """An object array holding exactly ``items`` (never unpacked into sub-arrays)."""
    flat = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        flat[i] = x
    return flat.reshape(shape)


@st.composite
def object_arrays(draw: Any, elements: T) -> np.ndarray[Any, Any]:
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    n = int(np.prod(shape))
    items = draw(st.lists(elements, min_size=n, max_size=n))
    return relayout(object_array(items, shape), draw(st.sampled_from(LAYOUTS)))


@st.composite
def numpy_scalars(draw: Any) -> np.generic:
    """A numpy scalar of each dtype: np.float16(..), np.datetime64(..), np.void(..), ..."""
    a = draw(_raw_arrays(array_dtypes | st.sampled_from(_LONG)))
    if a.size == 0:
        a = np.zeros(1, dtype=a.dtype)
    x = a.reshape(-1)[0]
    if isinstance(x, np.void) and x.dtype.names is not None:
        x = x.copy()  # not a view on the array it came from
    assert isinstance(x, np.generic)
    return x


# -- random generators -------------------------------------------------------------------------

BITGENS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


@st.composite
def random_generators(draw: Any) -> Any:
    """RandomState, Generator or a bare bit generator, each bit generator, mid-stream."""
    bitgen = getattr(np.random, draw(st.sampled_from(BITGENS)))(draw(st.integers(0, 2**64)))
    kind = draw(st.sampled_from(["RandomState", "Generator", "bitgen"]))
    obj: Any = bitgen
    if kind == "RandomState":
        obj = np.random.RandomState(bitgen)
    elif kind == "Generator":
        obj = np.random.Generator(bitgen)
    if kind != "bitgen":
        obj.random(draw(st.integers(0, 700)))  # MT19937 wraps its 624-word key
        if draw(st.booleans()):
            obj.standard_normal()  # RandomState keeps a cached gaussian: has_gauss=1
    else:
        obj.random_raw(draw(st.integers(0, 5)))
    return obj


# -- containers, user types, sharing, cycles ---------------------------------------------------

_hashable_atoms: T = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats,  # NaN too: two NaN objects are two distinct keys
    texts,
    short_bytes,
    long_bytes,
    ranges,
    dates,
    datetimes,
    times,
    timedeltas,
    decimals.filter(lambda d: not d.is_nan()),
    paths,
    enums,  # the same member in a key and in its value: decoding order matters
    complexes.filter(lambda c: c == c),
)
hashables: T = st.recursive(
    _hashable_atoms,
    lambda kids: st.one_of(
        st.lists(kids, min_size=1, max_size=3).map(tuple),
        st.frozensets(kids, min_size=1, max_size=3),
        st.builds(S.Point, kids, kids),
        st.builds(S.Pair, kids, kids),
    ),
    max_leaves=6,
)
str_keys = texts | st.sampled_from(["$", "id", "v", "$ref", "__class__"])


def _defaultdict(factory: Any, pairs: list[tuple[Any, Any]]) -> Any:
    return collections.defaultdict(factory, pairs)


def _plain(attrs: dict[str, Any]) -> S.Plain:
    return S.Plain(**attrs)


def _slotted(a: Any, b: Any, unset: bool) -> S.Slotted:
    s = S.Slotted(a, b)
    if unset:
        del s.b
    return s


def _tagged(cls: type, items: Any, tag: Any) -> Any:
    obj = cls(items)
    if tag is not None:
        obj.tag = tag
    return obj


_attr_names = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True) | st.just("$")


def containers(kids: T) -> T:
    """One level of every container kind around ``kids``."""
    pairs = st.lists(st.tuples(hashables, kids), max_size=4)
    return st.one_of(
        st.lists(kids, max_size=4),
        st.lists(kids, max_size=4).map(tuple),
        st.dictionaries(str_keys, kids, max_size=4),
        st.dictionaries(hashables, kids, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        pairs.map(collections.OrderedDict),
        st.builds(_defaultdict, st.sampled_from([list, int, set, None]), pairs),
        object_arrays(kids),
        st.builds(S.Point, kids, kids),
        st.builds(S.Pair, kids, kids),
        st.builds(_plain, st.dictionaries(_attr_names, kids, max_size=3)),
        st.builds(_slotted, kids, kids, st.booleans()),
        st.builds(S.SlottedChild, kids, kids, c=kids),
        st.builds(S.WithState, kids),
        st.builds(S.Reduced, kids, kids),
        st.builds(_tagged, st.just(S.MyList), st.lists(kids, max_size=3), st.none() | kids),
        st.builds(
            _tagged,
            st.just(S.MyDict),
            st.dictionaries(hashables, kids, max_size=3),
            st.none() | kids,
        ),
        st.builds(S.Node, kids, st.none() | st.builds(S.Node, kids)),
    )


# Long lists of scalars are packed into binary columns by the encoder: cover each column kind.
scalar_lists: T = st.one_of(
    st.lists(st.floats(), min_size=64, max_size=90),
    st.lists(st.integers(-(1 << 63), (1 << 63) - 1), min_size=64, max_size=90),
    st.lists(ints, min_size=64, max_size=90),  # with big ints: not packable
    st.lists(texts, min_size=64, max_size=90),
    st.lists(json_atoms, min_size=64, max_size=90),
    # str-keyed dicts of scalars: packed as a keys column and a scalars node (sdict)
    st.dictionaries(texts, json_atoms, min_size=64, max_size=90),
    st.dictionaries(texts, st.integers(-(1 << 63), (1 << 63) - 1), min_size=64, max_size=90),
)

leaves: T = st.one_of(
    json_atoms,
    stdlib_atoms,
    functions,
    ndarrays(),
    numpy_scalars(),
    dtype_objects,
    random_generators(),
)


def nested(max_leaves: int = 10) -> T:
    """Every kind, nested."""
    return st.recursive(leaves | scalar_lists, containers, max_leaves=max_leaves)


def _mutables(kids: T) -> T:
    return st.one_of(
        st.lists(kids, max_size=3),
        st.dictionaries(str_keys, kids, max_size=3),
        st.dictionaries(ints, kids, max_size=3),
        st.sets(hashables, max_size=3),
        st.builds(bytearray, short_bytes),
        ndarrays(),
        object_arrays(kids),
        st.builds(_plain, st.dictionaries(_attr_names, kids, max_size=3)),
        st.builds(_tagged, st.just(S.MyList), st.lists(kids, max_size=3), st.none()),
        st.lists(hashables, min_size=1, max_size=3).map(tuple),
        st.frozensets(hashables, min_size=1, max_size=3),
        random_generators(),
        long_bytes,
    )


def _place_twice(x: Any, how: str, other: Any) -> Any:
    if how == "list":
        return [x, other, x]
    if how == "dict":
        return {"a": x, "b": [other, x]}
    if how == "intdict":
        return {1: x, 2: (x, other)}
    if how == "tuple":
        return (x, [x], other)
    if how == "object":
        return S.Plain(first=x, second={"again": x}, other=other)
    if how == "array":
        return object_array([x, other, x], (3,))
    if how == "odict":
        return collections.OrderedDict(a=x, b=x, c=other)
    return S.Reduced(x, [x, other])


@st.composite
def shared(draw: Any, kids: T) -> Any:
    """The same object at two or more places, next to an equal but distinct copy of it."""
    import copy

    x = draw(_mutables(kids))
    other = copy.deepcopy(x) if draw(st.booleans()) else draw(kids)
    how = draw(st.sampled_from(["list", "dict", "intdict", "tuple", "object", "array", "odict",
                                "reduce"]))  # fmt: skip
    return _place_twice(x, how, other)


def _cyclic_list(k: Any) -> Any:
    a: list[Any] = [k]
    a.append(a)
    return a


def _cyclic_dict(k: Any) -> Any:
    d: dict[Any, Any] = {"k": k}
    d["self"] = d
    return d


def _cyclic_intdict(k: Any) -> Any:
    d: dict[Any, Any] = {0: k}
    d[1] = [d]
    return d


def _cyclic_object(k: Any) -> Any:
    p = S.Plain(k=k)
    p.me = p
    return p


def _tuple_in_list(k: Any) -> Any:
    # entered through the list: [t] -> t -> list -> t
    lst: list[Any] = [k]
    t = (lst, k)
    lst.append(t)
    return lst


def _set_holding_owner(k: Any) -> Any:
    s: set[Any] = set()
    h = S.Holder(s)
    h.k = k  # type: ignore[attr-defined]
    s.add(h)
    return s


def _object_array_self(k: Any) -> Any:
    a = np.empty(3, dtype=object)
    a[0], a[1], a[2] = a, k, [a]
    return a


def _odict_self(k: Any) -> Any:
    d: collections.OrderedDict[Any, Any] = collections.OrderedDict(k=k)
    d["self"] = d
    return d


def _ddict_self(k: Any) -> Any:
    d: collections.defaultdict[Any, Any] = collections.defaultdict(list, k=k)
    d["self"] = d
    return d


def _mylist_self(k: Any) -> Any:
    m = S.MyList([k])
    m.append(m)
    m.tag = m
    return m


def _mydict_self(k: Any) -> Any:
    m = S.MyDict(k=k)
    m["self"] = m
    return m


def _withstate_self(k: Any) -> Any:
    w = S.WithState()
    w.value = [w, k]
    return w


def _ring(k: Any) -> Any:
    a, b = S.Node(k), S.Node(k)
    a.next, b.next = b, a
    return [a, b]


def _dict_key_points_back(k: Any) -> Any:
    d: dict[Any, Any] = {}
    h = S.Holder(d)
    d[h] = k
    return d


def _namedtuple_through_list(k: Any) -> Any:
    lst: list[Any] = [k]
    p = S.Point(lst, k)
    lst.append(p)
    return {"list": lst}


CYCLES: dict[str, Callable[[Any], Any]] = {
    f.__name__.lstrip("_"): f
    for f in (
        _cyclic_list,
        _cyclic_dict,
        _cyclic_intdict,
        _cyclic_object,
        _tuple_in_list,
        _set_holding_owner,
        _object_array_self,
        _odict_self,
        _ddict_self,
        _mylist_self,
        _mydict_self,
        _withstate_self,
        _ring,
        _dict_key_points_back,
        _namedtuple_through_list,
    )
}


def _tuple_first(k: Any) -> Any:
    # entered through the tuple: t -> list -> t
    lst: list[Any] = [k]
    t = (lst,)
    lst.append(t)
    return {"t": t}


def _frozenset_first(k: Any) -> Any:
    h = S.Holder(None)
    fs = frozenset([h, 1])
    h.func = fs
    return [fs]


def _namedtuple_first(k: Any) -> Any:
    h = S.Holder(None)
    p = S.Point(h, k)
    h.func = p
    return [p]


# Cycles entered through an immutable container: the tuple is built after its items, so
# decoding must find it already built inside them (pickle's POP_MARK case).
IMMUTABLE_FIRST_CYCLES: dict[str, Callable[[Any], Any]] = {
    "tuple_first": _tuple_first,
    "frozenset_first": _frozenset_first,
    "namedtuple_first": _namedtuple_first,
}


@st.composite
def cycles(draw: Any, kids: T) -> Any:
    """A structure that contains itself, in each way the object graph allows."""
    table = {**CYCLES, **IMMUTABLE_FIRST_CYCLES}
    make = table[draw(st.sampled_from(sorted(table)))]
    return make(draw(kids))


def values(max_leaves: int = 10) -> T:
    """Anything the codec supports: nested kinds, shared references and cycles, mixed."""
    base = nested(max_leaves)
    small = nested(4)
    return st.one_of(
        base,
        shared(small),
        cycles(small),
        st.lists(base | shared(small) | cycles(small), max_size=3),
    )
