"""The admin API (``/admin/…``): keys, usage, provider health and the cache. Needs an admin key.

Each route names its operation in ``sophia.accounts.permissions`` (the one table the MCP tools ask
too); this API cannot narrow an answer to the caller's team, so a key that may not gets 403.
Off the hot path, so it uses Starlette and pydantic for comfort.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable
from time import time
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sophia.accounts import permissions
from sophia.accounts.keys import KeyRecord
from sophia.errors import InvalidRequest, SophiaError
from sophia.gateway.engine import Gateway
from sophia.gateway.errors import error_body
from sophia.timeparse import parse_since

log = logging.getLogger(__name__)
GROUPS = ("model", "requested_model", "provider", "team", "key", "task_type", "endpoint", "day")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    owner: str = ""
    team: str = "default"
    admin: bool = False
    allowed_models: list[str] | None = None
    allowed_tools: list[str] | None = None
    budget_daily_usd: float | None = Field(None, ge=0)
    budget_monthly_usd: float | None = Field(None, ge=0)
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    metadata: dict[str, str | bool] | None = None


class KeyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_models: list[str] | None = None
    allowed_tools: list[str] | None = None
    budget_daily_usd: float | None = Field(None, ge=0)
    budget_monthly_usd: float | None = Field(None, ge=0)
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)


class CachePurge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str | None = Field(None, min_length=1)
    model: str | None = Field(None, min_length=1)
    team: str | None = Field(None, min_length=1)
    all: bool = Field(False, description="Purge every entry (needed when no criterion is given).")


class CacheBump(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str = Field(min_length=1, description="A data source whose data changed, e.g. crm.deals.")


class CacheReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, description="x-request-id of the wrongly answered request.")


def key_json(record: KeyRecord) -> dict[str, Any]:
    """A key as shown to admins: everything but its hash."""
    data = dataclasses.asdict(record)
    data.pop("hash", None)
    return data


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _fail(exc: SophiaError, status: int | None = None) -> Response:
    code, body = error_body(exc)
    return Response(body, status_code=status or code, media_type="application/json")


async def _not_found(request: Request, exc: Exception) -> Response:
    return _fail(InvalidRequest(f"no route {request.url.path}", code="not_found"), 404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _fail(
        InvalidRequest(f"method {request.method} is not allowed here", code="method_not_allowed"), 405
    )


async def _body(request: Request, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidRequest(f"{where}: {first['msg']}", param=where) from None


Endpoint = Callable[[Request, Gateway], Awaitable[Any]]


def build_admin(gateway: Gateway) -> Starlette:
    def guarded(endpoint: Endpoint, operation: str) -> Callable[[Request], Awaitable[Response]]:
        if operation not in permissions.RULES:  # a typo fails when the app is built, not on a request
            raise KeyError(f"no permission rule for {operation!r}")

        async def handler(request: Request) -> Response:
            try:
                key = await gateway.authenticate(request.headers.get("authorization") or "")
                permissions.require(key, operation)
                request.state.key = key
                result = await endpoint(request, gateway)
            except SophiaError as exc:
                return _fail(exc)
            except Exception:  # logged with its traceback; the client gets JSON
                log.exception("unexpected error on %s %s", request.method, request.url.path)
                return _fail(SophiaError("internal error in the admin API; the server log has the details"))
            return result if isinstance(result, Response) else _json(result)

        return handler

    routes = [
        Route("/admin/keys", guarded(list_keys, "keys.manage"), methods=["GET"]),
        Route("/admin/keys", guarded(create_key, "keys.manage"), methods=["POST"]),
        Route("/admin/keys/{key_id}", guarded(update_key, "keys.manage"), methods=["PATCH"]),
        Route("/admin/keys/{key_id}", guarded(revoke_key, "keys.manage"), methods=["DELETE"]),
        Route("/admin/usage", guarded(usage, "usage.all_teams"), methods=["GET"]),
        Route("/admin/providers", guarded(providers, "providers.health"), methods=["GET"]),
        Route("/admin/metrics", guarded(metrics, "usage.all_teams"), methods=["GET"]),
        Route("/admin/cache", guarded(cache_stats, "cache.stats.all_teams"), methods=["GET"]),
        Route("/admin/cache/purge", guarded(cache_purge, "cache.purge.all_teams"), methods=["POST"]),
        Route("/admin/cache/bump", guarded(cache_bump, "cache.bump"), methods=["POST"]),
        Route("/admin/cache/reports", guarded(cache_report, "cache.report"), methods=["POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={404: _not_found, 405: _not_allowed},  # JSON like every other answer
    )
    app.state.gateway, app.state.reports = gateway, None
    return app


async def list_keys(request: Request, gateway: Gateway) -> Any:
    revoked = request.query_params.get("include_revoked") in ("1", "true", "yes")
    return {"data": [key_json(k) for k in await gateway.accounts.keys.list(include_revoked=revoked)]}


async def create_key(request: Request, gateway: Gateway) -> Any:
    spec: KeyCreate = await _body(request, KeyCreate)
    fields = spec.model_dump()
    for name in ("allowed_models", "allowed_tools"):
        if fields[name] is not None:
            fields[name] = tuple(fields[name])
    secret, record = await gateway.accounts.keys.create(**fields)
    return _json({"key": secret, **key_json(record)}, status=201)


async def update_key(request: Request, gateway: Gateway) -> Any:
    spec: KeyUpdate = await _body(request, KeyUpdate)
    key_id = request.path_params["key_id"]
    if await gateway.accounts.keys.get(key_id) is None:
        raise InvalidRequest(f"no key {key_id!r}", code="not_found")
    fields = spec.model_dump(exclude_unset=True)
    for name in ("allowed_models", "allowed_tools"):
        if fields.get(name) is not None:
            fields[name] = tuple(fields[name])
    record = await gateway.accounts.keys.update(key_id, **fields)
    _forget_keys(gateway)
    return key_json(record)


async def revoke_key(request: Request, gateway: Gateway) -> Any:
    key_id = request.path_params["key_id"]
    if not await gateway.accounts.keys.revoke(key_id):
        raise InvalidRequest(f"no active key {key_id!r}", code="not_found")
    _forget_keys(gateway)
    return {"id": key_id, "revoked": True}


def _forget_keys(gateway: Gateway) -> None:
    gateway.accounts.forget_keys()


async def usage(request: Request, gateway: Gateway) -> Any:
    ledger = gateway.accounts.ledger
    since = parse_since(request.query_params.get("since", "30d"))
    group_by = [g for g in request.query_params.get("group_by", "model").split(",") if g]
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        raise InvalidRequest(
            f"group_by must be among {', '.join(GROUPS)}; not {', '.join(unknown)}", param="group_by"
        )
    await ledger.flush()
    rows = await ledger.report(since, time(), group_by)
    return {"since": since, "group_by": group_by, "data": rows}


async def providers(request: Request, gateway: Gateway) -> Any:
    return gateway.health()


async def metrics(request: Request, gateway: Gateway) -> Any:
    """Prometheus text format (``sophia.observe.metrics``): what the ledger has written, breaker states."""
    from sophia.observe.metrics import CONTENT_TYPE

    assert gateway.metrics is not None, "Gateway.start() was not awaited"
    await gateway.metrics.refresh()  # budget use as of now (one query; none while nobody scrapes)
    return Response(gateway.metrics.render(), media_type=CONTENT_TYPE)


async def cache_stats(request: Request, gateway: Gateway) -> Any:
    from sophia.cache import admin

    cache = gateway.require_cache()
    since = parse_since(request.query_params.get("since", "30d"))
    data = await admin.stats(cache, gateway.accounts.ledger, _reports(request), since)
    return {**data, "this_process": await cache.stats()}


async def cache_purge(request: Request, gateway: Gateway) -> Any:
    from sophia.cache import admin

    spec: CachePurge = await _body(request, CachePurge)
    deleted = await admin.purge(
        gateway.require_cache(), tag=spec.tag, model=spec.model, team=spec.team, everything=spec.all
    )
    return {"deleted": deleted}


async def cache_bump(request: Request, gateway: Gateway) -> Any:
    spec: CacheBump = await _body(request, CacheBump)
    return {"tag": spec.tag, "invalidated": await gateway.require_cache().bump(spec.tag)}


async def cache_report(request: Request, gateway: Gateway) -> Any:
    from sophia.cache import admin

    spec: CacheReport = await _body(request, CacheReport)
    reporter = request.state.key.id  # the admin key that authenticated (guarded)
    cache, ledger = gateway.require_cache(), gateway.accounts.ledger
    return await admin.report_false_hit(cache, ledger, _reports(request), spec.request_id, reporter)


def _reports(request: Request) -> Any:
    """The false-hit reports in the process's database (one ``Reports`` per admin app)."""
    reports = request.app.state.reports
    if reports is None:
        from sophia.cache.admin import Reports

        gateway: Gateway = request.app.state.gateway
        reports = request.app.state.reports = Reports(gateway.accounts.db)
    return reports
