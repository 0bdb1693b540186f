"""The secrets scanner: recall per context and precision on a generated labelled set, and tricky cases."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from sophia.secrets.scan import MAX_BYTES, Finding, github_checksum, scan_paths, scan_text


def _load_labelled() -> ModuleType:
    # tests/ is on sys.path, and "secrets" is a stdlib module: load the generator by its path.
    name = "sophia_tests_secrets_labelled"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("labelled.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


labelled = _load_labelled()
#: not a seed the rules were tuned on (those were 1-4)
SEED = 20261203


@pytest.fixture(scope="module")
def scored() -> dict[str, object]:
    samples = labelled.generate(SEED, per_kind=6)
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    kinds_right = kinds_total = true_pos = false_pos = 0
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
            if cover and label.kind not in labelled.NAMED_ONLY:
                kinds_total += 1
                kinds_right += cover[0].kind == label.kind
    return {
        "recall": {c: hits[c] / totals[c] for c in totals},
        "totals": totals,
        "precision": true_pos / (true_pos + false_pos),
        "false_pos": false_pos,
        "kind_accuracy": kinds_right / kinds_total,
        "samples": samples,
    }


@pytest.mark.parametrize("context", labelled.CONTEXTS)
def test_recall_in_every_context_is_at_least_98_percent(scored: dict, context: str) -> None:
    assert scored["totals"][context] >= 100
    assert scored["recall"][context] >= 0.98, scored["recall"]


def test_precision_is_at_least_95_percent_with_hundreds_of_negatives(scored: dict) -> None:
    assert sum(s.context == "negative" for s in scored["samples"]) >= 400
    assert scored["precision"] >= 0.95, (scored["precision"], scored["false_pos"])


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
    ],
)
def test_not_a_secret(text: str) -> None:
    assert scan_text(text) == []


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("AZURE_OPENAI_API_KEY=0f1e2d3c4b5a69788796a5b4c3d2e1f0", "azure"),
        ("TOGETHER_API_KEY=" + "9a8b7c6d5e4f3a2b" * 4, "together"),
        ("MISTRAL_KEY=Qw8rT5yU2iO9pA3sD6fG1hJ4kL7zX0cV", "mistral"),
        ("ERROR calling cohere with key=N4FjaMO4yRgO9XMf76zOWVQ3OfXFkM1tC141NuYG: 401", "cohere"),
        ("client_secret: 3f2a9c1e-77b0-4d5e-9a8f-0c1b2d3e4f5a", "generic-secret"),
        # words inside other words do not disqualify a name: sha in SHARED, mode in MODEL, uri in SECURITY
        ("SHARED_SECRET=Zr8mQ2xWp9Lk4Vb7", "generic-secret"),
        ("MODEL_API_KEY: Zr8mQ2xWp9Lk4Vb7Tc1N", "generic-secret"),
        ("SECURITY_TOKEN='Zr8mQ2xWp9Lk4Vb7Tc1N'", "generic-secret"),
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
    [finding] = scan_text("redis://default:Zr8mQ2xWp9@cache:6379/0")
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
