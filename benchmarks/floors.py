"""Floors under the zoo's targets: what pickle's own time is made of, measured in-process.

    python -m benchmarks.floors [--models xgb500,lgbm500,ct_pipe] [--out benchmarks/results]

The default models are those whose floors an in-process loop measures well: models of
large arrays spend an in-process loop's time on page faults of fresh allocations, which
the zoo's fresh children measure instead.

- For XGBoost and LightGBM, pickle's load is the library's own parser of its model
  bytes: ``pickle.loads`` against ``Booster.load_model`` / ``Booster(model_str=)`` alone.
  A reader that must check those bytes before the parser sees them (issue 3, item 3)
  cannot load in less than the parser's time.
- For the small pipeline, the time to read the file and parse its JSON header alone.
- For saving, pickle with the durability every modelsafe save has (write, flush, fsync,
  rename) against pickle as the zoo times it (no fsync).
- For memory (``--memory``, default lgbm500), what a load leaves resident, by mapping
  (``/proc/self/smaps``), and its peak, in a fresh interpreter per load as the zoo
  measures it: which part of a peak above pickle's is code the load runs (pages of the
  libraries' files, which every process shares) and which is private memory.

Best of ``--repeat`` runs with ``gc.freeze()``; writes ``floors.{md,json}``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import pickle
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import modelsafe
from benchmarks.children import ROOT
from benchmarks.machine import machine_facts
from benchmarks.tools import TOOLS, load_code
from benchmarks.zoo import FULL, ZOO

_MEMORY_RUNS = 3  # fresh children per tool; the one of median peak is kept


def _best(call: Callable[[], Any], repeat: int) -> float:
    """Best of ``repeat`` after a warm-up. Not measure.timed_runs: its per-run alarm and
    gc.collect() cost microseconds, which the 7 us floors here would carry."""
    call()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
        del result
    return best


def _parser_floor(name: str, model: Any, blob: bytes, repeat: int) -> dict[str, float]:
    if name.startswith("xgb"):
        import xgboost

        raw = bytearray(model.get_booster().save_raw("ubj"))

        def parse() -> Any:
            booster = xgboost.Booster()
            booster.load_model(raw)
            return booster
    else:
        import lightgbm

        text = model.booster_.model_to_string(num_iteration=-1)

        def parse() -> Any:
            return lightgbm.Booster(model_str=text)

    unpickled = _best(lambda: pickle.loads(blob), repeat)
    return {"pickle.loads": unpickled, "parser": _best(parse, repeat)}


def _header_floor(path: str, pickled: str, repeat: int) -> dict[str, float]:
    def read() -> bytes:
        with open(path, "rb") as fh:
            return fh.read()

    data = read()
    (n,) = struct.unpack_from("<Q", data, 8)
    header = data[16 : 16 + n]

    def unpickle() -> Any:
        with open(pickled, "rb") as fh:
            return pickle.load(fh)

    return {
        "pickle.load": _best(unpickle, repeat),
        "read the file": _best(read, repeat),
        "json.loads(header)": _best(lambda: json.loads(header), repeat),
        "modelsafe.load": _best(lambda: modelsafe.load(path), repeat),
    }


def _save_floor(model: Any, folder: str, repeat: int) -> dict[str, float]:
    plain, durable, tmp = (os.path.join(folder, n) for n in ("p.pkl", "d.pkl", "d.tmp"))

    def pickle_save() -> None:
        with open(plain, "wb") as fh:
            pickle.dump(model, fh, protocol=5)

    def durable_save() -> None:
        with open(tmp, "wb") as fh:
            pickle.dump(model, fh, protocol=5)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, durable)

    def modelsafe_save() -> None:
        modelsafe.save(model, os.path.join(folder, "m.msafe"))

    return {
        "pickle": _best(pickle_save, repeat),
        "pickle + fsync + rename": _best(durable_save, repeat),
        "modelsafe.save": _best(modelsafe_save, repeat),
    }


def _resident_kb() -> dict[str, int]:
    """Resident KiB per mapping of this process: a file's base name, ``[heap]``, or
    ``[anon]`` for memory without a name."""
    out: dict[str, int] = {}
    name = "[anon]"
    with open("/proc/self/smaps") as fh:
        for line in fh:
            fields = line.split()
            if fields[0] == "Rss:":
                out[name] = out.get(name, 0) + int(fields[1])
            elif not fields[0].endswith(":") and "-" in fields[0]:
                name = os.path.basename(fields[5]) if len(fields) > 5 else "[anon]"
    return out


def memory_child(model: str, tool: str, path: str) -> dict[str, Any]:
    """In a fresh interpreter: import what the zoo's memory child imports, load ``path``
    with ``tool``, and return the peak and what stayed resident, by mapping."""
    from benchmarks.measure import current_rss_mb, vm_hwm_mb
    from benchmarks.zoo_measure import reset_peak

    for module in (*ZOO[model].imports, *TOOLS[tool].imports, *load_code(TOOLS[tool], path)):
        importlib.import_module(module)
    gc.collect()
    if not reset_peak():  # forget the imports' peak
        raise OSError("cannot reset the peak RSS (/proc/self/clear_refs, Linux >= 4.0)")
    base, before = current_rss_mb(), _resident_kb()
    loaded = TOOLS[tool].load(path)
    peak, after = vm_hwm_mb() or 0.0, _resident_kb()
    del loaded
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
    return {
        "peak_delta_mb": peak - base,
        "resident_kb": {k: v for k, v in sorted(grown.items(), key=lambda kv: -kv[1]) if v},
    }


def _memory_floor(model: str, files: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tool, path in files.items():
        runs = []
        for _ in range(_MEMORY_RUNS):
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.floors", "--memory-child", model, tool, path],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
            )
            runs.append(json.loads(child.stdout.splitlines()[-1]))
        median = statistics.median_low(r["peak_delta_mb"] for r in runs)
        out[tool] = next(r for r in runs if r["peak_delta_mb"] == median)
    return out


def run(models: list[str], repeat: int, memory: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"repeat": repeat, "models": {}, "memory": {}}
    with tempfile.TemporaryDirectory(prefix="modelsafe-floors-") as folder:
        for name in dict.fromkeys(models + memory):
            model = ZOO[name].build(FULL).model
            blob = pickle.dumps(model, protocol=5)
            pickled = os.path.join(folder, f"{name}.pkl")
            Path(pickled).write_bytes(blob)
            path = str(modelsafe.save(model, os.path.join(folder, f"{name}.msafe")))
            if name in memory:
                out["memory"][name] = _memory_floor(name, {"pickle": pickled, "modelsafe": path})
                print(name, "memory", json.dumps(out["memory"][name]), flush=True)
            if name not in models:
                continue
            gc.collect()
            gc.freeze()
            row: dict[str, Any] = {"save": _save_floor(model, folder, max(3, repeat // 10))}
            if name.startswith(("xgb", "lgbm")):
                row["load"] = _parser_floor(name, model, blob, repeat)
            else:
                row["load"] = _header_floor(path, pickled, repeat)
            gc.unfreeze()
            out["models"][name] = row
            print(name, json.dumps(row), flush=True)
    saves = [r["save"] for r in out["models"].values()]
    out["save_geomean"] = {
        key: math.exp(sum(math.log(s[key] / s["pickle"]) for s in saves) / len(saves))
        for key in ("pickle + fsync + rename", "modelsafe.save")
    }
    out["machine"] = machine_facts(tempfile.gettempdir())
    return out


def _memory_table(name: str, tools: dict[str, Any]) -> list[str]:
    names = list(tools)
    mappings = sorted(
        {m for t in tools.values() for m in t["resident_kb"]},
        key=lambda m: -max(t["resident_kb"].get(m, 0) for t in tools.values()),
    )
    lines = [
        "",
        f"## Memory: {name}",
        "",
        f"A fresh interpreter per load (the median peak of {_MEMORY_RUNS}), after the "
        "imports the zoo's memory child makes: the peak over its baseline (`VmHWM`), and "
        "what the load left resident, per mapping (`/proc/self/smaps`, KiB). Mappings "
        "named after a library are pages of its file (code, read-only data), which the page "
        "cache shares between processes; `[heap]` and `[anon]` are the process's own.",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "--:|" * len(names),
        "| peak Δ, MiB | " + " | ".join(f"{tools[t]['peak_delta_mb']:.2f}" for t in names) + " |",
    ]
    for m in mappings:
        cells = " | ".join(str(tools[t]["resident_kb"].get(m, 0)) for t in names)
        lines.append(f"| `{m}` | {cells} |")
    totals = " | ".join(str(sum(tools[t]["resident_kb"].values())) for t in names)
    lines.append(f"| resident after the load, total | {totals} |")
    return lines


def write(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "floors.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Floors under the zoo's targets",
        "",
        "Generated by `python -m benchmarks.floors` (in-process, best of "
        f"{result['repeat']}, `gc.freeze()`; milliseconds).",
        "",
        "## Load",
        "",
        "| model | measured | ms | x pickle |",
        "|---|---|--:|--:|",
    ]
    for name, row in result["models"].items():
        load = row["load"]
        base = load.get("pickle.loads") or load["pickle.load"]
        for key, value in load.items():
            lines.append(f"| {name} | {key} | {value * 1e3:.3f} | {value / base:.2f} |")
    lines += ["", "## Save", "", "| model | measured | ms | x pickle |", "|---|---|--:|--:|"]
    for name, row in result["models"].items():
        for key, value in row["save"].items():
            ratio = value / row["save"]["pickle"]
            lines.append(f"| {name} | {key} | {value * 1e3:.2f} | {ratio:.2f} |")
    geo = result["save_geomean"]
    lines += [
        "",
        f"Geometric mean over these models: pickle + fsync + rename "
        f"**{geo['pickle + fsync + rename']:.2f}x** pickle; modelsafe.save "
        f"**{geo['modelsafe.save']:.2f}x**.",
    ]
    for name, tools in result["memory"].items():
        lines += _memory_table(name, tools)
    lines += ["", f"Machine: {json.dumps(result['machine'])}", ""]
    (out / "floors.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floors", description=__doc__)
    parser.add_argument("--models", default="xgb500,lgbm500,ct_pipe")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--memory", default="lgbm500", help="models to measure memory of")
    parser.add_argument("--memory-child", nargs=3, metavar=("MODEL", "TOOL", "PATH"))
    args = parser.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(*args.memory_child)))
        return
    memory = [m for m in args.memory.split(",") if m]
    result = run(args.models.split(","), args.repeat, memory)
    write(result, Path(args.out))
    print((Path(args.out) / "floors.md").read_text())


if __name__ == "__main__":
    main()
