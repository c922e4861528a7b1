"""The envelope: metadata stored in the header, readable without loading."""

from __future__ import annotations

from .record import capture

__all__ = ["capture"]
