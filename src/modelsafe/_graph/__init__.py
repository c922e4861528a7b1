"""The object graph: Python values <-> JSON nodes (docs/format.md, "Nodes").

Encoding turns a value into a JSON-able tree plus a list of byte buffers.
Decoding is two-phase: :func:`audit` walks the inert tree and checks it
(structure, limits, buffer references, trust) without importing or calling
anything; only then :func:`build` constructs objects.
"""

from __future__ import annotations

from .audit import Audit
from .decode import build
from .encode import encode

__all__ = ["Audit", "build", "encode"]
