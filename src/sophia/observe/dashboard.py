"""The dashboard (``/dashboard`` on the gateway): spend, cache, latency, routing, providers, uptime,
drift, alerts and the dearest requests with their traces, as charts; the same figures as JSON.

Routes (``build_dashboard``; ``sophia.gateway.app`` mounts them):

* ``GET /dashboard[?window=24h|7d|30d]`` the page: plain HTML and CSS with the charts inline as SVG
  (``dashboard_charts``: Vega-Lite rendered on the server), no script, no external asset;
* ``GET /dashboard/data[?window=…]`` every figure the page charts, as JSON (money in integer
  nano-dollars: the ledger's ``cost_nanos`` summed as integers, so it reconciles exactly);
* ``GET /dashboard/traces/{trace_id}`` one trace from the local span store, as a waterfall;
* ``POST /dashboard/login`` (form field ``key``) and ``POST /dashboard/logout``.

Who may look: a key allowed ``usage.all_teams`` (an admin key, e.g. the local admin key ``sophia run``
makes on first start; ``sophia keys local`` prints it), as for ``/admin/usage``. A script sends it as a
bearer header; a browser, which cannot, posts it once to the login form and gets it back as an
HttpOnly, SameSite=Strict cookie scoped to ``/dashboard`` (then a redirect: the key is in no URL, page
or log). It is checked on every request like a header, so a revoked key stops working at once. No
credentials: 401 and the login form; a key that may not: 403.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from sophia.accounts import Accounts, KeyRecord, permissions
from sophia.errors import AuthenticationError, InvalidRequest, PayloadTooLarge, SophiaError
from sophia.observe import dashboard_data as figures
from sophia.observe.dashboard_charts import Chart, Renderer, embeddable, page_charts, trace_chart
from sophia.observe.signals import DriftReport, ledger_drift
from sophia.observe.uptime import Uptime
from sophia.providers.catalog import Catalog
from sophia.settings import Settings

if TYPE_CHECKING:
    from sophia.observe.monitor import Monitor
    from sophia.observe.spans import SpanStore, StoredSpan

log = logging.getLogger(__name__)

COOKIE = "sophia_dashboard"
OPERATION = "usage.all_teams"
#: seconds the rendered page is reused (rendering every chart takes most of a second)
PAGE_TTL = 10.0
#: seconds a drift report computed here (no monitor running) is reused
DRIFT_TTL = 300.0
SESSION_SECONDS = 12 * 3600
MAX_LOGIN_BODY = 4096
REFRESH_SECONDS = 60
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}

ErrorBody = Callable[[SophiaError], tuple[int, bytes]]


class GatewayView(Protocol):
    """What the dashboard reads of the gateway (``sophia.gateway.engine.Gateway`` is one)."""

    settings: Settings
    catalog: Catalog
    monitor: Monitor | None

    @property
    def accounts(self) -> Accounts: ...

    async def authenticate(self, authorization: str | None) -> KeyRecord | None: ...

    def health(self) -> dict[str, Any]: ...


class Dashboard:
    """The figures, the rendered page (cached ``page_ttl`` seconds per window) and the traces."""

    def __init__(
        self,
        gateway: GatewayView,
        error_body: ErrorBody,
        *,
        page_ttl: float = PAGE_TTL,
        renderer: Renderer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway = gateway
        self.error_body = error_body
        self.page_ttl = page_ttl
        self.renderer = renderer or Renderer()
        self.clock = clock
        self._pages: dict[str, tuple[float, str, str]] = {}  # window -> (expires, html, server-timing)
        self._locks: dict[str, asyncio.Lock] = {}
        self._drift: tuple[float, DriftReport] | None = None
        self._spans: SpanStore | None = None
        self._uptime: Uptime | None = None
        #: the last page's timings in ms: "data", "render", "total" and one per chart id
        self.timings: dict[str, float] = {}

    # -- figures ---------------------------------------------------------------------------------

    async def figures(self, window: str) -> dict[str, Any]:
        """Everything ``/dashboard/data`` answers for ``window`` (a key of ``WINDOWS``)."""
        gw = self.gateway
        now = self.clock()
        await gw.accounts.ledger.flush()  # what is buffered is shown too
        db = gw.accounts.db
        router = gw.settings.router
        reference = figures.reference_model(gw.catalog.models.values(), router.model_map)
        usage = await figures.usage(
            db, now=now, window=figures.WINDOWS[window], router_alias=router.alias, reference=reference
        )
        monitor = gw.monitor
        if monitor is not None:
            up = monitor.uptime
        else:  # the probes a monitor kept before (or in another process), read from the database
            if self._uptime is None:
                self._uptime = Uptime(db, target=gw.settings.observe.target, clock=self.clock)
            up = self._uptime
        out: dict[str, Any] = {
            "generated_at": now,
            "window": window,
            "money": "integer nano-dollars (1e-9 USD): the ledger's cost_nanos and saved_nanos",
            **usage,
            "providers": figures.breakers(gw.health()),
            "uptime": await figures.uptime(
                up, now=now, source="monitor" if monitor is not None else "database"
            ),
            "drift": await self._drift_report(monitor, now),
            "alerts": figures.alerts(monitor),
        }
        out["totals"]["active_alerts"] = len(out["alerts"]["active"])
        return out

    async def _drift_report(self, monitor: Monitor | None, now: float) -> dict[str, Any] | None:
        if monitor is not None and monitor.last_drift is not None:
            return figures.drift(monitor.last_drift, source="monitor")
        if self._drift is None or now - self._drift[0] >= DRIFT_TTL:
            self._drift = (now, await ledger_drift(self.gateway.accounts.db, now=now))
        return figures.drift(self._drift[1], source=f"computed {_ago(now - self._drift[0])}")

    # -- the page --------------------------------------------------------------------------------

    async def page(self, window: str) -> tuple[str, str]:
        """(HTML, Server-Timing header) for ``window``, rendered at most once per ``page_ttl``."""
        cached = self._pages.get(window)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1], cached[2]
        lock = self._locks.setdefault(window, asyncio.Lock())
        async with lock:  # concurrent requests for a stale page wait for one render
            cached = self._pages.get(window)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1], cached[2]
            started = time.perf_counter()
            data = await self.figures(window)
            got = time.perf_counter()
            charts = page_charts(data)
            svgs = await self.renderer.render([c.spec for c in charts])
            rendered = time.perf_counter()
            page = _page(data, charts, [embeddable(svg, f"c{i}") for i, (svg, _) in enumerate(svgs)])
            timings = {"data": (got - started) * 1000, "render": (rendered - got) * 1000}
            timings.update({c.id: ms for c, (_, ms) in zip(charts, svgs, strict=True)})
            timings["total"] = (time.perf_counter() - started) * 1000
            self.timings = timings
            server_timing = ", ".join(f"{name};dur={ms:.1f}" for name, ms in timings.items())
            log.debug("dashboard %s rendered: %s", window, server_timing)
            self._pages[window] = (time.monotonic() + self.page_ttl, page, server_timing)
            return page, server_timing

    # -- traces ----------------------------------------------------------------------------------

    async def trace(self, trace_id: str) -> str:
        if not TRACE_ID.match(trace_id):
            raise InvalidRequest("a trace id is 32 lowercase hex digits", code="not_found")
        if self._spans is None:
            from sophia.observe.spans import SpanStore

            self._spans = await SpanStore.open(self.gateway.accounts.db)
        spans = await self._spans.trace(trace_id)
        if not spans:
            raise InvalidRequest(f"no trace {trace_id} in the span store", code="not_found")
        await self.gateway.accounts.ledger.flush()
        booked = await self.gateway.accounts.db.fetchall(
            "SELECT request_id, ts, team, endpoint, served_model, requested_model, cost_nanos, latency_ms, outcome "
            "FROM sophia_usage WHERE trace_id = ? ORDER BY ts",
            (trace_id,),
        )
        ordered = _tree_order(spans)
        [(svg, _)] = await self.renderer.render([trace_chart(ordered)])
        return _trace_page(trace_id, ordered, embeddable(svg, "t"), booked)

    async def close(self) -> None:
        """Stop the chart renderer's worker process, if it runs."""
        await self.renderer.aclose()


def build_dashboard(gateway: GatewayView, error_body: ErrorBody, **options: Any) -> Starlette:
    """The dashboard's Starlette app (``options``: ``Dashboard``'s keywords); ``app.state.dashboard``."""
    board = Dashboard(gateway, error_body, **options)

    def guarded(
        endpoint: Callable[[Request], Awaitable[Response]], *, page: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            try:
                await _authorize(gateway, request)
                return await endpoint(request)
            except SophiaError as exc:
                return _refuse(board, request, exc, page=page)
            except Exception:  # logged with its traceback; the client gets a page or JSON
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                error = SophiaError("internal error in the dashboard; the server log has the details")
                return _refuse(board, request, error, page=page)

        return handler

    async def show(request: Request) -> Response:
        page, timing = await board.page(_window(request))
        return HTMLResponse(page, headers={**HEADERS, "server-timing": timing})

    async def data(request: Request) -> Response:
        body = orjson.dumps(await board.figures(_window(request)))
        return Response(body, media_type="application/json", headers={"cache-control": "no-store"})

    async def trace(request: Request) -> Response:
        return HTMLResponse(await board.trace(request.path_params["trace_id"]), headers=HEADERS)

    async def login(request: Request) -> Response:
        try:
            secret = await _form_key(request)
            key = await gateway.authenticate(f"Bearer {secret}")
            permissions.require(key, OPERATION)
        except SophiaError as exc:
            return _refuse(board, request, exc, page=True)
        response = RedirectResponse("/dashboard", status_code=303, headers={"cache-control": "no-store"})
        response.set_cookie(
            COOKIE,
            secret,
            max_age=SESSION_SECONDS,
            path="/dashboard",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/dashboard", status_code=303, headers={"cache-control": "no-store"})
        response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
        return response

    async def not_found(request: Request, exc: Exception) -> Response:
        return _refuse(
            board, request, InvalidRequest(f"no route {request.url.path}", code="not_found"), page=False
        )

    async def not_allowed(request: Request, exc: Exception) -> Response:
        error = InvalidRequest(f"method {request.method} is not allowed here", code="method_not_allowed")
        return _refuse(board, request, error, page=False, status=405)

    routes = [
        Route("/dashboard", guarded(show, page=True), methods=["GET"]),
        Route("/dashboard/", guarded(show, page=True), methods=["GET"]),
        Route("/dashboard/data", guarded(data, page=False), methods=["GET"]),
        Route("/dashboard/traces/{trace_id}", guarded(trace, page=True), methods=["GET"]),
        Route("/dashboard/login", login, methods=["POST"]),
        Route("/dashboard/logout", logout, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_allowed})
    app.state.dashboard = board
    return app


# -- auth ------------------------------------------------------------------------------------------


async def _authorize(gateway: GatewayView, request: Request) -> KeyRecord | None:
    """The caller's key (bearer header, else the cookie), allowed ``usage.all_teams``; raises otherwise."""
    header = request.headers.get("authorization")
    cookie = request.cookies.get(COOKIE)
    if not header and not cookie:
        raise AuthenticationError("sign in with an admin key to see the dashboard", code="missing_api_key")
    key = await gateway.authenticate(header or f"Bearer {cookie}")
    permissions.require(key, OPERATION)
    return key


async def _form_key(request: Request) -> str:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_LOGIN_BODY):
        raise PayloadTooLarge(f"the login form is over the {MAX_LOGIN_BODY}-byte limit")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY:
            raise PayloadTooLarge(f"the login form is over the {MAX_LOGIN_BODY}-byte limit")
    values = parse_qs(body.decode("utf-8", "replace")).get("key") or [""]
    secret = values[0].strip()
    if not secret:
        raise AuthenticationError("paste an admin key into the form", code="missing_api_key")
    return secret


def _window(request: Request) -> str:
    window = request.query_params.get("window", figures.DEFAULT_WINDOW)
    if window not in figures.WINDOWS:
        raise InvalidRequest(f"window must be one of {', '.join(figures.WINDOWS)}", param="window")
    return window


def _refuse(
    board: Dashboard, request: Request, exc: SophiaError, *, page: bool, status: int | None = None
) -> Response:
    code, body = board.error_body(exc)
    if exc.code == "not_found":
        code = 404
    code = status or code
    if not page:
        return Response(body, status_code=code, media_type="application/json")
    if code == 401:
        first = exc.code == "missing_api_key" and request.method == "GET"  # a first visit: no error
        response: Response = HTMLResponse(
            _login_page(exc.message, first=first), status_code=401, headers=HEADERS
        )
        if request.cookies.get(COOKIE):
            response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
        return response
    if code == 403:
        return HTMLResponse(_login_page(exc.message, signed_in=True), status_code=403, headers=HEADERS)
    return HTMLResponse(_message_page(code, exc.message), status_code=code, headers=HEADERS)


# -- HTML ------------------------------------------------------------------------------------------

_E = html.escape

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#222;background:#f4f5f7}
header{background:#1f2937;color:#fff;padding:14px 28px;display:flex;align-items:center;gap:24px;flex-wrap:wrap}
header h1{font-size:18px;margin:0;font-weight:600;letter-spacing:.3px}
header nav a{color:#cbd5e1;text-decoration:none;margin-right:10px;padding:3px 9px;border-radius:12px}
header nav a.on{background:#374151;color:#fff}
header .meta{margin-left:auto;color:#9ca3af;font-size:12px;display:flex;gap:14px;align-items:center}
header form{margin:0}
button{font:inherit;cursor:pointer;border:1px solid #4b5563;background:#374151;color:#e5e7eb;border-radius:6px;padding:3px 10px}
main{padding:20px 28px 40px;max-width:1640px;margin:0 auto}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:14px;margin-bottom:10px}
.kpi{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.kpi b{display:block;font-size:24px;font-weight:600;margin-top:2px}
.kpi span{color:#6b7280;font-size:12px;text-transform:uppercase;letter-spacing:.5px}
.kpi.alert b{color:#c62828}
h2{font-size:15px;color:#374151;margin:26px 0 10px;text-transform:uppercase;letter-spacing:.6px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:16px}
.card{background:#fff;border-radius:10px;padding:14px 16px;box-shadow:0 1px 2px rgba(0,0,0,.06);overflow:hidden}
.card svg{max-width:100%;height:auto;display:block;overflow:visible}
.card p.cap{color:#6b7280;font-size:12px;margin:6px 0 0}
ul.alerts{list-style:none;padding:0;margin:0}
ul.alerts li{background:#fff;border-left:4px solid #f9a825;border-radius:6px;padding:8px 12px;margin-bottom:8px}
ul.alerts li.page{border-color:#c62828}
.muted{color:#6b7280}
table{border-collapse:collapse;width:100%;font-size:12px}
td,th{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:#1565c0}
details{background:#fff;border-radius:8px;padding:8px 12px;margin-bottom:6px}
summary{cursor:pointer}
code{font-size:12px;word-break:break-all}
.login{max-width:440px;margin:80px auto;background:#fff;border-radius:12px;padding:28px;box-shadow:0 2px 8px rgba(0,0,0,.08)}
.login input{width:100%;font:inherit;padding:8px;border:1px solid #cbd5e1;border-radius:6px;margin:8px 0 12px}
.login button{background:#1f2937;color:#fff;padding:7px 16px}
.error{color:#c62828}
footer{color:#9ca3af;font-size:12px;padding:0 28px 24px;max-width:1640px;margin:0 auto}
"""


def _doc(title: str, body: str, *, refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<link rel="icon" href="data:,">{meta}<title>{_E(title)}</title><style>{CSS}</style></head>'
        f"<body>{body}</body></html>"
    )


def dollars(nanos: int) -> str:
    """Integer nano-dollars as dollars, for display: cents from a dollar up, four places below."""
    usd = nanos / 1_000_000_000
    return f"${usd:,.2f}" if abs(usd) >= 1 else f"${usd:,.4f}"


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(seconds: float) -> str:
    return "just now" if seconds < 60 else f"{seconds / 60:.0f} min ago"


def _page(data: dict[str, Any], charts: list[Chart], svgs: list[str]) -> str:
    t = data["totals"]
    rate = t["cache_hit_rate"]
    alerts = data["alerts"]
    kpis = [
        ("Spend today (UTC)", dollars(t["spend_today_nanos"]), ""),
        (f"Spend, last {data['window']}", dollars(t["cost_nanos"]), ""),
        (f"Requests, last {data['window']}", f"{t['requests']:,}", ""),
        ("Cache hit rate", "-" if rate is None else f"{rate:.1%}", ""),
        ("Saved by the cache", dollars(t["saved_nanos"]), ""),
        ("Saved by the router", dollars(data["router"]["saved_nanos"]), ""),
        (
            "Active alerts",
            str(t["active_alerts"]) if alerts["monitor_running"] else "-",
            " alert" if t["active_alerts"] else "",
        ),
    ]
    head = "".join(f'<div class="kpi{cls}"><span>{_E(k)}</span><b>{_E(v)}</b></div>' for k, v, cls in kpis)
    sections: dict[str, list[str]] = {}
    for i, (chart, svg) in enumerate(zip(charts, svgs, strict=True)):
        caption = f'<p class="cap">{_E(chart.caption)}</p>' if chart.caption else ""
        sections.setdefault(chart.section, []).append(
            f'<figure class="card chart" id="{_E(chart.id)}" data-chart="{i}" style="margin:0">{svg}{caption}</figure>'
        )
    body = [_alerts(alerts)]
    for section, cards in sections.items():
        body.append(f'<h2>{_E(section)}</h2><div class="grid">{"".join(cards)}</div>')
        if section == "Requests":
            body.append(_expensive_list(data["expensive"]))
    windows = "".join(
        f'<a href="/dashboard?window={w}"{" class=on" if w == data["window"] else ""}>{w}</a>'
        for w in figures.WINDOWS
    )
    header = (
        f'<header><h1>Sophia</h1><nav>{windows}</nav><div class="meta">'
        f"<span>updated {_when(data['generated_at'])} · refreshes every {REFRESH_SECONDS}s</span>"
        '<form method="post" action="/dashboard/logout"><button>Sign out</button></form></div></header>'
    )
    footer = (
        "<footer>Money is the ledger's integer nano-dollars, summed as integers; the same figures as JSON: "
        f'<a href="/dashboard/data?window={data["window"]}">/dashboard/data</a>.</footer>'
    )
    return _doc(
        "Sophia dashboard",
        f'{header}<main><div class="kpis">{head}</div>{"".join(body)}</main>{footer}',
        refresh=True,
    )


def _alerts(alerts: dict[str, Any]) -> str:
    if not alerts["monitor_running"]:
        return '<h2>Active alerts</h2><p class="muted">Monitor not running: alerts are judged by <code>sophia run</code>.</p>'
    if not alerts["active"]:
        return '<h2>Active alerts</h2><p class="muted">None: every objective is within its error budget.</p>'
    items = "".join(
        f'<li class="{_E(a["severity"])}"><b>{_E(a["severity"].upper())}</b> {_E(a["slo"])}: {_E(a["detail"])}'
        + (
            f' <span class="muted">since {_when(a["since"])}</span>'
            if isinstance(a["since"], int | float)
            else ""
        )
        + "</li>"
        for a in alerts["active"]
    )
    return f'<h2>Active alerts</h2><ul class="alerts">{items}</ul>'


def _expensive_list(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = "".join(
        "<tr>"
        f"<td>{_E(_when(r['ts']))}</td><td><code>{_E(r['request_id'])}</code></td><td>{_E(r['team'])}</td>"
        f"<td>{_E(r['model'])}</td><td class=num>{_E(dollars(r['cost_nanos']))}</td>"
        f"<td class=num>{r['tokens']:,}</td><td class=num>{r['latency_ms']:,.0f} ms</td><td>"
        + (
            f'<a href="/dashboard/traces/{_E(r["trace_id"])}">trace</a>'
            if r["trace_id"] and TRACE_ID.match(r["trace_id"])
            else '<span class="muted">no trace</span>'
        )
        + "</td></tr>"
        for r in rows
    )
    return (
        '<div class="card" style="margin-top:16px"><table><tr><th>when</th><th>request</th><th>team</th>'
        f"<th>model</th><th>cost</th><th>tokens</th><th>latency</th><th></th></tr>{lines}</table></div>"
    )


def _login_page(message: str, *, signed_in: bool = False, first: bool = False) -> str:
    """The sign-in form, with why the last attempt was refused (none on a first visit)."""
    other = " with another key" if signed_in else ""
    error = "" if first else f'<p class="error">{_E(message)}</p>'
    body = (
        '<div class="login"><h1 style="margin-top:0">Sophia dashboard</h1>'
        f"{error}"
        f"<p>Sign in{other} with a key allowed to read every team's usage (an admin key). On the gateway's "
        "machine, <code>sophia keys local</code> prints the local admin key.</p>"
        '<form method="post" action="/dashboard/login"><label for="key">API key</label>'
        '<input id="key" name="key" type="password" autocomplete="off" required autofocus>'
        "<button>Sign in</button></form></div>"
    )
    return _doc("Sign in · Sophia dashboard", body)


def _message_page(status: int, message: str) -> str:
    body = (
        f'<div class="login"><h1 style="margin-top:0">{status}</h1><p>{_E(message)}</p>'
        '<p><a href="/dashboard">Back to the dashboard</a></p></div>'
    )
    return _doc(f"{status} · Sophia dashboard", body)


def _tree_order(spans: list[StoredSpan]) -> list[dict[str, Any]]:
    """Spans depth-first from the roots (children by start), each with its depth."""
    by_id = {s.span_id: s for s in spans}
    children: dict[str | None, list[StoredSpan]] = {}
    for s in spans:
        parent = s.parent_id if s.parent_id in by_id else None
        children.setdefault(parent, []).append(s)
    out: list[dict[str, Any]] = []
    stack = [(s, 0) for s in sorted(children.get(None, []), key=lambda s: s.start_ns, reverse=True)]
    while stack:
        span, depth = stack.pop()
        out.append(
            {
                "span_id": span.span_id,
                "parent_id": span.parent_id,
                "name": span.name,
                "kind": span.kind,
                "start_ns": span.start_ns,
                "end_ns": span.end_ns,
                "status": span.status,
                "attributes": span.attributes,
                "depth": depth,
            }
        )
        stack.extend(
            (c, depth + 1)
            for c in sorted(children.get(span.span_id, []), key=lambda s: s.start_ns, reverse=True)
        )
    return out


def _trace_page(trace_id: str, spans: list[dict[str, Any]], svg: str, booked: list[dict[str, Any]]) -> str:
    t0 = min(s["start_ns"] for s in spans)
    total = (max(s["end_ns"] for s in spans) - t0) / 1e6
    ledger = "".join(
        f"<tr><td><code>{_E(str(r['request_id']))}</code></td><td>{_E(_when(float(r['ts'])))}</td>"
        f"<td>{_E(str(r['team']))}</td><td>{_E(str(r['served_model'] or r['requested_model']))}</td>"
        f"<td class=num>{_E(dollars(int(r['cost_nanos'])))}</td><td class=num>{float(r['latency_ms']):,.0f} ms</td>"
        f"<td>{_E(str(r['outcome']))}</td></tr>"
        for r in booked
    )
    ledger_html = (
        '<div class="card"><table><tr><th>request</th><th>when</th><th>team</th><th>model</th><th>cost</th>'
        f"<th>latency</th><th>outcome</th></tr>{ledger}</table></div>"
        if booked
        else '<p class="muted">No ledger row names this trace.</p>'
    )
    details = "".join(
        f"<details><summary>{'&nbsp;' * 3 * s['depth']}<b>{_E(s['name'])}</b> "
        f"<span class=muted>{_E(s['kind'])} · {(s['end_ns'] - s['start_ns']) / 1e6:,.2f} ms · {_E(s['status'])} · "
        f"<code>{_E(s['span_id'])}</code></span></summary><table>"
        + "".join(
            f"<tr><td><code>{_E(str(k))}</code></td><td><code>{_E(_attr(v))}</code></td></tr>"
            for k, v in sorted(s["attributes"].items())
        )
        + "</table></details>"
        for s in spans
    )
    body = (
        '<header><h1>Sophia</h1><nav><a href="/dashboard">← dashboard</a></nav>'
        f'<div class="meta"><span>trace <code>{_E(trace_id)}</code></span></div></header><main>'
        f"<h2>Trace · {len(spans)} spans · {total:,.1f} ms</h2>"
        f'<figure class="card chart" id="waterfall" style="margin:0">{svg}</figure>'
        f"<h2>Booked in the ledger</h2>{ledger_html}<h2>Span attributes</h2>{details}</main>"
    )
    return _doc(f"Trace {trace_id[:8]} · Sophia", body)


def _attr(value: Any) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
    return text if len(text) <= 2000 else text[:2000] + "…"
