"""HTTP helpers shared by the HTTP adapters: error mapping, Retry-After, key lookup, SSE framing."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import orjson

from sophia.errors import ProviderHTTPError, ProviderTimeout, ProviderUnavailable
from sophia.httpclient import HTTPClient, HTTPClientError, Response, Target
from sophia.timeparse import retry_after as parse_retry_after

if TYPE_CHECKING:
    from sophia.providers.base import CallOptions, Vendor
    from sophia.settings import ProviderSettings

MAX_ERROR_BODY = 4096


def resolve_key(vendor: Vendor, config: ProviderSettings) -> str | None:
    """The vendor's key from settings, else from its standard environment variables. Never logged."""
    if config.api_key is not None:
        value = config.api_key.get_secret_value()
        if value:
            return value
    for name in vendor.env_keys:
        value = os.environ.get(name, "")
        if value:
            return value
    return None


def request_headers(vendor: Vendor, config: ProviderSettings) -> dict[str, str]:
    """Headers for every call to ``vendor``: JSON, the vendor's fixed ones, option headers, auth."""
    headers = {"Content-Type": "application/json", **vendor.extra_headers}
    for option, header in vendor.option_headers.items():
        value = config.options.get(option)
        if value is not None:
            headers[header] = value if isinstance(value, str) else orjson.dumps(value).decode()
    headers.update(config.headers)
    key = resolve_key(vendor, config)
    if key:
        headers[vendor.auth_header] = f"{vendor.auth_scheme} {key}" if vendor.auth_scheme else key
    return headers


def upstream_error(
    status: int, body: bytes, retry_after: str | None, provider: str, model: str
) -> ProviderHTTPError:
    """A ProviderHTTPError carrying the upstream's own message (JSON ``error.message`` when present)."""
    detail = scrub(_error_message(body[:MAX_ERROR_BODY]))
    message = f"{provider} answered {status} for {model}" + (f": {detail}" if detail else "")
    return ProviderHTTPError(
        message, status=status, provider=provider, model=model, retry_after=parse_retry_after(retry_after)
    )


#: credential-shaped strings: vendor key formats, bearer tokens and long opaque tokens
_CREDENTIAL = re.compile(
    r"(sk-[A-Za-z0-9_-]{8,}|hf_[A-Za-z0-9]{8,}|pk-[A-Za-z0-9_-]{8,}|(?i:bearer)\s+\S+|[A-Za-z0-9_\-]{32,})"
)


def scrub(text: str) -> str:
    """``text`` with anything that looks like a credential replaced: upstream errors may echo a key."""
    return _CREDENTIAL.sub("[redacted]", text)


def _error_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return text[:300]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail") or err.get("type")
            return str(msg)[:300] if msg else ""
        if isinstance(err, str):
            return err[:300]
    return ""


class SSEBuffer:
    """Splits a byte stream into complete server-sent events (each returned without its blank line)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data
        if b"\r" in buf:
            # CRLF line ends become LF; a CR at the very end may be half of a CRLF split across reads.
            held = buf.endswith(b"\r")
            buf = (buf[:-1] if held else buf).replace(b"\r\n", b"\n") + (b"\r" if held else b"")
        parts = buf.split(b"\n\n")
        self._buf = parts.pop()
        return [p for p in parts if p]

    def flush(self) -> list[bytes]:
        rest, self._buf = self._buf.strip(), b""
        return [rest] if rest else []


def event_data(event: bytes) -> bytes | None:
    """The ``data:`` payload of one SSE event (lines joined), or None for comments / other fields."""
    if event.startswith(b"data:") and b"\n" not in event:
        return event[5:].lstrip(b" ")
    lines = [ln[5:].lstrip(b" ") for ln in event.split(b"\n") if ln.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


async def open_post(
    client: HTTPClient,
    target: Target,
    body: bytes,
    options: CallOptions,
    provider: str,
    model: str,
) -> Response:
    """POST ``body`` and return the response once its head arrived within the first-byte budget.

    An error status is read (up to ``MAX_ERROR_BODY``) and raised as ``upstream_error``; a missed
    budget is ``ProviderTimeout``; a connection failure is ``ProviderUnavailable``.
    """
    budget = min(options.first_byte_timeout, options.timeout)
    try:
        async with asyncio.timeout(budget):
            resp = await client.post(target, body)
    except TimeoutError:
        raise ProviderTimeout(
            f"{provider} sent no response for {model} within {budget:g}s", provider=provider, model=model
        ) from None
    except HTTPClientError as exc:
        raise ProviderUnavailable(
            f"cannot reach {provider} for {model}: {exc}", provider=provider, model=model
        ) from None
    if resp.status >= 400:
        try:
            async with asyncio.timeout(options.timeout):
                raw = await resp.read(MAX_ERROR_BODY)
        except (TimeoutError, HTTPClientError):
            raw = b""
        finally:
            resp.release()
        raise upstream_error(resp.status, raw, resp.headers.get("retry-after"), provider, model)
    return resp


#: a model listing answering one of these (or any 5xx) means calls would fail too: credentials refused, out
#: of credit, rate limited, timed out upstream; any other 4xx means the server answers but lists nothing
PROBE_DOWN_STATUSES = frozenset({401, 402, 403, 407, 408, 429})


def keyed(vendor: Vendor, headers: Mapping[str, str]) -> bool:
    """Whether calls to ``vendor`` carry its credentials, or it needs none (self-hosted servers)."""
    return not vendor.needs_key or vendor.auth_header.lower() in {name.lower() for name in headers}


def listing_target(base_url: str, headers: Mapping[str, str]) -> Target:
    """``GET {base}/models`` with the calls' own headers (and key): the probe of an HTTP provider."""
    return HTTPClient.target(f"{base_url}/models", headers, "GET")


async def probe_listing(
    client: HTTPClient | None, target: Target, options: CallOptions, provider: str
) -> str:
    """Ask for the provider's model listing, which costs no tokens: a note when it answers, else the error
    a call would meet (``ProviderHTTPError`` with the upstream's scrubbed message, ``ProviderTimeout``,
    ``ProviderUnavailable``). Only the response head is awaited: the listing itself (hundreds of models
    at an aggregator) is not read, and its connection is closed rather than pooled."""
    if client is None:
        raise ProviderUnavailable(f"{provider} is not started", provider=provider)
    try:
        resp = await open_post(client, target, b"", options, provider, "the model listing")
    except ProviderHTTPError as exc:
        if exc.status in PROBE_DOWN_STATUSES or exc.status >= 500:
            raise
        return f"answers (no model listing: HTTP {exc.status})"
    resp.close()
    return f"model listing answered HTTP {resp.status}"


async def read_body(resp: Response, options: CallOptions, provider: str, model: str) -> bytes:
    """The whole body of an opened response within ``options.timeout``; the response is released."""
    try:
        async with asyncio.timeout(options.timeout):
            return await resp.read()
    except TimeoutError:
        raise ProviderTimeout(
            f"{provider} did not finish {model} within {options.timeout:g}s", provider=provider, model=model
        ) from None
    except HTTPClientError as exc:
        raise ProviderUnavailable(
            f"{provider} dropped the answer for {model}: {exc}", provider=provider, model=model
        ) from None
    finally:
        resp.release()


async def read_chunk(resp: Response, gap: float, provider: str, model: str) -> bytes:
    """The next bytes of a streamed body (``b""`` at its end), waiting at most ``gap`` seconds for them."""
    try:
        async with asyncio.timeout(gap):
            return await resp.readany()
    except TimeoutError:
        raise ProviderTimeout(
            f"{provider} stalled for {gap:g}s streaming {model}", provider=provider, model=model
        ) from None
    except HTTPClientError as exc:
        raise ProviderUnavailable(
            f"{provider} broke the stream of {model}: {exc}", provider=provider, model=model
        ) from None
