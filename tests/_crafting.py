"""Build, take apart and rewrite ``.msafe`` files byte by byte, for hostile-input tests.

Everything here is written from the byte layout (docs/format.md), not from
modelsafe's own writer, so a crafted file is exactly what a test says it is:

    magic b"\\x93MSAFE" | u16 LE version | u64 LE header length N
    N bytes of UTF-8 JSON, space-padded so that 16 + N is a multiple of 64
    data section: buffers 64-aligned, back to back, zero padded

The header's first member is {"hash": <BLAKE3 of preamble + header, computed
with these 64 hex digits written as "0">}; crafted headers are sealed the same
way, so a test reaches the check it aims at rather than the hash. A buffer's
BLAKE3 digest covers its bytes followed by its zero padding.
"""

from __future__ import annotations

import json
import math
import os
import resource
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import blake3
import numpy as np

import modelsafe

MAGIC = b"\x93MSAFE"
PREAMBLE = struct.Struct("<6sHQ")
ALIGN = 64
HASH_PREFIX = b'{"hash":"'  # the header's first member: its own BLAKE3 digest
ZERO_HASH = "0" * 64
HERE = Path(__file__).resolve().parent


def align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def digest(data: bytes, pad: int = 0) -> str:
    return blake3.blake3(bytes(data) + bytes(pad)).hexdigest()


Entry = Callable[[bytes, Path], Any]

# Every public way to hand modelsafe a file. ``inspect`` and ``untrusted_types``
# read the header only, so they see header problems but not data problems.
LOADERS: dict[str, Entry] = {
    "loads": lambda blob, path: modelsafe.loads(blob),
    "load": lambda blob, path: modelsafe.load(path),
    "load(mmap=False)": lambda blob, path: modelsafe.load(path, mmap=False),
    "load(mmap='r')": lambda blob, path: modelsafe.load(path, mmap="r"),
}
READERS: dict[str, Entry] = {
    "inspect(bytes)": lambda blob, path: modelsafe.inspect(blob),
    "inspect(path)": lambda blob, path: modelsafe.inspect(path),
    "untrusted_types(bytes)": lambda blob, path: modelsafe.untrusted_types(blob),
    "untrusted_types(path)": lambda blob, path: modelsafe.untrusted_types(path),
}
EVERYWHERE = {**LOADERS, **READERS}


# -- taking a file apart and putting it back together ----------------------------------------


@dataclass
class Parts:
    """A file split along the layout; ``header`` is the parsed JSON."""

    magic: bytes
    version: int
    header_len: int
    header: dict[str, Any]
    data: bytes  # the data section, everything after the header

    @property
    def data_offset(self) -> int:
        return PREAMBLE.size + self.header_len


def split(blob: bytes) -> Parts:
    magic, version, n = PREAMBLE.unpack_from(blob)
    header = json.loads(blob[PREAMBLE.size : PREAMBLE.size + n])
    return Parts(magic, version, n, header, blob[PREAMBLE.size + n :])


def header_bytes(header: Mapping[str, Any] | bytes | str, **raw: str) -> bytes:
    """Compact JSON of ``header``; each ``raw[key]`` replaces the string ``"@key@"`` verbatim.

    ``raw`` lets a test put text in the header that ``json.dumps`` would never
    write (NaN, 100000 nested lists, duplicate keys, ...).
    """
    if isinstance(header, bytes):
        return header
    if not isinstance(header, str):
        header = sealed(header)
    text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
    for key, value in raw.items():
        marker = json.dumps(f"@{key}@")
        assert marker in text, marker
        text = text.replace(marker, value)
    return text.encode("utf-8")


def sealed(header: Mapping[str, Any]) -> dict[str, Any]:
    """``header`` with the ``"hash"`` member first (its value is filled in by ``seal``)."""
    return {"hash": ZERO_HASH, **{k: v for k, v in header.items() if k != "hash"}}


def seal(head: bytes) -> bytes:
    """Recompute the header hash in ``head`` (preamble + header) as an attacker would:
    BLAKE3 of preamble and header with the hash's 64 digits set to "0"."""
    body = head[PREAMBLE.size :]
    if not body.startswith(HASH_PREFIX) or len(body) < len(HASH_PREFIX) + 64:
        return head
    span = slice(PREAMBLE.size + len(HASH_PREFIX), PREAMBLE.size + len(HASH_PREFIX) + 64)
    b = bytearray(head)
    b[span] = ZERO_HASH.encode()
    b[span] = blake3.blake3(bytes(b)).hexdigest().encode()
    return bytes(b)


def frame(
    header: Mapping[str, Any] | bytes | str,
    data: bytes = b"",
    *,
    version: int = 2,
    magic: bytes = MAGIC,
    header_len: int | None = None,
    pad: bytes = b" ",
    rehash: bool = True,
) -> bytes:
    """Preamble + header padded to the 64-byte boundary + data section.

    A header given as a mapping gets the ``hash`` member first; when the header
    starts with it, the hash is recomputed (``seal``) so tests reach the checks
    behind it; ``rehash=False`` keeps it as is.
    """
    body = header_bytes(header)
    body += pad * ((align(PREAMBLE.size + len(body)) - PREAMBLE.size - len(body)) // len(pad))
    n = len(body) if header_len is None else header_len
    head = PREAMBLE.pack(magic, version, n) + body
    return (seal(head) if rehash else head) + data


def lay_out(buffers: Sequence[bytes]) -> tuple[list[list[Any]], bytes]:
    """Buffer entries (offset, size, digest) and the data section holding ``buffers``."""
    entries: list[list[Any]] = []
    chunks: list[bytes] = []
    offset = 0
    for b in buffers:
        pad = align(len(b)) - len(b)
        entries.append([offset, len(b), digest(b, pad)])
        chunks += [bytes(b), bytes(pad)]
        offset += len(b) + pad
    return entries, b"".join(chunks)


def redigest(header: dict[str, Any], data: bytes) -> None:
    """Recompute every buffer's digest from ``data`` (offsets and sizes as the header says)."""
    for e in header["buffers"]:
        off, size = e[0], e[1]
        end = off + size
        e[2] = blake3.blake3(data[off : align(end)]).hexdigest()


def rewrite(
    blob: bytes,
    edit: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
    *,
    data: bytes | None = None,
    fix_digests: bool = False,
) -> bytes:
    """Apply ``edit`` to the header of ``blob`` (in place or by returning a new one), re-frame."""
    p = split(blob)
    header = p.header
    if edit is not None:
        header = edit(header) or header
    data = p.data if data is None else data
    if fix_digests:
        redigest(header, data)
    return frame(header, data, version=p.version, magic=p.magic)


# -- crafting a file from an object tree -----------------------------------------------------

_BUILTIN_TAGS = ("tuple", "set", "frozenset", "bytes", "bytearray", "complex", "slice", "range")
_STDLIB_TAGS = {
    "odict": "collections.OrderedDict",
    "ddict": "collections.defaultdict",
    "datetime": "datetime.datetime",
    "date": "datetime.date",
    "time": "datetime.time",
    "timedelta": "datetime.timedelta",
    "timezone": "datetime.timezone",
    "decimal": "decimal.Decimal",
}
_RNG_TAGS = {"randomstate": "RandomState", "generator": "Generator", "bitgen": None}


def used_types(root: Any) -> list[str]:
    """The sorted qualified names an honest writer lists in ``types`` for ``root``."""
    names: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if type(node) is list:
            stack.extend(node)
            continue
        if type(node) is not dict:
            continue
        stack.extend(v for k, v in node.items() if k != "$")
        tag = node.get("$")
        if tag in _BUILTIN_TAGS:
            names.add(f"builtins.{tag}")
        elif tag == "nd":
            names.add("numpy.ndarray")
        elif tag == "npmatrix":
            names.add("numpy.matrix")
        elif tag == "dtype":
            names.add("numpy.dtype")
        elif tag == "npscalar":
            names.add(f"numpy.{np.dtype(node['dtype']).type.__name__}")
        elif tag in ("global", "obj", "call", "objs"):
            names.add(f"{node['module']}.{node['name']}")
        elif tag in _STDLIB_TAGS:
            names.add(_STDLIB_TAGS[tag])
        elif tag == "path":
            names.add(f"pathlib.{node['kind']}")
        elif tag in ("sk.tree", "sk.trees"):
            names.add("sklearn.tree._tree.Tree")
        elif tag in ("sk.hgbp", "sk.hgbps"):
            names.add("sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor")
        elif tag == "sp.sparse":
            names.add(f"scipy.sparse.{node['format']}_{node['kind']}")
        elif tag in _RNG_TAGS:
            names.add(f"numpy.random.{node['bitgen']}")
            if _RNG_TAGS[tag]:
                names.add(f"numpy.random.{_RNG_TAGS[tag]}")
    return sorted(names)


def craft(
    root: Any,
    buffers: Sequence[bytes] = (),
    *,
    types: Iterable[str] | None = None,
    meta: dict[str, Any] | None = None,
    root_raw: str | None = None,
    edit: Callable[[dict[str, Any]], Any] | None = None,
    data: bytes | None = None,
) -> bytes:
    """A well-framed file whose tree is ``root`` and whose data section holds ``buffers``.

    Digests and ``data_size`` are right unless ``edit`` (called on the finished
    header) or ``data`` (replacing the data section) make them wrong on purpose.
    ``root_raw`` is JSON text put verbatim in place of the root.
    """
    entries, section = lay_out(buffers)
    header: dict[str, Any] = sealed(
        {
            "digest": "blake3",
            "data_size": len(section),
            "buffers": entries,
            "meta": meta if meta is not None else {"producer": "crafted"},
            "types": sorted(types) if types is not None else used_types(root),
            "root": "@root@" if root_raw is not None else root,
        }
    )
    if edit is not None:
        edit(header)
    body = header_bytes(header, root=root_raw) if root_raw is not None else header
    return frame(body, section if data is None else data)


def nd(dtype: Any, shape: list[Any], buf: int | None = None, **extra: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"$": "nd", "dtype": dtype, "shape": shape}
    if buf is not None:
        node["buf"] = buf
    node.update(extra)
    return node


# -- locating things in a file -----------------------------------------------------------------


def buffer_at(p: Parts, offset: int) -> int:
    """Index of the buffer whose bytes or padding hold data-section ``offset``."""
    for i, e in enumerate(p.header["buffers"]):
        if e[0] <= offset < align(e[0] + e[1]):
            return i
    raise ValueError(f"offset {offset} is in no buffer")


def flip(blob: bytes, bit: int) -> bytes:
    b = bytearray(blob)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


# -- comparing loaded objects exactly ------------------------------------------------------------


def deep_equal(a: Any, b: Any) -> bool:
    """Same types and same values all the way down; arrays by dtype, shape and bytes."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.hasobject:
            return all(deep_equal(x, y) for x, y in zip(a.ravel(), b.ravel(), strict=True))
        return a.tobytes() == b.tobytes()
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(deep_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, set | frozenset | str | bytes | bytearray | int | type(None)):
        return a == b
    if hasattr(a, "__dict__"):
        return deep_equal(vars(a), vars(b))
    return a == b


# -- running hostile files in a child with an address-space cap ----------------------------------

GIB = 1 << 30


def run_limited(
    cases: Mapping[str, bytes], directory: Path, *, address_space: int = 3 * GIB
) -> dict[str, dict[str, Any]]:
    """Load each file with ``modelsafe.loads`` in one child process under ``RLIMIT_AS``.

    Returns, per case: the exception class (or ``None``), whether it is a
    ``ModelSafeError``, the class of its ``__cause__``, the start of its message,
    the loaded object's total array bytes when it loaded, and how much the
    child's peak RSS grew while loading it.
    """
    names = []
    for i, (name, blob) in enumerate(cases.items()):
        (directory / f"case{i}.msafe").write_bytes(blob)
        names.append(name)
    (directory / "cases.json").write_text(json.dumps(names))
    env = dict(os.environ, PYTHONPATH=str(HERE), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", "import _crafting; _crafting._limited_main()", str(directory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space)),
    )
    assert proc.returncode == 0, (
        f"the child died (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    results: dict[str, dict[str, Any]] = json.loads((directory / "results.json").read_text())
    return results


def run_crafted(
    cases: Mapping[str, tuple[bytes, str]], bombs: Sequence[str], directory: Path
) -> dict[str, dict[str, Any]]:
    """``run_limited`` for ``cases`` (name -> (file, text the error must contain)), the
    results with that text as ``expect``. The ``bombs`` each run in a child of their own,
    so that the peak of one case does not hide the growth of the next."""
    files = {name: blob for name, (blob, _) in cases.items() if name not in bombs}
    results = run_limited(files, _made(directory / "cases"))
    for i, bomb in enumerate(bombs):
        results |= run_limited({bomb: cases[bomb][0]}, _made(directory / f"bomb{i}"))
    return {name: {**r, "expect": cases[name][1]} for name, r in results.items()}


def _made(directory: Path) -> Path:
    directory.mkdir()
    return directory


def assert_refused_small(r: dict[str, Any], growth: int = 200 << 20) -> None:
    """A crafted allocation bomb (a ``run_crafted`` result): refused with a FormatError
    naming its rule, and the child's peak RSS grew by less than ``growth``."""
    assert r["rss_growth"] < growth, f"peak RSS grew by {r['rss_growth'] >> 20} MiB"
    assert r["error"] == "FormatError" and r["modelsafe"], r
    assert r["expect"] in r["message"], r["message"]


def _array_bytes(obj: Any, seen: set[int] | None = None) -> int:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        total = obj.nbytes
        if obj.dtype.hasobject:
            total += sum(_array_bytes(x, seen) for x in obj.ravel())
        return total
    if isinstance(obj, dict):
        return sum(_array_bytes(v, seen) for v in obj.values())
    if isinstance(obj, list | tuple | set | frozenset):
        return sum(_array_bytes(x, seen) for x in obj)
    if isinstance(obj, bytes | bytearray):
        return len(obj)
    return 0


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def _limited_main() -> None:
    directory = Path(sys.argv[1])
    names = json.loads((directory / "cases.json").read_text())
    results: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        blob = (directory / f"case{i}.msafe").read_bytes()
        before = _peak_rss()
        out: dict[str, Any] = {"error": None, "modelsafe": False, "cause": None, "message": ""}
        try:
            obj = modelsafe.loads(blob)
            out["loaded_bytes"] = _array_bytes(obj)
            del obj
        except BaseException as exc:
            out["error"] = type(exc).__name__
            out["modelsafe"] = isinstance(exc, modelsafe.ModelSafeError)
            cause = exc.__cause__ or exc.__context__
            out["cause"] = type(cause).__name__ if cause is not None else None
            out["message"] = str(exc)[:300]
        out["rss_growth"] = _peak_rss() - before
        results[name] = out
    (directory / "results.json").write_text(json.dumps(results))
