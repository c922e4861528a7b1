"""Start the measuring child processes and read their one-line results.

Every measurement runs in a fresh ``python -m benchmarks.<module>`` child so that
each (case, tool) pair starts from the same clean interpreter and peak-RSS figures
belong to one tool alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "RESULT "  # the children print ``RESULT <json>`` as their last such line


def run_child(module: str, args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``python -m MODULE ARGS`` and return its result, or ``{"error": ...}``."""
    cmd = [sys.executable, "-m", module, *args]
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
    """Why the modelsafe rows cannot run, or None when ``save``/``load`` import fine.

    The child also writes modelsafe's bytecode (``__pycache__``), as installing a wheel
    does: the other libraries come with theirs, and a checkout run with
    ``PYTHONDONTWRITEBYTECODE`` would otherwise compile modelsafe's modules in every child,
    which shows in its first load's peak RSS.
    """
    code = (
        "import compileall, os, modelsafe; modelsafe.save; modelsafe.load; "
        "compileall.compile_dir(os.path.dirname(modelsafe.__file__), quiet=1)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode == 0:
        return None
    return (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
