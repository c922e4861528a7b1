"""Child-process side of the model-zoo suite: build a model, or measure one tool on it.

Run by ``benchmarks.zoo_run``; each mode prints one line ``RESULT <json>`` on stdout::

    python -m benchmarks.zoo_measure build --model M --cache DIR --tools a,b [--quick]
    python -m benchmarks.zoo_measure pair  --model M --tool T --cache DIR [--memory] ...

* ``build`` fits the model once per run and pickles it into the run's temporary
  directory (``M.model.pkl``), with the held-out batch and the original's
  ``predict_proba`` output on it (``M.batch.pkl``); that cache is the benchmark's own
  data, written a minute earlier, so unpickling it is safe. It then saves the model
  once with every tool (untimed), so that the first child of each pair finds a file
  to load while it is still fresh.
* ``pair`` starts fresh: it imports numpy, the model's library and the tool, and
  unpickles the batch. With ``--memory`` it first loads the tool's file, predicts on
  the batch and records the peak RSS after each step (nothing else has been loaded
  yet, so this is a fresh process's figure), and checks the output bit for bit.
  Then it unpickles the original and times saves and loads as the numpy suite does
  (:func:`benchmarks.measure.timed_runs`); without ``--memory`` (the second child of
  a fast pair) it only times.

Measuring memory before timing in the same child spares a third interpreter per pair:
starting one (importing scikit-learn) costs 2-4 s on a busy 2-core machine, and the zoo
has 63 pairs.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import pickle
import sys
import time
from typing import Any

from benchmarks.measure import (
    RESULT_PREFIX,
    current_rss_mb,
    peak_rss_mb,
    time_limit,
    time_save_and_load,
    vm_hwm_mb,
)
from benchmarks.tools import TOOLS, load_code
from benchmarks.zoo import FULL, QUICK, ZOO, predict, same_output

# At most this many untrusted type names are spelled out in a row's error (all are in JSON).
_SHOWN_TYPES = 12


def model_cache(cache: str, model: str) -> str:
    """The pickled original, as written by ``build``."""
    return os.path.join(cache, f"{model}.model.pkl")


def batch_cache(cache: str, model: str) -> str:
    """The pickled ``{"batch": ..., "expected": ndarray}``, as written by ``build``."""
    return os.path.join(cache, f"{model}.batch.pkl")


def tool_file(cache: str, model: str, tool: str) -> str:
    """The file ``tool`` writes for ``model``: pre-saved by ``build``, rewritten by ``pair``."""
    return os.path.join(cache, f"{model}.{tool}{TOOLS[tool].suffix}")


def _read_pickle(path: str) -> Any:
    with open(path, "rb") as f:
        return pickle.load(f)


def _write_pickle(obj: Any, path: str) -> int:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=5)
    return os.path.getsize(path)


def describe_error(phase: str, exc: BaseException) -> dict[str, Any]:
    """``error`` text for a row; an untrusted-types refusal lists the types it named.

    modelsafe's :class:`UntrustedTypesError` message is long advice; the row needs the
    names (all of them go to ``untrusted_types`` in the JSON).
    """
    types = getattr(exc, "types", None)
    if isinstance(types, list) and types:
        shown = ", ".join(types[:_SHOWN_TYPES])
        more = f" (+{len(types) - _SHOWN_TYPES} more)" if len(types) > _SHOWN_TYPES else ""
        return {
            "error": f"{phase}: {type(exc).__name__}: {len(types)} untrusted: {shown}{more}",
            "untrusted_types": types,
        }
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return {"error": f"{phase}: {type(exc).__name__}: {first}"[:300]}


def _import_all(modules: tuple[str, ...]) -> None:
    for module in modules:
        importlib.import_module(module)


def build(
    model_name: str, cache: str, quick: bool, tools: list[str], limit: float
) -> dict[str, Any]:
    """Fit the model, pickle it and its reference output into ``cache``, pre-save per tool."""
    zoo = ZOO[model_name]
    _import_all(zoo.imports)
    start = time.perf_counter()
    built = zoo.build(QUICK if quick else FULL)
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    expected = predict(built.model, built.batch)
    predict_s = time.perf_counter() - start
    pickle_bytes = _write_pickle(built.model, model_cache(cache, model_name))
    _write_pickle({"batch": built.batch, "expected": expected}, batch_cache(cache, model_name))
    presave_errors: dict[str, str] = {}
    for name in tools:
        # A tool that cannot save leaves no file; its pair child reports the save error.
        try:
            _import_all(TOOLS[name].imports)
            with time_limit(limit):
                TOOLS[name].save(built.model, tool_file(cache, model_name, name))
        except Exception as exc:  # OpTimeout included
            presave_errors[name] = describe_error("save", exc)["error"]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tool_file(cache, model_name, name))
    n_iter = getattr(built.model, "n_iter_", None)  # an int for HGB and MLP only
    method = "predict_proba" if hasattr(built.model, "predict_proba") else "predict"
    return {
        "build_s": build_s,
        "predict_s": predict_s,
        "pickle_bytes": pickle_bytes,
        "output": f"{method} -> {expected.dtype}{list(expected.shape)}",
        # HistGradientBoosting stops early on 10,000+ rows; say how far it went.
        "n_iter": n_iter if isinstance(n_iter, int) else None,
        "presave_errors": presave_errors,
    }


def reset_peak() -> bool:
    """Reset this process's peak RSS (Linux >= 4.0), so import peaks do not hide the load."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def fresh_load_and_predict(tool_name: str, path: str, reference: dict[str, Any]) -> dict[str, Any]:
    """Peak RSS after loading ``path`` and after predicting, and whether the output matches.

    Called first thing in a fresh child, so nothing but imports and the batch is resident.
    """
    tool = TOOLS[tool_name]
    gc.collect()
    reset = reset_peak()

    def peak() -> float:
        # After a reset only VmHWM forgets the import peak; ru_maxrss is the fallback.
        return (vm_hwm_mb() if reset else None) or peak_rss_mb()

    out: dict[str, Any] = {"rss_peak_reset": reset}
    base = out["rss_base_mb"] = current_rss_mb()
    try:
        loaded = tool.load(path)
    except Exception as exc:
        return {**out, "memory_error": describe_error("load", exc)["error"]}
    out["rss_load_mb"] = peak()
    out["rss_load_delta_mb"] = out["rss_load_mb"] - base
    try:
        output = predict(loaded, reference["batch"])
    except Exception as exc:
        out["correct"] = False
        out["check_error"] = describe_error("predict", exc)["error"]
        return out
    out["rss_predict_mb"] = peak()
    out["rss_predict_delta_mb"] = out["rss_predict_mb"] - base
    out["correct"] = same_output(reference["expected"], output)
    return out


def pair(
    model_name: str,
    tool_name: str,
    cache: str,
    memory: bool,
    repeat: int,
    limit: float,
    min_total: float,
    slow_run: float,
) -> dict[str, Any]:
    """Fresh load-and-predict memory (with ``memory``), then save and load timings."""
    zoo, tool = ZOO[model_name], TOOLS[tool_name]
    path = tool_file(cache, model_name, tool_name)
    out: dict[str, Any] = {
        "save_s": None,
        "load_s": None,
        "size_bytes": None,
        "correct": None,
        "error": None,
    }
    _import_all(("numpy", *zoo.imports, *tool.imports))
    if code := load_code(tool, path):
        gc.collect()
        before = current_rss_mb()
        _import_all(code)
        out["rss_code_mb"] = current_rss_mb() - before
    reference = _read_pickle(batch_cache(cache, model_name))
    if memory and os.path.exists(path):
        out.update(fresh_load_and_predict(tool_name, path, reference))
    # The output is checked once per pair, in the fresh phase when it ran (kNN predicts in
    # seconds); else on the first timed load. The second child of a pair does not check.
    check_first_load = memory and out["correct"] is None

    original = _read_pickle(model_cache(cache, model_name))
    # Everything alive now (imported libraries, the original) is moved out of the
    # collector's reach: timed_runs calls gc.collect() before every run, and with
    # scikit-learn and a model loaded a full collection costs 50-150 ms, more than most
    # loads it separates. Objects the tool allocates are collected as before.
    gc.collect()
    gc.freeze()

    def check(i: int, loaded: Any) -> None:
        if i or not check_first_load:
            return
        try:
            out["correct"] = same_output(reference["expected"], predict(loaded, reference["batch"]))
        except Exception as exc:
            out["correct"] = False
            out["check_error"] = describe_error("predict", exc)["error"]

    return time_save_and_load(
        out, tool, original, path, check, describe_error, repeat, limit,
        min_total=min_total, slow_run=slow_run,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Parse the child's arguments, do the one job, print ``RESULT <json>``."""
    import json

    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo_measure")
    parser.add_argument("mode", choices=("build", "pair"))
    parser.add_argument("--model", required=True, choices=sorted(ZOO))
    parser.add_argument("--cache", required=True, help="directory of the built models")
    parser.add_argument("--tool", choices=sorted(TOOLS), help="pair: the tool measured")
    parser.add_argument("--tools", default="", help="build: tools to pre-save with")
    parser.add_argument("--memory", action="store_true", help="pair: fresh memory first")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=float, default=120.0)
    parser.add_argument("--min-total", type=float, default=0.5)
    parser.add_argument("--slow-run", type=float, default=5.0)
    args = parser.parse_args(argv)
    if args.mode == "build":
        tools = [t for t in args.tools.split(",") if t]
        result = build(args.model, args.cache, args.quick, tools, args.limit)
    elif args.tool is None:
        parser.error("pair needs --tool")
    else:
        result = pair(
            args.model,
            args.tool,
            args.cache,
            args.memory,
            args.repeat,
            args.limit,
            args.min_total,
            args.slow_run,
        )
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
