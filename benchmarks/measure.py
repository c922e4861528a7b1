"""Child-process side of the harness: time one tool on one case, or take its peak memory.

Run by ``benchmarks.run`` as ``python -m benchmarks.measure {speed,memory} ...``; prints
one line ``RESULT <json>`` on stdout. Each child rebuilds the case from its seed.

* ``speed`` builds the object, imports the tool, times a warm-up save and ``--repeat`` more
  (more for fast operations, up to three seconds of runs; the best after the warm-up is
  kept), reads the file once to put it in the page cache, then
  times loads the same way in-process (``gc.collect()`` and the result deleted between runs)
  and checks the first loaded object against the original.
* ``memory`` starts fresh, imports numpy and the tool, records the baseline RSS, loads
  the file, touches one element per array (peak RSS "lazy"), then reads everything (peak
  RSS "full"). It never builds the case, so only loading is in the figure.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from benchmarks.cases import CASES
from benchmarks.children import RESULT_PREFIX
from benchmarks.tools import TOOLS

SLOW_RUN_S = 30.0  # a run slower than this is not repeated
# Fast operations are repeated beyond ``--repeat`` until the timed runs add up to
# MIN_TOTAL_S (at most MAX_RUNS of them), as timeit's autorange does: the best of three
# 30 ms runs on a noisy 2-core machine wobbles by 15%, the best of thirty does not.
MIN_TOTAL_S = 3.0
MAX_RUNS = 30


class OpTimeout(Exception):
    """A single save or load exceeded the per-operation limit."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`OpTimeout` in the main thread once ``seconds`` have passed."""

    def _raise(signum: int, frame: Any) -> None:
        raise OpTimeout(f"timeout >{seconds:.0f}s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _proc_status_mb(field: str) -> float | None:
    """A ``VmXXX`` field of /proc/self/status in MiB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def current_rss_mb() -> float:
    """Resident set size right now (``VmRSS``); the peak so far where /proc is missing."""
    return _proc_status_mb("VmRSS") or peak_rss_mb()


def vm_hwm_mb() -> float | None:
    """``VmHWM``: the same peak as ``ru_maxrss``, but for this address space only (Linux)."""
    return _proc_status_mb("VmHWM")


def timed_runs(
    op: Callable[[], Any],
    repeat: int,
    limit: float,
    between: Callable[[int, Any], None],
    *,
    min_total: float = MIN_TOTAL_S,
    slow_run: float = SLOW_RUN_S,
) -> list[float]:
    """Time one warm-up call of ``op`` and then ``repeat`` or more, each under ``limit`` seconds.

    The warm-up absorbs one-time costs (lazy imports inside the tool, first page faults);
    :func:`best` leaves it out. ``between(i, result)`` runs after each call, untimed. A call
    slower than ``slow_run`` ends the series early; fast calls are repeated until the
    timed runs add up to ``min_total`` (``MAX_RUNS`` at most). Every tool gets the same rule;
    the model-zoo suite lowers both so that 60-odd pairs fit in its time budget.
    """
    times: list[float] = []
    i = 0
    while i <= repeat or (sum(times[1:]) < min_total and i <= MAX_RUNS):
        gc.collect()
        with time_limit(limit):
            start = time.perf_counter()
            result = op()
            times.append(time.perf_counter() - start)
        between(i, result)
        del result
        i += 1
        if times[-1] > slow_run:
            break
    return times


def best(times: list[float]) -> float:
    """The fastest run after the warm-up, or the only run when the series ended early."""
    return min(times[1:]) if len(times) > 1 else times[0]


def settle_writeback(*_: Any) -> None:
    """Flush every dirty page to disk, untimed, before and between timed saves.

    Without it the kernel writes back one run's (or one tool's) file while the next
    run is timed, and whichever tool happens to come next pays for it.
    """
    if hasattr(os, "sync"):
        os.sync()


def warm_page_cache(path: str) -> None:
    """Read the whole file once so loads are timed with it in the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(16 << 20):
            pass


def measure_speed(
    case_name: str, tool_name: str, path: str, quick: bool, repeat: int, limit: float
) -> dict[str, Any]:
    """Save and load timings, file size and a correctness check."""
    case, tool = CASES[case_name], TOOLS[tool_name]
    out: dict[str, Any] = {
        "save_s": None,
        "load_s": None,
        "size_bytes": None,
        "correct": None,
        "error": None,
    }
    original = case.build(quick)
    for module in tool.imports:  # import time is not save time
        importlib.import_module(module)

    def check(i: int, loaded: Any) -> None:
        if i == 0:
            out["correct"] = bool(case.equal(original, loaded))

    def error(phase: str, exc: Exception) -> dict[str, Any]:
        return {"error": f"{phase}: {type(exc).__name__}: {exc}"[:300]}

    return time_save_and_load(out, tool, original, path, check, error, repeat, limit)


def time_save_and_load(
    out: dict[str, Any],
    tool: Any,
    original: Any,
    path: str,
    check: Callable[[int, Any], None],
    error: Callable[[str, Exception], dict[str, Any]],
    repeat: int,
    limit: float,
    **timing: float,
) -> dict[str, Any]:
    """Time ``tool`` saving ``original`` to ``path`` (the file removed first, dirty pages
    flushed between runs), then loading it from a warm page cache; ``check`` sees each
    loaded copy. Fills ``out`` with ``{phase}_runs``/``{phase}_s`` and ``size_bytes``, or
    stops at the first failure with ``error(phase, exc)`` merged in."""

    def save() -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        tool.save(original, path)

    for phase, op, between in (
        ("save", save, settle_writeback),
        ("load", lambda: tool.load(path), check),
    ):
        if phase == "save":
            settle_writeback()
        else:
            out["size_bytes"] = os.path.getsize(path)
            warm_page_cache(path)
        try:
            runs = timed_runs(op, repeat, limit, between, **timing)
        except OpTimeout as exc:
            out["error"] = f"{phase}: {exc}"
            return out
        except Exception as exc:
            out.update(error(phase, exc))
            return out
        out[f"{phase}_runs"] = runs
        out[f"{phase}_s"] = best(runs)
    return out


def measure_memory(case_name: str, tool_name: str, path: str) -> dict[str, Any]:
    """Peak RSS of this fresh process loading ``path``: after touching, after reading all."""
    case, tool = CASES[case_name], TOOLS[tool_name]
    for module in ("numpy", *tool.imports):
        importlib.import_module(module)
    gc.collect()
    # The baseline is the current RSS: the import peak may be higher and would hide small loads.
    base, base_peak = current_rss_mb(), peak_rss_mb()
    loaded = tool.load(path)
    case.touch(loaded)
    lazy, lazy_hwm = peak_rss_mb(), vm_hwm_mb()
    case.read_all(loaded)
    full, full_hwm = peak_rss_mb(), vm_hwm_mb()
    return {
        "rss_base_mb": base,
        "rss_base_peak_mb": base_peak,
        "rss_lazy_mb": lazy,
        "rss_full_mb": full,
        "rss_lazy_delta_mb": lazy - base,
        "rss_full_delta_mb": full - base,
        "vmhwm_lazy_mb": lazy_hwm,
        "vmhwm_full_mb": full_hwm,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the child's arguments, measure, print ``RESULT <json>``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.measure")
    parser.add_argument("mode", choices=("speed", "memory"))
    parser.add_argument("--case", required=True, choices=sorted(CASES))
    parser.add_argument("--tool", required=True, choices=sorted(TOOLS))
    parser.add_argument("--path", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.mode == "speed":
        result = measure_speed(args.case, args.tool, args.path, args.quick, args.repeat, args.limit)
    else:
        result = measure_memory(args.case, args.tool, args.path)
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
