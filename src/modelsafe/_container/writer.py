"""Write a container: preamble, padded JSON header, aligned buffers; atomically."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import FormatError
from .compress import compress_all
from .digest import cores, digest, digest_many
from .layout import (
    DEFAULT_LIMITS,
    DIGEST_HEX_LEN,
    DIGEST_NAME,
    FORMAT_VERSION,
    HASH_PLACEHOLDER,
    HASH_SPAN,
    MAGIC,
    PREAMBLE,
    PREAMBLE_SIZE,
    align,
    json_structure,
)


@dataclass(frozen=True)
class StoredBuffer:
    """One buffer as it is laid out in the data section."""

    data: memoryview | bytes  # the stored bytes (compressed when codec is set)
    offset: int  # from the start of the data section, a multiple of 64
    pad: int  # zero bytes after it, up to the next 64-byte boundary


def _dump_header(header: dict[str, Any]) -> bytes:
    text = json.dumps(
        header, separators=(",", ":"), ensure_ascii=True, allow_nan=False, check_circular=False
    )
    return text.encode("ascii")


@dataclass(frozen=True)
class Layout:
    """A container laid out but not yet digested: the buffers and how to make the head."""

    buffers: list[StoredBuffer]
    entries: list[list[Any]]  # buffer entries, digest slot (index 2) still empty
    fields: dict[str, Any]
    data_size: int

    def digests(self, threads: int | None = None) -> list[str]:
        return digest_many([(b.data, b.pad) for b in self.buffers], threads)

    @functools.cached_property
    def _members(self) -> bytes:
        """The caller's members as JSON text (the object tree: most of the header),
        dumped once for both the placeholder head and the sealed one."""
        text = _dump_header(self.fields)[1:-1]
        return b"," + text if text else b""

    def head(self, digests: Sequence[str]) -> bytes:
        """Preamble plus padded, sealed header. Its length does not depend on the
        digests (fixed-width hex), so a placeholder head can be written first.

        The bytes are those of ``json.dumps`` of ``{"hash", "digest", "data_size",
        "buffers", **fields}`` (compact separators); the buffer entries, integers and
        plain ASCII strings, are written out directly.
        """
        entries = []
        for e, d in zip(self.entries, digests, strict=True):
            if len(d) != DIGEST_HEX_LEN or not d.isalnum() or not d.isascii():
                raise ValueError(f"not a hex digest: {d!r}")
            codec = f',"{e[3]}",{int(e[4])}' if len(e) > 3 else ""
            entries.append(f'[{int(e[0])},{int(e[1])},"{d}"{codec}]')
        body = (
            f'{{"hash":"{HASH_PLACEHOLDER}","digest":"{DIGEST_NAME}",'
            f'"data_size":{int(self.data_size)},"buffers":[{",".join(entries)}]'
        ).encode("ascii")
        body += self._members + b"}"
        total = PREAMBLE_SIZE + len(body)
        body += b" " * (align(total) - total)
        _within_limits(body)
        return seal_header(PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(body)) + body)


def _within_limits(body: bytes) -> None:
    """A header no reader would accept is not written (FormatError; a file being replaced
    is left as it was)."""
    limits = DEFAULT_LIMITS
    if len(body) > limits.max_header_bytes:
        raise FormatError(
            f"this object needs a header of {len(body)} bytes, over the "
            f"{limits.max_header_bytes} a reader accepts (docs/format.md §8). The header "
            "holds the object tree but its arrays and bytes: keep large data in those"
        )
    values = json_structure(body, limits.max_header_values)
    if values is not None:
        raise FormatError(
            f"this object needs a header of {values} JSON values and keys, over the "
            f"{limits.max_header_values} a reader accepts (docs/format.md §8): keep large "
            "collections (a million tuples or small arrays and more) in numpy arrays"
        )


def build_container(
    fields: dict[str, Any], buffers: Sequence[memoryview], *, compress: tuple[str, int] | None
) -> Layout:
    """Lay out a container.

    ``fields`` are the caller's header members (``meta``, ``types``, ``root``);
    ``buffers`` are flat byte views, referenced from the tree by index.
    Buffers are compressed here; digests are computed by the caller, while
    writing (:func:`write_atomic`) or before joining (:func:`to_bytes`).
    """
    stored = compress_all(buffers, compress)
    entries: list[list[Any]] = []
    layout: list[StoredBuffer] = []
    offset = 0
    for (data, codec), raw in zip(stored, buffers, strict=True):
        n = len(data)
        pad = align(n) - n
        layout.append(StoredBuffer(data, offset, pad))
        entry: list[Any] = [offset, n, ""]
        if codec is not None:
            entry += [codec, len(raw)]
        entries.append(entry)
        offset += n + pad
    return Layout(layout, entries, fields, offset)


def seal_header(head: bytes) -> bytes:
    """Write the header's own digest into preamble + header (see layout.HASH_SPAN)."""
    out = bytearray(head)
    out[HASH_SPAN] = HASH_PLACEHOLDER.encode("ascii")
    out[HASH_SPAN] = digest(out).encode("ascii")
    return bytes(out)


_PAD = bytes(64)
_HASH_WHILE_WRITING = 1 << 20  # data sections from this size are hashed while written


def write_to(fh: BinaryIO, head: bytes, layout: Iterable[StoredBuffer]) -> None:
    """Stream a laid-out container into an open binary file."""
    fh.write(head)
    for sb in layout:
        fh.write(sb.data)
        if sb.pad:
            fh.write(_PAD[: sb.pad])


Trailer = Callable[[bytes], bytes]
"""Given the final preamble + header, the signature records to append (``_signing``)."""


def to_bytes(layout: Layout, trailer: Trailer | None = None) -> bytes:
    head = layout.head(layout.digests())
    parts: list[bytes | memoryview] = [head]
    for sb in layout.buffers:
        parts.append(sb.data)
        if sb.pad:
            parts.append(_PAD[: sb.pad])
    if trailer is not None:
        parts.append(trailer(head))
    return b"".join(parts)


def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: read it the only portable way, and put it back
    os.umask(mask)
    return mask


def replace_atomic(
    path: str | os.PathLike[str], write: Callable[[BinaryIO], None], *, fsync: bool
) -> Path:
    """Run ``write`` on a temporary file beside ``path``, flush, fsync, rename it over
    ``path`` (keeping its permissions) and fsync the directory.

    A crash or kill at any moment leaves ``path`` holding either its previous content
    or the complete new file, never a partial one.
    """
    target = Path(os.fspath(path))
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with open(fd, "wb", buffering=1 << 20, closefd=True) as fh:
            try:
                mode = os.stat(target).st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o666 & ~_umask()
            os.fchmod(fh.fileno(), mode)
            write(fh)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        # The rename itself must reach the disk for the new file to survive a power cut.
        with contextlib.suppress(OSError):
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    return target


def write_atomic(
    path: str | os.PathLike[str], layout: Layout, *, fsync: bool, trailer: Trailer | None = None
) -> Path:
    """Write a laid-out container to ``path`` atomically (:func:`replace_atomic`).

    Above 1 MiB of data the buffers are hashed on the other cores while they are
    written; the header, whose length does not depend on the digests, is written first
    as a placeholder and rewritten in place once they are known, before the fsync and
    the rename. ``trailer`` (signing) makes the records appended after the data from
    the final header.
    """

    def write(fh: BinaryIO) -> None:
        if layout.data_size < _HASH_WHILE_WRITING or cores() == 1:
            # Small: a thread would cost more than the hashing it overlaps.
            head = layout.head(layout.digests())
            write_to(fh, head, layout.buffers)
            if trailer is not None:
                fh.write(trailer(head))
            return
        placeholder = layout.head([HASH_PLACEHOLDER] * len(layout.buffers))
        with ThreadPoolExecutor(max_workers=1) as pool:
            # Every core but the one writing: hashing on all of them slows the write.
            pending = pool.submit(layout.digests, cores() - 1)
            write_to(fh, placeholder, layout.buffers)
            digests = pending.result()
        head = layout.head(digests)
        if len(head) != len(placeholder):  # pragma: no cover - fixed-width digests
            raise AssertionError("header length changed with its digests")
        if trailer is not None:
            fh.write(trailer(head))
        fh.flush()
        os.pwrite(fh.fileno(), head, 0)

    return replace_atomic(path, write, fsync=fsync)
