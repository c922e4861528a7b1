"""Fresh-process side of the sweep: load every saved model with default trust, call its methods.

Run as ``python tests/estimators/child.py DIR``; reads DIR/manifest.pkl (case id -> file names),
writes DIR/results.pkl (case id -> untrusted types, load error, method outputs).
"""

from __future__ import annotations

import pickle  # test data transport between our own processes, never model files
import sys
from pathlib import Path
from typing import Any

import modelsafe

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.estimators.cases import outputs


def main(directory: Path) -> None:
    manifest: dict[str, dict[str, str]] = pickle.loads((directory / "manifest.pkl").read_bytes())
    results: dict[str, dict[str, Any]] = {}
    for case, files in manifest.items():
        model_path = directory / files["model"]
        out: dict[str, Any] = {"untrusted": modelsafe.untrusted_types(model_path), "error": None}
        try:
            model = modelsafe.load(model_path)
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            X = pickle.loads((directory / files["X"]).read_bytes())
            out["outputs"] = outputs(model, X)
        results[case] = out
    (directory / "results.pkl").write_bytes(pickle.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
