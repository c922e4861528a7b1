"""The ``modelsafe`` click group, and how errors become exit codes (docs/cli.md)."""

from __future__ import annotations

import errno
from typing import Any

import click

from .. import __version__
from .._container.layout import FORMAT_VERSION
from ..errors import (
    FormatError,
    IntegrityError,
    MmapUnavailableError,
    ModelSafeError,
    SignatureError,
    UnsupportedTypeError,
    UntrustedTypesError,
)
from .demo import demo_command
from .inspect_cmd import inspect_command
from .sign_cmd import keygen_command, sign_command, verify_command
from .trusted_cmd import trusted_command

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2  # click's own code for bad arguments and missing files
EXIT_FORMAT = 3
EXIT_INTEGRITY = 4
EXIT_UNTRUSTED = 5
EXIT_UNSUPPORTED = 6
EXIT_MMAP = 7
EXIT_SIGNATURE = 8
# 9 and 10 are kept for EnvironmentMismatch and StoreError.

# Most specific first: the first class the error is an instance of wins.
EXIT_CODES: tuple[tuple[type[ModelSafeError], int], ...] = (
    (FormatError, EXIT_FORMAT),  # FormatVersionError too
    (IntegrityError, EXIT_INTEGRITY),
    (UntrustedTypesError, EXIT_UNTRUSTED),
    (UnsupportedTypeError, EXIT_UNSUPPORTED),
    (MmapUnavailableError, EXIT_MMAP),
    (SignatureError, EXIT_SIGNATURE),
)

EPILOG = """\b
Exit codes:
  0  success
  1  unexpected error (a bug, or an operating-system error such as permission denied)
  2  usage error: bad option or argument, file not found
  3  FormatError: not a modelsafe file, truncated, malformed, over a limit,
     or written by a newer format version (FormatVersionError)
  4  IntegrityError: a buffer does not match its digest
  5  UntrustedTypesError: the file needs types that are not trusted
  6  UnsupportedTypeError: a value cannot be saved securely
  7  MmapUnavailableError: memory mapping asked for, but buffers are compressed
  8  SignatureError: a required signature is missing, by no trusted key, or invalid
  9-10  reserved (environment mismatch, model store)

See docs/cli.md."""


def exit_code_for(exc: BaseException) -> int:
    """The process exit code for an error raised while running a command."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_UNEXPECTED


class ModelSafeGroup(click.Group):
    """A group whose commands turn modelsafe errors into documented exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModelSafeError as exc:
            # The message is written for people; a traceback would only bury it.
            click.echo(f"Error: {type(exc).__name__}: {exc}", err=True)
            ctx.exit(exit_code_for(exc))
        except OSError as exc:
            # A broken pipe (`modelsafe inspect --json f | head`) is click's to handle quietly.
            if exc.errno == errno.EPIPE:
                raise
            raise click.ClickException(str(exc)) from exc


@click.group(
    cls=ModelSafeGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(
    __version__,
    "-V",
    "--version",
    prog_name="modelsafe",
    message=f"%(prog)s %(version)s (format version {FORMAT_VERSION})",
)
def main() -> None:
    """Save trained models and load them anywhere without trusting the file.

    Run `modelsafe demo` for a short tour, or `modelsafe inspect FILE` to see
    what a .msafe file contains without loading it.
    """


main.add_command(inspect_command)
main.add_command(demo_command)
main.add_command(trusted_command)
main.add_command(keygen_command)
main.add_command(sign_command)
main.add_command(verify_command)
