"""The knowledge room as a service of the process container: ``await services.get(KNOWLEDGE)``.

One ``Knowledge`` per process, over the store ``knowledge.url`` names (the embedded store in the
data folder by default), shared by the BI MCP server's tools and the collectors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sophia.container import Service, Services

if TYPE_CHECKING:
    from sophia.knowledge.knowledge import Knowledge


async def _start(services: Services) -> Knowledge:
    from sophia.knowledge.knowledge import Knowledge

    settings = services.settings
    return await Knowledge.open(settings.knowledge, settings.data_dir)


async def _stop(knowledge: Knowledge) -> None:
    await knowledge.close()


#: the process's knowledge room
KNOWLEDGE: Service[Knowledge] = Service("knowledge", _start, _stop)
