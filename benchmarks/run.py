"""Run the benchmarks: every (case, tool) pair in fresh child processes, then the report.

Usage::

    python -m benchmarks.run [--quick] [--cases a,b] [--tools x,y] [--repeat N]
                             [--out benchmarks/results] [--limit 120]

Writes ``numpy.md``, ``numpy.png`` and ``numpy.json`` (``numpy-quick.*`` with ``--quick``)
into ``--out``. Temporary files live in a ``tempfile.mkdtemp()`` directory, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.cases import CASES
from benchmarks.machine import machine_facts
from benchmarks.measure import RESULT_PREFIX, SLOW_RUN_S
from benchmarks.tools import TOOLS, is_modelsafe

ROOT = Path(__file__).resolve().parents[1]


def _child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m benchmarks.measure ARGS`` and return its result or an ``error``."""
    cmd = [sys.executable, "-m", "benchmarks.measure", *args]
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timeout >{timeout:.0f}s (whole child process)"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"child exited {proc.returncode}: {tail}"[:300]}


def modelsafe_problem() -> str | None:
    """Why the modelsafe rows cannot run, or None when ``save``/``load`` import fine."""
    code = "import modelsafe; modelsafe.save; modelsafe.load"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or ["unknown error"])[-1]


def run_pair(
    case: str, tool: str, tmpdir: str, quick: bool, repeat: int, limit: float
) -> dict[str, Any]:
    """Speed child, then (if it saved a file) the fresh-process memory child."""
    path = os.path.join(tmpdir, f"{case}-{tool}{TOOLS[tool].suffix}")
    common = ["--case", case, "--tool", tool, "--path", path]
    speed_timeout = 2 * (limit + SLOW_RUN_S * (repeat + 1)) + 180
    row = _child(
        [
            "speed",
            *common,
            "--repeat",
            str(repeat),
            "--limit",
            str(limit),
            *(["--quick"] if quick else []),
        ],
        speed_timeout,
    )
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


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run every pair, write JSON, Markdown and PNG."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smaller cases, 1 repeat")
    parser.add_argument("--cases", help=f"comma-separated subset of {', '.join(CASES)}")
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
    cases = _pick(args.cases, CASES, "cases")
    tools = _pick(args.tools, TOOLS, "tools")
    notes: list[str] = []
    if any(is_modelsafe(TOOLS[t]) for t in tools) and (problem := modelsafe_problem()):
        notes.append(f"modelsafe rows skipped: modelsafe.save/load unavailable ({problem})")
        print(f"note: {notes[-1]}", flush=True)
        tools = [t for t in tools if not is_modelsafe(TOOLS[t])]

    tmpdir = tempfile.mkdtemp(prefix="modelsafe-bench-")
    results: dict[str, Any] = {
        "machine": machine_facts(tmpdir),
        "settings": {
            "quick": args.quick,
            "repeat": repeat,
            "limit_s": args.limit,
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
                rows[tool] = run_pair(case, tool, tmpdir, args.quick, repeat, args.limit)
                print(_summary(rows[tool]), flush=True)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    results["settings"]["loadavg_end"] = os.getloadavg()

    from benchmarks import report  # matplotlib is imported only now that children are done

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "numpy-quick" if args.quick else "numpy"
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / f"{stem}.md").write_text(report.markdown(results, chart=f"{stem}.png"))
    report.chart(results, out / f"{stem}.png")
    print(f"wrote {out / stem}.{{md,png,json}}")


if __name__ == "__main__":
    main()
