"""The Vault ``fn::open`` providers, evaluated in ESC environments against a loopback Vault."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from fakes.vault import FakeVault
from sophia.secrets.esc import Result, evaluate
from sophia.secrets.esc_value import secret_texts
from sophia.secrets.providers import builtin_providers

DOWN = "http://127.0.0.1:9"  # nothing listens: connections are refused at once
LOGIN, SECRETS = "values.vault.login", "values.vault.secrets"


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    with FakeVault() as fake:
        fake.enable_kv("secret", version=2)
        fake.enable_kv("kv1", version=1)
        fake.write("secret/api-key", {"value": "first-value", "owner": "ml-team"})
        fake.write("secret/api-key", {"value": "second-value", "owner": "ml-team"})
        fake.write("kv1/db", {"password": "kv-one-value"})
        fake.set_policy("token-creator", {"auth/token/create": ["update"]})
        fake.set_policy("kv-read", {"secret/data/*": ["read"], "kv1/*": ["read"]})
        yield fake


@pytest.fixture
def parent(vault: FakeVault) -> str:
    """What an operator hands to ESC: a token that may create children and read the KV mounts."""
    return vault.create_token(["token-creator", "kv-read"])


def envs(**definitions: str) -> Callable[[str], str]:
    def load(name: str) -> str:
        if name not in definitions:
            raise OSError(f"environment {name} not found")
        return definitions[name]

    return load


def login(address: str, token: str, *, options: str = "", namespace: str = "") -> str:
    ns = f"        namespace: {namespace}\n" if namespace else ""
    return (
        "    login:\n      fn::open::vault-login:\n"
        f"        address: {address}\n{ns}"
        f"        token:\n          token: {{fn::secret: {token}}}\n{options}"
    )


def reads(**paths: str) -> str:
    lines = "".join(f"          {name}: {{path: {path}}}\n" for name, path in paths.items())
    return (
        "    secrets:\n      fn::open::vault-secrets:\n        login: ${vault.login}\n        read:\n" + lines
    )


def run(text: str, **providers_kw: httpx.Client) -> Result:
    return evaluate(
        "app", envs(app="values:\n  vault:\n" + text), providers=builtin_providers(**providers_kw)
    )


def diags(result: Result) -> set[tuple[str, str]]:
    return {(d.summary, d.path) for d in result.diags}


def assert_hidden(result: Result, *tokens: str) -> None:
    """No token in a diagnostic or in the redacted view."""
    shown = json.dumps([d.summary for d in result.diags]) + json.dumps(result.redacted)
    for token in tokens:
        assert token not in shown


# --- login and read ------------------------------------------------------------------------------


def test_token_login_creates_a_child_token_that_reads_kv2_and_kv1(vault: FakeVault, parent: str) -> None:
    options = (
        "          displayName: esc-token\n          policies: [kv-read]\n"
        "          metadata: {team: ml}\n          maxTtl: 1h30m\n"
    )
    result = run(
        login(vault.url, parent, options=options)
        + reads(**{"api-key": "secret/data/api-key", "db": "kv1/db"})
    )
    assert result.diags == []
    (child,) = vault.children(parent)
    token = result.values["vault"]["login"]["token"]
    assert token != parent and vault.tokens[token] is child
    assert (child.display_name, child.policies, child.meta) == (
        "token-esc-token",
        ["default", "kv-read"],
        {"team": "ml"},
    )
    assert child.explicit_max_ttl == 5400
    assert result.values["vault"]["login"] == {"address": vault.url, "token": token}
    secrets = result.values["vault"]["secrets"]
    assert secrets["api-key"]["data"] == {"value": "second-value", "owner": "ml-team"}
    assert secrets["api-key"]["metadata"]["version"] == 2
    assert secrets["api-key"]["metadata"]["destroyed"] is False
    assert secrets["db"] == {"password": "kv-one-value"}
    assert [(r.method, r.path, r.token) for r in vault.requests] == [
        ("POST", "auth/token/create", parent),
        ("GET", "secret/data/api-key", token),
        ("GET", "kv1/db", token),
    ]


def test_the_token_and_every_value_read_are_secret(vault: FakeVault, parent: str) -> None:
    result = run(login(vault.url, parent) + reads(**{"api-key": "secret/data/api-key"}))
    token = result.values["vault"]["login"]["token"]
    meta = {"created_time", "custom_metadata", "deletion_time", "destroyed", "version"}
    assert result.redacted == {
        "vault": {
            "login": {"address": vault.url, "token": "[secret]"},
            "secrets": {
                "api-key": {
                    "data": {"value": "[secret]", "owner": "[secret]"},
                    "metadata": dict.fromkeys(meta, "[secret]"),
                }
            },
        }
    }
    assert {token, "second-value", "ml-team"} <= set(secret_texts(result.value))  # type: ignore[arg-type]
    assert_hidden(result, token, parent)


def test_defaults_display_name_pulumi_and_the_parents_policies(vault: FakeVault, parent: str) -> None:
    result = run(login(vault.url, parent))
    assert result.diags == []
    (child,) = vault.children(parent)
    assert (child.display_name, child.policies, child.meta, child.explicit_max_ttl) == (
        "token-pulumi",
        ["default", "kv-read", "token-creator"],
        None,
        0,
    )
    assert vault.requests[0].body == {"display_name": "pulumi"}


def test_the_namespace_goes_in_every_call_and_in_the_login_output(vault: FakeVault, parent: str) -> None:
    vault.enable_kv("secret", namespace="admin/example")
    vault.write("secret/api-key", {"value": "namespaced-value"}, namespace="admin/example")
    text = login(vault.url, parent, namespace="admin/example") + reads(k="secret/data/api-key")
    result = run(text)
    assert result.diags == []
    assert result.values["vault"]["login"]["namespace"] == "admin/example"
    assert result.values["vault"]["secrets"]["k"]["data"] == {"value": "namespaced-value"}
    assert [r.namespace for r in vault.requests] == ["admin/example", "admin/example"]
    assert vault.children(parent)[0].namespace == "admin/example"


def test_field_picks_one_top_level_field_of_the_data(vault: FakeVault, parent: str) -> None:
    read = (
        "    secrets:\n      fn::open::vault-secrets:\n        login: ${vault.login}\n        read:\n"
        "          k: {path: secret/data/api-key, field: data}\n"
    )
    result = run(login(vault.url, parent) + read)
    assert result.values["vault"]["secrets"] == {"k": {"value": "second-value", "owner": "ml-team"}}
    result = run(login(vault.url, parent) + read.replace("field: data", "field: value"))
    assert diags(result) == {
        (
            f'vault-secrets: reading "secret/data/api-key" (read.k) at {vault.url}: no field "value" '
            "(fields: data, metadata)",
            SECRETS,
        )
    }


def test_a_read_can_use_a_login_from_an_import(vault: FakeVault, parent: str) -> None:
    base = "values:\n  vault:\n" + login(vault.url, parent)
    merged = "imports: [base]\nvalues:\n  vault:\n" + reads(k="kv1/db")
    unmerged = (
        "imports:\n  - base: {merge: false}\nvalues:\n  db:\n    fn::open::vault-secrets:\n"
        "      login: ${imports.base.vault.login}\n      read: {k: {path: kv1/db}}\n"
    )
    load = envs(base=base, merged=merged, unmerged=unmerged)
    for name, at in (("merged", ("vault", "secrets")), ("unmerged", ("db",))):
        result = evaluate(name, load, providers=builtin_providers())
        assert result.diags == []
        value = result.values
        for key in at:
            value = value[key]
        assert value == {"k": {"password": "kv-one-value"}}
    assert len(vault.children(parent)) == 2  # one login per evaluation, the read uses it


# --- failures: ESC diagnostics at the fn::open node, never the token ------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("secret/data/missing", "not found (HTTP 404)"),
        ("secret/api-key", "Invalid path for a versioned K/V secrets engine. See the API docs"),
        ("nomount/x", 'no handler for route "nomount/x". route entry not found. (HTTP 404)'),
    ],
)
def test_not_found_is_reported_at_the_secrets_node(vault: FakeVault, path: str, reason: str) -> None:
    result = run(login(vault.url, vault.root_token) + reads(k=path))
    ((summary, at),) = diags(result)
    assert at == SECRETS
    assert summary.startswith(f'vault-secrets: reading "{path}" (read.k) at {vault.url}: ')
    assert reason in summary
    assert result.values["vault"]["secrets"] == "[unknown]"
    assert_hidden(result, vault.root_token, *vault.tokens)


def test_permission_denied_on_a_read_names_the_path_but_not_the_token(vault: FakeVault) -> None:
    vault.set_policy("one-key", {"secret/data/api-key": ["read"]})
    parent = vault.create_token(["token-creator", "one-key"])
    vault.write("secret/other", {"value": "x"})
    result = run(login(vault.url, parent) + reads(ok="secret/data/api-key", other="secret/data/other"))
    assert diags(result) == {
        (
            f'vault-secrets: reading "secret/data/other" (read.other) at {vault.url}: permission denied (HTTP 403)',
            SECRETS,
        )
    }
    assert result.values["vault"]["login"]["token"] != "[unknown]"
    assert_hidden(result, parent, *vault.tokens)


@pytest.mark.parametrize(
    ("policies", "options", "reason"),
    [
        (None, "", "permission denied (HTTP 403)"),  # a token Vault does not know
        (["kv-read"], "", "permission denied (HTTP 403)"),  # may not create tokens (multierror text)
        (
            ["token-creator"],
            "          policies: [kv-read]\n",
            "child policies must be subset of parent (HTTP 400)",
        ),
    ],
)
def test_a_failed_login_is_reported_at_the_login_node_only(
    vault: FakeVault, policies: list[str] | None, options: str, reason: str
) -> None:
    unknown = "hvs.not-a-token-vault-knows"  # pragma: allowlist secret
    parent = vault.create_token(policies) if policies is not None else unknown
    result = run(login(vault.url, parent, options=options) + reads(k="kv1/db"))
    assert diags(result) == {(f"vault-login: creating a child token at {vault.url}: {reason}", LOGIN)}
    assert result.values["vault"] == {"login": "[unknown]", "secrets": "[unknown]"}  # no read was tried
    assert [r.path for r in vault.requests] == ["auth/token/create"]
    assert_hidden(result, parent, *vault.tokens)


def test_vault_down_or_sealed(vault: FakeVault, parent: str) -> None:
    result = run(login(DOWN, parent) + reads(k="kv1/db"))
    ((summary, at),) = diags(result)
    assert at == LOGIN
    assert summary.startswith(f"vault-login: creating a child token at {DOWN}: cannot reach Vault: ")
    assert_hidden(result, parent)
    vault.sealed = True
    result = run(login(vault.url, parent))
    assert diags(result) == {
        (f"vault-login: creating a child token at {vault.url}: Vault is sealed (HTTP 503)", LOGIN)
    }


def test_jwt_login_is_refused_offline_with_a_clear_message(vault: FakeVault) -> None:
    text = f"    login:\n      fn::open::vault-login:\n        address: {vault.url}\n        jwt: {{role: example-role}}\n"
    result = run(text)
    ((summary, at),) = diags(result)
    assert at == LOGIN
    assert "jwt login" in summary and "Pulumi Cloud" in summary and "use token login" in summary
    assert vault.requests == []


def test_inputs_are_checked_against_the_published_schema(vault: FakeVault, parent: str) -> None:
    text = (
        "    a:\n      fn::open::vault-login: {token: {token: x}}\n"
        f"    b:\n      fn::open::vault-login: {{address: {vault.url}, token: {{token: x, maxTtl: 1d}}}}\n"
        "    c:\n      fn::open::vault-secrets: {login: {address: x, token: y}, read: {k: {field: f}}}\n"
    )
    assert diags(run(text)) == {
        ("missing required properties: address", 'values.vault.a["fn::open::vault-login"]'),
        (
            'string must match the pattern "^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"',
            'values.vault.b["fn::open::vault-login"].token.maxTtl',
        ),
        ("missing required properties: path", 'values.vault.c["fn::open::vault-secrets"].read.k'),
    }
    assert vault.requests == []


@pytest.mark.parametrize("suffix", ["/v1", "/ui/vault", "?x=1"])
def test_an_address_with_a_path_is_refused_before_any_call(
    vault: FakeVault, parent: str, suffix: str
) -> None:
    result = run(login(vault.url + suffix, parent))
    ((summary, at),) = diags(result)
    assert at == LOGIN
    assert summary.startswith(f'vault-login: invalid address "{vault.url}{suffix}": ')
    assert vault.requests == []
    trailing_slash = run(login(vault.url + "/", parent))  # as in ESC's own example
    assert trailing_slash.diags == []


def test_vault_error_text_never_carries_the_token_and_redirects_are_not_followed() -> None:
    parent = "hvs.parent-token-for-this-test-only"  # pragma: allowlist secret
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        if request.url.host == "echo.test":
            return httpx.Response(400, json={"errors": [f"invalid token {parent} for this path"]})
        return httpx.Response(307, headers={"Location": "http://active.test:8200/v1/auth/token/create"})

    with httpx.Client(transport=httpx.MockTransport(answer)) as client:
        result = run(
            login("http://echo.test:8200", parent)
            + login("http://standby.test:8200", parent).replace("    login:", "    other:"),
            http=client,
        )
    assert diags(result) == {
        (
            "vault-login: creating a child token at http://echo.test:8200: invalid token [secret] for this path (HTTP 400)",
            LOGIN,
        ),
        (
            "vault-login: creating a child token at http://standby.test:8200: redirected to "
            "http://active.test:8200/v1/auth/token/create (point address at the active node) (HTTP 307)",
            "values.vault.other",
        ),
    }
    assert [r.url.host for r in sent] == ["echo.test", "standby.test"]
    assert all(r.headers["X-Vault-Token"] == parent for r in sent)


# --- TLS -----------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_tls_certificates_are_verified(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeVault(tls=certificate) as vault:
        parent = vault.root_token
        assert vault.url.startswith("https://")
        refused = run(login(vault.url, parent))
        ((summary, _),) = diags(refused)
        assert "CERTIFICATE_VERIFY_FAILED" in summary
        assert vault.tokens.keys() == {parent}
        with httpx.Client(verify=ssl.create_default_context(cafile=str(certificate[0]))) as client:
            assert run(login(vault.url, parent), http=client).diags == []
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # the private-CA route without code
        assert run(login(vault.url, parent)).diags == []
        assert len(vault.children(parent)) == 2
