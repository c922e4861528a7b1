"""``modelsafe trusted``: list the default trust set (what loads without ``trusted=``)."""

from __future__ import annotations

import json

import click

from .._trust import default_trusted


@click.command("trusted")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object: name -> list of uses.")
@click.option(
    "--prefix",
    default="",
    metavar="TEXT",
    help="Only names starting with TEXT, e.g. 'sklearn.tree'.",
)
def trusted_command(as_json: bool, prefix: str) -> None:
    """List every name trusted by default, with the uses it is trusted for.

    Uses: node (a node kind of modelsafe's own), value (referenced as a
    function or class object), new (created with __new__ and given its state),
    call (called with arguments from the file). The list is data read from
    modelsafe's trust tables; nothing is imported to make it.
    """
    table = default_trusted()
    names = sorted(n for n in table if n.startswith(prefix))
    if as_json:
        click.echo(json.dumps({n: sorted(table[n]) for n in names}, indent=1))
        return
    width = max((len(n) for n in names), default=0)
    for n in names:
        click.echo(f"{n:<{width}}  {' '.join(sorted(table[n]))}")
    click.echo(f"{len(names)} names", err=True)
