"""Run the model-zoo suite: build each model once, then every (model, tool) pair in children.

Called by ``python -m benchmarks.run --suite models``. For each model, in turn:

1. a builder child fits it, pickles it into the run's temporary directory (fitting
   the zoo takes minutes; every measuring child reuses that one fit) and saves it
   once with every tool;
2. for each tool, a fresh child measures the peak RSS of loading that file and
   predicting, then times saves and loads; a pair whose save and load are both fast
   gets a second, timing-only child and keeps the better times, as the numpy suite
   does against heap-layout luck;
3. the model's cache and files are removed before the next model is built.

Then ``models.{json,md,png}`` (``models-quick.*`` with ``--quick``) are written.
The orchestrator stays small: it never imports scikit-learn or the tools, since a
child's peak RSS can start from its parent's at ``exec``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.children import modelsafe_problem, run_child
from benchmarks.machine import PACKAGES, machine_facts
from benchmarks.tools import TOOLS, is_modelsafe
from benchmarks.zoo import ZOO

MODULE = "benchmarks.zoo_measure"
MODEL_PACKAGES = (*PACKAGES, "scipy", "pandas", "xgboost", "lightgbm", "cloudpickle")

# Timing policy. The numpy suite repeats fast operations until three seconds of runs and
# runs fast pairs in two children plus a memory child: for nine models and seven tools
# that is 190-odd children, each paying 3-5 s to start and import scikit-learn on a busy
# 2-core machine, plus 6 s of runs. The zoo settles for half a second of runs per child
# (a 40 ms load is still timed 12 times), does not repeat a run slower than SLOW_RUN_S,
# measures memory in the first timing child, and gives a second child only to pairs
# whose save and load each take under SECOND_CHILD_BELOW_S: about 20 minutes in all.
MIN_TOTAL_S = 0.5
SLOW_RUN_S = 5.0
SECOND_CHILD_BELOW_S = 1.0
# --quick: one run after the warm-up (more only under 0.2 s in total), one child per pair.
QUICK_MIN_TOTAL_S = 0.2
BUILD_TIMEOUT_S = 1800.0


def build_model(
    model: str, tools: list[str], cache: str, quick: bool, limit: float
) -> dict[str, Any]:
    """Fit ``model`` in a builder child that caches it in ``cache``; its facts or an error."""
    args = ["build", "--model", model, "--cache", cache, "--tools", ",".join(tools)]
    args += ["--limit", str(limit), *(["--quick"] if quick else [])]
    start = time.perf_counter()
    result = run_child(MODULE, args, BUILD_TIMEOUT_S)
    result["child_s"] = time.perf_counter() - start
    return result


def run_pair(
    model: str, tool: str, cache: str, quick: bool, repeat: int, limit: float
) -> dict[str, Any]:
    """A fresh child for memory then timings; a second timing child for fast pairs."""
    min_total = QUICK_MIN_TOTAL_S if quick else MIN_TOTAL_S
    args = [
        "pair",
        *("--model", model, "--tool", tool, "--cache", cache),
        *("--repeat", str(repeat), "--limit", str(limit)),
        *("--min-total", str(min_total), "--slow-run", str(SLOW_RUN_S)),
    ]
    timeout = 2 * (limit + SLOW_RUN_S * (repeat + 1)) + 2 * limit + 300
    row = run_child(MODULE, [*args, "--memory"], timeout)
    times = [row.get(k) or SECOND_CHILD_BELOW_S for k in ("save_s", "load_s")]
    if not quick and row.get("error") is None and max(times) < SECOND_CHILD_BELOW_S:
        again = run_child(MODULE, args, timeout)
        if again.get("error") is None:
            for phase in ("save", "load"):
                row[f"{phase}_runs_second_child"] = again[f"{phase}_runs"]
                row[f"{phase}_s"] = min(row[f"{phase}_s"], again[f"{phase}_s"])
    return row


def _summary(row: dict[str, Any]) -> str:
    if row.get("error"):
        return row["error"]
    parts = [
        f"save {row['save_s']:.3g}s",
        f"load {row['load_s']:.3g}s",
        f"{row['size_bytes'] / 2**20:.1f} MiB",
        {True: "ok", False: "WRONG", None: "unchecked"}[row["correct"]],
    ]
    if row.get("check_error"):
        parts.append(row["check_error"])
    if "rss_predict_delta_mb" in row:
        parts.append(f"rss +{row['rss_predict_delta_mb']:.0f} MiB")
    if "memory_error" in row:
        parts.append(f"memory: {row['memory_error']}")
    return ", ".join(parts)


def run_models(
    models: list[str],
    tools: list[str],
    quick: bool,
    repeat: int | None,
    limit: float,
    out: Path,
) -> dict[str, Any]:
    """Build and measure every model with every tool; write the report files; return results."""
    repeat = repeat or (1 if quick else 3)
    notes: list[str] = []
    if any(is_modelsafe(TOOLS[t]) for t in tools) and (problem := modelsafe_problem()):
        notes.append(f"modelsafe rows skipped: modelsafe.save/load unavailable ({problem})")
        print(f"note: {notes[-1]}", flush=True)
        tools = [t for t in tools if not is_modelsafe(TOOLS[t])]

    tmpdir = tempfile.mkdtemp(prefix="modelsafe-bench-models-")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "suite": "models",
        "machine": machine_facts(tmpdir, MODEL_PACKAGES),
        "settings": {
            "quick": quick,
            "repeat": repeat,
            "limit_s": limit,
            "min_total_s": QUICK_MIN_TOTAL_S if quick else MIN_TOTAL_S,
            "slow_run_s": SLOW_RUN_S,
            "second_child_below_s": None if quick else SECOND_CHILD_BELOW_S,
            "temp_dir": tmpdir,
            "loadavg_start": os.getloadavg(),
        },
        "notes": notes,
        "models": {},
    }
    try:
        for model in models:
            zoo = ZOO[model]
            entry: dict[str, Any] = {
                "description": zoo.quick_description if quick else zoo.description,
                "rows": {},
            }
            results["models"][model] = entry
            print(f"{model:>10} {'(build)':<16} ...", end=" ", flush=True)
            entry["build"] = build_model(model, tools, tmpdir, quick, limit)
            build = entry["build"]
            if build.get("error"):
                print(build["error"], flush=True)
                notes.append(f"{model}: not measured, the build failed: {build['error']}")
                continue
            print(
                f"fit {build['build_s']:.1f}s, pickle {build['pickle_bytes'] / 2**20:.1f} MiB",
                flush=True,
            )
            for tool in tools:
                print(f"{model:>10} {tool:<16} ...", end=" ", flush=True)
                row = entry["rows"][tool] = run_pair(model, tool, tmpdir, quick, repeat, limit)
                if "rss_base_mb" not in row and "memory_error" not in row and not row["error"]:
                    # The builder could not pre-save although this child could save.
                    why = build.get("presave_errors", {}).get(tool, "no pre-saved file")
                    row["memory_error"] = f"not measured: {why}"
                print(_summary(row), flush=True)
            for name in os.listdir(tmpdir):  # this model's cache and files: disk is not free
                if name.startswith(f"{model}."):
                    os.unlink(os.path.join(tmpdir, name))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    results["settings"]["loadavg_end"] = os.getloadavg()
    results["settings"]["duration_s"] = time.perf_counter() - started

    from benchmarks import zoo_report  # matplotlib is imported only now that children are done

    out.mkdir(parents=True, exist_ok=True)
    stem = "models-quick" if quick else "models"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text(zoo_report.markdown(results, chart=f"{stem}.png"))
    zoo_report.chart(results, out / f"{stem}.png")
    for line in zoo_report.acceptance_lines(results):
        print(line)
    print(f"wrote {out / stem}.{{md,png,json}} in {results['settings']['duration_s'] / 60:.1f} min")
    return results
