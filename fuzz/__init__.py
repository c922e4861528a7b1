"""Fuzzing the reader: a target shared by the atheris harness (``make fuzz``) and the
hypothesis tests (``tests/test_fuzz.py``), and the seed corpus they start from."""
