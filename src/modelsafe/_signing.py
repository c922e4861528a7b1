"""Ed25519 signatures: keys, the trailer records, signing and verifying (docs/signing.md).

A signature covers the preamble and the header of a file (docs/format.md §2.1), and
through the buffer digests in the header every byte of the data. Records are appended
after the data section, so a file can carry several (trainer, reviewer) and signing
never rewrites the data.

``cryptography`` is imported only here, and only when a key is made, used or checked:
``import modelsafe`` and unsigned loads never import it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from ._container.layout import (
    MAX_SIGNATURES,
    SIGNATURE,
    SIGNATURE_DOMAIN,
    SIGNATURE_ED25519,
    SIGNATURE_MAGIC,
    SIGNATURE_SIGNED,
)
from ._container.reader import Container, SignatureRecord, key_id, open_container
from .errors import FormatError, SignatureError

KEYRING_ENV = "MODELSAFE_KEYRING"
PASSPHRASE_ENV = "MODELSAFE_KEY_PASSPHRASE"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"

PathLike = str | os.PathLike[str]


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise ImportError(
            "signatures need the 'cryptography' package: pip install 'modelsafe[sign]'"
        ) from None
    return ed25519


def _raw_public(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


# -- keys -------------------------------------------------------------------------------


def generate_key(
    directory: PathLike, name: str = "modelsafe", *, passphrase: str | bytes | None = None
) -> tuple[Path, Path]:
    """Make an Ed25519 key pair: ``DIR/NAME.key`` (private, mode 0600, encrypted when a
    passphrase is given) and ``DIR/NAME.pub`` (public: give it to those who verify).

    Existing files are never overwritten (``FileExistsError``). Returns both paths.
    """
    from cryptography.hazmat.primitives import serialization

    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"key name {name!r}: a plain file name is needed")
    folder = Path(os.fspath(directory))
    folder.mkdir(parents=True, exist_ok=True)
    private, public = folder / (name + PRIVATE_SUFFIX), folder / (name + PUBLIC_SUFFIX)
    for p in (private, public):
        if p.exists():
            raise FileExistsError(f"{p} exists; choose another name or directory")
    key = _ed25519().Ed25519PrivateKey.generate()
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    encryption: Any = (
        serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _create(private, pem, 0o600)
    try:
        _create(public, pub, 0o644)
    except BaseException:
        private.unlink()
        raise
    return private, public


def _create(path: Path, data: bytes, mode: int) -> None:
    """Write a new file whole (temporary file, fsync, hard link): never a partial key, never
    over an existing file, never readable by others even for a moment (``mode`` 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with open(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # mkstemp makes 0600; the public key is 0644
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # fails if path exists
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def load_private_key(key: Any, passphrase: str | bytes | None = None) -> Any:
    """An Ed25519 private key from a key object or a PEM file (``modelsafe keygen``).

    An encrypted file needs ``passphrase``, or the ``MODELSAFE_KEY_PASSPHRASE``
    environment variable.
    """
    ed25519 = _ed25519()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if not isinstance(key, str | os.PathLike):
        raise TypeError(
            f"a signing key is a path to a private key file or an Ed25519PrivateKey, "
            f"not {type(key).__name__}"
        )
    from cryptography.hazmat.primitives import serialization

    path = os.fspath(key)
    with open(path, "rb") as fh:
        pem = fh.read()
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
    secret = passphrase.encode() if isinstance(passphrase, str) else passphrase
    try:
        loaded = serialization.load_pem_private_key(pem, password=secret)
    except TypeError:  # encrypted without a passphrase, or a passphrase for a plain key
        if secret is None:
            raise SignatureError(
                f"{path}: the private key is encrypted: give its passphrase "
                f"(passphrase=, or the {PASSPHRASE_ENV} environment variable)"
            ) from None
        raise SignatureError(
            f"{path}: the private key is not encrypted; give no passphrase"
        ) from None
    except ValueError:
        raise SignatureError(f"{path}: not a PEM private key, or the passphrase is wrong") from None
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise SignatureError(f"{path}: not an Ed25519 key ({type(loaded).__name__})")
    return loaded


def _public_from_file(path: str) -> Any:
    from cryptography.hazmat.primitives import serialization

    with open(path, "rb") as fh:
        pem = fh.read()
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise SignatureError(f"{path}: not a PEM public key") from None
    if not isinstance(key, _ed25519().Ed25519PublicKey):
        raise SignatureError(f"{path}: not an Ed25519 public key ({type(key).__name__})")
    return key


def trusted_keys(spec: Any) -> dict[str, str]:
    """The trusted public keys, id -> where each came from.

    ``spec``: a public key file, a keyring directory (its ``*.pub`` files), an
    ``Ed25519PublicKey``, a list of these, or ``True`` for the keyring directory named
    by the ``MODELSAFE_KEYRING`` environment variable.
    """
    ed25519 = _ed25519()
    if spec is True:
        ring = os.environ.get(KEYRING_ENV)
        if not ring:
            raise SignatureError(
                f"require_signature=True uses the keyring named by {KEYRING_ENV}, which is "
                "not set; set it to a directory of .pub files, or pass the keys"
            )
        spec = ring
    if spec is None or spec is False or isinstance(spec, bytes | bytearray):
        raise TypeError(f"trusted keys: a path, a directory, a public key or a list, not {spec!r}")
    items = [spec] if isinstance(spec, str | os.PathLike | ed25519.Ed25519PublicKey) else spec
    keys: dict[str, str] = {}
    for item in items:
        if isinstance(item, ed25519.Ed25519PublicKey):
            keys.setdefault(key_id(_raw_public(item)), "a key object")
            continue
        if not isinstance(item, str | os.PathLike):
            raise TypeError(f"trusted keys: {item!r} is not a path or a public key")
        path = os.fspath(item)
        if os.path.isdir(path):
            found = sorted(p for p in os.listdir(path) if p.endswith(PUBLIC_SUFFIX))
            for name in found:
                full = os.path.join(path, name)
                keys.setdefault(key_id(_raw_public(_public_from_file(full))), full)
            if not found:
                raise SignatureError(f"{path}: the keyring holds no {PUBLIC_SUFFIX} files")
        else:
            keys.setdefault(key_id(_raw_public(_public_from_file(path))), path)
    if not keys:
        raise SignatureError("no trusted public keys were given")
    return keys


# -- signing ----------------------------------------------------------------------------


def _signed_at() -> int:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible files, as for meta.created
    if epoch is not None and epoch.strip().isdigit():
        return int(epoch)
    return int(time.time())


def record_for(key: Any, message: bytes) -> bytes:
    """The trailer record of ``key``'s signature over ``message`` (preamble + header)."""
    public = _raw_public(key.public_key())
    when = _signed_at()
    signed = SIGNATURE.pack(SIGNATURE_MAGIC, SIGNATURE_ED25519, when, public, b"", b"")
    signature = key.sign(SIGNATURE_DOMAIN + signed[:SIGNATURE_SIGNED] + message)
    return SIGNATURE.pack(SIGNATURE_MAGIC, SIGNATURE_ED25519, when, public, signature, bytes(16))


def signing_keys(sign_with: Any, passphrase: str | bytes | None = None) -> list[Any]:
    """The private keys of ``sign_with``: one key (path or object) or a list of them."""
    items = [sign_with] if isinstance(sign_with, str | os.PathLike) else sign_with
    if not isinstance(items, list | tuple):
        items = [items]
    keys = list({_id_of(k): k for k in (load_private_key(k, passphrase) for k in items)}.values())
    if not keys:
        raise ValueError("sign_with: no key given")
    if len(keys) > MAX_SIGNATURES:
        raise ValueError(f"sign_with: at most {MAX_SIGNATURES} keys")
    return keys


def _id_of(private: Any) -> str:
    return key_id(_raw_public(private.public_key()))


def trailer_for(keys: list[Any]) -> Any:
    """The writer's hook: the records of ``keys`` over the final preamble + header."""

    def trailer(head: bytes) -> bytes:
        return b"".join(record_for(k, head) for k in keys)

    return trailer


def sign_file(
    path: PathLike, key: Any, *, passphrase: str | bytes | None = None, fsync: bool = True
) -> list[str]:
    """Add signatures to a saved file; returns the ids of the keys that signed it.

    The file is checked whole first (header hash and every buffer digest: a signature
    vouches for what was checked). The signed copy replaces the file atomically: a copy
    with the records appended is written beside it, fsynced and renamed over it; the
    bytes of the header and the data are not changed. A key that already signed the
    file is not added again.
    """
    keys = signing_keys(key, passphrase)
    target = Path(os.fspath(path))
    c = open_container(target)
    if c.version < 2:
        raise FormatError(
            f"{c.source}: format version {c.version} has no room for signatures; load the "
            "file and save it again with this modelsafe to sign it"
        )
    _check_data(c)
    have = {r.key_id for r in c.signatures}
    ids = [_id_of(k) for k in keys]
    new = [k for k, i in zip(keys, ids, strict=True) if i not in have]
    if not new:
        return ids
    if len(c.signatures) + len(new) > MAX_SIGNATURES:
        raise FormatError(f"{c.source}: a file carries at most {MAX_SIGNATURES} signatures")
    records = b"".join(record_for(k, c.signed_message) for k in new)
    from ._container.writer import replace_atomic

    with open(target, "rb") as src:
        c.same_file(src)  # the file whose header was read and whose data was checked

        def write(fh: Any) -> None:
            _copy(src, fh, c.file_size)
            fh.flush()
            copied = os.pread(fh.fileno(), len(c.signed_message), 0)
            if copied != c.signed_message:  # what is signed is what was checked
                raise FormatError(f"{c.source}: the file changed while it was being signed")
            fh.write(records)

        replace_atomic(target, write, fsync=fsync)
    return ids


def _copy(src: Any, dst: Any, size: int) -> None:
    """Copy ``size`` bytes from the start of ``src`` (in the kernel where it can)."""
    dst.flush()
    done = 0
    try:
        while done < size:
            n = os.copy_file_range(src.fileno(), dst.fileno(), size - done, done, done)
            if n == 0:
                raise FormatError(f"{src.name}: the file shrank while it was being signed")
            done += n
        dst.seek(done)
        return
    except OSError:  # no copy_file_range across these file systems: copy through memory
        pass
    src.seek(done)
    dst.seek(done)
    while done < size:
        chunk = src.read(min(1 << 24, size - done))
        if not chunk:
            raise FormatError(f"{src.name}: the file shrank while it was being signed")
        dst.write(chunk)
        done += len(chunk)


def _check_data(c: Container) -> None:
    views = c.open_data(mmap_mode="r" if not c.compressed else False, verify=True)
    del views


# -- verifying --------------------------------------------------------------------------


def check_signatures(c: Container, trusted: dict[str, str]) -> list[str]:
    """Every signature of ``c`` must be valid, and one at least by a trusted key.

    Returns the trusted key ids that signed; raises ``SignatureError`` naming the key ids
    found otherwise. (The buffers are covered through the header's digests: verify them.)
    """
    found = [r.key_id for r in c.signatures]
    wanted = ", ".join(sorted(trusted))
    if not found:
        raise SignatureError(
            f"{c.source}: the file is not signed; a signature by a trusted key ({wanted}) "
            "is required",
            found=found,
        )
    _check_valid(c)
    good = [k for k in found if k in trusted]
    if not good:
        raise SignatureError(
            f"{c.source}: signed by {', '.join(found)}, none of them a trusted key ({wanted})",
            found=found,
        )
    return good


def _check_valid(c: Container) -> None:
    """Every signature of ``c`` matches it, whoever made it (SignatureError)."""
    for i, record in enumerate(c.signatures):
        if not _valid(record, c.signed_message):
            raise SignatureError(
                f"{c.source}: signature {i} (key {record.key_id}) does not match the file: "
                "the file or the signature was changed after signing",
                found=[r.key_id for r in c.signatures],
            )


def _valid(record: SignatureRecord, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        public = _ed25519().Ed25519PublicKey.from_public_bytes(record.public_key)
        public.verify(record.signature, SIGNATURE_DOMAIN + record.signed + message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_file(path: PathLike | bytes, keys: Any = True) -> list[str]:
    """Check a file's signatures against trusted ``keys``, its header hash and every
    buffer digest, without building anything. Returns the trusted key ids that signed."""
    return verified(path, keys)[1]


def verified(path: PathLike | bytes, keys: Any) -> tuple[Container, list[str]]:
    """:func:`verify_file`, giving the container too; ``keys=None`` checks only that the
    file is intact and that every signature it carries is valid (no trusted key)."""
    from ._container.reader import parse_container

    trusted = None if keys is None else trusted_keys(keys)
    c = parse_container(path) if isinstance(path, bytes | bytearray) else open_container(path)
    if trusted is not None:
        good = check_signatures(c, trusted)
    else:
        good = []
        _check_valid(c)
    _check_data(c)
    return c, good
