"""The secrets scanner: recall per context and precision on a generated labelled set, and tricky cases."""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from sophia.secrets.scan import (
    MAX_BYTES,
    SHAPED,
    Finding,
    credential_spans,
    github_checksum,
    scan_paths,
    scan_text,
)


def _load(stem: str) -> ModuleType:
    # tests/ is on sys.path, and "secrets" is a stdlib module: load the generators by their path.
    name = f"sophia_tests_secrets_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{stem}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


labelled = _load("labelled")
heldout = _load("heldout")
#: not a seed the rules were tuned on (those were 1-4)
SEED = 20261203


@pytest.fixture(scope="module")
def scored() -> dict[str, object]:
    samples = labelled.generate(SEED, per_kind=6)
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    kinds_right = kinds_total = true_pos = false_pos = 0
    by_kind: Counter[tuple[str, str]] = Counter()
    for sample in samples:
        findings = scan_text(sample.text)
        for finding in findings:
            end = finding.offset + finding.length
            if any(finding.offset < lb.end and lb.start < end for lb in sample.labels):
                true_pos += 1
            else:
                false_pos += 1
        for label in sample.labels:
            totals[sample.context] += 1
            cover = [f for f in findings if f.offset <= label.start and label.end <= f.offset + f.length]
            hits[sample.context] += bool(cover)
            by_kind[(label.kind, sample.context)] += not cover  # misses, per kind and context
            if cover and label.kind not in labelled.NAMED_ONLY:
                kinds_total += 1
                kinds_right += cover[0].kind == label.kind
    return {
        "recall": {c: hits[c] / totals[c] for c in totals},
        "totals": totals,
        "precision": true_pos / (true_pos + false_pos),
        "false_pos": false_pos,
        "kind_accuracy": kinds_right / kinds_total,
        "missed": +by_kind,
        "samples": samples,
    }


@pytest.mark.parametrize("context", labelled.CONTEXTS)
def test_recall_in_every_context_is_at_least_98_percent(scored: dict, context: str) -> None:
    assert scored["totals"][context] >= 100
    assert scored["recall"][context] >= 0.98, scored["recall"]


def test_precision_is_at_least_95_percent_with_hundreds_of_negatives(scored: dict) -> None:
    assert sum(s.context == "negative" for s in scored["samples"]) >= 400
    assert scored["precision"] >= 0.95, (scored["precision"], scored["false_pos"])


def test_every_kind_is_found_in_every_context(scored: dict) -> None:
    planted = {(lb.kind, s.context) for s in scored["samples"] for lb in s.labels}
    assert {kind for kind, _ in planted} == set(labelled.MAKERS) | {"private-key", "gcp-service-account"}
    assert scored["missed"] == Counter()


def test_every_shaped_rule_is_exercised_by_the_labelled_set(scored: dict) -> None:
    # a rule no generated key ever reaches is a rule nobody has checked against its vendor's shape
    texts = [s.text for s in scored["samples"] if s.context != "negative"]
    unused = [rule.pattern.pattern[:40] for rule in SHAPED if not any(rule.pattern.search(t) for t in texts)]
    assert unused == []


def test_shaped_keys_are_named_by_their_vendor(scored: dict) -> None:
    assert scored["kind_accuracy"] >= 0.98


def test_previews_never_hold_the_whole_secret(scored: dict) -> None:
    for sample in scored["samples"]:
        for finding in scan_text(sample.text):
            secret = sample.text[finding.offset : finding.offset + finding.length]
            assert secret not in finding.preview
            assert str(len(secret)) in finding.preview


def test_line_and_column_point_at_the_secret() -> None:
    key = "gsk_" + "aB3" * 17 + "x"
    text = f"first line\n  second\nGROQ_API_KEY = '{key}'\n"
    [finding] = scan_text(text, path="x.py")
    assert (finding.kind, finding.line, finding.column, finding.path) == ("groq", 3, 17, "x.py")
    assert text.splitlines()[2][finding.column - 1 :].startswith(key)


def test_github_checksum_marks_a_token_verified() -> None:
    body = "zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ"
    good = f"ghp_{body}{github_checksum(body)}"
    bad = f"ghp_{body}{'000000' if github_checksum(body) != '000000' else '000001'}"
    [ok] = scan_text(f"token: {good}")
    [unverified] = scan_text(f"token: {bad}")
    assert ok.kind == unverified.kind == "github"
    assert ok.verified and not unverified.verified


@pytest.mark.parametrize(
    "text",
    [
        f"sha256={hashlib.sha256(b'x').hexdigest()}",
        f"cache_key = '{hashlib.sha256(b'x').hexdigest()}'",
        "cache_key = 'user-42-profile-v2'",
        "idempotency_key: Qw8rT5yU2iO9pA3sD6fG1hJ4kL7zX0cV",
        f"key={hashlib.md5(b'x').hexdigest()}",
        f"commit {hashlib.sha1(b'x').hexdigest()}",
        f"token_hash = '{hashlib.sha256(b'y').hexdigest()}'",
        f"request_id: {uuid.UUID(int=12345678901234567890, version=4)}",
        "thumbnail = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='",
        'api_key = os.environ["OPENAI_API_KEY"]',
        "api_key = settings.openai.api_key",
        "OPENAI_API_KEY=sk-...your-key-here",
        "password: ${DB_PASSWORD}",
        "password = 'changeme-please'",
        "DATABASE_URL=postgres://app:${DB_PASSWORD}@db/ledger",
        "password_file: /run/secrets/db_password",
        "max_tokens=4096 tokens=1234",
        "key: user:42:profile",
        "Authorization: Bearer <token>",
        "sk-proj-",
        # public by design: Stripe publishable keys, Langfuse public keys
        "STRIPE_PUBLISHABLE_KEY=pk_live_" + "51HxAbCdEfGh" * 4,
        "LANGFUSE_PUBLIC_KEY=pk-lf-0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0",
        # identifiers, types, paths and truncated examples that sit where a secret would
        "    def load(self, key: PKCS12PrivateKeyTypes | None) -> None:",
        "private_key: Ed25519PrivateKey | Ed448PrivateKey",
        "- (id)hf_requiredCharacteristicTypesForDisplay;",
        "See detect-secrets: `benchmarks/secrets/README.md`.",
        'verify_token="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."',
        "sk-learn-gaussian-process-regression-notebook-v2",
    ],
)
def test_not_a_secret(text: str) -> None:
    assert scan_text(text) == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("AZURE_OPENAI_API_KEY=0f1e2d3c4b5a69788796a5b4c3d2e1f0", "azure"),  # pragma: allowlist secret
        ("TOGETHER_API_KEY=" + "9a8b7c6d5e4f3a2b" * 4, "together"),
        ("MISTRAL_KEY=Qw8rT5yU2iO9pA3sD6fG1hJ4kL7zX0cV", "mistral"),  # pragma: allowlist secret
        (
            "ERROR calling cohere with key=N4FjaMO4yRgO9XMf76zOWVQ3OfXFkM1tC141NuYG: 401",  # pragma: allowlist secret
            "cohere",
        ),
        ("client_secret: 3f2a9c1e-77b0-4d5e-9a8f-0c1b2d3e4f5a", "generic-secret"),  # pragma: allowlist secret
        # words inside other words do not disqualify a name: sha in SHARED, mode in MODEL, uri in SECURITY
        ("SHARED_SECRET=Zr8mQ2xWp9Lk4Vb7", "generic-secret"),  # pragma: allowlist secret
        ("MODEL_API_KEY: Zr8mQ2xWp9Lk4Vb7Tc1N", "generic-secret"),  # pragma: allowlist secret
        ("SECURITY_TOKEN='Zr8mQ2xWp9Lk4Vb7Tc1N'", "generic-secret"),  # pragma: allowlist secret
    ],
)
def test_hex_uuid_and_plain_keys_count_where_a_secret_name_is_bound(text: str, kind: str) -> None:
    [finding] = scan_text(text)
    assert finding.kind == kind


def test_aws_secret_key_found_beside_its_access_key_id_whatever_its_name() -> None:
    # AWS's documentation example keys, altered: fakes on purpose
    text = "id AKIAIOSFODNN7EXAMPL2\nsome_value = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE9\n"  # pragma: allowlist secret
    kinds = [f.kind for f in scan_text(text)]
    assert kinds == ["aws-access-key-id", "aws-secret-access-key"]
    # without the id near it, a 40-character base64 value with no secret name is left alone
    assert scan_text("some_value = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE9") == []


def test_a_pem_block_is_one_finding_from_begin_to_end() -> None:
    body = "\n".join(["MIIEowIBAAKCAQEA" + "q" * 48] * 5)
    text = f"x = 1\n-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----\ny = 2\n"
    [finding] = scan_text(text)
    assert finding.kind == "private-key" and finding.line == 2
    assert text[finding.offset + finding.length - 5 :].startswith("-----\ny")


def test_a_service_account_file_is_its_own_kind() -> None:
    key = (
        "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
        + "A" * 64
        + "\\n-----END PRIVATE KEY-----\\n"
    )
    [finding] = scan_text('{"type": "service_account", "private_key": "' + key + '"}')
    assert finding.kind == "gcp-service-account" and finding.length == len(key)


def test_the_longest_vendor_shape_wins_over_a_generic_name() -> None:
    key = "sk-ant-api03-" + "Ab1_" * 23 + "xAA"
    [finding] = scan_text(f'password = "{key}"')
    assert finding.kind == "anthropic"


def test_a_line_marked_as_allowed_is_not_reported() -> None:
    key = "r8_" + "Zx9Qw3" * 6 + "a"
    text = f"REPLICATE_API_TOKEN={key}  # pragma: allowlist secret\nOTHER={key}\n"
    assert [(f.kind, f.line) for f in scan_text(text)] == [("replicate", 2)]


def test_url_password_and_its_user_are_told_apart() -> None:
    [finding] = scan_text("redis://default:Zr8mQ2xWp9@cache:6379/0")  # pragma: allowlist secret
    assert finding.kind == "url-password" and finding.length == len("Zr8mQ2xWp9")


@pytest.mark.parametrize(
    "text",
    [
        "_".join(["api_key"] * 100_000),
        "key=" * 200_000,
        "https://a:" * 80_000,
        "-----BEGIN RSA PRIVATE KEY-----\n" + "A" * 500_000,
    ],
)
def test_a_megabyte_of_pathological_text_scans_in_linear_time(text: str) -> None:
    began = time.perf_counter()
    scan_text(text)
    assert time.perf_counter() - began < 5.0  # ~0.5 s here; a quadratic rule takes minutes


def test_scan_paths_skips_vcs_venvs_binaries_and_big_files(tmp_path: Path) -> None:
    key = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh"
    (tmp_path / "app.env").write_text(f"HF_TOKEN={key}\n")
    for skipped in (".git", ".venv", "node_modules"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "config").write_text(f"HF_TOKEN={key}\n")
    (tmp_path / "blob.bin").write_bytes(b"\0\1" + key.encode())
    (tmp_path / "big.log").write_text(f"HF_TOKEN={key}\n" + "x" * MAX_BYTES)
    findings = scan_paths([tmp_path])
    assert [(Path(f.path or "").name, f.kind) for f in findings] == [("app.env", "huggingface")]
    assert all(isinstance(f, Finding) for f in findings)
    assert scan_paths([tmp_path / "app.env"])[0].line == 1


def test_credential_spans_cover_exactly_each_secret_value_in_order() -> None:
    keys = {
        "anthropic": "sk-ant-api03-" + "Ab1_cD2-" * 11 + "eFgAA",
        "gitlab": "glpat-" + "Zx9_Qw3-" * 4 + ".01" + "abc4def",  # the routable form, dot and all
        "password": "Zr8mQ2xWp9Lk4Vb7",  # pragma: allowlist secret
        "stripe": "sk_live_" + "51HxAbCdEf" * 3,
    }
    text = (
        f"DEBUG call ok key={keys['anthropic']} (attempt 1)\n"
        f'{{"token": "{keys["gitlab"]}", "n": 2}}\n'
        f"postgres://app:{keys['password']}@db:5432/x  # pragma: allowlist secret\n"
        f"\\n{keys['stripe']}"  # after an escaped line break in JSON text
    )
    spans = credential_spans(text)
    assert [(text[start:end], kind) for start, end, kind in spans] == [
        (keys["anthropic"], "anthropic"),
        (keys["gitlab"], "gitlab"),
        (keys["password"], "url-password"),  # the allowlist pragma does not stop redaction …
        (keys["stripe"], "stripe"),
    ]
    assert all(end <= nxt for (_, end, _), (nxt, _, _) in itertools.pairwise(spans))
    assert "url-password" not in [f.kind for f in scan_text(text)]  # … only the report


@pytest.mark.parametrize(
    ("text", "secret", "kind"),
    [
        # the key of a storage account connection string, not the whole string
        (
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={k};EndpointSuffix=core.windows.net",
            "Zm9v" * 21 + "Ym==",
            "azure-storage",
        ),
        (
            "https://acme.blob.core.windows.net/c/f.csv?sv=2022-11-02&sp=r&sig={k}",
            "q8Rz%2Bx" * 7 + "%3D",
            "azure-sas",
        ),
        (
            "SENTRY_AUTH_TOKEN={k}",
            "sntrys_eyJpYXQiOjE3MDAwMDAwMDB9" + "Xr5T" * 3 + "=_" + "Ab3+/x9Z" * 5 + "Qw1",
            "sentry",
        ),
        (
            "loki: {{api_key: {k}}}",
            "glc_eyJvIjoiMTIzNCIsIm4iOiJzdGFjayJ9" + "Ab3dE6" * 4 + "==",  # pragma: allowlist secret
            "grafana",
        ),
        ("TF_TOKEN={k}", "Ab3dEf6hIj9kLm.atlasv1." + "Zx9_Qw3-" * 8 + "abc", "terraform"),
        ("bot {k} started", "123456789:AA" + "Hk3_Zp9-Qw7" * 3, "telegram"),
        ("ELEVENLABS={k}", "sk_" + "0f1e2d3c4b5a6978" * 3, "elevenlabs"),
    ],
)
def test_a_secret_inside_a_longer_value_is_masked_alone(text: str, secret: str, kind: str) -> None:
    planted = text.format(k=secret)
    [(start, end, found)] = credential_spans(planted)
    assert (planted[start:end], found) == (secret, kind)


@pytest.fixture(scope="module")
def held_out() -> dict[str, object]:
    """The second, independent generator (tests/secrets/heldout.py), on a seed of its own."""
    hits: Counter[tuple[str, str]] = Counter()
    totals: Counter[tuple[str, str]] = Counter()
    true_pos = false_pos = 0
    for doc in heldout.generate(20261204, per_kind=3, n_negatives=300):
        spans = credential_spans(doc.text)
        true_pos += sum(any(s < p.end and p.start < e for p in doc.planted) for s, e, _ in spans)
        false_pos += sum(not any(s < p.end and p.start < e for p in doc.planted) for s, e, _ in spans)
        for p in doc.planted:
            group = "shaped" if p.shaped else "named" if p.named else "unnamed"
            totals[(group, doc.context)] += 1
            hits[(group, doc.context)] += any(s <= p.start and p.end <= e for s, e, _ in spans)
    return {"hits": hits, "totals": totals, "precision": true_pos / (true_pos + false_pos)}


@pytest.mark.parametrize("context", heldout.CONTEXTS)
def test_held_out_shaped_keys_are_found_in_every_context(held_out: dict, context: str) -> None:
    totals, hits = held_out["totals"], held_out["hits"]
    assert totals[("shaped", context)] >= 100
    assert hits[("shaped", context)] / totals[("shaped", context)] >= 0.98


def test_held_out_precision_and_the_shapeless_counted_apart(held_out: dict) -> None:
    assert held_out["precision"] >= 0.95
    # a shapeless value with no name near it is out of reach by construction: it is planted and
    # counted, but apart (reported by benchmarks/secrets/scan.py), never inside the shaped recall
    assert sum(n for (group, _), n in held_out["totals"].items() if group == "unnamed") > 0


def test_a_log_line_is_scanned_in_tens_of_microseconds() -> None:
    line = (
        "2026-12-03T10:14:07.112Z INFO gateway.request tenant=acme model=gpt-4o-mini route=/v1/chat/completions "
        "status=200 latency_ms=412 tokens_in=1834 tokens_out=221 cache=miss upstream=openai request_id=7f3c"
    )
    credential_spans(line)
    began = time.perf_counter()
    for _ in range(2000):
        credential_spans(line)
    per_line = (time.perf_counter() - began) / 2000
    assert per_line < 500e-6  # ~25 µs here; the scanner before needle gating took ~185 µs
