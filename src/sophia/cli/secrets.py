"""``sophia secrets scan``: credentials in files and log lines (``sophia.secrets.scan``)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import orjson
import typer

from sophia.cli.common import JsonOption, echo

app = typer.Typer(help="Secrets: find credentials where they should not be.", no_args_is_help=True)


@app.command("scan")
def scan(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (default: the current folder).")
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Glob, relative to a folder scanned (repeatable).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List credential-shaped values (provider keys, tokens, private keys, passwords bound to a name).

    Exit code 1 when anything is found. Findings show a preview, never the whole value. A line with
    `pragma: allowlist secret` is not reported."""
    from sophia.secrets.scan import scan_paths

    findings = scan_paths(paths or [Path(".")], exclude or ())
    if as_json:
        echo(orjson.dumps([asdict(f) for f in findings]).decode())
    else:
        for f in findings:
            echo(
                f"{f.path}:{f.line}:{f.column}: {f.kind} {f.preview}{' (checksum valid)' if f.verified else ''}"
            )
        echo(f"{len(findings)} finding(s)" if findings else "no credentials found")
    if findings:
        raise typer.Exit(1)
