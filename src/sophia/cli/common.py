"""What every command shares: the --config option, settings loading, error exits, tables."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from sophia.errors import SophiaError
from sophia.settings import Settings, load_settings

if TYPE_CHECKING:
    from sophia.container import Services

T = TypeVar("T")

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: $SOPHIA_CONFIG, else ./sophia.yaml).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings(ctx: typer.Context, config: str | None) -> Settings:
    """Settings from the command's --config, else the top-level one; errors exit 2 with a clear message."""
    root = ctx.find_root()
    path = config or (root.obj or {}).get("config")
    try:
        return load_settings(path, environment=(root.obj or {}).get("env"))
    except SophiaError as exc:
        fail(exc.message, code=2)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    if not rows:
        return "(none)"
    cells = [[_fmt(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows) for c in columns
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for r in cells:
        lines.append(
            "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(r, widths, numeric, strict=True))
        )
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return str(value)


def echo(text: str) -> None:
    sys.stdout.write(text + "\n")


def run_services(conf: Settings, action: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``action`` on a process container for ``conf``, closed afterwards; a Sophia error (or Ctrl-C)
    ends the command with one clear line."""
    from sophia.container import Services

    async def go() -> T:
        services = Services(conf)
        try:
            return await action(services)
        finally:
            await services.close()

    try:
        return asyncio.run(go())
    except SophiaError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        fail("interrupted")
