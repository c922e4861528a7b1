"""What ``inspect`` reports about a file, read from the header alone."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._container.reader import Container, SignatureRecord
from ._graph.table import Table


@dataclass(frozen=True)
class Row:
    """One line of the object tree: where, what, and details."""

    path: str
    depth: int
    kind: str
    detail: str
    nbytes: int = 0
    buffers: tuple[int, ...] = ()


@dataclass(frozen=True)
class FileInfo:
    """The header of a ``.msafe`` file, described. Nothing here needs the data section."""

    path: str | None
    format_version: int
    file_size: int
    header_size: int
    data_size: int
    metadata: dict[str, Any]
    types: list[str]
    untrusted: list[str]
    buffers: list[dict[str, Any]]
    tree: Any = field(repr=False)
    table: Table | None = field(default=None, repr=False)
    signatures: list[dict[str, Any]] = field(default_factory=list)  # key_id, signed_at

    def rows(self, max_rows: int = 200, max_depth: int = 12) -> list[Row]:
        """The object tree as indented rows, for people."""
        out: list[Row] = []
        for row in _walk(self.tree, "root", 0, max_depth, self.table):
            out.append(row)
            if len(out) >= max_rows:
                break
        return out

    def to_dict(self, max_rows: int = 10_000) -> dict[str, Any]:
        rows = self.rows(max_rows=max_rows + 1, max_depth=64)
        return {
            "path": self.path,
            "format_version": self.format_version,
            "file_size": self.file_size,
            "header_size": self.header_size,
            "data_size": self.data_size,
            "metadata": self.metadata,
            "types": self.types,
            "untrusted": self.untrusted,
            "buffers": self.buffers,
            "signatures": self.signatures,
            "tree": [
                {k: v for k, v in r.__dict__.items() if k != "buffers"} for r in rows[:max_rows]
            ],
            "tree_truncated": len(rows) > max_rows,
        }


def describe(c: Container, untrusted: list[str], table: Table | None = None) -> FileInfo:
    root = c.header["root"]
    owners = _buffer_owners(root, table)
    buffers = [
        {
            "index": b.index,
            "offset": b.offset,
            "size": b.size,
            "nbytes": b.nbytes,
            "compression": b.codec,
            "digest": b.digest,
            "owner": _owner_text(owners.get(b.index, [])),
        }
        for b in c.buffers
    ]
    return FileInfo(
        path=c.path,
        format_version=c.version,
        file_size=c.file_size,
        header_size=c.header_size,
        data_size=c.data_size,
        metadata=c.header.get("meta", {}),
        types=list(c.header["types"]),
        untrusted=untrusted,
        buffers=buffers,
        tree=root,
        table=table,
        signatures=describe_signatures(c.signatures),
    )


def describe_signatures(records: Iterable[SignatureRecord]) -> list[dict[str, Any]]:
    """The trailer's records for people and programs: key id and signing time (UTC, as
    the signer's clock said). Nothing is verified here."""
    import datetime as _dt

    out = []
    for r in records:
        try:
            when = _dt.datetime.fromtimestamp(r.signed_at, tz=_dt.UTC)
            text = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        except (OverflowError, OSError, ValueError):  # a time no calendar holds
            text = str(r.signed_at)
        out.append({"key_id": r.key_id, "signed_at": text})
    return out


def _short(x: Any, n: int = 60) -> str:
    r = repr(x)
    return r if len(r) <= n else r[: n - 3] + "..."


def _array_bytes(spec: Any, shape: Any) -> int:
    from ._handlers.numpy import dtype_from_json

    try:
        itemsize = dtype_from_json(spec, allow_object=True).itemsize
        return int(math.prod(shape)) * itemsize
    except (ValueError, TypeError):
        return 0


def _walk(
    node: Any, path: str, depth: int, max_depth: int, table: Table | None = None
) -> Iterator[Row]:
    t = type(node)
    if t is list:
        yield Row(path, depth, "list", f"{len(node)} items")
        if depth < max_depth:
            for i, x in enumerate(node):
                yield from _walk(x, f"{path}[{i}]", depth + 1, max_depth, table)
        return
    if t is not dict:
        yield Row(path, depth, type(node).__name__, _short(node))
        return
    tag = node.get("$")
    if tag is None:
        yield Row(path, depth, "dict", f"{len(node)} keys")
        if depth < max_depth:
            for k, v in node.items():
                yield from _walk(v, f"{path}[{k!r}]", depth + 1, max_depth, table)
        return
    bufs = tuple(
        node[k] for k in ("buf", "codes", "ints", "floats", "strs") if type(node.get(k)) is int
    )
    if tag == "nd" and table is not None and type(node.get("t")) is int:
        name, shp, buf, nbytes = table.describe(node["t"])
        yield Row(path, depth, "ndarray", f"{name} shape={shp}", nbytes, (buf,))
        return
    if tag == "nd":
        shape = node.get("shape", [])
        spec = node.get("dtype")
        text = spec if isinstance(spec, str) else "structured"
        if text == "|O":
            yield Row(path, depth, "ndarray", f"object shape={tuple(shape)}")
            v = node.get("v", [])
            if depth < max_depth and isinstance(v, dict):  # a run, or packed scalars
                yield from _walk(v, f"{path}.flat", depth + 1, max_depth, table)
            elif depth < max_depth and isinstance(v, list):
                for i, x in enumerate(v):
                    yield from _walk(x, f"{path}.flat[{i}]", depth + 1, max_depth, table)
            return
        nbytes = _array_bytes(spec, shape)
        yield Row(path, depth, "ndarray", f"{text} shape={tuple(shape)}", nbytes, bufs)
        return
    if tag in ("obj", "call"):
        yield Row(path, depth, f"{node.get('module')}.{node.get('name')}", tag)
        if depth >= max_depth:
            return
        for key in ("args", "kwargs", "items", "kv"):
            if key in node:
                yield from _walk(node[key], f"{path}.<{key}>", depth + 1, max_depth, table)
        state = node.get("state")
        if isinstance(state, dict) and "$" not in state:
            for k, v in state.items():
                yield from _walk(v, f"{path}.{k}", depth + 1, max_depth, table)
        elif state is not None:
            yield from _walk(state, f"{path}.<state>", depth + 1, max_depth, table)
        return
    if tag == "objs" and type(node.get("same")) is dict and type(node.get("each")) is dict:
        n = node.get("n")
        yield Row(path, depth, "list", f"{n} x {node.get('module')}.{node.get('name')} (columns)")
        if depth >= max_depth:
            return
        for k, v in node["same"].items():
            yield from _walk(v, f"{path}[*].{k}", depth + 1, max_depth, table)
        for k, column in node["each"].items():
            if isinstance(column, list):
                for i, v in enumerate(column):
                    yield from _walk(v, f"{path}[{i}].{k}", depth + 1, max_depth, table)
            elif isinstance(column, dict):  # a column node: all instances' values in one
                yield from _walk(column, f"{path}[*].{k}", depth + 1, max_depth, table)
        return
    if tag == "scalars":
        yield Row(path, depth, "list", f"{node.get('n')} scalars (packed)", 0, bufs)
        return
    if tag == "sdict":
        v = node.get("v") if type(node.get("v")) is dict else {}
        inner = tuple(v[k] for k in ("codes", "ints", "floats", "strs") if type(v.get(k)) is int)
        keys = (node["keys"],) if type(node.get("keys")) is int else ()
        yield Row(path, depth, "dict", f"{v.get('n')} keys (packed)", 0, keys + inner)
        return
    if tag in ("list", "tuple", "set", "frozenset"):
        items = node.get("v", [])
        yield Row(path, depth, tag, f"{len(items)} items")
        if depth < max_depth and isinstance(items, list):
            for i, x in enumerate(items):
                yield from _walk(x, f"{path}[{i}]", depth + 1, max_depth, table)
        return
    if tag in ("dict", "odict", "ddict"):
        pairs = node.get("v", [])
        yield Row(path, depth, tag, f"{len(pairs)} keys")
        if depth < max_depth and isinstance(pairs, list):
            for i, p in enumerate(pairs):
                if isinstance(p, list) and len(p) == 2:
                    key = repr(p[0]) if not isinstance(p[0], dict | list) else f"<key {i}>"
                    yield from _walk(p[1], f"{path}[{key}]", depth + 1, max_depth, table)
        return
    if tag == "global":
        yield Row(path, depth, "global", f"{node.get('module')}.{node.get('name')}")
        return
    if tag == "ref":
        yield Row(path, depth, "ref", f"same object as id {node.get('id')}")
        return
    # Scalars and lists of scalars (a forest's tree sizes) in the row, lists by length
    # when long; members holding nodes get rows of their own.
    detail = {
        k: f"<{len(v)} items>" if type(v) is list and len(v) > 4 else v
        for k, v in node.items()
        if k not in ("$", "b64") and (type(v) is not dict and not _holds_nodes(v))
    }
    yield Row(path, depth, str(tag), _short(detail), 0, bufs)
    if depth < max_depth:
        for k, v in node.items():
            if k != "$" and (type(v) is dict or _holds_nodes(v)):
                yield from _walk(v, f"{path}.<{k}>", depth + 1, max_depth, table)


def _holds_nodes(v: Any) -> bool:
    return type(v) is list and any(type(x) in (dict, list) for x in v)


def _buffer_owners(root: Any, table: Table | None = None) -> dict[int, list[str]]:
    owners: dict[int, list[str]] = {}
    for row in _walk(root, "root", 0, 10**9, table):
        for index in row.buffers:
            owners.setdefault(index, []).append(row.path)
    return owners


def _owner_text(paths: list[str]) -> str | None:
    if not paths:
        return None
    if len(paths) == 1:
        return paths[0]
    shown = ", ".join(paths[:3])
    more = len(paths) - 3
    return f"{shown} and {more} more" if more > 0 else shown


def buffer_owner(root: Any, index: int, table: Table | None = None) -> str | None:
    """Which object(s) hold buffer ``index`` (for error messages)."""
    return _owner_text(_buffer_owners(root, table).get(index, []))
