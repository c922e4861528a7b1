"""The fuzz target (fuzz/target.py) under hypothesis: mutated valid files of every kind
must end in a modelsafe error or a valid object, within the memory limit.

``make fuzz`` runs the same target under atheris (coverage-guided) for as long as asked;
this is the short version that runs with every ``make test``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz.corpus import seeds
from fuzz.target import Target
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._crafting import seal

REGRESSIONS = Path(__file__).parent / "data" / "fuzz"
SEEDS = seeds()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = Target(measure_memory=False)
    for data in SEEDS.values():  # every lazy import before memory is measured
        t.run(data)
    t.measure_memory = True
    yield t
    t.close()


def test_every_seed_loads(target: Target) -> None:
    target.outcomes.clear()
    for data in SEEDS.values():
        target.run(data)
    n = len(SEEDS)
    # Everything loads; only the seed signed with the fuzz key verifies.
    for entry in ("loads", "load", "loads_unverified", "inspect", "untrusted_types"):
        assert target.outcomes[f"{entry}:ok"] == n, target.outcomes
    assert target.outcomes["verify_signatures:ok"] == 1
    assert target.outcomes["verify_signatures:SignatureError"] == n - 1


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "byte", "cut", "insert", "delete", "copy"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte" and data:
            data[at] = draw(st.sampled_from([0, 1, 0x20, 0x22, 0x2C, 0x30, 0x39, 0x5B, 0x7B, 0xFF]))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "copy" and data:
            size = draw(st.integers(1, 256))
            src = draw(st.integers(0, len(data) - 1))
            data[at:at] = data[src : src + size]
    if draw(st.booleans()):
        data = bytearray(_resealed(bytes(data)))  # reach past the header hash
    return bytes(data)


def _resealed(data: bytes) -> bytes:
    """``data`` with its header hash recomputed, where the preamble allows it."""
    if len(data) < 16:
        return data
    n = int.from_bytes(data[8:16], "little")
    if n > len(data) - 16:
        return data
    return seal(data[: 16 + n]) + data[16 + n :]


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=mutated())
def test_mutated_files_fail_cleanly(target: Target, data: bytes) -> None:
    target.run(data)  # raises Violation for anything but a modelsafe error or a value


@pytest.mark.parametrize(
    "path",
    sorted(p for p in REGRESSIONS.iterdir() if p.suffix != ".md"),
    ids=lambda p: p.name,
)
def test_regression_inputs(target: Target, path: Path) -> None:
    target.run(path.read_bytes())
