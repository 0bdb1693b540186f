"""Burn-rate alerting on scripted histories and a fake clock (the SRE workbook's rules, target 99.5%)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from sophia.errors import InvalidRequest
from sophia.observe.alerts import Alerts, Notice, WebhookNotifier
from sophia.observe.slo import BUCKET, SLO, BurnRule

T0 = 1_800_000_000.0  # a fixed start: 2027-01-15
PER_MINUTE = 100  # requests a minute


class Recorder:
    def __init__(self) -> None:
        self.notices: list[Notice] = []

    async def send(self, notice: Notice) -> None:
        self.notices.append(notice)


async def replay(
    error_share: Callable[[float], float], *, minutes: int, history_minutes: int = 0, target: float = 0.995
) -> tuple[Recorder, SLO, Alerts]:
    """Minute by minute from ``T0 - history`` to ``T0 + minutes``: ``error_share(t - T0)`` of the traffic
    fails; the alerts are checked every minute, as the scheduler does."""
    slo, recorder = SLO("gateway availability", target=target), Recorder()
    alerts = Alerts([recorder])
    for minute in range(-history_minutes, minutes):
        now = T0 + minute * BUCKET
        bad = round(PER_MINUTE * error_share(now - T0))
        slo.record(now, good=PER_MINUTE - bad, bad=bad)
        if minute >= -60:  # the history before is quiet and healthy: checking it would only cost time
            await alerts.check(slo.evaluate(now + BUCKET - 1), now + BUCKET - 1)
        slo.prune(now)
    return recorder, slo, alerts


def first(recorder: Recorder, state: str, severity: str) -> float | None:
    for notice in recorder.notices:
        if notice.state == state and notice.alert.severity == severity:
            return notice.alert.resolved_at if state == "resolved" else notice.alert.started_at
    return None


async def test_a_full_outage_pages_within_five_minutes_and_recovers() -> None:
    recorder, _, alerts = await replay(
        lambda t: 1.0 if 0 <= t < 30 * 60 else 0.0, minutes=120, history_minutes=120
    )
    paged = first(recorder, "firing", "page")
    assert paged is not None and paged - T0 <= 5 * 60, paged - T0 if paged else None
    pages = [n for n in recorder.notices if n.alert.severity == "page" and n.state == "firing"]
    assert len(pages) == 1  # de-duplicated: one page for the whole outage, both page rules firing
    resolved = first(recorder, "resolved", "page")
    assert resolved is not None and 30 * 60 < resolved - T0 < 120 * 60  # a recovery notice once it is over
    assert not alerts.active or all(a.severity == "ticket" for a in alerts.active.values())


async def test_a_slow_2x_burn_raises_a_ticket_and_no_page() -> None:
    recorder, slo, _ = await replay(lambda t: 0.01, minutes=3 * 24 * 60)  # 1% failing = 2x the 0.5% budget
    assert first(recorder, "firing", "page") is None
    ticket = first(recorder, "firing", "ticket")
    assert ticket is not None and ticket - T0 <= 6 * 3600 + 60  # as soon as the 6 h window holds the burn
    assert slo.burn_rate(T0 + 3 * 86400, 3 * 86400) == pytest.approx(2.0)


async def test_a_ten_minute_blip_pages_nothing() -> None:
    """10% failing for 10 minutes (20x in the 5-minute window, 3.3x over the hour): the short window alone
    never pages."""
    recorder, slo, _ = await replay(
        lambda t: 0.10 if 0 <= t < 10 * 60 else 0.0, minutes=8 * 60, history_minutes=3 * 24 * 60
    )
    assert [n for n in recorder.notices if n.alert.severity == "page"] == []
    assert slo.burn_rate(T0 + 9 * 60, 300) >= 14.4  # the short window did burn hot
    assert first(recorder, "firing", "ticket") is None


async def test_silence_is_not_an_outage() -> None:
    slo = SLO("quiet")
    assert slo.burn_rate(T0, 3600) is None and slo.evaluate(T0) == []


def test_an_slo_refuses_nonsense() -> None:
    with pytest.raises(InvalidRequest):
        SLO("x", target=1.0)
    with pytest.raises(InvalidRequest):
        SLO("x", rules=[])
    with pytest.raises(InvalidRequest):
        SLO("x").record(T0, bad=-1)


def test_rule_names_read_like_the_workbook() -> None:
    assert BurnRule("page", 14.4, 3600, 300).name == "14.4x over 1 h and 5 min"
    assert BurnRule("ticket", 1, 3 * 86400, 6 * 3600).name == "1x over 3 d and 6 h"


async def test_the_webhook_gets_slack_payloads_and_a_failing_one_stops_nothing(
    httpserver: HTTPServer,
) -> None:
    received: list[dict[str, Any]] = []

    def hook(request: Request) -> Response:
        received.append(json.loads(request.get_data()))
        return Response("ok")

    httpserver.expect_request("/hook", method="POST").respond_with_handler(hook)
    good = WebhookNotifier(httpserver.url_for("/hook"))
    broken = WebhookNotifier("http://127.0.0.1:9/nothing-listens")
    recorder = Recorder()
    alerts = Alerts([broken, good, recorder])
    slo = SLO("mcp tool calls")
    for minute in range(70):
        slo.record(T0 + minute * 60, good=0 if minute >= 60 else 100, bad=100 if minute >= 60 else 0)
    await alerts.check(slo.evaluate(T0 + 70 * 60), T0 + 70 * 60)
    await alerts.check([], T0 + 80 * 60)
    pages = [n.state for n in recorder.notices if n.alert.severity == "page"]
    assert pages == ["firing", "resolved"]  # the ticket rule (short history) opens and closes beside it
    assert [
        p["text"].split()[1] for p in received if "[ticket]" not in p["text"] and "TICKET" not in p["text"]
    ] == [
        "PAGE",
        "RESOLVED",
    ]
    assert received[0]["blocks"][0]["type"] == "section" and "mcp tool calls" in received[0]["text"]
    await good.aclose()
    await broken.aclose()
