"""The byte container: magic, header, aligned buffers, digests, compression.

It knows nothing about machine learning: it stores a JSON header and a list of
byte buffers, and hands back exactly those, checked (see docs/format.md).
"""

from __future__ import annotations

from .layout import ALIGN, FORMAT_VERSION, MAGIC, Limits
from .reader import Container, open_container, parse_container
from .writer import Layout, StoredBuffer, build_container, write_atomic

__all__ = [
    "ALIGN",
    "FORMAT_VERSION",
    "MAGIC",
    "Container",
    "Layout",
    "Limits",
    "StoredBuffer",
    "build_container",
    "open_container",
    "parse_container",
    "write_atomic",
]
