"""Shared fixtures: the entry points a hostile file can reach, and how to check each."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import settings

import modelsafe

from ._crafting import EVERYWHERE, Entry

# CI runs a fixed set of examples (a red CI means a real regression, never a new random
# draw); developers' runs keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def reject(tmp_path: Path) -> Callable[..., list[BaseException]]:
    """``reject(blob, exc=FormatError, entries=EVERYWHERE, match=None)``.

    Hands ``blob`` to every entry point (as bytes or as a file) and checks each
    raises ``exc``. Any other exception, or a successful return, fails the test
    with the name of the entry point.
    """
    path = tmp_path / "hostile.msafe"

    def check(
        blob: bytes,
        exc: type[BaseException] | tuple[type[BaseException], ...] = modelsafe.FormatError,
        *,
        entries: dict[str, Entry] | Sequence[str] = EVERYWHERE,
        match: str | None = None,
    ) -> list[BaseException]:
        path.write_bytes(blob)
        want = exc.__name__ if isinstance(exc, type) else " or ".join(e.__name__ for e in exc)
        if not isinstance(entries, dict):
            entries = {k: EVERYWHERE[k] for k in entries}
        caught = []
        for name, fn in entries.items():
            try:
                result = fn(blob, path)
            except exc as e:
                if match is not None:
                    assert match in str(e), f"{name}: {match!r} not in {str(e)!r}"
                caught.append(e)
                continue
            except BaseException as e:
                raise AssertionError(
                    f"{name} raised {type(e).__name__} instead of {want}: {e}"
                ) from e
            raise AssertionError(
                f"{name} accepted the file instead of raising {want}: {result!r:.200}"
            )
        return caught

    return check
