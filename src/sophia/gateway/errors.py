"""The one table from Sophia's exception tree to HTTP statuses and OpenAI-style error bodies."""

from __future__ import annotations

import orjson

from sophia.errors import (
    AllProvidersFailed,
    AuthenticationError,
    BudgetExceeded,
    CircuitOpen,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    ProviderError,
    ProviderHTTPError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    RequestError,
    SophiaError,
)
from sophia.secrets.mask import mask_credentials

#: class -> (HTTP status, OpenAI error type); the most specific class in the MRO wins
_TABLE: dict[type[SophiaError], tuple[int, str]] = {
    InvalidRequest: (400, "invalid_request_error"),
    PayloadTooLarge: (413, "invalid_request_error"),
    ModelNotFound: (404, "invalid_request_error"),
    AuthenticationError: (401, "authentication_error"),
    PermissionDenied: (403, "permission_error"),
    RateLimited: (429, "rate_limit_error"),
    BudgetExceeded: (429, "insufficient_quota"),
    RequestError: (400, "invalid_request_error"),
    ProviderUnavailable: (502, "upstream_error"),
    ProviderTimeout: (504, "upstream_error"),
    CircuitOpen: (503, "upstream_error"),
    ProviderError: (502, "upstream_error"),
    SophiaError: (500, "api_error"),
}

#: upstream statuses passed on to the client as they are (the request itself was refused)
PASS_THROUGH_STATUSES = frozenset({400, 413, 422})


def status_and_type(exc: SophiaError) -> tuple[int, str]:
    if isinstance(exc, AllProvidersFailed) and exc.errors:
        return status_and_type(exc.errors[-1])
    if isinstance(exc, ProviderHTTPError):
        if exc.status in PASS_THROUGH_STATUSES:
            return exc.status, "invalid_request_error"
        if exc.status == 429:
            return 429, "rate_limit_error"
        return (504 if exc.status == 504 else 502), "upstream_error"
    for cls in type(exc).__mro__:
        entry = _TABLE.get(cls)
        if entry is not None:
            return entry
    return 500, "api_error"


def error_body(exc: SophiaError) -> tuple[int, bytes]:
    """(status, OpenAI-format JSON body) for an error; the message is Sophia's own, never a traceback,
    and masked (an upstream's message may echo a key, an exception's may carry a known secret)."""
    status, kind = status_and_type(exc)
    param = getattr(exc, "param", None)
    message = mask_credentials(exc.message)
    return status, orjson.dumps(
        {"error": {"message": message, "type": kind, "param": param, "code": exc.code}}
    )


def retry_after(exc: SophiaError) -> float | None:
    value = getattr(exc, "retry_after", None)
    if isinstance(exc, AllProvidersFailed) and exc.errors:
        value = getattr(exc.errors[-1], "retry_after", None)
    return value
