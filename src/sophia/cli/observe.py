"""``sophia observe uptime``: what the monitor of ``sophia run`` has seen (availability, incidents)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import typer

from sophia.cli.common import ConfigOption, JsonOption, echo, run_services, settings, table

if TYPE_CHECKING:
    from sophia.container import Services

app = typer.Typer(help="Uptime, SLOs and alerts.", no_args_is_help=True)


@app.command("uptime")
def uptime(ctx: typer.Context, config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Availability of every probed service over 1 h, 24 h and 30 d against its target, and incidents."""
    from sophia.observe.uptime import Uptime

    conf = settings(ctx, config)

    async def go(services: Services) -> list[dict[str, Any]]:
        accounts = await services.open()
        return await Uptime(accounts.db, target=conf.observe.target).report()

    report = run_services(conf, go)
    if as_json:
        echo(orjson.dumps(report).decode())
        return
    if not report:
        echo("nothing probed yet: `sophia run` probes its servers every observe.probe_interval seconds")
        return
    rows = [
        {
            "service": r["service"],
            **{w: "-" if v is None else f"{v:.3%}" for w, v in r["availability"].items()},
            "target": f"{r['target']:.1%}",
            "ok": "yes" if r["meets_target"] else "NO",
            "incidents": r["incidents_30d"],
            "now": r["open_incident"] or "up",
        }
        for r in report
    ]
    echo(table(rows, ["service", "1h", "24h", "30d", "target", "ok", "incidents", "now"]))
