"""scipy.sparse: the conformance suite over every format and class, exact round trips,
behaviour after loading, and hostile files.

Hostile files are crafted from the byte layout (``_crafting.craft``), from the parts of a
real matrix with one invariant broken at a time, next to the untampered file as a
positive control. They are loaded in a child process under an address-space cap: each
must end in a FormatError naming the class and the invariant, and the child must never
die of a signal.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

import modelsafe
from modelsafe import FormatError, UnsupportedTypeError, UntrustedTypesError

from .._crafting import GIB, HERE, craft, rewrite, run_limited, split, used_types
from ..compare import array_values_equal, assert_same
from .conformance import HandlerConformance

FORMATS = ("csr", "csc", "bsr", "coo", "dia", "lil", "dok")
KINDS = ("matrix", "array")
TOP32 = 2**31 - 1


# -- samples -------------------------------------------------------------------------------


def dense(shape: tuple[int, ...], density: float, seed: int, dtype: Any = np.float64) -> Any:
    """A random dense array with about ``density`` of its entries non-zero."""
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < density
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return mask
    if dt.kind in "iu":
        values: Any = rng.integers(1, 100, size=shape)
    else:
        values = rng.standard_normal(shape)
        if dt.kind == "c":
            values = values + 1j * rng.standard_normal(shape)
    return (values * mask).astype(dt)


def kind_of(m: Any) -> str:
    return "array" if isinstance(m, sp.sparray) else "matrix"


def wide(m: Any) -> Any:
    """``m`` with int64 index arrays, which scipy's matrix constructors would narrow."""
    m = m.copy()
    for name in ("indices", "indptr", "offsets"):
        if hasattr(m, name):
            setattr(m, name, getattr(m, name).astype(np.int64))
    if m.format == "coo":
        m.coords = tuple(c.astype(np.int64) for c in m.coords)
    return m


def variants(fmt: str, kind: str) -> dict[str, Any]:
    """One class: typical, large (arrays in buffers of their own), empty, no entries, ..."""
    cls = getattr(sp, f"{fmt}_{kind}")
    kw = {"blocksize": (2, 3)} if fmt == "bsr" else {}
    seed = FORMATS.index(fmt) * 2 + KINDS.index(kind)
    if fmt == "dia":  # diagonals: a band, as DIA is for
        make = cls
        cls = lambda x, **kw: make(np.triu(np.tril(x, 3), -4), **kw)  # noqa: E731
    typical = cls(dense((30, 24), 0.2, seed), **kw)
    out = {
        "typical": typical,
        "large": cls(dense((200, 150), 0.5, seed + 100), **kw),
        "float32": cls(dense((8, 6), 0.5, seed, np.float32), **kw),
        "int8": cls(dense((8, 6), 0.5, seed, np.int8), **kw),
        "empty": getattr(sp, f"{fmt}_{kind}")((0, 0)),
        "no entries": getattr(sp, f"{fmt}_{kind}")((6, 9), **kw),
        "same again": typical,  # one object twice: loads as one object
    }
    if fmt not in ("lil", "dok"):
        out["int64 indices"] = wide(typical)
    return out


def non_canonical() -> dict[str, Any]:
    """Stored exactly as they are: unsorted, duplicated, unused entries after indptr[-1]."""
    indptr = np.array([0, 3, 3, 7, 8], np.int32)
    indices = np.array([4, 1, 4, 2, 0, 2, 5, 1, 3, 0], np.int32)
    out: dict[str, Any] = {}
    for fmt, kind in itertools.product(("csr", "csc"), KINDS):
        shape = (4, 6) if fmt == "csr" else (6, 4)
        m = getattr(sp, f"{fmt}_{kind}")((np.arange(1.0, 9.0), indices[:8], indptr), shape=shape)
        m.indices, m.data = indices, np.arange(1.0, 11.0)  # the constructor drops the tail
        out[f"{fmt}_{kind}"] = m
        checked = m.copy()
        _ = checked.has_sorted_indices, checked.has_canonical_format  # cached as False
        out[f"{fmt}_{kind} flags known"] = checked
    row, col = np.array([2, 0, 2, 1, 0]), np.array([1, 3, 1, 0, 3])
    for kind in KINDS:
        coo = getattr(sp, f"coo_{kind}")((np.arange(1.0, 6.0), (row, col)), shape=(3, 4))
        out[f"coo_{kind} duplicates"] = coo
        summed = coo.copy()
        summed.sum_duplicates()
        out[f"coo_{kind} canonical"] = summed
    return out


NUMERIC = (
    "?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8",
    "f4", "f8", "g", "c8", "c16", "G", ">f8", ">i4",
)  # fmt: skip


def dtypes() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in NUMERIC:
        dt = np.dtype(code)
        values = dense((7, 5), 0.4, 3, dt.newbyteorder("="))
        m = sp.csr_array(values)
        m.data = m.data.astype(dt)  # big-endian data: kept as it is
        out[f"csr {dt.str}"] = m
        out[f"lil {dt.str}"] = sp.lil_matrix(values)
        out[f"dok {dt.str}"] = sp.dok_array(values)
        out[f"coo {dt.str}"] = sp.coo_matrix(values)
    return out


def shapes() -> dict[str, Any]:
    beyond = sp.dia_matrix(np.arange(1.0, 26.0).reshape(5, 5))
    beyond.resize(3, 5)  # keeps diagonals that are now outside the matrix
    lil = sp.lil_array((3, 4), dtype=np.int8)
    lil[0, 1] = 5  # numpy scalars in the lists, as scipy's setter stores them
    lil[2, [3, 1]] = [1, 2]
    return {
        "csr 1-D": sp.csr_array(np.array([0.0, 1.5, 0.0, -2.0])),
        "coo 1-D": sp.coo_array(np.array([0, 3, 0, 0, 7])),
        "dok 1-D": sp.dok_array(np.array([0.0, 0.0, 4.0])),
        "csr 1-D empty": sp.csr_array((0,)),
        "coo 3-D": sp.coo_array(dense((3, 4, 5), 0.3, 5)),
        "coo 4-D empty": sp.coo_array((2, 0, 3, 1)),
        "dia beyond": beyond,
        "lil by setitem": lil,
        "bsr 1x1": sp.bsr_array(dense((5, 7), 0.3, 6), blocksize=(1, 1)),
        "maxprint": sp.csr_matrix(np.eye(4), maxprint=7),
        "dia offsets at the limit": sp.dia_array(
            (np.ones((3, 4)), np.array([-(TOP32 // 4), TOP32 // 4, 0], np.int32)), shape=(4, 4)
        ),
    }


# -- comparing ------------------------------------------------------------------------------


def assert_equivalent(a: Any, b: Any, path: str = "root", memo: Any = None) -> None:
    """Containers recursively; sparse objects by class, shape, dtype, every stored array
    byte for byte, the cached flags, and behaviour; one object stays one object."""
    memo = memo if memo is not None else ({}, set())
    if sp.issparse(a):
        fwd, outputs = memo
        if id(a) in fwd:
            assert fwd[id(a)] is b, f"{path}: one matrix in the input became two"
            return
        assert id(b) not in outputs, f"{path}: two matrices in the input became one"
        fwd[id(a)] = b
        outputs.add(id(b))
        same_sparse(a, b, path)
        same_behaviour(a, b, path)
    elif type(a) is dict:
        assert type(b) is dict and list(a) == list(b), f"{path}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_equivalent(a[k], b[k], f"{path}[{k!r}]", memo)
    elif type(a) in (list, tuple):
        assert type(a) is type(b) and len(a) == len(b), f"{path}: {a!r} != {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_equivalent(x, y, f"{path}[{i}]", memo)
    else:
        assert_same(a, b, path=path)


def same_values(x: list[Any], y: list[Any], dtype: Any, path: str) -> None:
    assert len(x) == len(y), f"{path}: {len(x)} values became {len(y)}"
    assert array_values_equal(np.array(x, dtype=dtype), np.array(y, dtype=dtype)), path


def same_sparse(a: Any, b: Any, path: str) -> None:
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    assert a.shape == b.shape, f"{path}: shape {a.shape} became {b.shape}"
    assert a.dtype.str == b.dtype.str, f"{path}: dtype {a.dtype.str} became {b.dtype.str}"
    assert a.maxprint == b.maxprint, f"{path}: maxprint {a.maxprint} became {b.maxprint}"
    va, vb = vars(a), vars(b)
    assert sorted(va) == sorted(vb), f"{path}: attributes {sorted(va)} became {sorted(vb)}"
    if a.format == "lil":
        assert [[int(c) for c in r] for r in a.rows] == b.rows.tolist(), f"{path}: rows differ"
        assert {type(c) for r in b.rows for c in r} <= {int}, f"{path}: columns are not ints"
        flat = itertools.chain.from_iterable
        same_values(list(flat(a.data)), list(flat(b.data)), a.dtype, f"{path}.data")
    elif a.format == "dok":
        assert list(a.keys()) == list(b.keys()), f"{path}: keys or their order differ"
        same_values(list(a.values()), list(b.values()), a.dtype, f"{path}.values()")
    else:
        for k in va:
            assert_same(va[k], vb[k], path=f"{path}.{k}")


def same_behaviour(a: Any, b: Any, path: str) -> None:
    assert array_values_equal(a.toarray(), b.toarray()), f"{path}: toarray() differs"
    if a.ndim <= 2:
        x = np.arange(1.0, a.shape[-1] + 1.0)
        assert array_values_equal(np.asarray(a @ x), np.asarray(b @ x)), f"{path}: m @ x differs"


# -- the conformance suite ----------------------------------------------------------------------


class TestScipySparse(HandlerConformance):
    library = ("scipy",)
    samples: ClassVar[dict[str, Callable[[], Any]]] = {
        **{f"{f}_{k}": partial(variants, f, k) for f in FORMATS for k in KINDS},
        "non-canonical": non_canonical,
        "dtypes": dtypes,
        "shapes": shapes,
    }

    def assert_equal(self, expected: Any, got: Any) -> None:
        assert_equivalent(expected, got)


# -- exactness, readability, trust ------------------------------------------------------------


def test_stored_order_index_dtype_and_unused_entries_are_kept() -> None:
    """What scipy's constructors would change (narrowing int64 indices, dropping entries
    after indptr[-1]) comes back as it was saved."""
    m = non_canonical()["csr_matrix"]
    m = wide(m)
    m.indices = np.array([4, 1, 4, 2, 0, 2, 5, 1, 3, 0], np.int64)  # wide() pruned the tail
    m.data = np.arange(1.0, 11.0)
    got = modelsafe.loads(modelsafe.dumps(m))
    assert got.indices.dtype == np.int64 and got.indptr.dtype == np.int64
    assert got.indices.tolist() == [4, 1, 4, 2, 0, 2, 5, 1, 3, 0]
    assert got.data.tolist() == list(np.arange(1.0, 11.0))
    assert not got.has_sorted_indices and not got.has_canonical_format
    assert sp.csr_matrix((m.data, m.indices, m.indptr), shape=m.shape).indices.dtype == np.int32


def test_header_uses_public_names_only() -> None:
    objs = {
        "csr": sp.csr_matrix(np.eye(3)),
        "coo": sp.coo_array(np.eye(3)),
        "dok": sp.dok_array(np.eye(3)),
        "lil": sp.lil_matrix(np.eye(3)),
    }
    header = split(modelsafe.dumps(objs)).header
    assert header["types"] == [
        "numpy.ndarray",
        "scipy.sparse.coo_array",
        "scipy.sparse.csr_matrix",
        "scipy.sparse.dok_array",
        "scipy.sparse.lil_matrix",
    ]
    root = header["root"]
    assert root["csr"]["$"] == "sp.sparse"
    assert {k: root["csr"][k] for k in ("format", "kind", "shape")} == {
        "format": "csr",
        "kind": "matrix",
        "shape": [3, 3],
    }
    assert set(root["coo"]) == {"$", "format", "kind", "shape", "data", "coords", "canonical"}
    text = json.dumps(root)
    for private in ("_shape", "_has_", "_dict", "has_canonical_format", "maxprint", "rows"):
        assert private not in text, private


def test_default_trust_needs_no_trusted_argument(tmp_path: Path) -> None:
    model = {f"{f}_{k}": variants(f, k)["typical"] for f in FORMATS for k in KINDS}
    path = tmp_path / "model.msafe"
    modelsafe.save(model, path, fsync=False)
    assert modelsafe.untrusted_types(path) == []
    assert_equivalent(model, modelsafe.load(path))


def test_data_is_a_view_of_the_file_and_index_arrays_are_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only map gives read-only views; the index arrays, checked and then read by
    scipy's compiled code, are writable copies in the process's memory instead
    (tests/test_rewritten_file.py rewrites the file under them). The file is mapped
    however small (a load reads a small one whole, where nothing needs copying)."""
    from modelsafe._container import reader

    monkeypatch.setattr(reader, "SMALL_FILE", 0)
    m = variants("csr", "matrix")["large"]
    path = tmp_path / "m.msafe"
    modelsafe.save(m, path, fsync=False)
    got = modelsafe.load(path, mmap="r")
    assert not got.data.flags.owndata and not got.data.flags.writeable
    for name in ("indices", "indptr"):
        arr = getattr(got, name)
        assert arr.flags.writeable, name
        assert not np.shares_memory(arr, got.data), name
        np.testing.assert_array_equal(arr, getattr(m, name))


OPS: dict[str, Callable[[Any], Any]] = {
    "rmatvec": lambda m: m.T @ np.ones(m.shape[0]),
    "matmat": lambda m: m @ np.ones((m.shape[1], 3)),
    "sum": lambda m: m.sum(axis=0),
    "arithmetic": lambda m: (m * 2 + m).toarray(),
    "conversions": lambda m: m.tocsc().tocoo().todok().tolil().tocsr().toarray(),
    "max": lambda m: m.tocsr().max(axis=1).toarray(),
    "rows": lambda m: m.tocsr()[3:9].toarray(),
    "product": lambda m: (m @ m.T).toarray(),
}


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("fmt", FORMATS)
def test_loaded_matrices_behave_like_the_originals(fmt: str, op: str) -> None:
    m = variants(fmt, "matrix")["typical"]
    got = modelsafe.loads(modelsafe.dumps(m))
    assert array_values_equal(np.asarray(OPS[op](got)), np.asarray(OPS[op](m)))


def test_index_arrays_are_never_shared_data_is() -> None:
    """An index array is stored once per matrix (a reader refuses shared ones: another part
    of the file could change them after they were checked); data sharing is kept."""
    a = sp.csr_matrix(dense((5, 4), 0.5, 1))
    b = sp.csr_matrix(a.shape)
    b.data, b.indices, b.indptr = a.data, a.indices, a.indptr  # shares all three
    blob = modelsafe.dumps([a, b])
    root = split(blob).header["root"]
    assert root[1]["data"]["$"] == "ref" and "id" in root[0]["data"]
    assert all(r[k]["$"] == "nd" and "id" not in r[k] for r in root for k in ("indices", "indptr"))
    ga, gb = modelsafe.loads(blob)
    assert gb.data is ga.data and gb.indices is not ga.indices
    assert_equivalent(a, ga)
    assert np.array_equal(gb.toarray(), b.toarray())


def test_order_flags_are_checked_as_scipy_defines_them() -> None:
    """A flag in a file is accepted exactly when scipy, computing it, would set it: csr's
    from ``has_sorted_indices``/``has_canonical_format``, coo's from what
    ``sum_duplicates`` (which makes a coo canonical) leaves unchanged."""
    rng = np.random.default_rng(0)
    for _ in range(150):
        rows, cols, nnz = (int(x) for x in rng.integers(1, [7, 6, 12]))
        indices = rng.integers(0, cols, nnz).astype(np.int32)
        cuts = np.sort(rng.integers(0, nnz + 1, rows - 1))
        indptr = np.concatenate([[0], cuts, [nnz]]).astype(np.int32)
        if rng.random() < 0.5:  # sorted rows, sometimes with duplicates
            indices = np.concatenate([np.sort(indices[a:b]) for a, b in itertools.pairwise(indptr)])
        ref = sp.csr_matrix((np.ones(nnz), indices, indptr), shape=(rows, cols))
        for flag in ("sorted", "canonical"):
            m = sp.csr_matrix((rows, cols))
            m.data, m.indices, m.indptr = ref.data, indices, indptr
            blob = sparse_file(m, members={flag: True})
            accepted = _loads_or_none(blob) is not None
            assert accepted == bool(
                getattr(ref, f"has_{flag}_indices" if flag == "sorted" else "has_canonical_format")
            )
        coords = [rng.integers(0, 3, nnz), rng.integers(0, 3, nnz)]
        if rng.random() < 0.5:
            order = np.lexsort(coords[::-1])
            coords = [c[order] for c in coords]
        coo = sp.coo_array((np.ones(nnz), coords), shape=(3, 3))
        summed = coo.copy()
        summed.has_canonical_format = False
        summed.sum_duplicates()
        canonical = all(
            np.array_equal(a, b) for a, b in zip(coo.coords, summed.coords, strict=True)
        )
        canonical = canonical and len(summed.data) == nnz
        assert (
            _loads_or_none(sparse_file(coo, members={"canonical": True})) is not None
        ) == canonical


def _loads_or_none(blob: bytes) -> Any:
    try:
        return modelsafe.loads(blob)
    except FormatError as exc:
        assert "it is marked" in str(exc), exc
        return None


# -- the writer refuses what a reader would refuse ----------------------------------------------


def test_writer_refuses_a_broken_matrix() -> None:
    m = sp.csr_matrix(np.eye(4))
    m.indices = np.array([0, 1, 2, 9], np.int32)  # as a bug in user code could leave it
    with pytest.raises(UnsupportedTypeError, match=r"indices\[3\] = 9 is outside \[0, 4\)") as e:
        modelsafe.dumps({"X": m})
    assert "root['X']" in str(e.value)


def test_writer_leaves_out_a_flag_the_indices_contradict() -> None:
    m = non_canonical()["csr_array"]
    m.has_sorted_indices = True  # false: scipy would skip sorting on this promise
    root = split(modelsafe.dumps(m)).header["root"]
    assert "sorted" not in root
    assert not modelsafe.loads(modelsafe.dumps(m)).has_sorted_indices


def test_writer_refuses_a_dia_too_far_for_scipys_own_arithmetic() -> None:
    """scipy builds it, but its products would overflow int32 offsets (docs/handlers/scipy.md)."""
    m = sp.dia_matrix((np.ones((2, 4)), np.array([2**30, 0], np.int32)), shape=(4, 4))
    with pytest.raises(UnsupportedTypeError, match=r"offsets\[0\] = 1073741824 is outside"):
        modelsafe.dumps(m)


def test_writer_refuses_extra_attributes() -> None:
    m = sp.coo_array(np.eye(2))
    m.note = "hello"
    with pytest.raises(UnsupportedTypeError, match=r"attributes modelsafe does not store.*note"):
        modelsafe.dumps(m)


# -- hostile files: crafted from the parts of a real matrix -------------------------------------


def parts(m: Any) -> dict[str, Any]:
    """A matrix's members as docs/handlers/scipy.md defines them."""
    if m.format in ("csr", "csc", "bsr"):
        return {"data": m.data, "indices": m.indices, "indptr": m.indptr}
    if m.format == "coo":
        return {"data": m.data, "coords": list(m.coords)}
    if m.format == "dia":
        return {"data": m.data, "offsets": m.offsets}
    flat = itertools.chain.from_iterable
    if m.format == "lil":
        lengths = [len(r) for r in m.rows]
        return {
            "data": np.array(list(flat(m.data)), dtype=m.dtype),
            "indices": np.array(list(flat(m.rows)), dtype=np.int32),
            "indptr": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
        }
    keys = list(m.keys())
    return {
        "data": np.array(list(m.values()), dtype=m.dtype),
        "coords": [np.array([k[d] for k in keys], dtype=np.int32) for d in range(2)],
    }


def sparse_file(m: Any, members: dict[str, Any] | None = None, **arrays: Any) -> bytes:
    """A file holding ``m``, each array in a buffer of its own; ``arrays`` replace arrays,
    ``members`` replace other members of the node."""
    buffers: list[bytes] = []

    def nd(a: Any) -> dict[str, Any]:
        a = np.ascontiguousarray(a)
        node: dict[str, Any] = {"$": "nd", "dtype": a.dtype.str, "shape": list(a.shape)}
        if a.nbytes:
            node["buf"] = len(buffers)
            buffers.append(a.tobytes())
        return node

    root: dict[str, Any] = {"$": "sp.sparse", "format": m.format, "kind": kind_of(m)}
    root["shape"] = list(m.shape)
    for k, v in {**parts(m), **arrays}.items():
        root[k] = [nd(c) for c in v] if k == "coords" else nd(v)
    flags = {"sorted": "_has_sorted_indices", "canonical": "_has_canonical_format"}
    if m.format == "coo":
        flags = {"canonical": "has_canonical_format"}
    root |= {k: vars(m)[a] for k, a in flags.items() if a in vars(m)}
    root.update(members or {})
    types = ["numpy.ndarray", f"scipy.sparse.{root['format']}_{root['kind']}"]
    return craft(root, buffers, types=types)


def _set(a: Any, at: Any, value: Any) -> Any:
    a = np.array(a)
    a[at] = value
    return a


def _coord(base: str, k: int, change: Callable[[Any], Any]) -> list[Any]:
    """The coordinate arrays of ``BASES[base]``, with array ``k`` changed."""
    coords = list(_P[base]["coords"])
    coords[k] = change(coords[k])
    return coords


CSR = sp.csr_matrix(dense((6, 5), 0.5, 1))
CSC = sp.csc_array(dense((6, 5), 0.5, 2))
BSR = sp.bsr_matrix(dense((6, 6), 0.5, 3), blocksize=(2, 3))
COO = sp.coo_matrix(dense((6, 5), 0.5, 4))
COO3 = sp.coo_array(dense((3, 4, 5), 0.3, 5))
DIA = sp.dia_array(dense((5, 6), 0.5, 6))
LIL = sp.lil_matrix(dense((6, 5), 0.5, 7))
DOK = sp.dok_array(dense((6, 5), 0.5, 8))
BASES = {"csr": CSR, "csc": CSC, "bsr": BSR, "coo": COO, "coo 3-D": COO3, "dia": DIA}
BASES |= {"lil": LIL, "dok": DOK}

_P = {name: parts(m) for name, m in BASES.items()}
_UNSORTED = sp.csr_matrix(
    (np.ones(3), np.array([3, 1, 2], np.int32), np.array([0, 3, 3], np.int32)), shape=(2, 5)
)
_DUPLICATED = sp.coo_array((np.ones(3), (np.array([1, 1, 0]), np.array([2, 2, 0]))), shape=(2, 3))

# name -> (file, class named in the error, the invariant it names)
HOSTILE: dict[str, tuple[Callable[[], bytes], str, str]] = {
    # csr, csc, bsr
    "csr: index beyond the column count": (
        lambda: sparse_file(CSR, indices=_set(_P["csr"]["indices"], 3, 900)),
        "csr_matrix", "indices[3] = 900 is outside [0, 5)",
    ),
    "csr: negative index": (
        lambda: sparse_file(CSR, indices=_set(_P["csr"]["indices"], 0, -7)),
        "csr_matrix", "indices[0] = -7 is outside [0, 5)",
    ),
    "csr: indptr decreases": (
        lambda: sparse_file(CSR, indptr=_set(_P["csr"]["indptr"], 2, CSR.nnz)),
        "csr_matrix", "indptr decreases: indptr[3]",
    ),
    "csr: indptr[-1] beyond the stored entries": (
        lambda: sparse_file(CSR, indptr=_set(_P["csr"]["indptr"], -1, CSR.nnz + 50)),
        "csr_matrix", f"indptr[-1] = {CSR.nnz + 50} is beyond the {CSR.nnz} stored entries",
    ),
    "csr: indptr does not start at 0": (
        lambda: sparse_file(CSR, indptr=_set(_P["csr"]["indptr"], 0, 1)),
        "csr_matrix", "indptr[0] = 1, not 0",
    ),
    "csr: indptr too short": (
        lambda: sparse_file(CSR, indptr=_P["csr"]["indptr"][:-1]),
        "csr_matrix", "indptr has 6 entries; shape (6, 5) needs 7",
    ),
    "csr: float indices": (
        lambda: sparse_file(CSR, indices=_P["csr"]["indices"].astype(np.float64)),
        "csr_matrix", "indices has dtype float64; index arrays must be int32 or int64",
    ),
    "csr: int16 indices": (
        lambda: sparse_file(CSR, indices=_P["csr"]["indices"].astype(np.int16)),
        "csr_matrix", "indices has dtype int16",
    ),
    "csr: index dtypes differ": (
        lambda: sparse_file(CSR, indptr=_P["csr"]["indptr"].astype(np.int64)),
        "csr_matrix", "indices (int32) and indptr (int64) differ in dtype",
    ),
    "csr: data shorter than indices": (
        lambda: sparse_file(CSR, data=_P["csr"]["data"][:-1]),
        "csr_matrix", f"data has {CSR.nnz - 1} entries but indices {CSR.nnz}",
    ),
    "csr: 2-D data": (
        lambda: sparse_file(CSR, data=_P["csr"]["data"].reshape(-1, 1)),
        "csr_matrix", "data must be 1-D",
    ),
    "csr: shape beyond int32 indices": (
        lambda: sparse_file(CSR, members={"shape": [6, 2**31]}),
        "csr_matrix", "dimension 2147483648 does not fit the int32 index arrays",
    ),
    "csr: string data": (
        lambda: sparse_file(CSR, data=np.array(["x"] * CSR.nnz)),
        "csr_matrix", "scipy.sparse holds booleans and numbers only",
    ),
    "csr: marked sorted, but not": (
        lambda: sparse_file(_UNSORTED, members={"sorted": True}),
        "csr_matrix", "it is marked sorted",
    ),
    "csr: marked canonical, but not": (
        lambda: sparse_file(_UNSORTED, members={"canonical": True}),
        "csr_matrix", "it is marked canonical",
    ),
    "csc: index beyond the row count": (
        lambda: sparse_file(CSC, indices=_set(_P["csc"]["indices"], 1, 6)),
        "csc_array", "indices[1] = 6 is outside [0, 6)",
    ),
    "bsr: blocksize does not divide the shape": (
        lambda: sparse_file(BSR, data=np.zeros((len(BSR.indices), 4, 3))),
        "bsr_matrix", "blocksize (4, 3) does not divide shape (6, 6)",
    ),
    "bsr: empty blocks": (
        lambda: sparse_file(BSR, data=np.zeros((len(BSR.indices), 0, 3))),
        "bsr_matrix", "blocksize (0, 3) does not divide",
    ),
    "bsr: block column beyond the shape": (
        lambda: sparse_file(BSR, indices=_set(_P["bsr"]["indices"], 0, 2)),
        "bsr_matrix", "indices[0] = 2 is outside [0, 2)",
    ),
    "bsr: data not 3-D": (
        lambda: sparse_file(BSR, data=_P["bsr"]["data"].reshape(len(BSR.indices), -1)),
        "bsr_matrix", "data must be 3-D",
    ),
    # coo
    "coo: row beyond the shape": (
        lambda: sparse_file(COO, coords=_coord("coo", 0, lambda c: _set(c, 2, 6))),
        "coo_matrix", "coords[0][2] = 6 is outside [0, 6)",
    ),
    "coo: negative column": (
        lambda: sparse_file(COO, coords=_coord("coo", 1, lambda c: _set(c, 0, -1))),
        "coo_matrix", "coords[1][0] = -1 is outside [0, 5)",
    ),
    "coo: coordinates shorter than data": (
        lambda: sparse_file(COO, coords=_coord("coo", 1, lambda c: c[:-1])),
        "coo_matrix", f"coords[1] has {COO.nnz - 1} entries but data {COO.nnz}",
    ),
    "coo: float coordinates": (
        lambda: sparse_file(COO, coords=_coord("coo", 0, lambda c: c.astype(float))),
        "coo_matrix", "coords[0] has dtype float64",
    ),
    "coo: coordinate dtypes differ": (
        lambda: sparse_file(COO, coords=_coord("coo", 1, lambda c: c.astype(np.int64))),
        "coo_matrix", "coordinate arrays differ in dtype",
    ),
    "coo: marked canonical, with duplicates": (
        lambda: sparse_file(_DUPLICATED, members={"canonical": True}),
        "coo_array", "it is marked canonical",
    ),
    "coo 3-D: index beyond the last dimension": (
        lambda: sparse_file(COO3, coords=_coord("coo 3-D", 2, lambda c: _set(c, -1, 5))),
        "coo_array", f"coords[2][{COO3.nnz - 1}] = 5 is outside [0, 5)",
    ),
    # dia
    "dia: more diagonals than offsets": (
        lambda: sparse_file(DIA, offsets=_P["dia"]["offsets"][:-1]),
        "dia_array", f"data has {len(DIA.offsets)} diagonals but offsets {len(DIA.offsets) - 1}",
    ),
    "dia: a diagonal twice": (
        lambda: sparse_file(DIA, offsets=np.zeros(len(DIA.offsets), np.int32)),
        "dia_array", "offsets name a diagonal twice",
    ),
    "dia: offset at the int32 minimum": (
        lambda: sparse_file(DIA, offsets=_set(_P["dia"]["offsets"], 0, -(2**31))),
        "dia_array", "offsets[0] = -2147483648 is outside [-536870911, 536870911]",
    ),
    "dia: offset too far for scipy's products": (
        lambda: sparse_file(DIA, offsets=_set(_P["dia"]["offsets"], 1, 2**29)),
        "dia_array", "offsets[1] = 536870912 is outside [-536870911, 536870911]",
    ),
    "dia: shape too large for int32 offsets": (
        lambda: sparse_file(DIA, members={"shape": [5, 2**29]}),
        "dia_array", "536870912 columns exceed 536870911, the limit for int32 offsets",
    ),
    "dia: 2-D offsets": (
        lambda: sparse_file(DIA, offsets=_P["dia"]["offsets"].reshape(1, -1)),
        "dia_array", "offsets must be 1-D",
    ),
    "dia: float offsets": (
        lambda: sparse_file(DIA, offsets=_P["dia"]["offsets"].astype(np.float32)),
        "dia_array", "offsets has dtype float32",
    ),
    "dia: 1-D data": (
        lambda: sparse_file(DIA, data=_P["dia"]["data"].ravel()),
        "dia_array", "data must be 2-D",
    ),
    # lil
    "lil: column beyond the shape": (
        lambda: sparse_file(LIL, indices=_set(_P["lil"]["indices"], 1, 99)),
        "lil_matrix", "indices[1] = 99 is outside [0, 5)",
    ),
    "lil: fewer row entries than values": (
        lambda: sparse_file(LIL, indptr=_set(_P["lil"]["indptr"], -1, LIL.nnz - 1)),
        "lil_matrix", f"indptr[-1] = {LIL.nnz - 1}, but there are {LIL.nnz} entries",
    ),
    "lil: indptr decreases": (
        lambda: sparse_file(LIL, indptr=_set(_P["lil"]["indptr"], 1, LIL.nnz)),
        "lil_matrix", "indptr decreases",
    ),
    "lil: float columns": (
        lambda: sparse_file(LIL, indices=_P["lil"]["indices"].astype(np.float64)),
        "lil_matrix", "indices has dtype float64",
    ),
    # dok
    "dok: key beyond the shape": (
        lambda: sparse_file(DOK, coords=_coord("dok", 0, lambda c: _set(c, 0, 6))),
        "dok_array", "coords[0][0] = 6 is outside [0, 6)",
    ),
    "dok: negative key": (
        lambda: sparse_file(DOK, coords=_coord("dok", 1, lambda c: _set(c, 2, -3))),
        "dok_array", "coords[1][2] = -3 is outside [0, 5)",
    ),
    "dok: the same key twice": (
        lambda: sparse_file(DOK, coords=[np.zeros(DOK.nnz, np.int32)] * 2),
        "dok_array", "coords name the same entry twice",
    ),
    "dok: more keys than values": (
        lambda: sparse_file(DOK, data=_P["dok"]["data"][:-1]),
        "dok_array", f"coords[0] has {DOK.nnz} entries but data {DOK.nnz - 1}",
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    cases = {name: make() for name, (make, _, _) in HOSTILE.items()}
    cases |= {f"control: {name}": sparse_file(m) for name, m in BASES.items()}
    return run_limited(cases, tmp_path_factory.mktemp("sparse"))


@pytest.mark.parametrize("case", list(HOSTILE))
def test_crafted_state_is_refused(case: str, limited: dict[str, dict[str, Any]]) -> None:
    r = limited[case]
    _, cls, invariant = HOSTILE[case]
    assert r["error"] == "FormatError" and r["modelsafe"], r
    assert f"invalid scipy.sparse.{cls}: " in r["message"], r["message"]
    assert invariant in r["message"], r["message"]


@pytest.mark.parametrize("base", list(BASES))
def test_crafted_controls_load(base: str, limited: dict[str, dict[str, Any]]) -> None:
    """The untampered crafted files load: each refusal above is the broken invariant's."""
    assert limited[f"control: {base}"]["error"] is None, limited[f"control: {base}"]
    assert_equivalent(BASES[base], modelsafe.loads(sparse_file(BASES[base])))


# -- what the checks let through is safe to use ---------------------------------------------

OPS_IN_CHILD = (
    "toarray", "matvec", "rmatvec", "matmat", "tocsr", "tocsc", "tocoo", "sum0", "sum1",
    "nonzero", "scale", "add", "diagonal", "max", "row", "canonical", "sort", "eliminate",
)  # fmt: skip
_USE = """
import json, sys, numpy as np, modelsafe
OPS = {
    "toarray": lambda m: m.toarray(),
    "matvec": lambda m: m @ np.ones(m.shape[-1]),
    "rmatvec": lambda m: m.T @ np.ones(m.shape[0]),
    "matmat": lambda m: m @ m.T,
    "tocsr": lambda m: m.tocsr().toarray(),
    "tocsc": lambda m: m.tocsc().toarray(),
    "tocoo": lambda m: m.tocoo().toarray(),
    "sum0": lambda m: m.sum(axis=0),
    "sum1": lambda m: m.sum(axis=1),
    "nonzero": lambda m: m.count_nonzero(),
    "scale": lambda m: (m * 3).toarray(),
    "add": lambda m: (m + m).toarray(),
    "diagonal": lambda m: m.diagonal(),
    "max": lambda m: m.tocsr().max(),
    "row": lambda m: m.tocsr()[m.shape[0] - 1].toarray(),
    "canonical": lambda m: m.sum_duplicates() if hasattr(m, "sum_duplicates") else 0,
    "sort": lambda m: m.sort_indices() if hasattr(m, "sort_indices") else 0,
    "eliminate": lambda m: m.eliminate_zeros() if hasattr(m, "eliminate_zeros") else 0,
}
report = {}
for path in sys.argv[1:]:
    m = modelsafe.loads(open(path, "rb").read())
    for name, op in OPS.items():
        try:
            op(m)
            report[f"{path}:{name}"] = "ok"
        except Exception as exc:  # an exception is fine; a crash would end the process
            report[f"{path}:{name}"] = type(exc).__name__
print(json.dumps(report))
"""

ROOM = TOP32 // 4  # the farthest a diagonal of a dia with int32 offsets may lie
ALL = frozenset(OPS_IN_CHILD)
# name -> (file, the operations that may raise: scipy's own answer, not a crash)
ACCEPTED: dict[str, tuple[Callable[[], bytes], frozenset[str]]] = {
    # kept as saved: unused (in range) entries after indptr[-1], unsorted rows;
    # scipy's own tocoo() reads uninitialised rows for them and may refuse
    "csr with a tail": (
        lambda: sparse_file(
            _UNSORTED, indices=np.array([3, 1, 2, 4, 0, 4], np.int32), data=np.ones(6)
        ),
        frozenset({"tocoo"}),
    ),
    # m @ m.T asks dia_matmat for a vector of 2**31 offsets: MemoryError under the cap
    "dia with far diagonals": (
        lambda: sparse_file(
            DIA,
            offsets=np.array([-ROOM, ROOM, 0, 1, 2, 3, -1, -2, -3, -4], np.int32),
            data=np.arange(60.0).reshape(10, 6),
        ),
        frozenset({"matmat"}),
    ),
    # dense results of 2 x (2**31 - 1) need 32 GiB: MemoryError under the cap
    "csr as wide as int32": (
        lambda: sparse_file(
            _UNSORTED, members={"shape": [2, TOP32]}, indices=np.array([TOP32 - 1, 0, 7], np.int32)
        ),
        ALL,
    ),
    "bsr of one block": (
        lambda: sparse_file(
            BSR,
            members={"shape": [2, 3]},
            indices=np.zeros(1, np.int32),
            indptr=np.array([0, 1], np.int32),
            data=np.ones((1, 2, 3)),
        ),
        frozenset(),
    ),
    "empty csr": (lambda: sparse_file(sp.csr_matrix((0, 0))), frozenset({"max", "row"})),
}


def test_accepted_edge_cases_are_safe_to_use(tmp_path: Path) -> None:
    """Files the checks accept, at the edges of what they allow, survive every operation in
    a child under an address-space cap: an exception is scipy's answer, a signal would be
    a crash. Operations not expected to fail must succeed."""
    paths = []
    for i, (make, _) in enumerate(ACCEPTED.values()):
        paths.append(tmp_path / f"case{i}.msafe")
        paths[-1].write_bytes(make())
    cap = 3 * GIB
    proc = subprocess.run(
        [sys.executable, "-c", _USE, *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, PYTHONPATH=str(HERE.parent), OPENBLAS_NUM_THREADS="1"),
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)),
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    report = json.loads(proc.stdout.splitlines()[-1])
    failed = {}
    for path, (name, (_, may_raise)) in zip(paths, ACCEPTED.items(), strict=True):
        for op in OPS_IN_CHILD:
            outcome = report[f"{path}:{op}"]
            if outcome != "ok" and op not in may_raise:
                failed[f"{name}: {op}"] = outcome
    assert not failed, failed


# -- headers that break the node's own rules: refused by the audit, by every reader -----------


def _node(**changes: Any) -> bytes:
    blob = sparse_file(CSR)
    header = split(blob).header
    root, buffers = header["root"], []
    root.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        del root[k]
    for e in header["buffers"]:
        buffers.append(split(blob).data[e[0] : e[0] + e[1]])
    types = [t for t in header["types"] if not t.startswith("scipy")]
    types.append(f"scipy.sparse.{root.get('format')}_{root.get('kind')}")
    return craft(root, buffers, types=types)


AUDIT_CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "unknown format": (lambda: _node(format="csx"), "sparse format must be one of"),
    "format not a string": (lambda: _node(format=["csr"]), "sparse format must be one of"),
    "unknown kind": (lambda: _node(kind="tensor"), "sparse kind must be 'matrix' or 'array'"),
    "negative dimension": (lambda: _node(shape=[-1, 5]), "non-negative int64 integers"),
    "float dimension": (lambda: _node(shape=[6.0, 5]), "non-negative int64 integers"),
    "dimension beyond int64": (lambda: _node(shape=[6, 2**63]), "non-negative int64 integers"),
    "3-D matrix": (lambda: _node(shape=[6, 5, 1]), "a csr matrix cannot have 3 dimensions"),
    "3-D csr array": (lambda: _node(kind="array", shape=[6, 5, 1]), "cannot have 3 dimensions"),
    "flag not a boolean": (lambda: _node(sorted=1), "'sorted' must be true or false"),
    "negative maxprint": (lambda: _node(maxprint=-1), "'maxprint' must be a non-negative"),
    "missing indptr": (lambda: _node(indptr=None), "'sp.sparse' node lacks 'indptr'"),
    "extra member": (lambda: _node(rows=[]), "unexpected member(s) ['rows']"),
    "dia member on csr": (
        lambda: _node(offsets={"$": "nd", "dtype": "<i4", "shape": [0]}),
        "unexpected member(s) ['offsets']",
    ),
    "index array with an id": (
        lambda: _node(indptr={"$": "nd", "dtype": "<i4", "shape": [0], "id": 0}),
        "'indptr' must be an 'nd' node without an id",
    ),
    "index array by reference": (
        lambda: _node(indptr={"$": "ref", "id": 0}),
        "'indptr' must be an 'nd' node without an id",
    ),
    "data a plain list": (lambda: _node(data=[1.0, 2.0]), "'data' must be an 'nd' or 'ref' node"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(AUDIT_CASES))
def test_malformed_nodes_are_refused_by_the_audit(case: str, reject: Callable[..., Any]) -> None:
    make, message = AUDIT_CASES[case]
    reject(make(), FormatError, match=message)


def test_coo_needs_one_coordinate_array_per_dimension(reject: Callable[..., Any]) -> None:
    blob = sparse_file(COO, coords=[*_P["coo"]["coords"], _P["coo"]["coords"][0]])
    reject(blob, FormatError, match="'coords' must list one array per dimension (2)")


# -- the generic path, for callers who trust scipy's private classes by name ------------------


def _obj(module: str, name: str, state: Any, buffers: list[bytes], **extra: Any) -> bytes:
    return craft({"$": "obj", "module": module, "name": name, "state": state, **extra}, buffers)


def _nd(a: Any, buffers: list[bytes], **extra: Any) -> dict[str, Any]:
    buffers.append(np.ascontiguousarray(a).tobytes())
    return {
        "$": "nd",
        "dtype": a.dtype.str,
        "shape": list(a.shape),
        "buf": len(buffers) - 1,
        **extra,
    }


def _csr_state(indices: Any = None, same_data: bool = False) -> tuple[bytes, str]:
    buffers: list[bytes] = []
    ind = CSR.indices if indices is None else indices
    data = _nd(ind if same_data else CSR.data, buffers, **({"id": 0} if same_data else {}))
    state = {
        "_shape": {"$": "tuple", "v": list(CSR.shape)},
        "maxprint": 50,
        "data": data,
        "indices": {"$": "ref", "id": 0} if same_data else _nd(ind, buffers),
        "indptr": _nd(CSR.indptr, buffers),
    }
    return _obj("scipy.sparse._csr", "csr_matrix", state, buffers), "scipy.sparse._csr.csr_matrix"


def test_generic_path_is_validated_too() -> None:
    blob, name = _csr_state()
    with pytest.raises(UntrustedTypesError):
        modelsafe.loads(blob)
    assert np.array_equal(modelsafe.loads(blob, trusted=[name]).toarray(), CSR.toarray())
    bad, _ = _csr_state(indices=_set(CSR.indices, 2, 77))
    with pytest.raises(FormatError, match=rf"invalid {name}: indices\[2\] = 77 is outside"):
        modelsafe.loads(bad, trusted=[name])
    aliased, _ = _csr_state(same_data=True)
    with pytest.raises(FormatError, match=rf"invalid {name}: .*share memory"):
        modelsafe.loads(aliased, trusted=[name])


def _csr_state_as(sub: str, indices: Any = None) -> bytes:
    """``_csr_state`` for an instance of ``sub`` (a caller's subclass of csr_matrix)."""
    blob, _ = _csr_state(indices)
    module, _, name = sub.rpartition(".")

    def as_sub(header: dict[str, Any]) -> None:
        header["root"]["module"], header["root"]["name"] = module, name
        header["types"] = used_types(header["root"])

    return rewrite(blob, as_sub)


def test_a_trusted_subclass_is_validated_as_the_scipy_class_it_extends() -> None:
    """A caller's ``MyCSR(csr_matrix)`` trusted by name: its crafted indices are refused as
    csr_matrix's are (they used to load, and the first product read out of bounds)."""
    from .._user_subclasses import SUBCLASSES

    base = "scipy.sparse._csr.csr_matrix"
    sub = SUBCLASSES[base]
    good = modelsafe.loads(_csr_state_as(sub), trusted=[sub])
    assert type(good).__qualname__ == sub.rpartition(".")[2]
    assert np.array_equal(good.toarray(), CSR.toarray())
    bad = _csr_state_as(sub, indices=_set(CSR.indices, 2, 10**9))
    with pytest.raises(
        FormatError,
        match=rf"invalid {sub} \(checked as its base class {base}\): indices\[2\] = 1000000000",
    ):
        modelsafe.loads(bad, trusted=[sub])


def test_a_subclass_keeps_its_own_attributes_but_hides_nothing_of_scipys() -> None:
    """What a caller's subclass adds beside scipy's layout (``m.note = ...``) saves and
    loads; an added attribute may not hide a property of the class or be a scipy flag."""
    from .._user_subclasses import SUBCLASSES, User_scipy_sparse__csr_csr_matrix

    sub = SUBCLASSES["scipy.sparse._csr.csr_matrix"]
    m = User_scipy_sparse__csr_csr_matrix(CSR)
    m.note = "mine"
    back = modelsafe.loads(modelsafe.dumps(m), trusted=[sub])
    assert back.note == "mine" and np.array_equal(back.toarray(), CSR.toarray())
    for key, value, why in (
        ("has_sorted_indices", True, "would hide"),
        ("_has_sorted_indices", True, None),  # a flag the layout allows: checked as such
        ("has_canonical_format", True, "expected"),  # coo's flag, not a csr's
        ("__class__", 1, "not an attribute name"),
    ):
        blob = _csr_state_as(sub)

        def add(header: dict[str, Any], key: str = key, value: Any = value) -> None:
            header["root"]["state"][key] = value

        crafted = rewrite(blob, add)
        if why is None:
            assert modelsafe.loads(crafted, trusted=[sub]).nnz == CSR.nnz
        else:
            with pytest.raises(FormatError, match=why):
                modelsafe.loads(crafted, trusted=[sub])


def test_generic_path_refuses_constructor_arguments_and_missing_state() -> None:
    name = "scipy.sparse._coo.coo_array"
    called = craft(
        {"$": "call", "module": "scipy.sparse._coo", "name": "coo_array", "args": [[2, 2]]}
    )
    with pytest.raises(FormatError, match=rf"invalid {name}: it is restored from its state"):
        modelsafe.loads(called, trusted=[name])
    stateless = craft({"$": "obj", "module": "scipy.sparse._coo", "name": "coo_array"})
    with pytest.raises(FormatError, match=rf"invalid {name}: its state must be a dict"):
        modelsafe.loads(stateless, trusted=[name])


def test_generic_path_checks_lil_rows_and_dok_keys() -> None:
    buffers: list[bytes] = []
    rows = {"$": "nd", "dtype": "|O", "shape": [2], "v": [[0, 7], []]}
    values = {"$": "nd", "dtype": "|O", "shape": [2], "v": [[1.0, 2.0], []]}
    lil = _obj(
        "scipy.sparse._lil", "lil_matrix",
        {"_shape": {"$": "tuple", "v": [2, 5]}, "maxprint": 50,
         "dtype": {"$": "dtype", "v": "<f8"}, "rows": rows, "data": values},
        buffers,
    )  # fmt: skip
    with pytest.raises(FormatError, match=r"lil_matrix: columns\[1\] = 7 is outside \[0, 5\)"):
        modelsafe.loads(lil, trusted=["scipy.sparse._lil.lil_matrix"])
    key = {"$": "tuple", "v": [1, 9]}
    value = {"$": "npscalar", "dtype": "<f8", "b64": "AAAAAAAA8D8="}
    dok = _obj(
        "scipy.sparse._dok", "dok_matrix",
        {"_shape": {"$": "tuple", "v": [2, 5]}, "maxprint": 50,
         "_dict": {"$": "dict", "v": [[key, value]]}, "dtype": {"$": "dtype", "v": "<f8"}},
        buffers,
    )  # fmt: skip
    with pytest.raises(FormatError, match=r"dok_matrix: key coordinate 1\[0\] = 9 is outside"):
        modelsafe.loads(dok, trusted=["scipy.sparse._dok.dok_matrix"])


# -- scipy.interpolate.BSpline (SplineTransformer) ------------------------------------------


def _spline_model() -> Any:
    from sklearn.preprocessing import SplineTransformer

    X = np.random.default_rng(0).normal(size=(40, 2))
    return SplineTransformer(n_knots=5, degree=3).fit(X), X


def _broken_spline(edit: Callable[[Any], None]) -> bytes:
    """A real SplineTransformer whose first BSpline was corrupted in memory, then saved:
    the writer does not validate, so the file carries the bad state."""
    model, _ = _spline_model()
    edit(model.bsplines_[0])
    return modelsafe.dumps(model)


SPLINE_CASES: dict[str, tuple[Callable[[Any], None], str]] = {
    "knots reversed": (lambda b: setattr(b, "_t", b._t[::-1].copy()), "non-decreasing"),
    "too few coefficients": (lambda b: setattr(b, "_c", b._c[:2].copy()), "coefficients"),
    "degree beyond the knots": (lambda b: setattr(b, "k", 9), "too few for degree"),
    "NaN knot": (lambda b: b._t.__setitem__(3, np.nan), "not NaN"),
    "axis out of range": (lambda b: setattr(b, "axis", 5), "axis"),
    "knots are ints": (lambda b: setattr(b, "_t", b._t.astype(np.int64)), "float64"),
}


def test_spline_transformer_loads_with_default_trust_and_transforms_alike() -> None:
    model, X = _spline_model()
    data = modelsafe.dumps(model)
    assert modelsafe.untrusted_types(data) == []
    assert np.array_equal(modelsafe.loads(data).transform(X), model.transform(X))


def test_crafted_bsplines_are_refused_in_a_child(tmp_path: Path) -> None:
    cases = {name: _broken_spline(edit) for name, (edit, _) in SPLINE_CASES.items()}
    cases["control"] = modelsafe.dumps(_spline_model()[0])
    results = run_limited(cases, tmp_path)
    assert results["control"]["error"] is None
    for name, (_, words) in SPLINE_CASES.items():
        got = results[name]
        assert got["error"] == "FormatError", (name, got)
        assert "invalid scipy.interpolate._bsplines.BSpline" in got["message"], (name, got)
        assert words in got["message"], (name, got)
