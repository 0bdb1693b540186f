"""``sophia observe uptime|drift``: what the monitor of ``sophia run`` has seen (availability, incidents),
and whether the gateway's traffic has drifted (``sophia.observe.signals``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

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


@app.command("drift")
def drift(
    ctx: typer.Context,
    config: ConfigOption = None,
    window: Annotated[float, typer.Option(help="Hours in the recent window.")] = 24.0,
    reference: Annotated[float, typer.Option(help="Days of reference before the window.")] = 7.0,
    as_json: JsonOption = False,
) -> None:
    """Has the gateway's traffic drifted? Latency, tokens, error and cache-hit rates, model mix: the
    recent window against the reference before it, each with its test and p-value."""
    import time

    from sophia.observe.signals import ledger_drift

    conf = settings(ctx, config)

    async def go(services: Services) -> Any:
        accounts = await services.open()
        return await ledger_drift(
            accounts.db, now=time.time(), window=window * 3600, reference=reference * 86400
        )

    report = run_services(conf, go)
    if as_json:
        echo(
            orjson.dumps(
                {
                    "results": [r.__dict__ for r in report.results],
                    "skipped": report.skipped,
                    "drifted": [r.signal for r in report.drifted],
                }
            ).decode()
        )
        return
    for result in report.results:
        echo(result.describe())
    for signal, why in report.skipped.items():
        echo(f"{signal}: skipped ({why})")
