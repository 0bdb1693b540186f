"""Alerts: firing rules turned into notices, once per problem, with a notice when it is over.

``Alerts.check(firings, now)`` takes what every rule source found at ``now`` (the SLO burn rules of
``sophia.observe.slo``; cost, latency and drift rules add theirs the same way) and:

* opens an alert for a key (the SLO and severity) that was not active, and notifies;
* stays silent while the key keeps firing (de-duplicated), unless ``repeat_after`` has passed;
* closes the alert once its key stops firing, and sends a recovery notice.

Notices go to every notifier: the log always, and a webhook (Slack's incoming-webhook payload, which
Mattermost, Rocket.Chat, Teams workflows and most chat tools also accept) when one is configured. A
notifier that fails is logged and retried once; it never stops the others or the check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sophia.observe.slo import Firing

log = logging.getLogger("sophia.observe.alerts")

State = Literal["firing", "resolved"]


@dataclass
class Alert:
    """One problem from when it started to when it ended."""

    key: tuple[str, str]
    severity: str
    title: str
    detail: str
    started_at: float
    resolved_at: float | None = None
    notified_at: float = 0.0
    last: Firing | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True)
class Notice:
    """What a notifier is given: an alert that opened (``firing``) or closed (``resolved``)."""

    state: State
    alert: Alert

    def text(self) -> str:
        a = self.alert
        if self.state == "resolved":
            minutes = ((a.resolved_at or a.started_at) - a.started_at) / 60
            return f"RESOLVED [{a.severity}] {a.title} (lasted {minutes:.0f} min)"
        return f"{a.severity.upper()} {a.title}: {a.detail}"


class Notifier(Protocol):
    async def send(self, notice: Notice) -> None: ...


class LogNotifier:
    """Every notice as a log line (warning when firing, info when resolved)."""

    async def send(self, notice: Notice) -> None:
        level = logging.WARNING if notice.state == "firing" else logging.INFO
        log.log(level, "alert %s", notice.text())


class WebhookNotifier:
    """Notices POSTed to a webhook as a Slack-compatible payload (``text`` plus one ``section`` block)."""

    def __init__(self, url: str, *, timeout: float = 5.0, client: Any = None) -> None:
        import httpx

        self.url = url
        self._client = client or httpx.AsyncClient(timeout=timeout, trust_env=False)

    @staticmethod
    def payload(notice: Notice) -> dict[str, Any]:
        a = notice.alert
        emoji = ":white_check_mark:" if notice.state == "resolved" else (
            ":rotating_light:" if a.severity == "page" else ":warning:"
        )  # fmt: skip
        return {
            "text": f"{emoji} {notice.text()}",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"{emoji} *{notice.text()}*"}},
                {
                    "type": "context",
                    "elements": [
                        {"type": "mrkdwn", "text": f"state: {notice.state} · severity: {a.severity}"}
                    ],
                },
            ],
        }

    async def send(self, notice: Notice) -> None:
        response = await self._client.post(self.url, json=self.payload(notice))
        response.raise_for_status()

    async def aclose(self) -> None:
        await self._client.aclose()


class Alerts:
    """Open, de-duplicated and closed alerts over time, sent to ``notifiers``."""

    def __init__(self, notifiers: Sequence[Notifier] = (), *, repeat_after: float | None = None) -> None:
        self.notifiers = list(notifiers) or [LogNotifier()]
        self.repeat_after = repeat_after
        self.active: dict[tuple[str, str], Alert] = {}
        self.history: list[Alert] = []

    async def check(self, firings: Iterable[Firing], now: float) -> list[Notice]:
        """What changed at ``now`` given what fires; every notice is also sent."""
        by_key: dict[tuple[str, str], Firing] = {}
        for firing in firings:
            kept = by_key.get(firing.key)
            if kept is None or firing.burn_long > kept.burn_long:
                by_key[firing.key] = firing
        notices: list[Notice] = []
        for key, firing in by_key.items():
            alert = self.active.get(key)
            if alert is None:
                alert = Alert(
                    key, firing.severity, _title(firing), _detail(firing), started_at=now, last=firing
                )
                self.active[key] = alert
                self.history.append(alert)
                notices.append(Notice("firing", alert))
            else:
                alert.last, alert.detail = firing, _detail(firing)
                if self.repeat_after is not None and now - alert.notified_at >= self.repeat_after:
                    notices.append(Notice("firing", alert))
        for key in [k for k in self.active if k not in by_key]:
            alert = self.active.pop(key)
            alert.resolved_at = now
            notices.append(Notice("resolved", alert))
        for notice in notices:
            notice.alert.notified_at = now
            await self._send(notice)
        return notices

    async def _send(self, notice: Notice) -> None:
        for notifier in self.notifiers:
            for attempt in (1, 2):
                try:
                    await notifier.send(notice)
                    break
                except Exception as exc:  # noqa: BLE001 - a notifier's failure never stops the others
                    if attempt == 2:
                        log.warning("alert notifier %s failed: %s", type(notifier).__name__, exc)


def _title(firing: Firing) -> str:
    return firing.slo if firing.detail is not None else f"{firing.slo} is burning its error budget"


def _detail(firing: Firing) -> str:
    if firing.detail is not None:
        return firing.detail
    return (
        f"{firing.rule} (now {firing.burn_short:.1f}x, {firing.burn_long:.1f}x over the long window; "
        f"{firing.error_ratio:.1%} of events failing)"
    )
