"""Objects shared by tests that run modelsafe in child processes (importable by name)."""

from __future__ import annotations

from typing import Any

import numpy as np


class Node:
    """A plain user-defined class: saved through the generic reduce path."""

    def __init__(self, name: str, weights: Any = None, children: list[Node] | None = None):
        self.name = name
        self.weights = weights
        self.children = children or []


NODE_TYPES = [f"{Node.__module__}.{Node.__qualname__}"]


def kill_payload(which: str) -> dict[str, Any]:
    """Object A or B for the kill test: a few MB of arrays with distinct content."""
    seed = {"A": 1, "B": 2}[which]
    rng = np.random.default_rng(seed)
    return {
        "which": which,
        "weights": rng.standard_normal((512, 512)),  # 2 MiB
        "index": np.arange(300_000, dtype=np.int64) * seed,  # 2.3 MiB
        "bias": rng.standard_normal(64),
        "tags": {f"{which}-{i}" for i in range(20)},
    }


def determinism_payload() -> dict[str, Any]:
    """Arrays, dicts, sets of strings and nested objects: everything that could reorder."""
    rng = np.random.default_rng(7)
    leaf = Node("leaf", rng.standard_normal(5))
    tree = Node(
        "root",
        {"W": rng.standard_normal((64, 64)), "b": np.zeros(3, dtype=np.float32)},
        [leaf, Node("mid", None, [leaf]), Node("other", {"labels": {"spam", "eggs", "ham"}})],
    )
    return {
        "tree": tree,
        "big": rng.standard_normal(50_000),
        "ints": np.arange(10_000, dtype=np.int32),
        "vocab": {f"word{i}" for i in range(500)},
        "frozen": frozenset({"alpha", "beta", "gamma", "delta", "epsilon"}),
        "sets": [{"x", "y", "z"}, set(), {"only"}],
        "mapping": {"b": 2, "a": 1, ("tuple", "key"): {"q", "r"}, 3: "three"},
        "scalars": [*range(200), 0.5, "mixed", None, True],
        "nested": {"level1": {"level2": {"level3": [1, (2, 3), {"four"}]}}},
        "blob": bytes(range(256)) * 4,
        "npscalar": np.float32(1.5),
        "nan": float("nan"),
    }
