"""The exceptions modelsafe raises.

Every error derives from :class:`ModelSafeError`, so ``except ModelSafeError``
catches anything this library raises on purpose::

    ModelSafeError
    ├── FormatError (ValueError)             the bytes are not a valid file: truncated,
    │   └── FormatVersionError               malformed, over a limit, or a newer format
    ├── IntegrityError                       a buffer does not match its digest
    ├── UntrustedTypesError                  the file needs types the caller did not trust
    ├── UnsupportedTypeError (TypeError)     save: a value cannot be stored securely
    ├── MmapUnavailableError (ValueError)    load: mmap asked for, but a buffer is compressed
    └── SignatureError                       a required signature is missing, unknown or invalid

Later features add their own branches (environment, store).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "FormatError",
    "FormatVersionError",
    "IntegrityError",
    "MmapUnavailableError",
    "ModelSafeError",
    "SignatureError",
    "UnsupportedTypeError",
    "UntrustedTypesError",
]


class ModelSafeError(Exception):
    """Root of every error raised by modelsafe."""


class FormatError(ModelSafeError, ValueError):
    """The file is not a valid modelsafe file, or it breaks one of the format's limits."""


class FormatVersionError(FormatError):
    """The file was written by a newer format version than this modelsafe can read."""

    def __init__(self, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"this file uses format version {found}, but this modelsafe reads versions up to "
            f"{supported}; upgrade modelsafe (pip install -U modelsafe) to load it"
        )


class IntegrityError(ModelSafeError):
    """A buffer's bytes do not match the digest recorded in the header."""

    def __init__(self, message: str, *, buffer: int | None = None, where: str | None = None):
        self.buffer = buffer
        self.where = where
        super().__init__(message)


class UntrustedTypesError(ModelSafeError):
    """The file references types or functions that are not trusted.

    ``.types`` lists their qualified names, sorted.
    """

    def __init__(self, types: Iterable[str], *, source: str = "the file") -> None:
        from ._trust import never_trustable

        self.types = sorted(set(types))
        never = [t for t in self.types if never_trustable(t)]
        ok = [t for t in self.types if t not in never]
        listed = "\n".join(
            f"  - {t}" + ("  (can never be trusted: it reaches the OS or runs code)" * (t in never))
            for t in self.types
        )
        text = f"{source} needs {len(self.types)} type(s) that are not trusted:\n{listed}\n"
        if never:
            text += (
                "This file asks for names modelsafe refuses to trust under any setting; "
                "it is probably malicious. Do not load it.\n"
            )
        elif ok:
            names = ", ".join(repr(t) for t in ok)
            text += (
                "Loading it would let the file construct or call them. If you trust where "
                "the file comes from and these names, pass them explicitly:\n"
                f"  modelsafe.load(path, trusted=[{names}])\n"
            )
        text += "(modelsafe.untrusted_types(path) lists them without loading anything.)"
        super().__init__(text)


class UnsupportedTypeError(ModelSafeError, TypeError):
    """A value cannot be stored in the secure format.

    ``.path`` says where it sits inside the saved object, for example
    ``root['steps'][1][1].func``.
    """

    def __init__(self, reason: str, *, path: str = "root", advice: str | None = None) -> None:
        self.reason = reason
        self.path = path
        self.advice = advice
        text = f"cannot save {path}: {reason}"
        if advice:
            text += f"\n{advice}"
        super().__init__(text)


class MmapUnavailableError(ModelSafeError, ValueError):
    """``mmap`` was requested for a file whose buffers cannot be memory-mapped."""


class SignatureError(ModelSafeError):
    """A signature the caller requires is missing, by a key not trusted, or invalid.

    ``found`` lists the key ids of the signatures the file carries (valid or not).
    """

    def __init__(self, message: str, *, found: Iterable[str] = ()) -> None:
        self.found = list(found)
        super().__init__(message)
