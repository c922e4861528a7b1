"""The public functions: save, load, dumps, loads, untrusted_types, inspect."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ._container.compress import parse_spec
from ._container.layout import DEFAULT_LIMITS
from ._container.reader import Container, open_container, parse_container
from ._container.writer import Layout, build_container, to_bytes, write_atomic
from ._envelope import capture
from ._graph.audit import Audit, _Fail, check_number
from ._graph.decode import build
from ._graph.encode import encode
from ._info import FileInfo, describe
from ._trust import Policy
from .errors import MmapUnavailableError

PathLike = str | os.PathLike[str]


@contextlib.contextmanager
def _stack_room() -> Iterator[None]:
    """Room for trees as deep as the format allows (about five frames a level).

    Raising the limit is process-wide; it is put back unless another thread
    changed it meanwhile.
    """
    old = sys.getrecursionlimit()
    need = len(_frames()) + 6 * DEFAULT_LIMITS.max_depth + 200
    if need <= old:
        yield
        return
    sys.setrecursionlimit(need)
    try:
        yield
    finally:
        if sys.getrecursionlimit() == need:
            sys.setrecursionlimit(old)


def _frames() -> list[Any]:
    frames = []
    f = sys._getframe(1)
    while f is not None:
        frames.append(f)
        f = f.f_back  # type: ignore[assignment]
    return frames


_MMAP_MODES = (None, "r", "c", False)


def _trailer(sign_with: Any) -> Any:
    if sign_with is None:
        return None
    from ._signing import signing_keys, trailer_for

    return trailer_for(signing_keys(sign_with))


def _serialize(obj: Any, compress: Any, metadata: Any) -> Layout:
    spec = parse_spec(compress)
    meta = capture(metadata)
    with _stack_room():
        root, buffers, types, table = encode(obj, max_depth=DEFAULT_LIMITS.max_depth)
    fields: dict[str, Any] = {"meta": meta, "types": types}
    if table is not None:
        fields["arrays"] = table
    fields["root"] = root
    return build_container(fields, buffers, compress=spec)


def save(
    obj: Any,
    path: PathLike,
    *,
    compress: str | tuple[str, int] | None = None,
    metadata: dict[str, Any] | None = None,
    fsync: bool = True,
    sign_with: Any = None,
) -> Path:
    """Save ``obj`` to ``path`` in the native ``.msafe`` format.

    The write is atomic: the data goes to a temporary file in the same
    directory, which is flushed, fsynced (unless ``fsync=False``) and renamed
    over ``path``, so a crash leaves either the old file or the new one.

    Args:
        obj: the value to save: builtins, numpy, and instances of importable classes.
        path: where to write.
        compress: ``None``, ``"zstd"``, ``"lz4"`` or ``(codec, level)``; each buffer
            is compressed on its own, in parallel, and kept raw when that is smaller.
            Compressed files cannot be memory-mapped.
        metadata: free JSON stored in the header (``inspect(path).metadata["user"]``).
        fsync: wait until the file is on disk before returning (default). ``False``
            keeps atomicity against crashes of this process but not against power loss.
        sign_with: sign the file with this Ed25519 private key (a key file made by
            ``modelsafe keygen``, an ``Ed25519PrivateKey``, or a list of them for several
            signatures). An encrypted key file reads its passphrase from
            ``MODELSAFE_KEY_PASSPHRASE``; or pass ``load_signing_key(path, passphrase)``.

    Returns:
        The path written.

    Raises:
        UnsupportedTypeError: a value cannot be stored securely (a lambda, a function
            defined in ``__main__``, an open file, ...); the message gives its path
            inside ``obj`` and the ways out.

    Example:
        >>> import numpy as np, modelsafe
        >>> modelsafe.save({"w": np.zeros(3)}, "model.msafe")  # doctest: +SKIP
    """
    trailer = _trailer(sign_with)  # a key that cannot be read fails before any work
    return write_atomic(path, _serialize(obj, compress, metadata), fsync=fsync, trailer=trailer)


def dumps(
    obj: Any,
    *,
    compress: str | tuple[str, int] | None = None,
    metadata: dict[str, Any] | None = None,
    sign_with: Any = None,
) -> bytes:
    """Serialize ``obj`` to bytes in the native format (see :func:`save`)."""
    trailer = _trailer(sign_with)
    return to_bytes(_serialize(obj, compress, metadata), trailer)


def _require(c: Container, require_signature: Any, verify: bool) -> None:
    """Check the signatures before anything is audited or built (SignatureError)."""
    if require_signature is None or require_signature is False:
        return
    if not verify:
        raise ValueError(
            "require_signature needs verify=True: the signature covers the buffers only "
            "through their digests"
        )
    from ._signing import check_signatures, trusted_keys

    check_signatures(c, trusted_keys(require_signature))


def _audit(c: Container, policy: Policy | None) -> Audit:
    with _stack_room():
        return _audit_deep(c, policy)


def _audit_deep(c: Container, policy: Policy | None) -> Audit:
    a = Audit([b.nbytes for b in c.buffers], source=c.source)
    from ._handlers.numpy import longdouble_mantissa

    a.longdouble_ok = c.header["meta"].get("longdouble_mantissa") == longdouble_mantissa()
    if "arrays" in c.header:
        a.load_table(c.header["arrays"])
    try:
        check_number(a, c.header["root"])
        a.visit(c.header["root"])
    except _Fail as exc:
        from .errors import FormatError

        where = "root" + "".join(reversed(exc.segments))
        raise FormatError(f"{c.source}: {exc.message} (at {where})") from None
    except RecursionError:
        from .errors import FormatError

        raise FormatError(f"{c.source}: the object tree nests too deeply") from None
    a.finish(c.header["types"], policy)
    return a


def _construct(c: Container, policy: Policy, mode: Any, verify: bool, copy_readonly: bool) -> Any:
    with _stack_room():
        return _construct_deep(c, policy, mode, verify, copy_readonly)


def _construct_deep(
    c: Container, policy: Policy, mode: Any, verify: bool, copy_readonly: bool
) -> Any:
    a = _audit(c, policy)
    root = c.header["root"]

    def locate(i: int) -> str | None:  # called only to word an error: parses anew
        from ._info import buffer_owner

        return buffer_owner(c.file_root(), i, a.table)

    # The digests are computed while the object is built (the checks before construction
    # keep crafted bytes away from compiled code, digests or not); nothing built is
    # returned unless they match, and a corrupted buffer explains a failed build.
    views = c.open_data(mmap_mode=mode, verify=verify, locate=locate, later=True)
    try:
        obj = build(
            root, views, a, copy=copy_readonly, mapped=mode in ("c", "r") and c.data is None,
            source=c.source,
            handed=c.handed, consumed=c.consumed, wait_hashed=c.wait_hashed,
        )  # fmt: skip
    except Exception:
        c.finish_verify(locate)
        raise
    c.finish_verify(locate)
    return obj


def load(
    path: PathLike,
    *,
    trusted: Iterable[str] = (),
    mmap: str | bool | None = None,
    verify: bool = True,
    require_signature: Any = None,
) -> Any:
    """Load an object saved with :func:`save`, without running code from the file.

    The header is parsed and audited first (limits, structure, every type
    against the trust policy); nothing is imported or constructed before
    that audit passes.

    Args:
        path: the file.
        trusted: qualified names to trust beyond the default set, e.g.
            ``["mypkg.MyEstimator"]``. ``trusted=True`` is refused: list names.
        mmap: ``None`` (default): arrays are writable copy-on-write views of a
            memory map of the file (compressed buffers are decompressed into
            memory). ``"r"``: read-only views, shared between processes.
            ``"c"``: like the default but refuses compressed files.
            ``False``: read the data into memory (the file is not kept open).
            A file of at most 1 MiB is read into memory whatever ``mmap`` says (one
            read costs less than a map); its arrays are then views of that private copy,
            writable, or read-only with ``"r"``.
        verify: check every buffer against its BLAKE3 digest (default). The digests
            of a large file are computed on other cores while the object is built;
            nothing is returned unless every one matches.
        require_signature: refuse the file unless it carries a valid signature by one
            of these trusted Ed25519 public keys, checked before anything is built: a
            ``.pub`` file, a keyring directory of them, an ``Ed25519PublicKey``, a list
            of these, or ``True`` for the directory named by ``MODELSAFE_KEYRING``.
            Every signature the file carries must be valid.

    Raises:
        FormatError: the file is malformed, truncated or beyond a limit.
        FormatVersionError: the file needs a newer modelsafe.
        UntrustedTypesError: the file needs types you did not trust (``.types``).
        IntegrityError: a buffer does not match its digest; the message names it.
        MmapUnavailableError: ``mmap`` was asked for but buffers are compressed.
        SignatureError: ``require_signature`` was given and the file is not signed, is
            signed by no trusted key, or carries a signature that does not match it.

    Example:
        >>> model = modelsafe.load("model.msafe")  # doctest: +SKIP
        >>> model = modelsafe.load("model.msafe", mmap="r", trusted=["mypkg.Net"])  # doctest: +SKIP
    """
    if mmap not in _MMAP_MODES:
        raise ValueError(f"mmap must be None, 'r', 'c' or False, not {mmap!r}")
    policy = Policy(trusted)
    c = open_container(path, verify=verify, small_whole=True)
    _require(c, require_signature, verify)
    if mmap in ("r", "c") and c.compressed:
        codecs = sorted({c.buffers[i].codec or "" for i in c.compressed})
        raise MmapUnavailableError(
            f"{c.source}: mmap={mmap!r} is impossible: {len(c.compressed)} buffer(s) are "
            f"compressed ({', '.join(codecs)}), and compressed bytes cannot be memory-mapped. "
            f"Load with mmap=None or mmap=False, or save without compress= for a mappable file."
        )
    mode = "c" if mmap is None else mmap
    return _construct(c, policy, mode, verify, copy_readonly=False)


def loads(
    data: bytes | bytearray | memoryview,
    *,
    trusted: Iterable[str] = (),
    verify: bool = True,
    require_signature: Any = None,
) -> Any:
    """Load an object from bytes made by :func:`dumps`. Arrays are writable copies.
    The arguments are those of :func:`load`."""
    policy = Policy(trusted)
    c = parse_container(data, verify=verify)
    _require(c, require_signature, verify)
    return _construct(c, policy, False, verify, copy_readonly=True)


def untrusted_types(path: PathLike | bytes) -> list[str]:
    """The names a file needs beyond the default trust set, reading only its header.

    The header's list is checked against the object tree, so the answer is
    exactly what :func:`load` would refuse.
    """
    c = parse_container(path) if isinstance(path, bytes | bytearray) else open_container(path)
    a = _audit(c, None)
    return Policy(()).untrusted(a.needs)


def inspect(path: PathLike | bytes) -> FileInfo:
    """Describe a file from its header alone: metadata, types, buffers and the object tree."""
    c = parse_container(path) if isinstance(path, bytes | bytearray) else open_container(path)
    a = _audit(c, None)
    return describe(c, Policy(()).untrusted(a.needs), a.table)


def sign(path: PathLike, key: Any, *, passphrase: str | bytes | None = None) -> list[str]:
    """Add the signature of ``key`` (or of each key of a list) to a saved file.

    The file is checked whole first (its header hash and every buffer digest), then
    replaced atomically by a copy with the signature records appended: the header and
    the data are not rewritten, and earlier signatures are kept. A key that has already
    signed the file is not added twice. Returns the key ids.

    Raises:
        SignatureError: the key cannot be read (wrong passphrase, not Ed25519, ...).
        FormatError, IntegrityError: the file is not a valid, intact version-2 file.
    """
    from ._signing import sign_file

    return sign_file(path, key, passphrase=passphrase)


def verify_signatures(path: PathLike | bytes, keys: Any = True) -> list[str]:
    """Check that a file is intact and signed by a trusted key, without loading it.

    Every signature must be valid, one at least by a key of ``keys`` (as
    ``require_signature`` of :func:`load`), and the header hash and every buffer digest
    must match. Returns the ids of the trusted keys that signed.

    Raises:
        SignatureError: not signed, signed by no trusted key, or a signature that does
            not match; ``.found`` lists the key ids the file carries.
        IntegrityError, FormatError: the file is damaged or malformed.
    """
    from ._signing import verify_file

    return verify_file(path, keys)


def generate_key(
    directory: PathLike, name: str = "modelsafe", *, passphrase: str | bytes | None = None
) -> tuple[Path, Path]:
    """Make an Ed25519 key pair ``DIR/NAME.key`` (mode 0600, encrypted with
    ``passphrase`` when given) and ``DIR/NAME.pub``; never overwrites. Returns both."""
    from ._signing import generate_key as _generate

    return _generate(directory, name, passphrase=passphrase)


def load_signing_key(path: PathLike, passphrase: str | bytes | None = None) -> Any:
    """Read a private key file made by :func:`generate_key`, for ``save(sign_with=...)``."""
    from ._signing import load_private_key

    return load_private_key(path, passphrase)
