"""A module that a hostile file names: loading such a file must never import it.

Importing it leaves a visible trace (the file named by $MODELSAFE_TEST_VICTIM_MARKER),
so a test can tell whether it was imported even if an import hook were bypassed.
"""

from __future__ import annotations

import os
from pathlib import Path

_marker = os.environ.get("MODELSAFE_TEST_VICTIM_MARKER")
if _marker:
    Path(_marker).write_text("imported\n")


class Payload:
    """An ordinary class; a file that stores an instance names it as untrusted."""

    def __init__(self, value: int = 0) -> None:
        self.value = value


def make(value: int) -> Payload:
    return Payload(value)
