"""Handler tests: ``sample`` is parametrized over each conformance class's samples."""

from __future__ import annotations

from .conformance import pytest_generate_tests

__all__ = ["pytest_generate_tests"]
