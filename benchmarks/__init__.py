"""Reproducible benchmarks comparing modelsafe with pickle, joblib and skops.

Run ``python -m benchmarks.run --quick`` for a smoke run, or without ``--quick``
for the full numbers written to ``benchmarks/results/``. See ``benchmarks/README.md``.
"""
