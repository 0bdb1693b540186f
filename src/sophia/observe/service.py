"""The tracer as a service of the process container: ``await services.get(TRACER)``.

One tracer per process, on the process's ledger: the gateway's calls and every MCP server's tool
calls become spans of the same exporters. None when ``observe.tracing`` is off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sophia.container import Service, Services

if TYPE_CHECKING:
    from sophia.observe.tracing import Tracer


async def _start(services: Services) -> Tracer | None:
    if not services.settings.observe.tracing:
        return None
    from sophia.observe.tracing import Tracer

    accounts = await services.open()
    tracer = await Tracer.open(services.settings, accounts.ledger.db)
    tracer.attach(accounts.ledger)
    return tracer


async def _stop(tracer: Tracer | None) -> None:
    if tracer is not None:
        await tracer.close()


#: the process's tracer (spans of the ledger's records), or None when tracing is off
TRACER: Service[Tracer | None] = Service("tracer", _start, _stop)
