"""``sophia``: the entry point and the top-level options."""

from __future__ import annotations

import os

# One BLAS thread: the embedding model's small matrices gain nothing from more, and a second
# thread fighting the event loop for a core made single encodes up to 100x slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from typing import Annotated

import typer

from sophia import __version__
from sophia.cli import cache, collect, data, env, ide, keys, mcp, models, observe, router, run, secrets, usage
from sophia.cli.common import ConfigOption

app = typer.Typer(
    name="sophia",
    help="Sophia: a self-hostable, OpenAI-compatible AI gateway with routing, fallbacks, budgets and a ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sophia {__version__}")
        raise typer.Exit


@app.callback()
def root(
    ctx: typer.Context,
    config: ConfigOption = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            "-e",
            help="The active environment (default: $SOPHIA_ENV, else secrets.environment): its `sophia` "
            "values become settings. See `sophia env`.",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Sophia's command line. Every command takes --config too."""
    ctx.obj = {"config": config, "env": env}


app.command("run")(run.run)
app.add_typer(keys.app, name="keys")
app.command("usage")(usage.usage)
app.command("models")(models.models)
app.add_typer(router.app, name="router")
app.add_typer(cache.app, name="cache")
app.add_typer(mcp.app, name="mcp")
app.add_typer(ide.app, name="ide")
app.command("demo-data")(data.demo_data)
app.add_typer(data.warehouse_app, name="warehouse")
app.add_typer(data.knowledge_app, name="knowledge")
app.add_typer(collect.app, name="collect")
app.add_typer(observe.app, name="observe")
app.add_typer(secrets.app, name="secrets")
app.add_typer(env.app, name="env")


def main() -> None:
    app()
