"""What every input must do: end in a modelsafe error or a valid object.

:func:`run` feeds one input to each entry point that reads a file (``loads``,
``load`` from a file, both also unverified, ``inspect``, ``untrusted_types``,
``verify_signatures``) and
raises :class:`Violation` for anything else: another exception, or more memory than
the input can justify. A crash (a signal) or a hang ends the process or is caught by
the fuzzer's own timeout (``-timeout=1``: one second an input).
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import tracemalloc
import warnings
from typing import Any

import modelsafe
from modelsafe import ModelSafeError

# Memory an input may take: 4x its size plus the buffer bytes its header declares
# (decompressed sizes), plus this allowance for the reader's own fixed working set (the
# seeds need at most 26 KB of it). LightGBM allocates a fixed 1 MiB buffer (ctypes) for
# every Booster it builds: an input naming a LightGBM booster is allowed that too.
ALLOWANCE = 64 << 10
# Under atheris, whose coverage instrumentation makes every frame and call of modelsafe
# heavier, the same input takes about 3x as much (25 KB -> 77 KB for a damaged pandas
# file): ``make fuzz`` allows this instead. Sizes crafted to make the reader allocate
# are megabytes to gigabytes; either allowance catches them.
INSTRUMENTED_ALLOWANCE = 256 << 10
LIGHTGBM_BUFFER = 1 << 20


class Violation(AssertionError):
    """An input did something other than fail cleanly or load."""


def declared_bytes(data: bytes) -> int:
    """The buffer bytes the header claims (0 when the header cannot be read)."""
    try:
        (n,) = struct.unpack_from("<Q", data, 8)
        header = json.loads(data[16 : 16 + n])
        total = 0
        for entry in header["buffers"]:
            total += int(entry[4] if len(entry) > 3 else entry[1])
        return max(total, 0)
    except Exception:
        return 0


# The unverified loads skip the header hash and the digests, so mutated inputs reach
# the parser, the audit and the state validators (a caller may turn verify off too).
_ENTRIES = (
    "loads",
    "load",
    "loads_unverified",
    "load_unverified_mmap",
    "inspect",
    "untrusted_types",
    "verify_signatures",
)


def _call(entry: str, data: bytes, path: str) -> Any:
    if entry == "loads":
        return modelsafe.loads(data)
    if entry == "load":
        return modelsafe.load(path)
    if entry == "loads_unverified":
        return modelsafe.loads(data, verify=False)
    if entry == "load_unverified_mmap":
        return modelsafe.load(path, verify=False, mmap="r")
    if entry == "inspect":
        return modelsafe.inspect(data).to_dict(max_rows=50)
    if entry == "untrusted_types":
        return modelsafe.untrusted_types(data)
    return modelsafe.verify_signatures(data, _public_key())


def _public_key() -> Any:
    global _PUBLIC
    if _PUBLIC is None:
        from .corpus import fuzz_key

        _PUBLIC = fuzz_key().public_key()
    return _PUBLIC


_PUBLIC: Any = None


class Target:
    """One scratch file reused for every input of ``load``."""

    def __init__(self, measure_memory: bool = True, allowance: int = ALLOWANCE) -> None:
        fd, self.path = tempfile.mkstemp(prefix="modelsafe-fuzz-", suffix=".msafe")
        os.close(fd)
        self.measure_memory = measure_memory
        self.allowance = allowance
        self.outcomes: dict[str, int] = {}

    def _once(self, entry: str, data: bytes) -> tuple[str, int]:
        """The outcome of one entry point, and its peak of traced memory (0 unmeasured)."""
        if self.measure_memory:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
        try:
            result = _call(entry, data, self.path)
            outcome = "ok"
            del result
        except ModelSafeError as exc:
            outcome = type(exc).__name__
        except RecursionError as exc:
            raise Violation(f"{entry}: RecursionError escaped: {exc}") from exc
        except Exception as exc:
            raise Violation(f"{entry}: {type(exc).__name__} escaped: {exc}") from exc
        peak = tracemalloc.get_traced_memory()[1] - before if self.measure_memory else 0
        return outcome, peak

    def close(self) -> None:
        os.unlink(self.path)
        if tracemalloc.is_tracing():
            tracemalloc.stop()

    def run(self, data: bytes) -> None:
        # A mutated file may make a library warn (scikit-learn's version check): warnings
        # are not failures, and under ``-W error`` they would look like one.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._run(data)

    def _run(self, data: bytes) -> None:
        with open(self.path, "wb") as fh:
            fh.write(data)
        limit = 4 * len(data) + declared_bytes(data) + self.allowance
        if b'"lgb.booster"' in data:
            limit += LIGHTGBM_BUFFER
        if self.measure_memory and not tracemalloc.is_tracing():
            tracemalloc.start()  # once: starting and stopping it each time leaks
        for entry in _ENTRIES:
            outcome, peak = self._once(entry, data)
            if peak > limit:
                # A first run along a code path may import a module or fill a cache: only
                # memory the input takes again on a second run counts.
                outcome, peak = self._once(entry, data)
            if peak > limit:
                raise Violation(
                    f"{entry}: {peak} bytes allocated at the peak for a {len(data)}-byte input "
                    f"(limit {limit}: 4x the input, the declared buffers and the allowance)"
                )
            key = f"{entry}:{outcome}"
            self.outcomes[key] = self.outcomes.get(key, 0) + 1
