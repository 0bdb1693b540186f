"""The Pulumi ESC backend against a loopback ESC service speaking the published REST API.

The backend goes through pulumi-esc-sdk over real HTTP to ``fakes.esc_service``; the last tests hold
the fake to the SDK's own models and to responses recorded from ESC itself, so it cannot drift.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from fakes.esc_service import EscService
from fakes.process import free_port
from sophia.errors import DependencyMissing
from sophia.secrets.backend import ConflictError, EnvironmentError_, NotFoundError
from sophia.secrets.pulumi import PulumiBackend

TOKEN = "pul-0123456789abcdef0123456789abcdef01234567"  # pragma: allowlist secret
WRONG = "pul-fedcba9876543210fedcba9876543210fedcba98"  # pragma: allowlist secret
#: ESC's recorded cases, trimmed copies in the repo (eval-properties.json: what ESC's open answered)
CASES = Path(__file__).parent / "esc_cases"

BASE = """\
values:
  db:
    host: db.internal
    password:
      fn::secret: base-db-password
  environmentVariables:
    DB_HOST: ${db.host}
"""

APP = """\
# the app's environment
imports:
  - shared/base
values:
  openai:
    key:
      fn::secret: sk-app-plaintext
  dsn: postgres://app:${db.password}@${db.host}/app
  environmentVariables:
    OPENAI_API_KEY: ${openai.key}
    DB_PASSWORD: ${db.password}
  files:
    PGPASS: "${db.host}:5432:app:app:${db.password}"
"""


@pytest.fixture
def esc() -> Iterator[EscService]:
    with EscService(TOKEN, orgs=("acme", "other")) as service:
        yield service


@pytest.fixture
def backend(esc: EscService) -> PulumiBackend:
    return PulumiBackend("acme", "sophia", access_token=TOKEN, api_url=esc.url)


# --- definitions and revisions -------------------------------------------------------------------


def test_put_creates_and_the_service_keeps_only_ciphertext(backend: PulumiBackend, esc: EscService) -> None:
    revision = backend.put(
        "app", "values:\n  key:\n    fn::secret: sk-app-plaintext\n  n: 1\n", expected_revision=0
    )

    stored = backend.definition("app")
    assert "sk-app-plaintext" not in stored and "sk-app-plaintext" not in esc.stored("acme", "sophia", "app")
    assert yaml.safe_load(stored)["values"]["key"]["fn::secret"]["ciphertext"].startswith("ZXNjeA")  # "escx"
    assert backend.names() == ["app"]
    assert backend.revision("app") == revision
    assert backend.open("app").values == {"key": "sk-app-plaintext", "n": 1}


def test_text_is_utf8_both_ways(backend: PulumiBackend) -> None:
    backend.put("app", "values:\n  greeting: grüß dich ✓\n  pin:\n    fn::secret: pässwörd\n")
    assert "grüß dich ✓" in backend.definition("app")
    assert backend.open("app").values == {"greeting": "grüß dich ✓", "pin": "pässwörd"}


def test_definition_round_trips_through_put(backend: PulumiBackend) -> None:
    backend.put("app", "values:\n  key:\n    fn::secret: sk-app-plaintext\n")
    first = backend.definition("app")
    backend.put("app", first)  # ciphertext sent back is kept as the service's own
    assert backend.definition("app") == first
    assert backend.open("app").values == {"key": "sk-app-plaintext"}


def test_revision_grows_on_every_write(backend: PulumiBackend) -> None:
    first = backend.put("app", "values: {n: 1}\n", expected_revision=0)
    second = backend.put("app", "values: {n: 2}\n", expected_revision=first)
    third = backend.put("app", "values: {n: 3}\n")
    assert first < second < third == backend.revision("app")
    assert backend.open("app").values == {"n": 3}


def test_names_accept_the_project_qualified_form(backend: PulumiBackend, esc: EscService) -> None:
    backend.put("sophia/app", "values: {n: 1}\n")
    backend.put("shared/base", "values: {n: 2}\n")
    assert backend.revision("app") == backend.revision("sophia/app")
    assert backend.names() == ["app"]  # the backend's project only
    assert ("acme", "shared", "base") in esc.envs
    with pytest.raises(EnvironmentError_, match="not an environment name"):
        backend.revision("a/b/c")


def test_names_the_sdk_would_refuse_client_side_are_left_to_the_service(backend: PulumiBackend) -> None:
    # pulumi-esc-sdk's pattern refuses any name *starting* with "open" or "yaml"
    backend.put("openai", "values: {n: 1}\n", expected_revision=0)
    assert backend.names() == ["openai"]


def test_delete(backend: PulumiBackend) -> None:
    backend.put("app", "values: {n: 1}\n")
    backend.delete("app")
    assert backend.names() == []
    with pytest.raises(NotFoundError):
        backend.delete("app")


@pytest.mark.parametrize("call", ["revision", "definition", "delete", "open"])
def test_missing_environment_is_not_found(backend: PulumiBackend, call: str) -> None:
    with pytest.raises(NotFoundError, match="acme/sophia/nope"):
        getattr(backend, call)("nope")


# --- conflicts -----------------------------------------------------------------------------------


def test_expected_revision_conflicts(backend: PulumiBackend) -> None:
    revision = backend.put("app", "values: {n: 1}\n", expected_revision=0)
    with pytest.raises(ConflictError, match="already exists"):
        backend.put("app", "values: {n: 2}\n", expected_revision=0)
    with pytest.raises(ConflictError, match=f"revision {revision}"):
        backend.put("app", "values: {n: 2}\n", expected_revision=revision - 1)
    with pytest.raises(ConflictError, match="does not exist"):
        backend.put("other", "values: {n: 2}\n", expected_revision=3)
    assert backend.revision("app") == revision
    assert backend.open("app").values == {"n": 1}


def test_a_writer_between_read_and_write_loses_through_the_etag(
    backend: PulumiBackend, esc: EscService
) -> None:
    revision = backend.put("app", "values: {n: 1}\n")
    esc.before_update = lambda: esc.seed("acme", "sophia", "app", "values: {n: 99}\n")  # lands mid-put

    with pytest.raises(ConflictError, match="changed since it was read"):
        backend.put("app", "values: {n: 2}\n", expected_revision=revision)

    patch = [r for r in esc.requests if r.method == "PATCH"][-1]
    assert patch.headers["etag"].startswith('"')  # the precondition was sent, as the ESC CLI sends it
    assert esc.stored("acme", "sophia", "app") == "values: {n: 99}\n"


@pytest.mark.parametrize("expected", [0, None])
def test_an_invalid_definition_is_refused_with_its_diagnostics_and_nothing_is_left(
    backend: PulumiBackend, expected: int | None
) -> None:
    with pytest.raises(EnvironmentError_, match=r'values.a: unknown property "nope"') as caught:
        backend.put("app", "values:\n  a: ${nope}\n", expected_revision=expected)
    assert not isinstance(caught.value, ConflictError | NotFoundError)
    assert backend.names() == []  # the empty environment created for the write was removed


# --- opening -------------------------------------------------------------------------------------


def test_open_with_imports_secrets_variables_and_files(backend: PulumiBackend) -> None:
    backend.put("shared/base", BASE)
    revision = backend.put("app", APP, expected_revision=0)

    opened = backend.open("app")

    assert opened.revision == revision and opened.diags == []
    assert opened.values["openai"]["key"] == "sk-app-plaintext"
    assert opened.values["dsn"] == "postgres://app:base-db-password@db.internal/app"
    assert opened.redacted["openai"]["key"] == "[secret]"
    assert opened.redacted["dsn"] == "[secret]"  # interpolating a secret makes a secret
    assert opened.redacted["db"] == {"host": "db.internal", "password": "[secret]"}
    assert "sk-app-plaintext" not in json.dumps(opened.redacted)
    assert "base-db-password" not in json.dumps(opened.redacted)
    assert set(opened.secrets) >= {"sk-app-plaintext", "base-db-password", opened.values["dsn"]}
    assert "db.internal" not in opened.secrets
    assert opened.environment_variables == {
        "DB_HOST": "db.internal",
        "OPENAI_API_KEY": "sk-app-plaintext",
        "DB_PASSWORD": "base-db-password",
    }
    assert opened.files == {"PGPASS": "db.internal:5432:app:app:base-db-password"}


def test_open_reads_the_revision_it_reports(backend: PulumiBackend, esc: EscService) -> None:
    first = backend.put("app", "values: {n: 1}\n")
    backend.open("app")
    opens = [r for r in esc.requests if r.path.endswith("/open")]
    assert opens[-1].path == f"/api/esc/environments/acme/sophia/app/versions/{first}/open"


def test_a_bare_import_is_the_default_project(backend: PulumiBackend, esc: EscService) -> None:
    esc.seed("acme", "default", "common", "values: {region: eu-west-1}\n")
    backend.put("app", "imports: [common]\nvalues: {where: '${region}'}\n")
    assert backend.open("app").values == {"region": "eu-west-1", "where": "eu-west-1"}


def test_open_reports_the_services_diagnostics(backend: PulumiBackend) -> None:
    backend.put("shared/base", BASE)
    backend.put("app", APP)
    backend.delete("shared/base")  # the import is gone: the service refuses to open

    opened = backend.open("app")

    assert opened.values == {} and opened.secrets == []
    first = opened.diags[0]
    assert (first.path, first.environment) == ("imports[0]", "sophia/app")
    assert "shared/base" in first.summary
    assert {d.path for d in opened.diags[1:]} >= {"values.dsn", "values.environmentVariables.DB_PASSWORD"}


def test_rotation_is_left_to_pulumi_cloud(backend: PulumiBackend) -> None:
    backend.put("app", "values: {n: 1}\n")
    with pytest.raises(EnvironmentError_, match="esc env rotate acme/sophia/app"):
        backend.open("app", rotate=True)


# --- listing -------------------------------------------------------------------------------------


def test_names_follow_continuation_tokens() -> None:
    with EscService(TOKEN, page_size=2) as esc:
        backend = PulumiBackend("acme", "sophia", access_token=TOKEN, api_url=esc.url)
        for name in ["e", "a", "d", "b", "c"]:
            esc.seed("acme", "sophia", name, "values: {}\n")
        esc.seed("acme", "zzz", "f", "values: {}\n")

        assert backend.names() == ["a", "b", "c", "d", "e"]

        lists = [r for r in esc.requests if r.method == "GET" and r.path == "/api/esc/environments/acme"]
        assert len(lists) == 3 and "continuationToken" not in lists[0].query
        assert all("continuationToken" in r.query for r in lists[1:])


# --- credentials and reachability ----------------------------------------------------------------


def test_a_refused_token_is_said_so_without_the_token(esc: EscService, backend: PulumiBackend) -> None:
    wrong = PulumiBackend("acme", "sophia", access_token=WRONG, api_url=esc.url)
    with pytest.raises(EnvironmentError_, match="refused the access token") as caught:
        wrong.names()
    assert not isinstance(caught.value, NotFoundError)
    assert "401" in str(caught.value)
    forbidden = PulumiBackend("elsewhere", "sophia", access_token=TOKEN, api_url=esc.url)
    with pytest.raises(EnvironmentError_, match=r"refused the access token \(403\)") as denied:
        forbidden.put("app", "values: {}\n")
    for exc in (caught.value, denied.value):
        text = f"{exc} {exc!r} {exc.__cause__!r} {exc.__context__!r}"
        assert TOKEN not in text and WRONG not in text
    assert TOKEN not in repr(backend) and TOKEN not in str(backend)


def test_a_service_that_is_down_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    backend = PulumiBackend("acme", "sophia", access_token=TOKEN, api_url=url, timeout=2)
    started = time.monotonic()
    with pytest.raises(EnvironmentError_, match=f"cannot reach Pulumi ESC at {url}") as caught:
        backend.revision("app")
    assert time.monotonic() - started < 5
    assert TOKEN not in str(caught.value)


def test_a_service_that_hangs_is_bounded_by_the_timeout() -> None:
    import socket

    with socket.socket() as listener:  # accepts connections (the kernel's backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        backend = PulumiBackend("acme", "sophia", access_token=TOKEN, api_url=url, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(EnvironmentError_, match=f"cannot reach Pulumi ESC at {url}.*timed out"):
            backend.names()
        assert time.monotonic() - started < 2


def test_without_the_sdk_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pulumi_esc_sdk", None)
    with pytest.raises(DependencyMissing, match=r"pip install 'sophia\[pulumi\]'"):
        PulumiBackend("acme", "sophia", access_token=TOKEN)


# --- the fake against the published shapes -------------------------------------------------------


def _call(esc: EscService, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"token {TOKEN}", **kw.pop("headers", {})}
    return httpx.request(method, esc.url + "/api/esc/environments/" + path, headers=headers, **kw)


def _no_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _no_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_no_nulls(v) for v in node]
    return node


def _parsed(cls: Any, text: str) -> Any:
    """``text`` parsed by an SDK model, which must also write it back field for field (nulls aside,
    which the models write for nullable fields): the fake sends nothing the published model lacks."""
    obj = cls.from_json(text)
    assert obj is not None
    assert _no_nulls(obj.to_dict()) == _no_nulls(json.loads(text))
    return obj


def test_the_fakes_wire_format_parses_with_the_sdks_models(esc: EscService) -> None:
    from pulumi_esc_sdk import models

    assert _call(esc, "POST", "acme", json={"project": "sophia", "name": "app"}).status_code == 204
    dup = _call(esc, "POST", "acme", json={"project": "sophia", "name": "app"})
    assert dup.status_code == 409 and _parsed(models.Error, dup.text).code == 409

    body = "values:\n  n: 1\n  s: {fn::secret: hidden}\n  l: [a, {b: true}]\n  files: {F: x}\n"
    patched = _call(
        esc, "PATCH", "acme/sophia/app", content=body, headers={"Content-Type": "application/x-yaml"}
    )
    assert patched.status_code == 200 and patched.headers["Content-Type"] == "application/json"
    assert _parsed(models.EnvironmentDiagnostics, patched.text).diagnostics is None
    assert patched.headers["Pulumi-ESC-Revision"] == "2" and patched.headers["ETag"]

    got = _call(esc, "GET", "acme/sophia/app")
    assert "yaml" in got.headers["Content-Type"] and got.headers["ETag"] == patched.headers["ETag"]
    definition = models.EnvironmentDefinition.from_dict(yaml.safe_load(got.text))
    assert definition is not None and definition.values is not None and definition.values.files == {"F": "x"}

    page = _parsed(models.OrgEnvironments, _call(esc, "GET", "acme").text)
    assert [(e.project, e.name) for e in page.environments or []] == [("sophia", "app")]
    assert page.next_token is None

    opened = _parsed(models.OpenEnvironment, _call(esc, "POST", "acme/sophia/app/open").text)
    env = _parsed(models.Environment, _call(esc, "GET", f"acme/sophia/app/open/{opened.id}").text)
    assert env.properties is not None and env.properties["s"].secret is True
    assert env.properties["s"].value == "hidden" and env.properties["n"].trace.var_def is not None

    bad = _call(esc, "PATCH", "acme/sophia/app", content="values: {a: '${nope}'}\n")
    assert bad.status_code == 400
    # ESC's error body with diagnostics (the ESC CLI's EnvironmentErrorResponse): Error plus diagnostics
    as_diags, as_error = models.EnvironmentDiagnostics.from_json(bad.text), models.Error.from_json(bad.text)
    assert as_diags is not None and as_error is not None
    assert {**as_diags.to_dict(), **as_error.to_dict()} == json.loads(bad.text) and as_error.code == 400
    diags = as_diags.diagnostics or []
    assert [(d.summary, d.path) for d in diags] == [('unknown property "nope"', "values.a")]
    for status, response in [
        (404, _call(esc, "GET", "acme/sophia/missing")),
        (401, httpx.get(esc.url + "/api/esc/environments/acme")),
        (409, _call(esc, "PATCH", "acme/sophia/app", content="values: {}\n", headers={"ETag": '"stale"'})),
    ]:
        assert response.status_code == status
        assert _parsed(models.Error, response.text).code == status


RECORDED = [
    "builtin-concat",
    "builtin-split-join-roundtrip",
    "escape-keys",
    "imports",
    "literals",
    "merge-replace",
    "plaintext",
    "secret-objects",
]


def _untraced(node: Any) -> Any:
    """A value in ESC's JSON form without its traces (their positions are not modelled)."""
    if isinstance(node, dict):
        return {k: _untraced(v) for k, v in node.items() if k != "trace"}
    if isinstance(node, list):
        return [_untraced(v) for v in node]
    return node


def _traces(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "trace" in node:
            yield node["trace"]
        for k, v in node.items():
            if k != "trace":
                yield from _traces(v)
    elif isinstance(node, list):
        for v in node:
            yield from _traces(v)


@pytest.mark.parametrize("case", RECORDED)
def test_the_fake_answers_as_esc_itself_did(esc: EscService, case: str) -> None:
    """ESC's own recorded evaluations (``expected.json``): the fake's open answers the same values,
    secret and unknown flags, in the same JSON form, and the SDK parses both."""
    from pulumi_esc_sdk import models

    folder = CASES / case
    for file in folder.glob("*.yaml"):
        name = case if file.stem == "env" else file.stem
        esc.seed("acme", "default", name, file.read_text())
    session = _call(esc, "POST", f"acme/default/{case}/open").json()["id"]
    got = _call(esc, "GET", f"acme/default/{case}/open/{session}").json()
    recorded = json.loads((folder / "eval-properties.json").read_text())

    assert _untraced(got["properties"]) == _untraced(recorded["properties"])
    ours, theirs = list(_traces(got["properties"])), list(_traces(recorded["properties"]))
    assert len(ours) == len(theirs)
    assert {json.dumps(sorted(t["def"])) for t in ours} == {json.dumps(sorted(t["def"])) for t in theirs}
    for props in (got["properties"], recorded["properties"]):
        models.Environment.from_dict({"properties": props})
