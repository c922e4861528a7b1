"""``python -m modelsafe.cli``: the same as the ``modelsafe`` command."""

from __future__ import annotations

from . import main

if __name__ == "__main__":
    main(prog_name="modelsafe")
