"""A loopback HashiCorp Vault: the HTTP API the ``vault-login`` and ``vault-secrets`` providers use.

Served on 127.0.0.1 (plain HTTP, or TLS with a given certificate), with Vault's paths, statuses and
JSON shapes (the response envelope ``{request_id, lease_id, renewable, lease_duration, data,
wrap_info, warnings, auth}``; errors as ``{"errors": [...]}``):

  POST|PUT /v1/auth/token/create    a child of the calling token (``display_name`` stored as
                                    ``token-<name>``, ``policies`` a subset of the parent's unless the
                                    parent is root, else 400 "child policies must be subset of
                                    parent"; no ``policies``: the parent's; ``meta`` string to string;
                                    ``explicit_max_ttl`` caps the lease); reply ``auth.client_token``
  GET      /v1/<kv1 mount>/<key>     ``data`` is the secret (lease_duration 768h), 404 ``{"errors": []}``
  GET      /v1/<kv2 mount>/data/<key>  ``data`` is ``{data, metadata}`` (latest version), 404 likewise
  GET      /v1/<kv2 mount>/<key>     404 with Vault's "Invalid path for a versioned K/V secrets
                                    engine" warning (the request forgot ``data/``)

Every call needs a known token (``X-Vault-Token`` or ``Authorization: Bearer``), else 403
``permission denied``; ACL policies (path globs with a trailing ``*`` or ``+`` segments, the most
specific rule wins, ``deny`` denies) decide each path, and a denial is Vault's multierror text
(``1 error occurred:\\n\\t* permission denied\\n\\n``). Creating a token needs ``create`` or ``update`` on
``auth/token/create`` (which Vault's ``default`` policy does not grant). ``X-Vault-Namespace`` selects
the namespace: mounts belong to one, and a token works in its own namespace and those below it. A
path with no mount answers 404 ``no handler for route``; a sealed Vault answers 503 ``Vault is
sealed`` to everything. Every request is recorded in ``requests``, tokens in ``tokens``.

Not modelled: renewal, revocation and expiry of tokens, KV versions other than the latest and soft
deletion, per-namespace policies, response wrapping, and every other engine and endpoint.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from fakes.threaded import ThreadedFake

Reply = tuple[int, dict[str, Any] | None]
DEFAULT_TTL = 768 * 3600  # Vault's default and system max lease (32 days)
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DENIED = "1 error occurred:\n\t* permission denied\n\n"
_KV2_BAD_PATH = (
    "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API "
    "endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."
)


@dataclass
class Token:
    """A token as Vault's token store keeps it."""

    policies: list[str]
    namespace: str = ""
    parent: str | None = None
    display_name: str = "token"
    meta: dict[str, str] | None = None
    explicit_max_ttl: int = 0
    accessor: str = field(default_factory=lambda: secrets.token_hex(12))


@dataclass
class Seen:
    """One request: ``path`` without ``/v1/``; ``token`` as sent (the fake is the only one that sees it)."""

    method: str
    path: str
    namespace: str
    token: str | None
    body: Any


@dataclass
class _Mount:
    version: int
    data: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> secret (KV v1)
    versions: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)  # KV v2


def _duration(raw: Any) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    m = _DURATION.match(str(raw))
    if not isinstance(raw, str) or not raw or m is None:
        raise ValueError(f'time: invalid duration "{raw}"')
    h, mi, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s


def _glob(pattern: str) -> re.Pattern[str]:
    body = re.escape(pattern.removesuffix("*")).replace(r"\+", "[^/]+")
    return re.compile(f"^{body}" + (".*$" if pattern.endswith("*") else "$"))


class FakeVault(ThreadedFake):
    """``with FakeVault() as vault:`` serves Vault on ``vault.url`` with a root token ``vault.root_token``."""

    thread_name = "fake-vault"

    def __init__(self, *, tls: tuple[Path, Path] | None = None) -> None:
        self.root_token = "hvs." + secrets.token_urlsafe(24)
        self.tokens: dict[str, Token] = {self.root_token: Token(["root"], display_name="root")}
        self.policies: dict[str, dict[str, list[str]]] = {}
        self.mounts: dict[tuple[str, str], _Mount] = {}  # (namespace, mount path)
        self.requests: list[Seen] = []
        self.sealed = False
        self.url = ""
        self._tls = tls
        self._lock = threading.RLock()

    # --- life ----------------------------------------------------------------------------------

    # --- what an operator sets up --------------------------------------------------------------

    def enable_kv(self, path: str, *, version: int = 2, namespace: str = "") -> None:
        self.mounts[(namespace.strip("/"), path.strip("/"))] = _Mount(version)

    def write(self, path: str, data: dict[str, Any], *, namespace: str = "") -> None:
        """Write ``<mount>/<key>`` (the CLI's ``vault kv put`` path: no ``data/`` for KV v2)."""
        mount, key = self._mount(namespace.strip("/"), path.strip("/"))
        if mount is None:
            raise KeyError(f"no mount for {path}")
        if mount.version == 1:
            mount.data[key] = dict(data)
        else:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            mount.versions.setdefault(key, []).append((stamp, dict(data)))

    def set_policy(self, name: str, rules: dict[str, list[str]]) -> None:
        """``rules`` maps a path (glob) to its capabilities, as a policy's ``path`` blocks do."""
        self.policies[name] = rules

    def create_token(self, policies: list[str], *, namespace: str = "") -> str:
        """A token made by an operator (``vault token create -policy=…``), with ``default`` added."""
        token = "hvs." + secrets.token_urlsafe(24)
        self.tokens[token] = Token(sorted({*policies, "default"}), namespace=namespace.strip("/"))
        return token

    def children(self, parent: str) -> list[Token]:
        return [t for t in self.tokens.values() if t.parent == parent]

    # --- the API -------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        lower = {k.lower(): v for k, v in headers.items()}
        namespace = lower.get("x-vault-namespace", "").strip("/")
        token = lower.get("x-vault-token")
        if token is None and lower.get("authorization", "").startswith("Bearer "):
            token = lower["authorization"][len("Bearer ") :]
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return 400, {"errors": ["failed to parse JSON input: invalid character"]}
        path = target.split("?", 1)[0]
        with self._lock:
            self.requests.append(Seen(method, path.removeprefix("/v1/"), namespace, token, body))
            if not path.startswith("/v1/"):
                return 404, None
            if self.sealed:
                return 503, {"errors": ["Vault is sealed"]}
            entry = self.tokens.get(token or "")
            if entry is None or not self._visible(entry.namespace, namespace):
                return 403, {"errors": ["permission denied"]}
            path = path.removeprefix("/v1/").strip("/")
            if path == "auth/token/create" and method in ("POST", "PUT"):
                if not self._allowed(entry, path, ("create", "update")):
                    return 403, {"errors": [_DENIED]}
                return self._create(token or "", entry, namespace, body if isinstance(body, dict) else {})
            if method != "GET":
                return 405, {"errors": ["1 error occurred:\n\t* unsupported operation\n\n"]}
            if not self._allowed(entry, path, ("read",)):
                return 403, {"errors": [_DENIED]}
            return self._read(namespace, path)

    @staticmethod
    def _visible(token_ns: str, request_ns: str) -> bool:
        return token_ns == "" or request_ns == token_ns or request_ns.startswith(token_ns + "/")

    def _allowed(self, entry: Token, path: str, wanted: tuple[str, ...]) -> bool:
        if "root" in entry.policies:
            return True
        rules = [(p, caps) for name in entry.policies for p, caps in self.policies.get(name, {}).items()]
        exact = [caps for p, caps in rules if "*" not in p and "+" not in p and p == path]
        if not exact:
            globs = [(p, caps) for p, caps in rules if ("*" in p or "+" in p) and _glob(p).match(path)]
            longest = max((len(p) for p, _ in globs), default=-1)
            exact = [caps for p, caps in globs if len(p) == longest]
        granted = {c for caps in exact for c in caps}
        return "deny" not in granted and any(c in granted for c in wanted)

    def _create(self, parent: str, entry: Token, namespace: str, body: dict[str, Any]) -> Reply:
        raw = body.get("policies")
        requested = [p.strip() for p in (raw.split(",") if isinstance(raw, str) else raw or []) if p.strip()]
        is_root = "root" in entry.policies
        if requested and not is_root and not set(requested) - {"default"} <= set(entry.policies):
            return 400, {"errors": ["child policies must be subset of parent"]}
        policies = sorted(set(requested or entry.policies))
        if "root" not in policies and not body.get("no_default_policy"):
            policies = sorted({*policies, "default"})
        meta = body.get("meta")
        if meta is not None and not (
            isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())
        ):
            return 400, {"errors": ["1 error(s) decoding:\n\n* 'meta' expected a map of strings"]}
        try:
            explicit = _duration(body["explicit_max_ttl"]) if "explicit_max_ttl" in body else 0
        except ValueError as exc:
            return 400, {"errors": [f"error parsing explicit_max_ttl: {exc}"]}
        name = re.sub(r"[^a-zA-Z0-9-]+", "-", "token-" + str(body.get("display_name") or "")).rstrip("-")
        child = "hvs." + secrets.token_urlsafe(24)
        self.tokens[child] = Token(policies, namespace, parent, name, meta or None, explicit)
        lease = 0 if policies == ["root"] and not explicit else min(DEFAULT_TTL, explicit or DEFAULT_TTL)
        auth = {
            "client_token": child,
            "accessor": self.tokens[child].accessor,
            "policies": policies,
            "token_policies": policies,
            "metadata": meta or None,
            "lease_duration": lease,
            "renewable": lease > 0,
            "entity_id": "",
            "token_type": "service",
            "orphan": False,
            "mfa_requirement": None,
            "num_uses": 0,
        }
        return 200, _envelope(None, auth=auth)

    def _mount(self, namespace: str, path: str) -> tuple[_Mount | None, str]:
        best = ""
        for ns, mount_path in self.mounts:
            if ns == namespace and (path == mount_path or path.startswith(mount_path + "/")):
                best = max(best, mount_path, key=len)
        if not best:
            return None, path
        return self.mounts[(namespace, best)], path[len(best) :].strip("/")

    def _read(self, namespace: str, path: str) -> Reply:
        mount, rel = self._mount(namespace, path)
        if mount is None:
            return 404, {"errors": [f'no handler for route "{path}". route entry not found.']}
        if mount.version == 1:
            if rel not in mount.data:
                return 404, {"errors": []}
            return 200, _envelope(mount.data[rel], lease_duration=DEFAULT_TTL)
        if not rel.startswith("data/"):
            return 404, _envelope(None, warnings=[_KV2_BAD_PATH])
        history = mount.versions.get(rel.removeprefix("data/"))
        if not history:
            return 404, {"errors": []}
        created, data = history[-1]
        metadata = {
            "created_time": created,
            "custom_metadata": None,
            "deletion_time": "",
            "destroyed": False,
            "version": len(history),
        }
        return 200, _envelope({"data": data, "metadata": metadata})


def _envelope(
    data: Any, *, auth: Any = None, warnings: list[str] | None = None, lease_duration: int = 0
) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": lease_duration,
        "data": data,
        "wrap_info": None,
        "warnings": warnings,
        "auth": auth,
    }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeVault
    protocol_version = "HTTP/1.0"  # one request per connection: no idle sockets left in the client's pool

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, payload = self.fake.handle(self.command, self.path, dict(self.headers.items()), raw)
        data = b"404 page not found\n" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if payload is None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read ``vault.requests``
        return


FakeVault.handler = _Handler
