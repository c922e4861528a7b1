"""Run the benchmarks: every (case, tool) pair in fresh child processes, then the report.

Usage::

    python -m benchmarks.run [--suite numpy|models|signing|all] [--quick] [--cases a,b]
                             [--tools x,y] [--repeat N] [--out benchmarks/results]
                             [--limit 120]

Three suites: ``numpy`` (numpy payloads; writes ``numpy.{md,png,json}``), ``models``
(the model zoo, see ``benchmarks/zoo.py``; writes ``models.{md,png,json}``) and
``signing`` (what signing costs on a 1 GiB model, ``benchmarks/signing.py``; writes
``signing.{md,json}``); ``all`` (the default) runs them all. ``--quick`` writes
``*-quick.*`` instead (signing: a 256 MiB model). ``--cases`` and
``--tools`` pick from any suite: a suite none of whose cases is named is skipped
(the signing suite's one case is ``sign``).
Temporary files live in a ``tempfile.mkdtemp()`` directory, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.cases import CASES
from benchmarks.children import ROOT, modelsafe_problem, run_child
from benchmarks.machine import machine_facts
from benchmarks.measure import SLOW_RUN_S
from benchmarks.tools import MODEL_TOOLS, NUMPY_TOOLS, TOOLS, is_modelsafe
from benchmarks.zoo import ZOO

SUITES = ("numpy", "models", "signing")


def _child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m benchmarks.measure ARGS`` and return its result or an ``error``."""
    return run_child("benchmarks.measure", args, timeout)


# A speed child whose save and load both take less than this is run a second time, the
# best of the two kept: in one process out of a few, the heap's layout makes every load
# page-fault its way through fresh memory and run 50% slower (seen on pickle and on
# modelsafe alike), which no number of repeats inside that process can average out.
SECOND_CHILD_BELOW_S = 2.0


def run_pair(
    case: str, tool: str, tmpdir: str, quick: bool, repeat: int, limit: float
) -> dict[str, Any]:
    """Speed child (two for fast pairs), then the fresh-process memory child."""
    path = os.path.join(tmpdir, f"{case}-{tool}{TOOLS[tool].suffix}")
    common = ["--case", case, "--tool", tool, "--path", path]
    speed_timeout = 2 * (limit + SLOW_RUN_S * (repeat + 1)) + 180
    speed = [
        "speed",
        *common,
        "--repeat",
        str(repeat),
        "--limit",
        str(limit),
        *(["--quick"] if quick else []),
    ]
    row = _child(speed, speed_timeout)
    fast = row.get("error") is None and all(
        (row.get(k) or SECOND_CHILD_BELOW_S) < SECOND_CHILD_BELOW_S for k in ("save_s", "load_s")
    )
    if fast:
        again = _child(speed, speed_timeout)
        if again.get("error") is None:
            for phase in ("save", "load"):
                row[f"{phase}_runs_second_child"] = again[f"{phase}_runs"]
                row[f"{phase}_s"] = min(row[f"{phase}_s"], again[f"{phase}_s"])
    if row.get("error") is None and os.path.exists(path):
        memory = _child(["memory", *common], 2 * limit + 60)
        if "error" in memory:
            memory = {"memory_error": memory["error"]}
        row.update(memory)
    if os.path.exists(path):
        os.unlink(path)
    return row


def _pick(names: str | None, known: dict[str, Any], what: str) -> list[str]:
    if not names:
        return list(known)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)}; known: {', '.join(known)}")
    return chosen


def _summary(row: dict[str, Any]) -> str:
    if row.get("error"):
        return row["error"]
    parts = [
        f"save {row['save_s']:.3g}s",
        f"load {row['load_s']:.3g}s",
        f"{row['size_bytes'] / 2**20:.1f} MiB",
        "ok" if row["correct"] else "WRONG",
    ]
    if "rss_lazy_delta_mb" in row:
        parts.append(f"rss +{row['rss_lazy_delta_mb']:.0f}/+{row['rss_full_delta_mb']:.0f} MiB")
    return ", ".join(parts)


def run_numpy(
    cases: list[str], tools: list[str], quick: bool, repeat: int, limit: float, out: Path
) -> None:
    """The numpy-payload suite: every (case, tool) pair, then ``numpy.{json,md,png}``."""
    notes: list[str] = []
    if any(is_modelsafe(TOOLS[t]) for t in tools) and (problem := modelsafe_problem()):
        notes.append(f"modelsafe rows skipped: modelsafe.save/load unavailable ({problem})")
        print(f"note: {notes[-1]}", flush=True)
        tools = [t for t in tools if not is_modelsafe(TOOLS[t])]

    tmpdir = tempfile.mkdtemp(prefix="modelsafe-bench-")
    results: dict[str, Any] = {
        "machine": machine_facts(tmpdir),
        "settings": {
            "quick": quick,
            "repeat": repeat,
            "limit_s": limit,
            "temp_dir": tmpdir,
            "loadavg_start": os.getloadavg(),
        },
        "notes": notes,
        "cases": {},
    }
    try:
        for case in cases:
            rows: dict[str, Any] = {}
            results["cases"][case] = {"description": CASES[case].description, "rows": rows}
            for tool in tools:
                print(f"{case:>18} {tool:<24} ...", end=" ", flush=True)
                rows[tool] = run_pair(case, tool, tmpdir, quick, repeat, limit)
                print(_summary(rows[tool]), flush=True)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    results["settings"]["loadavg_end"] = os.getloadavg()

    from benchmarks import report  # matplotlib is imported only now that children are done

    out.mkdir(parents=True, exist_ok=True)
    stem = "numpy-quick" if quick else "numpy"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text(report.markdown(results, chart=f"{stem}.png"))
    report.chart(results, out / f"{stem}.png")
    print(f"wrote {out / stem}.{{md,png,json}}")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the chosen suites, write JSON, Markdown and PNG for each."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--suite",
        choices=(*SUITES, "all"),
        default="all",
        help="numpy payloads, the model zoo, signing a large model, or all (default)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller cases, 1 repeat")
    parser.add_argument(
        "--cases",
        help=f"comma-separated subset of {', '.join(CASES)} (numpy) or {', '.join(ZOO)} (models)",
    )
    parser.add_argument("--tools", help=f"comma-separated subset of {', '.join(TOOLS)}")
    parser.add_argument("--repeat", type=int, help="runs per timing, best kept (3; quick: 1)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument(
        "--limit",
        type=float,
        default=120.0,
        help="seconds allowed for a single save or load (default 120)",
    )
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    suites = SUITES if args.suite == "all" else (args.suite,)
    known: dict[str, dict[str, Any]] = {"numpy": CASES, "models": ZOO, "signing": {"sign": None}}
    # One --cases list serves both suites; a suite none of whose cases is named is skipped.
    chosen = _pick(args.cases, {n: None for s in suites for n in known[s]}, "cases")
    # Without --tools each suite has its own rows; with it, any tool may run in any suite.
    tools = {"numpy": list(NUMPY_TOOLS), "models": list(MODEL_TOOLS), "signing": []}
    if args.tools:
        tools = dict.fromkeys(SUITES, _pick(args.tools, TOOLS, "tools"))
    out = Path(args.out)
    for suite in suites:
        cases = [c for c in chosen if c in known[suite]]
        if not cases:
            continue
        if suite == "numpy":
            run_numpy(cases, tools[suite], args.quick, repeat, args.limit, out)
        elif suite == "signing":  # signing a 1 GiB model (256 MiB with --quick)
            from benchmarks import signing

            stem = "signing-quick" if args.quick else "signing"
            signing.write(signing.run(256 if args.quick else 1024, repeat), out, stem)
            print(f"wrote {out / stem}.{{md,json}}")
        else:
            from benchmarks.zoo_run import run_models

            run_models(cases, tools[suite], args.quick, args.repeat, args.limit, out)


if __name__ == "__main__":
    main()
