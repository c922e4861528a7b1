"""Constants and limits of the byte layout (docs/format.md, "Layout" and "Limits")."""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"\x93MSAFE"
FORMAT_VERSION = 2  # 2: version 1 plus the signature trailer (docs/format.md §2.1)
PREAMBLE = struct.Struct("<6sHQ")  # magic, format version (u16), header length (u64)
PREAMBLE_SIZE = PREAMBLE.size  # 16
ALIGN = 64
DIGEST_NAME = "blake3"
DIGEST_HEX_LEN = 64  # 32-byte BLAKE3 output, lowercase hex
CODECS = ("zstd", "lz4")
# The header starts {"hash":"<64 hex>", ... : the digest of the preamble and the
# header with these 64 characters replaced by "0".
HASH_PREFIX = b'{"hash":"'
HASH_PLACEHOLDER = "0" * DIGEST_HEX_LEN
HASH_SPAN = slice(PREAMBLE_SIZE + len(HASH_PREFIX), PREAMBLE_SIZE + len(HASH_PREFIX) + 64)


# The signature trailer (format version 2): records of SIGNATURE_SIZE bytes after the data.
SIGNATURE_MAGIC = b"\x93MSSIG"
SIGNATURE_ED25519 = 1  # the record's algorithm (u16 after the magic)
SIGNATURE = struct.Struct("<6sHQ32s64s16s")  # magic, algorithm, signed at, key, signature, 0
SIGNATURE_SIZE = SIGNATURE.size  # 128
SIGNATURE_SIGNED = 48  # the record's bytes the signature covers: magic, algorithm, time, key
SIGNATURE_DOMAIN = b"modelsafe signature 1\x00"  # prefixed to the message signed
MAX_SIGNATURES = 64


def align(n: int) -> int:
    """Round ``n`` up to the next multiple of ALIGN."""
    return (n + ALIGN - 1) & ~(ALIGN - 1)


@dataclass(frozen=True)
class Limits:
    """Caps a reader enforces before it allocates or recurses.

    The defaults fit any realistic model; a file beyond them is rejected with
    ``FormatError`` rather than trusted to be honest about its sizes.
    """

    max_header_bytes: int = 1 << 30  # 1 GiB of JSON
    # The header's [ { , : outside strings (json_structure): a bound on the values and
    # keys the JSON parser builds. An empty list is 3 bytes of JSON ("[],") but about 150
    # bytes of Python objects once parsed, audited and built, so the byte cap alone would
    # let a 1 GiB header ask for ~50 GB. At this limit, crafted headers of empty or
    # one-key dicts, empty or nested lists and tagged nodes cost +440 to +703 MiB and 3 to
    # 6.3 s to load or refuse (measured); a million Python tuples (7.0M) or small arrays
    # (5.0M) still fit.
    max_header_values: int = 1 << 23
    max_depth: int = 200  # nesting of nodes in the object tree
    max_ndim: int = 64  # numpy's own limit
    max_buffers: int = 50_000_000


DEFAULT_LIMITS = Limits()


_STRUCTURE = (b",", b":", b"[", b"{")  # every JSON value or key but the first follows one
_CHUNK = 1 << 24  # bytes counted at a time by the exact count (little scratch memory)
_QUOTES = bytes(int(b == 0x22) for b in range(256))  # translate tables: 1 where '"'
_OPENERS = bytes(int(bytes([b]) in _STRUCTURE) for b in range(256))  # and where [ { , :


def json_structure(text: bytes | str, limit: int) -> int | None:
    """The number of ``[``, ``{``, ``,`` and ``:`` outside the strings of the JSON text
    ``text`` (bytes, or a str, encoded only for the exact count) when it is above
    ``limit``, else None.

    Each value and key of a JSON text but the first follows one of these characters,
    and an empty ``[]`` or ``{}`` counts one too, so this bounds what a parser builds.
    A text no longer than ``limit`` cannot exceed it, and one whose count, strings
    included, is within it is not counted exactly: only a long text of many separators
    pays for the exact count, which is linear (about 4 s a GiB).

    Where ``text`` is not valid JSON, the count is exact up to the first error, where a
    parser stops: the escapes are taken out left to right as a JSON lexer reads them.
    """
    if len(text) <= limit:
        return None
    if isinstance(text, str):
        if sum(map(text.count, ",:[{")) <= limit:
            return None
        text = text.encode("utf-8", "surrogatepass")
    elif sum(map(text.count, _STRUCTURE)) <= limit:
        return None
    import numpy as np

    # Escapes out (a string's \\ first, then its \"): each '"' left opens or closes one.
    bare = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    count = 0
    inside = 0  # whether the chunk starts inside a string
    for start in range(0, len(bare), _CHUNK):
        chunk = bare[start : start + _CHUNK]
        within = np.bitwise_xor.accumulate(np.frombuffer(chunk.translate(_QUOTES), np.uint8))
        within ^= inside  # 1 inside a string and on its opening quote
        openers = np.frombuffer(chunk.translate(_OPENERS), np.uint8)
        count += int(np.count_nonzero(openers > within))
        inside = int(within[-1])
    return count if count > limit else None
