"""``make fuzz``: coverage-guided fuzzing of the reader with atheris (libFuzzer).

    python -m fuzz.run --seconds 1800

Starts from the seed corpus (:mod:`fuzz.corpus`, written to ``.fuzz/seeds``), keeps
what it learns in ``.fuzz/corpus``, and stops at the first failure, writing the input
to ``.fuzz/crashes/``; ``.fuzz/outcomes.json`` counts how the inputs ended (every
10,000 inputs). A failure is any input for which :func:`fuzz.target.Target.run`
raises (an exception other than a modelsafe error, or memory beyond the limit), a
crash, or an input taking more than one second (libFuzzer's ``-timeout=1``). Put a
failing input in ``tests/data/fuzz/`` once fixed: the tests replay every file there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import atheris

with atheris.instrument_imports(include=["modelsafe"]):
    import modelsafe
    import modelsafe._api
    import modelsafe._handlers.lightgbm
    import modelsafe._handlers.pandas
    import modelsafe._handlers.scipy
    import modelsafe._handlers.sklearn
    import modelsafe._handlers.xgboost
    import modelsafe._signing  # noqa: F401

from fuzz.corpus import write
from fuzz.target import INSTRUMENTED_ALLOWANCE, Target

ROOT = ".fuzz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300, help="how long to fuzz")
    parser.add_argument("--max-len", type=int, default=1 << 16, help="largest input, bytes")
    args, extra = parser.parse_known_args()
    seeds, corpus, crashes = (os.path.join(ROOT, d) for d in ("seeds", "corpus", "crashes"))
    for d in (corpus, crashes):
        os.makedirs(d, exist_ok=True)
    paths = write(seeds)
    target = Target(measure_memory=False, allowance=INSTRUMENTED_ALLOWANCE)
    for p in paths:  # warm up: every lazy import happens before inputs are measured
        with open(p, "rb") as fh:
            target.run(fh.read())
    target.measure_memory = True
    target.outcomes.clear()
    libfuzzer = [
        sys.argv[0],
        corpus,
        seeds,
        f"-max_total_time={args.seconds}",
        "-timeout=1",
        "-rss_limit_mb=8192",
        f"-max_len={args.max_len}",
        f"-artifact_prefix={crashes}/",
        "-print_final_stats=1",
        *extra,
    ]
    outcomes = os.path.join(ROOT, "outcomes.json")
    runs = 0

    def one(data: bytes) -> None:
        nonlocal runs
        target.run(data)
        runs += 1
        if runs % 10_000 == 0:  # libFuzzer ends the process itself: no place to print last
            with open(outcomes, "w") as fh:
                json.dump({"inputs": runs, "outcomes": dict(sorted(target.outcomes.items()))}, fh)

    atheris.Setup(libfuzzer, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
