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
    max_depth: int = 200  # nesting of nodes in the object tree
    max_ndim: int = 64  # numpy's own limit
    max_buffers: int = 50_000_000


DEFAULT_LIMITS = Limits()
