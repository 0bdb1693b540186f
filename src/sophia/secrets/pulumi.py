"""Pulumi ESC as a backend (optional extra ``sophia[pulumi]``): definitions live in Pulumi Cloud.

Names are ``env`` (in the backend's project) or ``project/env``. The service keeps every revision,
encrypts ``fn::secret`` plaintext on write and evaluates on open; this module only translates the
REST calls of ``pulumi-esc-sdk`` into the :class:`~sophia.secrets.backend.Backend` contract.

Why the SDK's raw responses rather than its typed ones: pulumi-esc-sdk 0.14's models reject what the
service legitimately sends. ``EnvironmentDefinition`` wants ``environmentVariables`` and ``files`` to
be plain strings (so any ``fn::secret`` there fails validation) and ``imports`` to be strings (so
``- env: {merge: false}`` fails); ``Environment.exprs`` fails on index accessors (``${a[0]}``) and
rotate-only references. So every call goes through the generated ``*_without_preload_content``
method (URL, auth header, content types from the SDK) and this module reads the JSON or YAML body.

Compare-and-swap: the service answers GET with ``ETag`` and ``Pulumi-ESC-Revision`` headers and
honours an ``ETag`` request header on PATCH (409 when the environment changed since), as the ESC CLI
does, so ``put(..., expected_revision=N)`` is a true CAS: read the revision and its ETag, compare,
then PATCH under that ETag. Creating is ``POST`` (409 when it exists) then that same guarded PATCH.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from sophia.errors import DependencyMissing
from sophia.secrets.backend import Backend, ConflictError, EnvironmentError_, NotFoundError, Opened
from sophia.secrets.esc import Diag, Result, Value, environment_variables, files
from sophia.secrets.esc_value import secret_texts

__all__ = ["PulumiBackend"]

log = logging.getLogger(__name__)

REVISION_HEADER = "Pulumi-ESC-Revision"
ETAG_HEADER = "ETag"


def _sdk() -> Any:
    try:
        import pulumi_esc_sdk
    except ImportError:
        raise DependencyMissing(
            "pulumi-esc-sdk", "pulumi", purpose="the Pulumi ESC secrets backend"
        ) from None
    return pulumi_esc_sdk


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (an empty body is ``{}``)."""
        try:
            data = json.loads(self.body) if self.body.strip() else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise EnvironmentError_(
                f"Pulumi ESC answered HTTP {self.status} with a body that is not a JSON object"
            )
        return data


class PulumiBackend(Backend):
    """Environments of one Pulumi Cloud organization; bare names belong to ``project``."""

    kind = "pulumi"

    def __init__(
        self,
        org: str,
        project: str,
        *,
        access_token: str,
        api_url: str = "https://api.pulumi.com",
        timeout: float = 10,
    ) -> None:
        sdk = _sdk()
        import urllib3  # a dependency of the SDK

        if not access_token:
            raise EnvironmentError_("the Pulumi ESC backend needs an access token (PULUMI_ACCESS_TOKEN)")
        self.org, self.project, self.api_url = org, project, api_url.rstrip("/")
        self._timeout = float(timeout)
        self._token = access_token  # only to scrub it from any text the service echoes back
        config = sdk.Configuration(host=self.api_url, access_token=access_token)
        # Connection failures are retried twice; a read that timed out is not (the timeout is the budget).
        config.retries = urllib3.Retry(total=2, connect=2, read=0, redirect=0, status=0, other=0)
        self._api = sdk.EscClient(config).esc_api  # EscClient rewrites the host to <api_url>/api/esc
        self._models = sdk.models
        self._transport_errors: tuple[type[BaseException], ...] = (
            urllib3.exceptions.HTTPError,
            sdk.ApiException,
        )

    def __repr__(self) -> str:
        return f"PulumiBackend(org={self.org!r}, project={self.project!r}, api_url={self.api_url!r})"

    # --- the Backend contract ------------------------------------------------------------------

    def names(self) -> list[str]:
        out: set[str] = set()
        token: str | None = None
        seen: set[str] = set()
        while True:
            page = self._send(
                "list environments",
                self.org,
                self._api.list_environments_without_preload_content,
                self.org,
                token,
            ).json()
            for env in page.get("environments") or []:
                if env.get("project") == self.project and isinstance(env.get("name"), str):
                    out.add(env["name"])
            token = page.get("nextToken") or None
            if token is None:
                return sorted(out)
            if token in seen:  # a service that hands the same page token twice would loop forever
                raise EnvironmentError_(
                    f"Pulumi ESC repeated the continuation token while listing {self.org}"
                )
            seen.add(token)

    def revision(self, name: str) -> int:
        return self._current(name)[0]

    def definition(self, name: str) -> str:
        project, env = self._split(name)
        reply = self._send(
            "read", name, self._api.get_environment_without_preload_content, self.org, project, env
        )
        return reply.body.decode("utf-8")

    def put(self, name: str, yaml_text: str, *, expected_revision: int | None = None) -> int:
        """Write ``yaml_text`` (the service encrypts its ``fn::secret`` plaintext).

        ``expected_revision`` 0 creates (ConflictError when it exists); N compares the revision and
        PATCHes under the ETag read with it, so a writer in between makes the PATCH fail with 409;
        None writes unconditionally, creating the environment when it is missing.
        """
        project, env = self._split(name)
        if expected_revision is None:
            try:
                return self._patch(name, project, env, yaml_text, etag=None)
            except NotFoundError:
                created = self._create(name, project, env, exist_ok=True)
            try:
                return self._patch(name, project, env, yaml_text, etag=None)
            except EnvironmentError_:
                if created:
                    self._undo_create(name, project, env)
                raise
        if expected_revision == 0:
            self._create(name, project, env, exist_ok=False)
            reply = self._send(
                "read", name, self._api.get_environment_without_preload_content, self.org, project, env
            )
            if reply.body.strip():  # another writer filled it between our create and this read
                raise ConflictError(f"{name} was written by someone else right after it was created")
            try:
                return self._patch(name, project, env, yaml_text, etag=reply.headers.get(ETAG_HEADER))
            except EnvironmentError_:
                self._undo_create(name, project, env)
                raise
        try:
            revision, etag = self._current(name)
        except NotFoundError:
            raise ConflictError(f"{name} does not exist (expected revision {expected_revision})") from None
        if revision != expected_revision:
            raise ConflictError(f"{name} is at revision {revision}, not {expected_revision}")
        return self._patch(name, project, env, yaml_text, etag=etag)

    def delete(self, name: str) -> None:
        project, env = self._split(name)
        self._send(
            "delete", name, self._api.delete_environment_without_preload_content, self.org, project, env
        )

    def open(self, name: str, *, rotate: bool | list[str] = False) -> Opened:
        """Open the current revision in Pulumi Cloud (opened *at* that revision, so values and
        revision agree even when a write lands in between)."""
        if rotate or isinstance(rotate, list):
            raise EnvironmentError_(
                f"rotating {name} runs in Pulumi Cloud (`esc env rotate {self.org}/{self._qualified(name)}` "
                "or the console): pulumi-esc-sdk has no rotate call"
            )
        project, env = self._split(name)
        revision, _ = self._current(name)
        call = self._api.open_environment_at_version_without_preload_content
        opened = self._send("open", name, call, self.org, project, env, str(revision), accept=(400,))
        answer = opened.json()
        diags = _diags(answer.get("diagnostics"), self._qualified(name))
        if opened.status == 400:  # the service refuses to open an environment with errors
            if not diags:
                raise self._status_error(opened, "open", name)
            return Opened(name, revision, {}, {}, diags=diags)
        session = answer.get("id")
        if not isinstance(session, str):
            raise EnvironmentError_(f"Pulumi ESC answered opening {name} without a session id")
        read = self._send(
            "read opened",
            name,
            self._api.read_open_environment_without_preload_content,
            self.org,
            project,
            env,
            session,
        )
        return _opened(name, revision, read.json().get("properties") or {}, diags)

    # --- calls ---------------------------------------------------------------------------------

    def _split(self, name: str) -> tuple[str, str]:
        parts = name.split("/")
        if len(parts) == 1 and parts[0]:
            return self.project, parts[0]
        if len(parts) == 2 and all(parts):
            return parts[0], parts[1]
        raise EnvironmentError_(f"{name!r} is not an environment name (use env or project/env)")

    def _qualified(self, name: str) -> str:
        project, env = self._split(name)
        return f"{project}/{env}"

    def _current(self, name: str) -> tuple[int, str | None]:
        project, env = self._split(name)
        reply = self._send(
            "read", name, self._api.get_environment_without_preload_content, self.org, project, env
        )
        return _revision(reply, name), reply.headers.get(ETAG_HEADER)

    def _create(self, name: str, project: str, env: str, *, exist_ok: bool) -> bool:
        """Create an empty environment: whether it was created (False: it existed, with ``exist_ok``)."""
        # model_construct skips the SDK's client-side patterns, which refuse any name that merely
        # *starts* with "open" or "yaml" (and projects starting with "default"); the service decides.
        body = self._models.CreateEnvironment.model_construct(project=project, name=env)
        call = self._api.create_environment_without_preload_content
        reply = self._send("create", name, call, self.org, body, accept=(409,))
        if reply.status == 409 and not exist_ok:
            raise ConflictError(f"{name} already exists")
        return reply.status != 409

    def _undo_create(self, name: str, project: str, env: str) -> None:
        try:
            self._send(
                "delete", name, self._api.delete_environment_without_preload_content, self.org, project, env
            )
        except EnvironmentError_ as exc:  # the write's own error is the one the caller needs
            log.warning("could not remove the empty environment %s after a failed write: %s", name, exc)

    def _patch(self, name: str, project: str, env: str, yaml_text: str, *, etag: str | None) -> int:
        headers = {ETAG_HEADER: etag} if etag else {}
        call = self._api.update_environment_yaml_without_preload_content
        reply = self._send("write", name, call, self.org, project, env, yaml_text, headers=headers)
        if reply.headers.get(REVISION_HEADER) is None:  # older services: ask for it
            return self.revision(name)
        return _revision(reply, name)

    def _send(
        self,
        what: str,
        name: str,
        call: Callable[..., Any],
        *args: Any,
        headers: Mapping[str, str] | None = None,
        accept: tuple[int, ...] = (),
    ) -> _Reply:
        """One SDK call: transport failures and error statuses become backend errors."""
        try:
            resp = call(*args, _request_timeout=self._timeout, _headers=dict(headers or {}))
            reply = _Reply(resp.status, resp.data or b"", resp.headers)
        except ValidationError as exc:  # the SDK's own checks of names (lengths, characters)
            problems = "; ".join(str(e.get("msg")) for e in exc.errors())
            raise EnvironmentError_(f"cannot {what} {name!r} in Pulumi ESC: {problems}") from None
        except self._transport_errors as exc:
            reason = getattr(exc, "reason", None) or exc
            raise EnvironmentError_(
                f"cannot reach Pulumi ESC at {self.api_url} to {what} {name}: {self._scrub(str(reason))}"
            ) from None
        if reply.status >= 400 and reply.status not in accept:
            raise self._status_error(reply, what, name)
        return reply

    def _status_error(self, reply: _Reply, what: str, name: str) -> EnvironmentError_:
        status, message = reply.status, self._scrub(_message(reply))
        if status == 404:
            return NotFoundError(
                f"no environment {self.org}/{self._qualified(name)} in Pulumi ESC ({message})"
            )
        if status == 409:
            return ConflictError(f"{name} changed since it was read (Pulumi ESC: {message})")
        if status in (401, 403):
            return EnvironmentError_(
                f"Pulumi ESC at {self.api_url} refused the access token ({status}) for organization "
                f"{self.org}: check PULUMI_ACCESS_TOKEN and the token's access"
            )
        diags = _diags(_json_or_none(reply.body, "diagnostics"), self._qualified(name))
        if status == 400 and diags:
            listed = "; ".join(f"{d.path or '(root)'}: {d.summary}" for d in diags)
            return EnvironmentError_(f"Pulumi ESC rejected {name}: {self._scrub(listed)}")
        if status == 429:
            return EnvironmentError_(f"Pulumi ESC rate-limited the {what} of {name}: try again later")
        return EnvironmentError_(f"Pulumi ESC failed to {what} {name}: HTTP {status} {message}")

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[redacted]")


# --- the service's JSON --------------------------------------------------------------------------


def _json_or_none(body: bytes, key: str) -> Any:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None


def _message(reply: _Reply) -> str:
    msg = _json_or_none(reply.body, "message")
    if isinstance(msg, str):
        return msg
    return reply.body.decode("utf-8", "replace").strip()[:200] or f"HTTP {reply.status}"


def _revision(reply: _Reply, name: str) -> int:
    raw = reply.headers.get(REVISION_HEADER)
    try:
        return int(raw or "")
    except ValueError:
        raise EnvironmentError_(f"Pulumi ESC gave no {REVISION_HEADER} header for {name}") from None


def _diags(raw: Any, environment: str) -> list[Diag]:
    out = []
    for d in raw if isinstance(raw, list) else []:
        if isinstance(d, dict) and isinstance(d.get("summary"), str):
            where = d.get("range")
            named = where.get("environment") if isinstance(where, dict) else None
            out.append(Diag(d["summary"], d.get("path") or "", named or environment))
    return out


def _value(node: Any) -> Value:
    """ESC's JSON form of a value (``{"value", "secret", "unknown", "trace"}``, nested) as a Value."""
    if not isinstance(node, dict):
        return Value(node)
    secret, unknown = bool(node.get("secret")), bool(node.get("unknown"))
    if unknown:
        return Value(None, secret=secret, unknown=True)
    raw = node.get("value")
    if isinstance(raw, list):
        return Value([_value(i) for i in raw], secret=secret)
    if isinstance(raw, dict):
        return Value({str(k): _value(i) for k, i in raw.items()}, secret=secret)
    return Value(raw, secret=secret)


def _opened(name: str, revision: int, properties: Mapping[str, Any], diags: list[Diag]) -> Opened:
    root = Value({str(k): _value(p) for k, p in properties.items()})
    result = Result(root, diags)
    return Opened(
        name,
        revision,
        root.reveal(),
        root.redacted(),
        secrets=secret_texts(root),
        environment_variables=environment_variables(result),
        files=files(result),
        diags=diags,
    )
