"""Read and check a container (docs/format.md, "Reading").

Reading is split so that nothing but the preamble and the header is touched
until the caller asks for the data: ``inspect`` and ``untrusted_types`` never
read the data section.
"""

from __future__ import annotations

import json
import mmap as _mmap
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..errors import FormatError, FormatVersionError, IntegrityError, MmapUnavailableError
from .compress import decompress
from .digest import BACKGROUND_MIN, Pending, digest, digest_many, digest_many_later
from .layout import (
    CODECS,
    DEFAULT_LIMITS,
    DIGEST_HEX_LEN,
    DIGEST_NAME,
    FORMAT_VERSION,
    HASH_PLACEHOLDER,
    HASH_PREFIX,
    HASH_SPAN,
    MAGIC,
    MAX_SIGNATURES,
    PREAMBLE,
    PREAMBLE_SIZE,
    SIGNATURE,
    SIGNATURE_ED25519,
    SIGNATURE_MAGIC,
    SIGNATURE_SIGNED,
    SIGNATURE_SIZE,
    Limits,
    align,
    json_structure,
)
from .release import Releaser, drop_pages

_HEX = re.compile(r"[0-9a-f]*")


@dataclass(frozen=True)
class BufferEntry:
    """A buffer's entry in the header's ``buffers`` list."""

    index: int
    offset: int  # from the start of the data section
    size: int  # stored bytes
    digest: str
    codec: str | None = None
    raw_size: int | None = None  # after decompression, when codec is set

    @property
    def nbytes(self) -> int:
        """Bytes after decompression."""
        return self.size if self.raw_size is None else self.raw_size


@dataclass(frozen=True)
class SignatureRecord:
    """One record of the signature trailer, as read (nothing verified yet)."""

    signed_at: int  # seconds since the epoch, as the signer's clock said
    public_key: bytes  # Ed25519, raw 32 bytes
    signature: bytes  # 64 bytes
    signed: bytes  # the record's first SIGNATURE_SIGNED bytes, part of the signed message

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)


def key_id(public_raw: bytes) -> str:
    """A key's id: the first 16 hex digits of the SHA-256 of its raw 32 bytes."""
    import hashlib

    return hashlib.sha256(public_raw).hexdigest()[:16]


def parse_trailer(raw: bytes, source: str) -> list[SignatureRecord]:
    """The records of a version-2 signature trailer; FormatError for anything else."""
    count, rest = divmod(len(raw), SIGNATURE_SIZE)
    if rest:
        raise FormatError(
            f"{source}: {len(raw)} bytes after the data section are not whole "
            f"{SIGNATURE_SIZE}-byte signature records"
        )
    if count > MAX_SIGNATURES:
        raise FormatError(f"{source}: {count} signatures exceed the limit of {MAX_SIGNATURES}")
    records = []
    for i in range(count):
        chunk = raw[i * SIGNATURE_SIZE : (i + 1) * SIGNATURE_SIZE]
        magic, algorithm, signed_at, key, signature, zero = SIGNATURE.unpack(chunk)
        if magic != SIGNATURE_MAGIC:
            raise FormatError(f"{source}: signature {i} does not start with the record magic")
        if algorithm != SIGNATURE_ED25519:
            raise FormatError(f"{source}: signature {i} uses unknown algorithm {algorithm}")
        if any(zero):
            raise FormatError(f"{source}: signature {i} has non-zero bytes in its padding")
        records.append(SignatureRecord(signed_at, key, signature, chunk[:SIGNATURE_SIGNED]))
    return records


@dataclass
class Container:
    """A parsed, checked header and the means to reach the data section."""

    header: dict[str, Any]
    version: int
    header_size: int  # length of the JSON header, padding included
    file_size: int
    buffers: list[BufferEntry]
    source: str
    path: str | None = None
    data: bytes | memoryview | None = None  # whole file, when given as bytes
    identity: tuple[int, ...] = ()  # device, inode, size, mtime of the file read
    pending: Pending | None = None  # digests being computed (open_data(later=True))
    header_text: bytes = b""  # the header as read, for the object tree as the file has it
    preamble: bytes = b""
    signatures: list[SignatureRecord] = field(default_factory=list)  # the trailer's records
    releaser: Releaser | None = None  # drops mapped pages the builder copied (open_data)

    @property
    def signed_message(self) -> bytes:
        """What every signature of the file covers, after its own record's first bytes:
        the preamble and the header, whose digests cover every buffer."""
        return self.preamble + self.header_text

    def file_root(self) -> Any:
        """The object tree as in the file (``header["root"]`` is filled with the objects
        built from it while they are built)."""
        return parse_header(self.header_text, self.source)["root"]

    @property
    def data_offset(self) -> int:
        return PREAMBLE_SIZE + self.header_size

    @property
    def data_size(self) -> int:
        return int(self.header["data_size"])

    @property
    def compressed(self) -> list[int]:
        return [b.index for b in self.buffers if b.codec is not None]

    def open_data(
        self,
        *,
        mmap_mode: str | bool | None,
        verify: bool,
        locate: Any = None,
        later: bool = False,
    ) -> list[memoryview | bytearray]:
        """Map or read the data section; verify digests; decompress.

        ``mmap_mode`` is "c" (copy-on-write map), "r" (read-only map) or False
        (read into memory). Returns one view per buffer (writable unless the
        map is read-only or the data is the caller's bytes). ``locate(i)``
        names the object holding buffer ``i`` for error messages.

        ``later``: the digests of an uncompressed data section of some size are
        computed on the hashing threads while the caller goes on, and
        :meth:`finish_verify` waits for them and raises what verifying would
        have; the caller must call it before using what it built. (Compressed
        bytes are verified before they are decompressed, as without ``later``.)
        """
        if mmap_mode == "r" and self.compressed:
            idx = self.compressed
            raise MmapUnavailableError(
                f"{self.source}: mmap='r' is impossible because {len(idx)} buffer(s) are "
                f"compressed ({', '.join(sorted({self.buffers[i].codec or '' for i in idx}))}); "
                f"compressed bytes cannot be memory-mapped. Load without mmap, or save "
                f"without compress= to get a mappable file."
            )
        size = self.data_size
        whole: memoryview
        mm: _mmap.mmap | None = None
        if self.data is not None:
            whole = memoryview(self.data)[self.data_offset : self.data_offset + size]
            if mmap_mode == "r":  # read-only, as views of a read-only map would be
                whole = whole.toreadonly()
        elif size == 0:
            whole = memoryview(b"")
        elif mmap_mode in ("c", "r"):
            assert self.path is not None
            with open(self.path, "rb") as fh:
                self.same_file(fh)
                access = _mmap.ACCESS_COPY if mmap_mode == "c" else _mmap.ACCESS_READ
                mm = _mmap.mmap(fh.fileno(), 0, access=access)
            whole = memoryview(mm)[self.data_offset : self.data_offset + size]
        else:
            assert self.path is not None
            buf = bytearray(size)
            with open(self.path, "rb") as fh:
                self.same_file(fh)
                fh.seek(self.data_offset)
                if fh.readinto(buf) != size:
                    raise FormatError(f"{self.source}: the file is shorter than its header says")
            whole = memoryview(buf)
        stored = [whole[b.offset : b.offset + b.size] for b in self.buffers]
        if verify and later and not self.compressed and size >= BACKGROUND_MIN:
            if mm is not None:
                self.releaser = Releaser.over(mm, whole, self.data_offset, self.buffers, False)
            on_done = None if self.releaser is None else self.releaser.hashed
            self.pending = digest_many_later(self._digested(whole), on_done)
            return list(stored)
        if verify:
            self._verify(whole, locate)
            if mm is not None:  # hashing paged in the compressed bytes: let them go
                self._release(mm, [b for b in self.buffers if b.codec is not None])
        if mm is not None and not self.compressed:
            self.releaser = Releaser.over(mm, whole, self.data_offset, self.buffers, True)
        views: list[memoryview | bytearray] = list(stored)
        packed = [b for b in self.buffers if b.codec is not None]
        if packed:

            def where(i: int) -> str:  # only called to word an error
                return self._where(i, locate)

            def one(b: BufferEntry) -> bytearray:
                out = decompress(stored[b.index], str(b.codec), b.nbytes, b.index, where)
                if mm is not None:
                    self._release(mm, [b])
                return out

            if len(packed) == 1:
                views[packed[0].index] = one(packed[0])
            else:
                with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                    for b, out in zip(packed, pool.map(one, packed), strict=True):
                        views[b.index] = out
        return views

    def handed(self, index: int) -> None:
        """The builder takes a view of buffer ``index`` (see ``release.py``)."""
        if self.releaser is not None:
            self.releaser.handed(index)

    def wait_hashed(self, index: int) -> None:
        """Return once buffer ``index`` is hashed, where its digest is being computed in
        the background (``open_data(later=True)``); at once otherwise."""
        if self.pending is not None:
            self.pending.wait(index)

    def consumed(self, arr: Any, minimum: int | None = None) -> None:
        """``arr``, a view of the mapped data, has been copied and will not be read again:
        its pages may stop counting in this process's memory (see ``release.py``)."""
        if self.releaser is not None:
            self.releaser.consumed(arr, minimum)

    def same_file(self, fh: BinaryIO) -> None:
        """The data must come from the file whose header was read, not a replacement."""
        if _identity(os.fstat(fh.fileno())) != self.identity:
            raise FormatError(
                f"{self.source}: the file was replaced or changed since its header was read"
            )

    def _release(self, mm: _mmap.mmap, packed: list[BufferEntry]) -> None:
        """Let the kernel drop the mapped pages of compressed bytes once decompressed,
        so they stop counting in this process's memory."""
        for b in packed:
            start = self.data_offset + b.offset
            drop_pages(mm, start, start + b.size)

    def _where(self, i: int, locate: Any) -> str:
        where = f"{self.source}: buffer {i}"
        if locate is not None:
            name = locate(i)
            if name:
                where += f" ({name})"
        return where

    def finish_verify(self, locate: Any = None) -> None:
        """Wait for the digests ``open_data(later=True)`` started; raise
        :class:`IntegrityError` naming the first buffer that does not match."""
        pending, self.pending = self.pending, None
        if pending is not None:
            self._compare(pending.result(), locate)

    def _digested(self, whole: memoryview) -> list[tuple[memoryview, int]]:
        # The digest covers the padding actually in the file, so no byte escapes it.
        return [(whole[b.offset : align(b.offset + b.size)], 0) for b in self.buffers]

    def _verify(self, whole: memoryview, locate: Any) -> None:
        self._compare(digest_many(self._digested(whole)), locate)

    def _compare(self, found: list[str], locate: Any) -> None:
        for b, got in zip(self.buffers, found, strict=True):
            if got != b.digest:
                where = self._where(b.index, locate)
                raise IntegrityError(
                    f"{where} is corrupted: its bytes do not match the digest in the header "
                    f"(expected blake3 {b.digest[:16]}..., got {got[:16]}...). The file was "
                    f"damaged or modified after it was written.",
                    buffer=b.index,
                    where=where,
                )


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _reject_constant(name: str) -> Any:
    raise FormatError(f"the header contains {name}, which is not valid JSON")


# Duplicate member names: the last one wins, as in JavaScript, Python and Go (the
# spec says so, so conforming readers agree). Number ranges are checked by the audit,
# which sees every number of the tree; a per-number hook here would make parsing slow.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def parse_header(raw: bytes, source: str) -> dict[str, Any]:
    """Parse the header: UTF-8 JSON text of one object, then only space padding."""
    if raw[:1] != b"{":
        raise FormatError(f"{source}: the header must start with '{{' (a JSON object)")
    try:
        text = raw.decode("utf-8")
        header, end = _DECODER.raw_decode(text)
    except FormatError as exc:
        raise FormatError(f"{source}: {exc}") from None
    except RecursionError as exc:
        raise FormatError(f"{source}: the header nests too deeply to parse") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{source}: the header is not valid UTF-8 JSON ({exc})") from exc
    if text[end:].strip(" "):
        raise FormatError(f"{source}: the header has bytes other than spaces after its JSON")
    if not isinstance(header, dict):
        raise FormatError(f"{source}: the header must be a JSON object")
    return header


def _check_preamble(pre: bytes, file_size: int, limits: Limits, source: str) -> tuple[int, int]:
    if len(pre) < PREAMBLE_SIZE:
        raise FormatError(
            f"{source}: truncated: {file_size} bytes, shorter than the "
            f"{PREAMBLE_SIZE}-byte preamble"
        )
    magic, version, hlen = PREAMBLE.unpack(pre[:PREAMBLE_SIZE])
    if magic != MAGIC:
        raise FormatError(f"{source}: not a modelsafe file (wrong magic bytes {magic!r})")
    if version > FORMAT_VERSION:
        raise FormatVersionError(version, FORMAT_VERSION)
    if version < 1:
        raise FormatError(f"{source}: unknown format version {version}")
    if hlen > limits.max_header_bytes:
        raise FormatError(
            f"{source}: header length {hlen} exceeds the limit of {limits.max_header_bytes} bytes"
        )
    if PREAMBLE_SIZE + hlen > file_size:
        raise FormatError(
            f"{source}: truncated: header needs {hlen} bytes, the file has "
            f"{file_size - PREAMBLE_SIZE} after the preamble"
        )
    if (PREAMBLE_SIZE + hlen) % 64:
        raise FormatError(f"{source}: header length {hlen} does not end on a 64-byte boundary")
    return version, hlen


def _is_uint(x: object) -> bool:
    return type(x) is int and x >= 0


def _check_buffers(raw: object, source: str, limits: Limits) -> tuple[list[BufferEntry], int]:
    if not isinstance(raw, list):
        raise FormatError(f"{source}: header 'buffers' must be a list")
    if len(raw) > limits.max_buffers:
        raise FormatError(f"{source}: {len(raw)} buffers exceed the limit of {limits.max_buffers}")
    if not all(type(e) is list for e in raw):
        raise FormatError(f"{source}: every buffer entry must be a list")
    entries: list[BufferEntry] = []
    expected = 0
    for i, e in enumerate(raw):
        n = len(e)
        if n == 3:
            off, size, dig = e
            codec = raw_size = None
        elif n == 5:
            off, size, dig, codec, raw_size = e
            if codec not in CODECS:
                raise FormatError(f"{source}: buffer {i}: unknown compression {codec!r}")
            if not _is_uint(raw_size) or raw_size == 0:
                raise FormatError(f"{source}: buffer {i}: bad uncompressed size {raw_size!r}")
        else:
            raise FormatError(f"{source}: buffer {i}: entry must have 3 or 5 items, not {n}")
        if not (_is_uint(off) and _is_uint(size)) or size == 0:
            raise FormatError(f"{source}: buffer {i}: offset and size must be integers, size > 0")
        if off != expected:
            raise FormatError(
                f"{source}: buffer {i} starts at {off}, expected {expected}: buffers must follow "
                f"each other 64-byte aligned, without holes or overlaps"
            )
        if type(dig) is not str or len(dig) != DIGEST_HEX_LEN or not _HEX.fullmatch(dig):
            raise FormatError(f"{source}: buffer {i}: digest must be 64 lowercase hex digits")
        entries.append(BufferEntry(i, off, size, dig, codec, raw_size))
        expected = align(off + size)
    return entries, expected


_MEMBERS = frozenset({"hash", "digest", "data_size", "buffers", "meta", "types", "arrays", "root"})


def check_header_hash(pre: bytes, body: bytes, source: str) -> None:
    """Compare the header's own digest with its bytes (IntegrityError on mismatch)."""
    if not body.startswith(HASH_PREFIX) or len(body) < len(HASH_PREFIX) + DIGEST_HEX_LEN:
        raise FormatError(f"{source}: the header must start with its hash member")
    head = bytearray(pre[:PREAMBLE_SIZE] + body)
    stored = bytes(head[HASH_SPAN]).decode("ascii", "replace")
    head[HASH_SPAN] = HASH_PLACEHOLDER.encode("ascii")
    if digest(head) != stored:
        raise IntegrityError(
            f"{source}: the header is corrupted: its bytes do not match the hash it records. "
            f"The file was damaged or modified after it was written."
        )


def _check_header(
    header: dict[str, Any], source: str, limits: Limits, version: int
) -> list[BufferEntry]:
    unknown = sorted(set(header) - _MEMBERS)
    if unknown:
        raise FormatError(f"{source}: unknown header member(s) {unknown[:5]}")
    for key, kind in (
        ("hash", str),
        ("digest", str),
        ("data_size", int),
        ("buffers", list),
        ("meta", dict),
        ("types", list),
    ):
        if key not in header:
            raise FormatError(f"{source}: the header has no '{key}'")
        if type(header[key]) is not kind:
            raise FormatError(f"{source}: header '{key}' must be a {kind.__name__}")
    if header["digest"] != DIGEST_NAME:
        raise FormatError(f"{source}: unknown digest algorithm {header['digest']!r}")
    if "root" not in header:
        raise FormatError(f"{source}: the header has no 'root'")
    if header["meta"].get("format_version", version) != version:
        raise FormatError(f"{source}: meta.format_version disagrees with the preamble")
    if not all(type(t) is str for t in header["types"]):
        raise FormatError(f"{source}: header 'types' must be a list of strings")
    entries, end = _check_buffers(header["buffers"], source, limits)
    if header["data_size"] != end:
        raise FormatError(
            f"{source}: data_size is {header['data_size']}, but the buffers end at {end}"
        )
    return entries


def _finish(
    pre: bytes,
    body: bytes,
    file_size: int,
    source: str,
    limits: Limits,
    version: int,
    hlen: int,
    verify: bool,
) -> tuple[dict[str, Any], list[BufferEntry]]:
    if verify:
        check_header_hash(pre, body, source)
    values = json_structure(body, limits.max_header_values)
    if values is not None:
        raise FormatError(
            f"{source}: the header has {values} JSON values and keys (its [ {{ , : outside "
            f"strings), over the limit of {limits.max_header_values}"
        )
    header = parse_header(body, source)
    entries = _check_header(header, source, limits, version)
    expected = PREAMBLE_SIZE + hlen + header["data_size"]
    if file_size < expected:
        raise FormatError(
            f"{source}: truncated: {file_size} bytes, the header describes {expected}"
        )
    extra = file_size - expected
    if extra and version == 1:  # version 1 has no trailer
        raise FormatError(f"{source}: {extra} unexpected bytes after the data section")
    if extra % SIGNATURE_SIZE or extra > MAX_SIGNATURES * SIGNATURE_SIZE:
        raise FormatError(
            f"{source}: {extra} bytes after the data section are not a signature trailer "
            f"(at most {MAX_SIGNATURES} records of {SIGNATURE_SIZE} bytes)"
        )
    return header, entries


# A file this small is read whole, in one call, and its arrays are views of that private
# copy: mapping it (a second open, mmap, page faults, munmap, and copies of the arrays
# compiled code indexes, which a rewrite of the file must not reach) costs more than
# reading it (zoo: ct_pipe, 23 KiB, ~0.76 -> ~0.68 ms; hgb, 239 KiB, ~1.30 -> ~1.21-1.32
# ms and a fresh process's peak +0.58 MB instead of +0.77), and sharing a few hundred KiB
# of pages between processes saves little.
SMALL_FILE = 1 << 20


def open_container(
    path: str | os.PathLike[str],
    *,
    limits: Limits = DEFAULT_LIMITS,
    verify: bool = True,
    small_whole: bool = False,
) -> Container:
    """Read and check the preamble and header of a file; the data is not read, unless
    ``small_whole`` and the file is at most ``SMALL_FILE`` bytes: then it is read whole,
    in one call, into ``data`` (for a load, which reads it next anyway)."""
    p = os.fspath(path)
    source = str(p)
    with open(p, "rb") as fh:
        st = os.fstat(fh.fileno())
        file_size = st.st_size
        if small_whole and file_size <= SMALL_FILE:
            whole = bytearray(file_size)
            if fh.readinto(whole) != file_size or fh.read(1):
                raise FormatError(f"{source}: the file changed while it was read")
            c = parse_container(whole, limits=limits, source=source, verify=verify)
            c.path, c.identity = str(p), _identity(st)
            return c
        pre = fh.read(PREAMBLE_SIZE)
        version, hlen = _check_preamble(pre, file_size, limits, source)
        body = _read_exact(fh, hlen, source)
        header, entries = _finish(pre, body, file_size, source, limits, version, hlen, verify)
        end = PREAMBLE_SIZE + hlen + header["data_size"]
        trailer = os.pread(fh.fileno(), file_size - end, end) if file_size > end else b""
    if len(trailer) != file_size - end:
        raise FormatError(f"{source}: the file changed while its trailer was read")
    return Container(
        header,
        version,
        hlen,
        file_size,
        entries,
        source,
        path=str(p),
        identity=_identity(st),
        header_text=body,
        preamble=pre,
        signatures=parse_trailer(trailer, source),
    )


def _read_exact(fh: BinaryIO, n: int, source: str) -> bytes:
    body = fh.read(n)
    if len(body) != n:
        raise FormatError(f"{source}: truncated inside the header")
    return body


def parse_container(
    data: bytes | bytearray | memoryview,
    *,
    limits: Limits = DEFAULT_LIMITS,
    source: str = "data",
    verify: bool = True,
) -> Container:
    """Check a container held in memory."""
    mv = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
    size = len(mv)
    pre = bytes(mv[:PREAMBLE_SIZE])
    version, hlen = _check_preamble(pre, size, limits, source)
    body = bytes(mv[PREAMBLE_SIZE : PREAMBLE_SIZE + hlen])
    header, entries = _finish(pre, body, size, source, limits, version, hlen, verify)
    trailer = bytes(mv[PREAMBLE_SIZE + hlen + header["data_size"] :])
    return Container(
        header,
        version,
        hlen,
        size,
        entries,
        source,
        data=mv,
        header_text=body,
        preamble=pre,
        signatures=parse_trailer(trailer, source),
    )
