"""Sophia's ``fn::open`` providers: HashiCorp Vault, with the inputs and outputs Pulumi ESC publishes.

- ``vault-login`` (token login): ``POST /v1/auth/token/create`` with the parent token creates an
  ephemeral *child* token (``displayName``, default ``pulumi``; ``policies``; ``metadata``; ``maxTtl``
  sent as Vault's ``explicit_max_ttl``, the hard cap on the child's life). Output: ``{address,
  namespace?, token}``, the token secret. ESC's other login, ``jwt``, presents an OIDC token that
  Pulumi Cloud issues to the environment; an offline evaluation has no such issuer, so it fails and
  says to use token login.
- ``vault-secrets``: ``GET /v1/<path>`` for each entry of ``read`` with the login's token; the output
  maps each name to the ``data`` of Vault's response as it came (for KV v2 ``{data, metadata}``), or
  to one of its top-level fields (``field``). Every leaf is secret: the engine decides what a value
  means, so nothing read from Vault is assumed public.

``namespace`` (Vault Enterprise) goes in the ``X-Vault-Namespace`` header of every call.

Failures raise ``ValueError`` (the evaluator reports it at the ``fn::open`` node) naming the
provider, the address, the path and Vault's own error text; a token is never part of a message
(scrubbed even from text Vault sends back). TLS certificates are verified (a private CA is trusted
through ``SSL_CERT_FILE``, or by passing an ``httpx.Client`` with its own ``verify``); redirects
(a standby node pointing at the active one) are reported, not followed, so the token is sent only to
the address the environment names.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from sophia.secrets.esc import Provider, Value

__all__ = [
    "VAULT_LOGIN_INPUTS",
    "VAULT_SECRETS_INPUTS",
    "builtin_providers",
    "vault_login_provider",
    "vault_secrets_provider",
]

#: seconds for connecting, each read and each write of a Vault call (the client's own when one is given)
TIMEOUT = 10.0
#: ESC's ``maxTtl`` pattern (hours, minutes, seconds, each optional, in that order)
_TTL = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
_STRINGS = {"type": "array", "items": {"type": "string"}}

VAULT_LOGIN_INPUTS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "address": {"type": "string"},
        "namespace": {"type": "string"},
        "jwt": {
            "type": "object",
            "properties": {
                "role": {"type": "string"},
                "mount": {"type": "string"},
                "subjectAttributes": _STRINGS,
            },
            "required": ["role"],
        },
        "token": {
            "type": "object",
            "properties": {
                "token": {"type": "string"},
                "displayName": {"type": "string"},
                "maxTtl": {"type": "string", "pattern": _TTL},
                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                "policies": _STRINGS,
            },
            "required": ["token"],
        },
    },
    "required": ["address"],
}
VAULT_SECRETS_INPUTS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "login": {
            "type": "object",
            "properties": {
                "address": {"type": "string"},
                "namespace": {"type": "string"},
                "token": {"type": "string"},
            },
            "required": ["address", "token"],
        },
        "read": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "field": {"type": "string"}},
                "required": ["path"],
            },
        },
    },
    "required": ["login", "read"],
}

_JWT_OFFLINE = (
    "vault-login: jwt login presents an OIDC token issued by Pulumi Cloud, which an offline evaluation "
    "cannot obtain; use token login instead (token: {token: <parent token>}), which creates a child token"
)
#: Go's multierror text, as Vault returns ACL denials ("1 error occurred:\n\t* permission denied\n\n")
_MULTIERROR = re.compile(r"^\d+ errors? occurred:\s*")


class _Vault:
    """One provider's calls to one Vault server: the base URL, namespace and token every call sends."""

    def __init__(self, who: str, address: str, namespace: str | None, token: str) -> None:
        self.who, self.address, self.namespace, self.token = who, address, namespace or None, token
        self.base = _base_url(who, address)
        self.secrets = [token]  # what a message must never contain

    def call(
        self, http: httpx.Client, method: str, path: str, doing: str, body: Any = None
    ) -> dict[str, Any]:
        """The JSON of Vault's reply to ``method /v1/<path>``; ValueError saying what failed and why."""
        url = f"{self.base}/v1/{quote(path.strip('/'), safe='/')}"
        headers = {"X-Vault-Token": self.token, "X-Vault-Request": "true"}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        where = f"{doing} at {self.address}" + (f" (namespace {self.namespace})" if self.namespace else "")
        try:
            resp = http.request(method, url, headers=headers, json=body)
        except httpx.TimeoutException as exc:
            raise self.fail(f"{where}: Vault did not answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise self.fail(f"{where}: cannot reach Vault: {exc or type(exc).__name__}") from None
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        if not 200 <= resp.status_code < 300:
            raise self.fail(f"{where}: {_reason(resp, payload)} (HTTP {resp.status_code})")
        if not isinstance(payload, dict):
            raise self.fail(f"{where}: the reply is not a JSON object (HTTP {resp.status_code})")
        return payload

    def fail(self, message: str) -> ValueError:
        for secret in self.secrets:
            if secret:
                message = message.replace(secret, "[secret]")
        return ValueError(f"{self.who}: {message}")


def _base_url(who: str, address: str) -> str:
    """``scheme://host[:port]`` of ``address``, which ESC says has a scheme and a hostname but no path."""
    try:
        parts = urlsplit(address)
        _ = parts.port  # parsing the port is what validates it
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        shown = address if "@" not in address else "(an address with credentials)"
        raise ValueError(
            f'{who}: invalid address "{shown}": it must be a scheme (http or https) and a hostname, '
            "with an optional port and no path"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _reason(resp: httpx.Response, payload: Any) -> str:
    """Vault's error text: ``errors`` (multierror text unwrapped), else ``warnings``, else the status."""
    if isinstance(payload, dict):
        for key in ("errors", "warnings"):
            texts = [_unwrap(e) for e in payload.get(key) or [] if isinstance(e, str) and e.strip()]
            if texts:
                return "; ".join(texts)
    if resp.is_redirect:
        return f"redirected to {resp.headers.get('location', '?')} (point address at the active node)"
    return {403: "permission denied", 404: "not found"}.get(resp.status_code, resp.reason_phrase or "error")


def _unwrap(text: str) -> str:
    if not _MULTIERROR.match(text):
        return text.strip()
    items = [line.strip()[2:].strip() for line in text.splitlines() if line.strip().startswith("* ")]
    return "; ".join(items) or text.strip()


@contextlib.contextmanager
def _session(http: httpx.Client | None) -> Iterator[httpx.Client]:
    """The caller's client (theirs to close), or a fresh one for this call."""
    if http is not None:
        yield http
        return
    with httpx.Client(timeout=TIMEOUT) as client:
        yield client


def _secret_leaves(x: Any) -> Value:
    if isinstance(x, dict):
        return Value({str(k): _secret_leaves(v) for k, v in x.items()})
    if isinstance(x, list):
        return Value([_secret_leaves(i) for i in x])
    return Value(x, secret=True)


def vault_login_provider(http: httpx.Client | None = None) -> Provider:
    """``fn::open::vault-login`` (see the module's docstring); ``http`` is used, not closed, if given."""

    def open_login(inputs: Value) -> Value:
        plain: dict[str, Any] = inputs.reveal()
        if "jwt" in plain and "token" in plain:
            raise ValueError("vault-login: give either jwt or token, not both")
        if "jwt" in plain:
            raise ValueError(_JWT_OFFLINE)
        if "token" not in plain:
            raise ValueError("vault-login: token login is required offline (token: {token: <parent token>})")
        options: dict[str, Any] = plain["token"]
        vault = _Vault("vault-login", plain["address"], plain.get("namespace"), options["token"])
        body: dict[str, Any] = {"display_name": options.get("displayName") or "pulumi"}
        if "policies" in options:
            body["policies"] = options["policies"]
        if options.get("metadata"):
            body["meta"] = options["metadata"]
        if options.get("maxTtl"):
            body["explicit_max_ttl"] = options["maxTtl"]
        with _session(http) as client:
            reply = vault.call(client, "POST", "auth/token/create", "creating a child token", body)
        auth = reply.get("auth")
        child = auth.get("client_token") if isinstance(auth, dict) else None
        if not isinstance(child, str) or not child:
            raise vault.fail(f"creating a child token at {vault.address}: the reply has no auth.client_token")
        out = {"address": Value(plain["address"])}
        if vault.namespace:
            out["namespace"] = Value(vault.namespace)
        out["token"] = Value(child, secret=True)
        return Value(out)

    return Provider(open_login, VAULT_LOGIN_INPUTS)


def vault_secrets_provider(http: httpx.Client | None = None) -> Provider:
    """``fn::open::vault-secrets`` (see the module's docstring); ``http`` is used, not closed, if given."""

    def open_secrets(inputs: Value) -> Value:
        plain: dict[str, Any] = inputs.reveal()
        login: dict[str, Any] = plain["login"]
        vault = _Vault("vault-secrets", login["address"], login.get("namespace"), login["token"])
        out: dict[str, Value] = {}
        with _session(http) as client:
            for name, spec in plain["read"].items():
                path, field = spec["path"], spec.get("field")
                doing = f'reading "{path}" (read.{name})'
                data = vault.call(client, "GET", path, doing).get("data")
                if data is None:
                    raise vault.fail(f"{doing} at {vault.address}: the reply has no data")
                if field:
                    if not isinstance(data, Mapping) or field not in data:
                        fields = ", ".join(sorted(data)) if isinstance(data, Mapping) else "none"
                        raise vault.fail(f'{doing} at {vault.address}: no field "{field}" (fields: {fields})')
                    data = data[field]
                out[name] = _secret_leaves(data)
        return Value(out)

    return Provider(open_secrets, VAULT_SECRETS_INPUTS)


def builtin_providers(http: httpx.Client | None = None) -> dict[str, Provider]:
    """The providers every store knows, by the name after ``fn::open::``."""
    return {"vault-login": vault_login_provider(http), "vault-secrets": vault_secrets_provider(http)}
