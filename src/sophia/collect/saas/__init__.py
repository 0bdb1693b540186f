"""Optional SaaS services the collector uses when their key is set, each written against its published
API: Tavily (web search), Apify (run an Actor, read its dataset), Twingly (news and blog search),
ZenRows (fetch through their proxies) and PhantomBuster (launch an agent, read its result).

``clients(settings.collect)`` gives one client per *configured* service, keyed by service name; a tool
asks ``"tavily" in clients`` and otherwise falls back to the local equivalent (and says so). What the
clients share (credentials kept out of logs and messages, retries, the error mapping) is in ``base``.
"""

from __future__ import annotations

from typing import Any

from sophia.collect.saas.apify import ActorRun, ApifyClient
from sophia.collect.saas.base import RetryPolicy, SaaSClient
from sophia.collect.saas.phantombuster import PhantomBusterClient
from sophia.collect.saas.tavily import TavilyClient, WebResult
from sophia.collect.saas.twingly import NewsArticle, TwinglyClient
from sophia.collect.saas.zenrows import FetchedPage, ZenRowsClient
from sophia.settings.collect import CollectSettings

#: every service client, by the name of its settings section
SERVICES: dict[str, type[SaaSClient]] = {
    client.service: client
    for client in (TavilyClient, ApifyClient, TwinglyClient, ZenRowsClient, PhantomBusterClient)
}


def configured(settings: CollectSettings) -> list[str]:
    """The names of the services with a key set, in ``SERVICES`` order."""
    return [name for name, client in SERVICES.items() if client.configured(settings)]


def clients(settings: CollectSettings, **options: Any) -> dict[str, SaaSClient]:
    """A client for each configured service (``options``, e.g. ``retry``, go to every constructor); the
    caller closes them (``aclose``)."""
    return {name: SERVICES[name].from_settings(settings, **options) for name in configured(settings)}


__all__ = [
    "SERVICES",
    "ActorRun",
    "ApifyClient",
    "FetchedPage",
    "NewsArticle",
    "PhantomBusterClient",
    "RetryPolicy",
    "SaaSClient",
    "TavilyClient",
    "TwinglyClient",
    "WebResult",
    "ZenRowsClient",
    "clients",
    "configured",
]
