"""``modelsafe keygen``, ``sign`` and ``verify``: Ed25519 signatures (docs/signing.md)."""

from __future__ import annotations

import json
import os
import sys

import click

from .._signing import KEYRING_ENV as _KEYRING_ENV
from .._signing import PASSPHRASE_ENV as _PASSPHRASE_ENV


@click.command("keygen")
@click.option(
    "--out",
    "directory",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory for NAME.key (private, mode 0600) and NAME.pub (public).",
)
@click.option("--name", default="modelsafe", show_default=True, help="File name of the pair.")
@click.option(
    "--passphrase/--no-passphrase",
    default=False,
    help="Encrypt the private key; the passphrase is read from "
    f"{_PASSPHRASE_ENV}, or asked for twice on the terminal.",
)
def keygen_command(directory: str, name: str, passphrase: bool) -> None:
    """Make an Ed25519 key pair for signing models. Existing files are never overwritten."""
    import modelsafe

    secret = None
    if passphrase:
        secret = os.environ.get(_PASSPHRASE_ENV) or click.prompt(
            "Passphrase", hide_input=True, confirmation_prompt=True, err=True
        )
    try:
        private, public = modelsafe.generate_key(directory, name, passphrase=secret)
    except (FileExistsError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    key_id = _key_id(str(public))
    click.echo(f"private key: {private} (keep it secret)")
    click.echo(f"public key:  {public} (key id {key_id}); give it to those who verify")


def _key_id(public: str) -> str:
    from .._signing import trusted_keys

    return next(iter(trusted_keys(public)))


def _passphrase_for(key: str) -> str | None:
    """The passphrase of an encrypted key: the environment, else the terminal."""
    secret = os.environ.get(_PASSPHRASE_ENV)
    if secret:
        return secret
    with open(key, "rb") as fh:
        encrypted = b"ENCRYPTED" in fh.read(64)
    if encrypted and sys.stdin.isatty():
        text: str = click.prompt(f"Passphrase for {key}", hide_input=True, err=True)
        return text
    return None


@click.command("sign")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--key",
    "keys",
    required=True,
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Private key file (modelsafe keygen); repeat to sign with several.",
)
def sign_command(file: str, keys: tuple[str, ...]) -> None:
    """Sign FILE: check it whole, then append a signature by each key.

    The header and the data are not rewritten; earlier signatures are kept. The file
    is replaced atomically. An encrypted key's passphrase comes from
    MODELSAFE_KEY_PASSPHRASE, or the terminal.
    """
    import modelsafe

    loaded = [modelsafe.load_signing_key(k, _passphrase_for(k)) for k in keys]
    ids = modelsafe.sign(file, loaded)
    click.echo(f"{file}: signed by {', '.join(ids)}")


@click.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A trusted public key (.pub); repeatable.",
)
@click.option(
    "--keyring",
    type=click.Path(exists=True, file_okay=False),
    help=f"A directory of trusted .pub files (default: ${_KEYRING_ENV}, when set).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_command(file: str, keys: tuple[str, ...], keyring: str | None, as_json: bool) -> None:
    """Check that FILE is intact and signed by a trusted key, without loading it.

    Every signature the file carries must match it, one at least must be by a
    trusted key (--key, --keyring or MODELSAFE_KEYRING), and the header hash and
    every buffer digest must match. Without any trusted key only the integrity and
    the signatures' own validity are checked, and the output says so.
    Exit 0 when all holds; 8 for a signature problem, 4 for damaged data, 3 for a
    malformed file.
    """
    from .._info import describe_signatures
    from .._signing import verified

    trusted: list[str] = list(keys)
    if keyring:
        trusted.append(keyring)
    elif not trusted and os.environ.get(_KEYRING_ENV):
        trusted.append(os.environ[_KEYRING_ENV])
    c, good = verified(file, trusted or None)
    signatures = describe_signatures(c.signatures)
    for s in signatures:
        s["trusted"] = s["key_id"] in good
    if as_json:
        result = {
            "file": file,
            "intact": True,
            "trusted_keys_given": bool(trusted),
            "trusted_signers": good,
            "signatures": signatures,
        }
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{file}: intact (header hash and {len(c.buffers)} buffer digests match)")
    for s in signatures:
        mark = "trusted" if s["trusted"] else "valid, key not trusted" if trusted else "valid"
        click.echo(f"  signature by {s['key_id']} at {s['signed_at']}: {mark}")
    if not signatures:
        click.echo("  no signatures")
    if not trusted:
        click.echo("  signatures not checked against trusted keys: give --key or --keyring")
