"""Files for the command-line tests, written with the public API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modelsafe


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    """A small model-like file in 3 buffers: two 8 KiB arrays with a buffer each, and one
    shared by the arrays of 4 KiB or less (``scale`` and the RandomState's key)."""
    obj = {
        "weights": np.arange(1024.0).reshape(32, 32),
        "bias": np.ones(2048, dtype=np.float32),
        "scale": np.arange(3.0),
        "names": ["age", "income"],
        "rs": np.random.RandomState(0),
    }
    return modelsafe.save(obj, tmp_path / "model.msafe", metadata={"team": "fraud"}, fsync=False)
