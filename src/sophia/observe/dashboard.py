"""The dashboard (``/dashboard`` on the gateway): spend, cache, latency, routing, providers, uptime,
drift, alerts and the dearest requests with their traces, as charts; the same figures as JSON.

Routes (``build_dashboard``; ``sophia.gateway.app`` mounts them):

* ``GET /dashboard[?window=24h|7d|30d]`` the page: plain HTML and CSS with the charts inline as SVG
  (``dashboard_charts`` specs, ``dashboard_render`` SVG on the server, ``dashboard_html`` the page), no script, no external asset;
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
import logging
import time
from collections.abc import Awaitable, Callable
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
from sophia.observe import dashboard_html as pages
from sophia.observe.dashboard_charts import page_charts, trace_chart
from sophia.observe.dashboard_render import Renderer, embeddable
from sophia.observe.signals import DriftReport, ledger_drift
from sophia.observe.uptime import Uptime
from sophia.providers.catalog import Catalog
from sophia.secrets.mask import mask_credentials, mask_tree
from sophia.settings import Settings

if TYPE_CHECKING:
    from sophia.observe.monitor import Monitor
    from sophia.observe.spans import SpanStore

log = logging.getLogger(__name__)

COOKIE = "sophia_dashboard"
OPERATION = "usage.all_teams"
#: seconds the rendered page is reused (rendering every chart takes most of a second)
PAGE_TTL = 10.0
#: seconds a drift report computed here (no monitor running) is reused
DRIFT_TTL = 300.0
SESSION_SECONDS = 12 * 3600
MAX_LOGIN_BODY = 4096
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
        return figures.drift(self._drift[1], source=f"computed {pages.ago(now - self._drift[0])}")

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
            page = pages.page(data, charts, [embeddable(svg, f"c{i}") for i, (svg, _) in enumerate(svgs)])
            page = mask_credentials(page)  # a team, a model, an alert or an error may quote a secret
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
        if not pages.TRACE_ID.match(trace_id):
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
        ordered = pages.tree_order(spans)
        [(svg, _)] = await self.renderer.render([trace_chart(ordered)])
        return mask_credentials(pages.trace_page(trace_id, ordered, embeddable(svg, "t"), booked))

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
        body = orjson.dumps(mask_tree(await board.figures(_window(request))))
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
    code, body = board.error_body(exc)  # masked there
    message = mask_credentials(exc.message)
    if exc.code == "not_found":
        code = 404
    code = status or code
    if not page:
        return Response(body, status_code=code, media_type="application/json")
    if code == 401:
        first = exc.code == "missing_api_key" and request.method == "GET"  # a first visit: no error
        response: Response = HTMLResponse(
            pages.login_page(message, first=first), status_code=401, headers=HEADERS
        )
        if request.cookies.get(COOKIE):
            response.delete_cookie(COOKIE, path="/dashboard", httponly=True, samesite="strict")
        return response
    if code == 403:
        return HTMLResponse(pages.login_page(message, signed_in=True), status_code=403, headers=HEADERS)
    return HTMLResponse(pages.message_page(code, message), status_code=code, headers=HEADERS)
