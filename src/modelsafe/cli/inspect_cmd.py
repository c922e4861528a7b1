"""``modelsafe inspect``: describe a file from its header, without loading it."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from .._info import FileInfo, Row

DEFAULT_MAX_ROWS = 100
_DIGEST_PREFIX = 12
_META_ROWS = ("producer", "created", "python", "platform")
_META_FOLDED = ("format_version", "implementation", "byteorder", "user")  # shown in other rows
# Control and format characters (escape sequences, bidi overrides) from a hostile header
# could rewrite the terminal, e.g. erase the UNTRUSTED line: show them escaped.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_ND_DETAIL = re.compile(r"(?P<dtype>[<>|=]?[a-zA-Z]\w*) shape=\((?P<shape>[\d, ]*)\)")


@click.command("inspect")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print FileInfo.to_dict() as JSON on stdout.")
@click.option(
    "--max-rows",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help=f"Rows of the object tree to show (default {DEFAULT_MAX_ROWS}; 0 hides the tree). "
    "With --json, limits the 'tree' list.",
)
@click.option("--buffers", "show_buffers", is_flag=True, help="List the data buffers.")
def inspect_command(file: str, as_json: bool, max_rows: int | None, show_buffers: bool) -> None:
    """Describe FILE from its header alone: nothing is loaded, imported or run.

    Shows the metadata, the types the file needs (and which of them are not
    trusted by default) and the object tree.
    """
    import modelsafe

    info = modelsafe.inspect(file)
    if as_json:
        data = info.to_dict()
        if max_rows is not None:
            data["tree"] = [r.__dict__ for r in info.rows(max_rows=max_rows)] if max_rows else []
        # ASCII-only: a program gets the same text, a terminal gets no raw control characters.
        click.echo(json.dumps(data, indent=2))
        return
    from rich.console import Console

    render(Console(), info, DEFAULT_MAX_ROWS if max_rows is None else max_rows, show_buffers)


def render(console: Console, info: FileInfo, max_rows: int, show_buffers: bool) -> None:
    """Print ``info`` for a person: summary, types, buffers (optional) and the object tree."""
    console.print(_summary(info))
    _print_types(console, info)
    if show_buffers:
        console.print(_buffers_table(info))
    if max_rows:
        _print_tree(console, info, max_rows)


def human_bytes(n: int) -> str:
    """``1536`` -> ``'1.5 KiB'``; exact below 1 KiB."""
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024 or unit == "TiB":
            break
    return f"{size:.1f} {unit}"


def safe(text: str) -> str:
    """``text`` from a file's header, made safe to print with rich: markup and control
    characters escaped."""
    from rich.markup import escape

    if not text.isprintable():
        text = "".join(
            ascii(ch)[1:-1] if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text
        )
    return escape(text)


def _sized(n: int) -> str:
    return f"{human_bytes(n)} ({n:,} bytes)" if n >= 1024 else human_bytes(n)


def _compact_json(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 3] + "... (see --json)"


def _summary(info: FileInfo) -> Any:
    from rich.panel import Panel
    from rich.table import Table

    meta = info.metadata
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")

    def add(label: str, value: str) -> None:
        grid.add_row(label, safe(value))

    add("format version", str(info.format_version))
    add("file size", _sized(info.file_size))
    add("header size", _sized(info.header_size))
    add("data size", f"{_sized(info.data_size)} in {len(info.buffers)} buffer(s)")
    add("compression", _compression(info))
    signed = [f"{s['key_id']} ({s['signed_at']})" for s in info.signatures]
    add("signatures", ", ".join(signed) + " (not verified here)" if signed else "none")
    for key in _META_ROWS:
        if key in meta:
            add(key, _meta_text(meta, key))
    for key, value in meta.items():
        if key not in _META_ROWS and key not in _META_FOLDED:
            add(key, _compact_json(value))
    user = meta.get("user")
    add("user metadata", _compact_json(user) if user else "none")
    title = safe(info.path) if info.path else "(bytes)"
    return Panel(grid, title=f"[bold]{title}[/]", title_align="left", expand=False)


def _meta_text(meta: dict[str, Any], key: str) -> str:
    text = str(meta[key])
    if key == "python" and "implementation" in meta:
        text += f" ({meta['implementation']})"
    elif key == "platform" and "byteorder" in meta:
        text += f", {meta['byteorder']}-endian"
    return text


def _compression(info: FileInfo) -> str:
    packed = [b for b in info.buffers if b["compression"]]
    if not packed:
        return "none (the data can be memory-mapped)"
    codecs = ", ".join(sorted({str(b["compression"]) for b in packed}))
    stored = sum(int(b["size"]) for b in packed)
    raw = sum(int(b["nbytes"]) for b in packed)
    return (
        f"{codecs}: {len(packed)} of {len(info.buffers)} buffer(s), "
        f"{human_bytes(raw)} stored in {human_bytes(stored)} (cannot be memory-mapped)"
    )


def _print_types(console: Console, info: FileInfo) -> None:
    from rich.table import Table

    from .._trust import never_trustable

    untrusted = set(info.untrusted)
    table = Table(title=f"Types the file needs ({len(info.types)})", title_justify="left")
    table.add_column("type", overflow="fold")
    table.add_column("trust")
    for name in info.types:
        if name not in untrusted:
            status = "[green]trusted by default[/]"
        elif never_trustable(name):
            status = "[bold red]UNTRUSTED, can never be trusted (runs code)[/]"
        else:
            status = "[bold red]UNTRUSTED[/]"
        table.add_row(safe(name), status)
    if info.types:
        console.print(table)
    else:
        console.print("Types the file needs: none beyond plain JSON values.")
    if not untrusted:
        console.print(
            "[green]Every type is trusted by default: modelsafe.load(path) accepts it.[/]"
        )
        return
    never = sorted(n for n in untrusted if never_trustable(n))
    can = sorted(untrusted.difference(never))
    console.print(
        f"[bold red]{len(untrusted)} type(s) are not trusted by default[/]: "
        "modelsafe.load(path) refuses this file (UntrustedTypesError) before constructing "
        "anything."
    )
    if never:
        console.print(
            f"[bold red]{safe(', '.join(never))}[/] would let the file run code or reach "
            "outside the process; modelsafe never trusts such names. Do not use this file."
        )
    elif can:
        listed = ", ".join(repr(n) for n in can)
        console.print(
            "If you trust where the file comes from and these names, load it with:\n"
            f"  [bold]{safe(f'modelsafe.load(path, trusted=[{listed}])')}[/]"
        )


def _buffers_table(info: FileInfo) -> Any:
    from rich.table import Table

    table = Table(title=f"Buffers ({len(info.buffers)})", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("offset", justify="right")
    table.add_column("stored", justify="right", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("codec")
    table.add_column("owner", overflow="fold")
    table.add_column("blake3", no_wrap=True, min_width=_DIGEST_PREFIX + 3)
    for b in info.buffers:
        table.add_row(
            str(b["index"]),
            f"{b['offset']:,}",
            human_bytes(int(b["size"])),
            human_bytes(int(b["nbytes"])),
            str(b["compression"] or "-"),
            safe(str(b["owner"] or "?")),
            str(b["digest"])[:_DIGEST_PREFIX] + "...",
        )
    return table


def _array_bytes(row: Row) -> int:
    """Bytes of an array row's data, from its dtype and shape; 0 when unknown."""
    if row.nbytes:
        return row.nbytes
    # Small arrays share buffers, so buffer sizes cannot be used; the row's own text can.
    m = _ND_DETAIL.fullmatch(row.detail) if row.kind == "ndarray" else None
    if m is None:
        return 0
    import numpy as np

    try:
        dtype = np.dtype(m["dtype"])
    except TypeError:
        return 0
    if dtype.hasobject:
        return 0
    count = 1
    for dim in filter(None, m["shape"].replace(" ", "").split(",")):
        count *= int(dim)
    return count * dtype.itemsize


def _segment(row: Row, parents: list[str]) -> str:
    """The part of a row's path below its parent, e.g. ``['W1']`` under ``root['weights']``."""
    del parents[row.depth :]
    parent = parents[-1] if parents else ""
    parents.append(row.path)
    if parent and row.path.startswith(parent) and len(row.path) > len(parent):
        return row.path[len(parent) :]
    return row.path


def _print_tree(console: Console, info: FileInfo, max_rows: int) -> None:
    from rich.table import Table

    rows = info.rows(max_rows=max_rows + 1)
    table = Table(title="Object tree", title_justify="left")
    table.add_column("path", overflow="fold")
    table.add_column("type", overflow="fold")
    table.add_column("details", overflow="fold")
    table.add_column("bytes", justify="right")
    parents: list[str] = []
    for row in rows[:max_rows]:
        nbytes = _array_bytes(row)
        table.add_row(
            safe("  " * row.depth + _segment(row, parents)),
            safe(row.kind),
            safe(row.detail),
            human_bytes(nbytes) if nbytes else "",
        )
    console.print(table)
    if len(rows) > max_rows:
        console.print(f"(first {max_rows} rows shown; use --max-rows N for more, or --json)")
