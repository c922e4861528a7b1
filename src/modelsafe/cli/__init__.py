"""The ``modelsafe`` command line: ``main`` is the click group (see docs/cli.md)."""

from __future__ import annotations

from .main import EXIT_CODES, exit_code_for, main

__all__ = ["EXIT_CODES", "exit_code_for", "main"]
