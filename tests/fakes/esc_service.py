"""A loopback Pulumi ESC service: the REST API pulumi-esc-sdk 0.14 speaks, on 127.0.0.1.

Paths, methods, statuses, headers and JSON shapes are the published ones (the SDK's ``EscApi`` and
models; the ESC CLI's client for the headers the models do not show):

  GET    /api/esc/environments/{org}[?continuationToken=]        list, ``{"environments", "nextToken"}``
  POST   /api/esc/environments/{org}  {"project","name"}          create (204; 409 when it exists)
  GET    /api/esc/environments/{org}/{project}/{env}              YAML, ``ETag`` + ``Pulumi-ESC-Revision``
  GET    …/{env}/versions/{revision|latest}                       the same at a revision
  HEAD   …/{env}                                                  ``ETag`` only
  PATCH  …/{env}  YAML body, optional ``ETag`` precondition       200 ``{}`` / 400 diagnostics / 409
  DELETE …/{env}                                                  204
  POST   …/{env}/open and …/{env}/versions/{v}/open               ``{"id"}`` / 400 diagnostics
  GET    …/{env}/open/{id}                                        ``Environment`` (``properties``)

Every call needs ``Authorization: token <token>`` (401 otherwise); an organization the token has no
access to answers 403. Errors are ``{"code", "message"}`` (plus ``diagnostics`` for 400s). The SDK
makes no call when it is constructed, so nothing else is served.

As the service does, a write encrypts each ``fn::secret`` plaintext into ``{ciphertext: …}`` (ESC's
``escx`` envelope around a toy keyed cipher with a MAC: the service's side, so any cipher that
round-trips will do), rejects a definition whose check has errors, and keeps every revision; an open
evaluates with Sophia's offline evaluator (imports are ``project/env``, or a bare ``env`` in the
``default`` project, as ESC documents) and answers ESC's JSON value form. Not modelled: ``exprs``
and ``schema`` in opened environments, and source positions in traces (every ``trace.def`` names the
opened environment at line 0).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from fakes.threaded import ThreadedFake
from sophia.secrets.esc import Diag, Provider, Value, evaluate, from_plain
from sophia.secrets.esc_syntax import Yaml12Loader, parse_definition

PREFIX = "/api/esc/environments/"
_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,100}$")
_ZERO = {"line": 0, "column": 0, "byte": 0}
Reply = tuple[int, dict[str, str], bytes]


@dataclass
class StoredEnv:
    project: str
    name: str
    revisions: list[str] = field(default_factory=lambda: [""])  # revision n is revisions[n - 1]
    created: str = ""
    modified: str = ""

    @property
    def revision(self) -> int:
        return len(self.revisions)


@dataclass
class Seen:
    """One request as the service received it (header names lower-cased, Authorization left out)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def _error(status: int, message: str, diags: list[Diag] | None = None) -> Reply:
    body: dict[str, Any] = {"code": status, "message": message}
    if diags is not None:
        body["diagnostics"] = [{"summary": d.summary, "path": d.path} for d in diags]
    return _json(status, body)


class EscService(ThreadedFake):
    """The fake service; ``with EscService(token) as esc:`` serves it on ``esc.url``."""

    thread_name = "fake-esc"

    def __init__(
        self,
        token: str,
        *,
        orgs: tuple[str, ...] = ("acme",),
        page_size: int = 100,
        providers: Mapping[str, Provider | Callable[[Value], Value]] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self.token, self.orgs, self.page_size = token, orgs, page_size
        self.providers = dict(providers or {})
        self.context = dict(context or {"pulumi": {"user": {"login": "sophia-tests"}}})
        self.envs: dict[tuple[str, str, str], StoredEnv] = {}
        self.sessions: dict[str, tuple[tuple[str, str, str], dict[str, Any]]] = {}
        self.requests: list[Seen] = []
        #: called at the start of every PATCH, before its ETag is checked (to stage a concurrent writer)
        self.before_update: Callable[[], object] | None = None
        self.url = ""
        self._key = os.urandom(32)
        self._lock = threading.RLock()

    # --- life ----------------------------------------------------------------------------------

    # --- the store, for tests ------------------------------------------------------------------

    def seed(self, org: str, project: str, name: str, yaml_text: str) -> int:
        """Create or write ``org/project/name`` directly (secrets sealed, no check): the new revision."""
        with self._lock:
            env = self.envs.setdefault((org, project, name), StoredEnv(project, name, created=_now()))
            env.revisions.append(self.seal_secrets(yaml_text))
            env.modified = _now()
            return env.revision

    def stored(self, org: str, project: str, name: str) -> str:
        """The latest stored YAML (ciphertext, never plaintext)."""
        return self.envs[(org, project, name)].revisions[-1]

    def etag(self, org: str, env: StoredEnv, revision: int | None = None) -> str:
        rev = revision or env.revision
        seed = f"{org}/{env.project}/{env.name}#{rev}:{env.revisions[rev - 1]}".encode()
        return '"' + hashlib.sha256(seed).hexdigest()[:20] + '"'

    # --- the service's cipher ------------------------------------------------------------------

    def _stream(self, nonce: bytes, n: int) -> bytes:
        out = b"".join(
            hashlib.sha256(self._key + nonce + i.to_bytes(4, "big")).digest() for i in range(n // 32 + 1)
        )
        return out[:n]

    def seal(self, plaintext: str) -> str:
        """ESC's ciphertext text: base64 of ``escx``, version 1, payload, CRC-32 of what precedes."""
        data, nonce = plaintext.encode(), os.urandom(16)
        body = bytes(a ^ b for a, b in zip(data, self._stream(nonce, len(data)), strict=True))
        tag = hmac.new(self._key, nonce + body, hashlib.sha256).digest()[:16]
        blob = b"escx" + struct.pack(">I", 1) + nonce + body + tag
        return base64.b64encode(blob + struct.pack(">I", zlib.crc32(blob))).decode()

    def unseal(self, payload: bytes) -> bytes:
        """The ``decrypt`` callback of the evaluator (``payload`` is the envelope's inside)."""
        if len(payload) < 32:
            raise ValueError("ciphertext too short")
        nonce, body, tag = payload[:16], payload[16:-16], payload[-16:]
        if not hmac.compare_digest(tag, hmac.new(self._key, nonce + body, hashlib.sha256).digest()[:16]):
            raise ValueError("message authentication failed")
        return bytes(a ^ b for a, b in zip(body, self._stream(nonce, len(body)), strict=True))

    def seal_secrets(self, text: str) -> str:
        """Replace each ``fn::secret: <plaintext>`` in place, keeping the rest of the text as written."""
        try:
            root = yaml.compose(text, Loader=Yaml12Loader)
        except yaml.YAMLError:
            return text  # the check reports it
        spans: list[tuple[int, int, str]] = []

        def walk(node: yaml.Node | None) -> None:
            if isinstance(node, yaml.MappingNode):
                pairs = node.value
                if len(pairs) == 1 and getattr(pairs[0][0], "value", None) == "fn::secret":
                    v = pairs[0][1]
                    if isinstance(v, yaml.ScalarNode) and v.tag == "tag:yaml.org,2002:str":
                        spans.append((v.start_mark.index, v.end_mark.index, v.value))
                        return
                for k, v in pairs:
                    walk(k)
                    walk(v)
            elif isinstance(node, yaml.SequenceNode):
                for item in node.value:
                    walk(item)

        walk(root)
        for start, end, plain in sorted(spans, reverse=True):
            old = text[start:end]
            tail = old[len(old.rstrip("\n")) :]  # a block scalar's span takes its line break along
            text = text[:start] + "{ciphertext: " + self.seal(plain) + "}" + tail + text[end:]
        return text

    # --- evaluation ----------------------------------------------------------------------------

    def _evaluate(self, org: str, project: str, name: str, text: str) -> tuple[str, Any]:
        root = f"{project}/{name}"

        def load(env_name: str) -> str:
            if env_name == root:
                return text
            proj, _, env = env_name.rpartition("/")
            stored = self.envs.get((org, proj or "default", env))
            if stored is None:
                raise ValueError(f'environment "{env_name}" not found')
            return stored.revisions[-1]

        result = evaluate(root, load, providers=self.providers, decrypt=self.unseal, context=self.context)
        return root, result

    # --- requests ------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        headers = {k.lower(): v for k, v in headers.items()}  # HTTP header names are case-insensitive
        seen = {k: v for k, v in headers.items() if k != "authorization"}
        self.requests.append(Seen(method, parts.path, query, seen))
        if headers.get("authorization") != f"token {self.token}":
            return _error(401, "Unauthorized: No credentials provided or are invalid.")
        if not parts.path.startswith(PREFIX):
            return _error(404, "Not Found")
        segs = [unquote(s) for s in parts.path[len(PREFIX) :].split("/")]
        if segs[0] not in self.orgs:
            return _error(403, f"Forbidden: no access to organization '{segs[0]}'")
        with self._lock:
            return self._route(method, segs, query, headers, body)

    def _route(
        self, method: str, segs: list[str], query: dict[str, str], headers: Mapping[str, str], body: bytes
    ) -> Reply:
        org, n = segs[0], len(segs)
        routes: dict[tuple[int, str, str], Callable[[], Reply]] = {
            (1, "GET", ""): lambda: self._list(org, query),
            (1, "POST", ""): lambda: self._create(org, body),
            (3, "GET", ""): lambda: self._get(org, segs, "latest"),
            (3, "HEAD", ""): lambda: self._head(org, segs),
            (3, "PATCH", ""): lambda: self._patch(org, segs, headers, body),
            (3, "DELETE", ""): lambda: self._delete(org, segs),
            (4, "POST", "open"): lambda: self._open(org, segs, "latest"),
            (5, "GET", "open"): lambda: self._read(org, segs),
            (5, "GET", "versions"): lambda: self._get(org, segs, segs[4]),
            (6, "POST", "versions"): lambda: self._open(org, segs, segs[4]),
        }
        kind = segs[3] if n > 3 else ""
        if n == 6 and segs[5] != "open":
            kind = "?"
        handler = routes.get((n, method, kind))
        if handler is None:
            if any(key[0] == n and key[2] == kind for key in routes):
                return _error(405, "Method Not Allowed")
            return _error(404, "Not Found")
        return handler()

    def _find(self, org: str, segs: list[str]) -> StoredEnv | Reply:
        env = self.envs.get((org, segs[1], segs[2]))
        if env is None:
            return _error(404, f"Environment '{segs[1]}/{segs[2]}' not found")
        return env

    def _at(self, env: StoredEnv, version: str) -> int | None:
        if version == "latest":
            return env.revision
        if version.isdigit() and 1 <= int(version) <= env.revision:
            return int(version)
        return None

    def _list(self, org: str, query: dict[str, str]) -> Reply:
        envs = sorted(
            (e for (o, _, _), e in self.envs.items() if o == org), key=lambda e: (e.project, e.name)
        )
        token = query.get("continuationToken")
        try:
            start = int(base64.urlsafe_b64decode(token).decode()) if token else 0
        except ValueError:
            return _error(400, "Bad Request: invalid continuation token")
        page = envs[start : start + self.page_size]
        out: dict[str, Any] = {
            "environments": [
                {
                    "organization": org,
                    "project": e.project,
                    "name": e.name,
                    "created": e.created,
                    "modified": e.modified,
                }
                for e in page
            ]
        }
        if start + self.page_size < len(envs):
            out["nextToken"] = base64.urlsafe_b64encode(str(start + self.page_size).encode()).decode()
        return _json(200, out)

    def _create(self, org: str, body: bytes) -> Reply:
        try:
            req = json.loads(body)
            project, name = req["project"], req["name"]
        except (ValueError, KeyError, TypeError):
            return _error(400, 'Bad Request: the body must be {"project": …, "name": …}')
        for what, value in (("project", project), ("environment", name)):
            if not isinstance(value, str) or not _NAME.match(value) or value in (".", "..", "open", "yaml"):
                return _error(400, f"Bad Request: invalid {what} name {value!r}")
        if (org, project, name) in self.envs:
            return _error(409, f"Conflict: environment '{project}/{name}' already exists")
        self.envs[(org, project, name)] = StoredEnv(project, name, created=_now(), modified=_now())
        return 204, {}, b""

    def _revision_headers(self, org: str, env: StoredEnv, rev: int) -> dict[str, str]:
        return {"ETag": self.etag(org, env, rev), "Pulumi-ESC-Revision": str(rev)}

    def _get(self, org: str, segs: list[str], version: str) -> Reply:
        env = self._find(org, segs)
        if not isinstance(env, StoredEnv):
            return env
        rev = self._at(env, version)
        if rev is None:
            return _error(404, f"Revision '{version}' not found")
        headers = {"Content-Type": "application/x-yaml", **self._revision_headers(org, env, rev)}
        return 200, headers, env.revisions[rev - 1].encode()

    def _head(self, org: str, segs: list[str]) -> Reply:
        env = self._find(org, segs)
        if not isinstance(env, StoredEnv):
            return 404, {}, b""
        return 200, {"ETag": self.etag(org, env)}, b""

    def _patch(self, org: str, segs: list[str], headers: Mapping[str, str], body: bytes) -> Reply:
        env = self._find(org, segs)
        if not isinstance(env, StoredEnv):
            return env
        if self.before_update is not None:
            self.before_update()
        tag = headers.get("etag") or headers.get("if-match")
        if tag and tag != self.etag(org, env):
            return _error(409, "Conflict: the environment was modified since the given ETag")
        try:
            text = self.seal_secrets(body.decode("utf-8"))
        except UnicodeDecodeError:
            return _error(400, "Bad Request: the body is not UTF-8")
        diags = parse_definition(text).diags or self._evaluate(org, env.project, env.name, text)[1].diags
        if diags:
            return _error(400, "Bad Request: the environment has errors", diags)
        env.revisions.append(text)
        env.modified = _now()
        return _json(200, {}, self._revision_headers(org, env, env.revision))

    def _delete(self, org: str, segs: list[str]) -> Reply:
        env = self._find(org, segs)
        if not isinstance(env, StoredEnv):
            return env
        del self.envs[(org, env.project, env.name)]
        return 204, {}, b""

    def _open(self, org: str, segs: list[str], version: str) -> Reply:
        env = self._find(org, segs)
        if not isinstance(env, StoredEnv):
            return env
        rev = self._at(env, version)
        if rev is None:
            return _error(404, f"Revision '{version}' not found")
        root, result = self._evaluate(org, env.project, env.name, env.revisions[rev - 1])
        if result.diags:
            return _error(400, "Bad Request: the environment has errors", result.diags)
        properties = result.value.v if result.value is not None and result.value.is_object() else {}
        context = {**self.context, "currentEnvironment": {"name": root}, "rootEnvironment": {"name": root}}
        opened = {
            "properties": {k: wire(v, root) for k, v in sorted(properties.items())},
            "executionContext": {
                "properties": {k: wire(from_plain(v), root) for k, v in sorted(context.items())}
            },
        }
        session = uuid.uuid4().hex
        self.sessions[session] = ((org, env.project, env.name), opened)
        return _json(200, {"id": session})

    def _read(self, org: str, segs: list[str]) -> Reply:
        found = self.sessions.get(segs[4])
        if found is None or found[0] != (org, segs[1], segs[2]):
            return _error(404, f"Open session '{segs[4]}' not found")
        return _json(200, found[1])


def wire(v: Value, environment: str, *, in_secret: bool = False) -> dict[str, Any]:
    """ESC's JSON form of a value: ``value`` (omitted when null or unknown), ``secret``/``unknown``
    only when true, nested values for arrays and objects (keys sorted, as Go writes maps), a trace.
    As ESC does, everything inside a secret is marked secret too."""
    secret = in_secret or v.secret
    out: dict[str, Any] = {}
    if not v.unknown:
        if isinstance(v.v, list):
            out["value"] = [wire(i, environment, in_secret=secret) for i in v.v]
        elif isinstance(v.v, dict):
            out["value"] = {k: wire(i, environment, in_secret=secret) for k, i in sorted(v.v.items())}
        elif v.v is not None:
            out["value"] = v.v
    if secret:
        out["secret"] = True
    if v.unknown:
        out["unknown"] = True
    out["trace"] = {"def": {"environment": environment, "begin": dict(_ZERO), "end": dict(_ZERO)}}
    return out


class _Handler(BaseHTTPRequestHandler):
    fake: EscService
    protocol_version = "HTTP/1.0"  # one request per connection: no idle sockets left in the client's pool

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, data = self.fake.handle(self.command, self.path, dict(self.headers.items()), body)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_HEAD = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read ``esc.requests``
        return


EscService.handler = _Handler
