"""What every SaaS client shares: one ``httpx.AsyncClient`` per service, credentials kept out of sight,
bounded retries, and the mapping of the service's answers onto ``sophia.errors``.

The key never travels through httpx's own request objects: ``_Credentials`` (a transport wrapper) adds
it to a copy of each request on its way out, so httpx's ``HTTP Request: …`` log line, its exceptions
and ``response.request`` only ever hold the unsigned request. Anything a service sends back (an error
body can echo the request, key included) passes through ``redact`` before it reaches a message.

Status mapping, the same for every service (it is *our* upstream, so it lands in the provider branch of
the tree: ``ProviderHTTPError`` with ``provider`` set to the service, not ``AuthenticationError``, which
means *Sophia's* caller sent a bad key):

* 401/403: "the <Service> key was refused", not retried (``retryable`` False);
* 429: waits ``Retry-After`` (seconds or an HTTP date; backoff when absent) and tries again, at most
  ``RetryPolicy.attempts`` times; a wait longer than ``max_wait`` is not slept but reported at once;
* 5xx: exponential backoff, at most ``attempts`` times, then the last status; a request that starts a
  job (``idempotent=False``) is retried only on 503, when the service says it did not take the job;
* another 4xx: reported with the service's own explanation;
* a timeout: ``ProviderTimeout`` naming the service (never retried: the time was the caller's budget);
* a connection that cannot be made: retried like a 5xx, then ``ProviderUnavailable``;
* a body that does not parse: ``ProviderError`` with code ``invalid_response``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import httpx
import orjson

from sophia import __version__
from sophia.errors import (
    ConfigError,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
    ProviderUnavailable,
)
from sophia.settings.collect import CollectSettings, SaaSService
from sophia.timeparse import retry_after as retry_after_seconds

log = logging.getLogger(__name__)

USER_AGENT = f"Sophia-Collect/{__version__} (+https://github.com/sophia-ai/sophia)"
#: how much of a service's error body a message quotes
DETAIL_CHARS = 300
REDACTED = "***"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a call is retried on 429, 5xx and refused connections."""

    attempts: int = 3
    backoff: float = 0.5  # seconds before the 2nd attempt; doubled for each further one
    max_backoff: float = 8.0
    max_wait: float = 60.0  # a Retry-After longer than this is reported, not slept


def redact(text: str, secret: str | None) -> str:
    """``text`` with the secret replaced in any spelling a URL or an echo may give it (each character
    raw or percent-encoded, in either case of hex); safe for messages and logs."""
    if not secret:
        return text
    return _secret_pattern(secret).sub(REDACTED, text)


@functools.lru_cache(maxsize=32)
def _secret_pattern(secret: str) -> re.Pattern[str]:
    parts = []
    for char in secret:
        encoded = "".join(f"%{byte:02X}" for byte in char.encode())
        spellings = [re.escape(char), re.escape(encoded)] + (["\\+"] if char == " " else [])
        parts.append(f"(?:{'|'.join(spellings)})")
    return re.compile("".join(parts), re.IGNORECASE)


def parse_time(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 (``Z`` or offset), RFC 2822 or epoch seconds/milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 100_000_000_000 else value  # v2 APIs give milliseconds
        return datetime.fromtimestamp(seconds, UTC)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class _Credentials(httpx.AsyncBaseTransport):
    """Signs each request on its way out (a copy, so httpx never holds the signed one)."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, headers: Mapping[str, str], params: Mapping[str, str]
    ) -> None:
        self._inner = inner
        self._headers = dict(headers)
        self._params = dict(params)

    def __repr__(self) -> str:
        return f"<credentials for {sorted(self._headers) + sorted(self._params)}>"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = httpx.Headers(request.headers)
        headers.update(self._headers)
        url = request.url.copy_merge_params(self._params) if self._params else request.url
        signed = httpx.Request(
            request.method, url, headers=headers, stream=request.stream, extensions=request.extensions
        )
        return await self._inner.handle_async_request(signed)

    async def aclose(self) -> None:
        await self._inner.aclose()


class SaaSClient:
    """Base of the service clients: construct from the service's ``SaaSService`` section, use as an async
    context manager (or call ``aclose``). Subclasses set the class attributes and ``_credentials``."""

    #: the settings attribute and ``provider`` of errors: "tavily"
    service: ClassVar[str]
    #: how messages name the service: "Tavily"
    label: ClassVar[str]
    default_base_url: ClassVar[str]

    def __init__(
        self,
        setting: SaaSService,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        key = setting.api_key.get_secret_value().strip() if setting.api_key is not None else ""
        if not key:
            raise ConfigError(
                f"{self.label} is not configured: set SOPHIA_COLLECT__{self.service.upper()}__API_KEY "
                f"(collect.{self.service}.api_key)"
            )
        self._key = key
        self.base_url = (setting.base_url or self.default_base_url).rstrip("/")
        self.timeout = setting.timeout
        self.options = dict(setting.options)  # the service's own choices (an Actor, an agent)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        headers, params = self._credentials(key)
        inner = transport or httpx.AsyncHTTPTransport(retries=0)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=_Credentials(inner, headers, params),
            timeout=httpx.Timeout(setting.timeout),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            trust_env=False,
        )

    @classmethod
    def section(cls, settings: CollectSettings) -> SaaSService:
        section: SaaSService = getattr(settings, cls.service)
        return section

    @classmethod
    def configured(cls, settings: CollectSettings) -> bool:
        """Whether a key is set for this service (an empty or blank key counts as none)."""
        key = cls.section(settings).api_key
        return key is not None and bool(key.get_secret_value().strip())

    @classmethod
    def from_settings(cls, settings: CollectSettings, **options: Any) -> Self:
        return cls(cls.section(settings), **options)

    def _credentials(self, key: str) -> tuple[dict[str, str], dict[str, str]]:
        """The headers and query parameters that carry the key, as the service documents them."""
        raise NotImplementedError

    def _error_detail(self, response: httpx.Response) -> str:
        """The service's own explanation in an error body (subclasses read their documented shape)."""
        return response.text

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url}>"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- requests ----------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        return redact(text, self._key)

    def _detail(self, response: httpx.Response) -> str:
        try:
            detail = self._error_detail(response)
        except (ValueError, UnicodeDecodeError):
            detail = ""
        detail = " ".join(self.redact(detail or response.reason_phrase or "").split())
        return detail[:DETAIL_CHARS] + ("…" if len(detail) > DETAIL_CHARS else "")

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool = True,
        seconds: float | None = None,
    ) -> httpx.Response:
        """One call with the retry policy (``seconds``: this call's timeout, if not the setting's); returns
        a 2xx response or raises a mapped error."""
        attempts = max(1, self.retry.attempts)
        for attempt in range(1, attempts + 1):
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=_query(params),
                    json=json,
                    timeout=httpx.Timeout(seconds) if seconds is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TimeoutException as exc:
                budget = seconds if seconds is not None else self.timeout
                raise ProviderTimeout(
                    f"{self.label} did not answer within {budget:g} s ({type(exc).__name__})",
                    provider=self.service,
                ) from None
            except httpx.TransportError as exc:
                if attempt < attempts and isinstance(exc, httpx.ConnectError):
                    await self._wait(attempt, None, f"cannot connect ({type(exc).__name__})")
                    continue
                host = urlsplit(self.base_url).hostname or self.base_url
                raise ProviderUnavailable(
                    self.redact(f"cannot reach {self.label} at {host}: {type(exc).__name__}"),
                    provider=self.service,
                ) from None
            if response.is_success:
                return response
            status = response.status_code
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            retryable = status == 429 or (status >= 500 if idempotent else status == 503)
            too_long = retry_after is not None and retry_after > self.retry.max_wait
            if retryable and attempt < attempts and not too_long:
                await self._wait(attempt, retry_after, f"HTTP {status}")
                continue
            raise self._status_error(response, attempt, retry_after)
        raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover

    async def _wait(self, attempt: int, retry_after: float | None, why: str) -> None:
        if retry_after is None:
            retry_after = min(self.retry.backoff * 2 ** (attempt - 1), self.retry.max_backoff)
        log.warning(
            "%s: %s; attempt %d of %d in %.2f s",
            self.label,
            why,
            attempt + 1,
            self.retry.attempts,
            retry_after,
        )
        await self._sleep(retry_after)

    def _status_error(
        self, response: httpx.Response, attempts: int, retry_after: float | None
    ) -> ProviderHTTPError:
        status = response.status_code
        detail = self._detail(response)
        tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
        if status in (401, 403):
            message = (
                f"the {self.label} key was refused (HTTP {status}: {detail}); check "
                f"SOPHIA_COLLECT__{self.service.upper()}__API_KEY"
            )
        elif status == 429:
            wait = f"; it asks to wait {retry_after:g} s" if retry_after is not None else ""
            message = f"{self.label} is rate limiting Sophia (HTTP 429{tries}){wait}: {detail}"
        elif status >= 500:
            message = f"{self.label} failed with HTTP {status}{tries}: {detail}"
        else:
            message = f"{self.label} refused the request (HTTP {status}): {detail}"
        return ProviderHTTPError(
            self.redact(message), status=status, provider=self.service, retry_after=retry_after
        )

    def _json(self, response: httpx.Response) -> Any:
        """The JSON body, or a clear error naming the service when it does not parse."""
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise self.invalid(
                f"answered {response.request.url.path} with a body that is not JSON "
                f"({len(response.content)} bytes, {response.headers.get('content-type', 'no type')})"
            ) from None

    def invalid(self, what: str) -> ProviderError:
        """An answer Sophia cannot use: not retryable, since asking again gives the same."""
        error = ProviderError(
            self.redact(f"{self.label} {what}"), provider=self.service, code="invalid_response"
        )
        error.retryable = False
        return error


def _query(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Query parameters as the services document them: booleans as ``true``/``false``, None left out."""
    if params is None:
        return None
    query: dict[str, str] = {}
    for name, value in params.items():
        if value is None:
            continue
        query[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return query


def field_text(data: Mapping[str, Any], *names: str) -> str:
    """The first non-empty string among ``names`` in a JSON error body ('' if none)."""
    for name in names:
        value = data.get(name)
        if isinstance(value, str) and value.strip():
            return value
        if isinstance(value, Mapping):
            inner = field_text(value, "message", "error", "detail", "title")
            if inner:
                return inner
    return ""


def json_error_detail(response: httpx.Response, *names: str) -> str:
    """A JSON error body's message by the documented field names, else the raw text."""
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text
    if isinstance(data, Mapping):
        return field_text(data, *names) or response.text
    return response.text
