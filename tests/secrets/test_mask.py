"""Known secrets masked in every spelling: the forms, the longest match, embedded base64, the
credential-shaped half, JSON trees, log records, and what it costs per log line."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import logging.config
import random
import secrets
import string
import time
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from pydantic import SecretStr

from sophia.secrets.mask import (
    KNOWN,
    MASK,
    MIN_LENGTH,
    Masker,
    MaskingFilter,
    encoded_forms,
    known_from_settings,
    mask_credentials,
    mask_logging,
    mask_tree,
)
from sophia.settings import load_settings

SLASHY = "Zq9/v+Rk=3mWx7/Tp+L2=nQ8s"  # pragma: allowlist secret
UNICODE = "Geheimnis-ÄÖÜ-ß-Ω-密钥-9x7Lq"  # pragma: allowlist secret
QUOTES = 'it\'s "quoted" & <tagged>\\back'  # pragma: allowlist secret
HEX64 = "3f9a0c7e5b1d2468ace0135790bdf2468ace0135790bdf2468ace0135790bdf2"  # pragma: allowlist secret
VALUES = (SLASHY, UNICODE, QUOTES, HEX64)


def spellings(value: str) -> set[str]:
    """The spellings an output may give ``value``, computed here apart from ``encoded_forms``."""
    raw = value.encode()
    out = {value, raw.hex(), raw.hex().upper(), html.escape(value), html.escape(value, quote=False)}
    out |= {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        out |= {encoded, encoded.rstrip("=")}
    for quoted in (quote(value, safe=""), quote(value), quote_plus(value), quote(value, safe="!~*'()")):
        out |= {quoted, _lower_hex(quoted)}
    return out


def _lower_hex(quoted: str) -> str:
    parts = quoted.split("%")
    return parts[0] + "".join("%" + p[:2].lower() + p[2:] for p in parts[1:])


@pytest.fixture
def known() -> Iterator[Masker]:
    """``KNOWN`` for one test: emptied, then given back its values."""
    before = KNOWN.values
    KNOWN.replace(())
    yield KNOWN
    KNOWN.replace(before)


@pytest.mark.parametrize("value", VALUES)
def test_every_spelling_of_a_value_is_masked_whole(value: str) -> None:
    masker = Masker([value])
    for spelling in spellings(value):
        assert spelling in encoded_forms(value)
        assert masker.mask(f"before {spelling} after") == f"before {MASK} after", spelling
        assert masker.leaks(spelling)


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("user", ["", "u", "us", "bot", "alert-bot", "a-much-longer-user-name"])
def test_a_value_inside_a_longer_base64_blob_is_masked_at_every_alignment(value: str, user: str) -> None:
    masker = Masker([value])
    for blob_of in (base64.b64encode, base64.urlsafe_b64encode):
        blob = blob_of(f"{user}:{value}@tail".encode()).decode()
        masked = masker.mask(f"Authorization: Basic {blob}")
        assert MASK in masked and not masker.leaks(masked)
        # what is left of the blob decodes to no more than a few bytes of the value
        for piece in masked.removeprefix("Authorization: Basic ").split(MASK):
            for shift in range(4):
                chunk = piece[shift:]
                chunk = chunk[: len(chunk) - len(chunk) % 4]
                try:
                    decoded = base64.b64decode(chunk.replace("-", "+").replace("_", "/"))
                except ValueError:
                    continue
                assert value.encode()[:4] not in decoded


def test_short_values_are_not_masked_because_they_are_ordinary_text() -> None:
    masker = Masker(["admin", "1234567", "x" * MIN_LENGTH])
    assert masker.values == ("x" * MIN_LENGTH,)
    assert masker.mask("admin logged in on port 1234567") == "admin logged in on port 1234567"
    assert masker.mask("xxxxxxxx") == MASK


def test_the_longest_form_wins_and_overlapping_values_are_both_masked() -> None:
    long, short = "abcdefgh-ijklmnop-qrstuvwx", "abcdefgh-ijkl"  # one is a prefix of the other
    masker = Masker([short, long])
    assert masker.mask(f"{long} and {short}!") == f"{MASK} and {MASK}!"
    padded = base64.b64encode(long.encode()).decode()
    assert padded.endswith("=") and masker.mask(f"[{padded}]") == f"[{MASK}]"  # padding included


def test_add_replace_and_version() -> None:
    masker = Masker()
    assert masker.mask("anything at all") == "anything at all" and not masker.leaks("anything")
    version = masker.version
    masker.add(SLASHY)  # one string is one value, not its characters
    assert masker.values == (SLASHY,) and masker.version == version + 1
    masker.add([SLASHY])
    assert masker.version == version + 1  # nothing changed: nothing rebuilt
    masker.replace([HEX64])
    assert masker.values == (HEX64,) and SLASHY in masker.mask(SLASHY)
    assert len(masker) == 1


def test_mask_credentials_masks_known_values_and_shaped_ones_keeping_the_name(known: Masker) -> None:
    known.add(UNICODE)
    text = (
        f"user said {UNICODE}; password=Hx7pQ2mN9rLk4v "  # pragma: allowlist secret
        "url postgres://app:Vb8Tq3Zr6Wn1@db:5432/x and nothing else"  # pragma: allowlist secret
    )
    masked = mask_credentials(text)
    assert masked == (
        f"user said {MASK}; password={MASK} url postgres://app:{MASK}@db:5432/x and nothing else"
    )
    assert (
        mask_credentials("model=openai/gpt-4.1 team=data status=200")
        == "model=openai/gpt-4.1 team=data status=200"
    )
    assert mask_credentials("") == ""
    sophia_key = "sk-sophia-" + secrets.token_urlsafe(32)  # Sophia's own keys: only their hash is kept
    assert mask_credentials(f"refused key {sophia_key}.") == f"refused key {MASK}."


def test_mask_tree_checks_names_beside_values_and_keeps_clean_trees_untouched(known: Masker) -> None:
    known.add(SLASHY)
    clean = {"rows": [{"team": "data", "cost": 1.5}], "n": 3}
    assert mask_tree(clean) is clean
    tree = {
        "rows": [{"password": "Hx7pQ2mN9rLk4v"}, {"note": f"key {SLASHY}"}],  # pragma: allowlist secret
        "quoted": json.dumps({"inner": SLASHY}),
        "n": 3,
    }
    masked = mask_tree(tree)
    assert masked == {
        "rows": [{"password": MASK}, {"note": f"key {MASK}"}],
        "quoted": json.dumps({"inner": MASK}),
        "n": 3,
    }
    odd = {"blob": b"bytes", "text": f"{SLASHY}"}  # not JSON: masked string by string
    assert mask_tree(odd) == {"blob": b"bytes", "text": MASK}


def test_known_from_settings_walks_every_secret_field() -> None:
    settings = load_settings(
        providers={"openai": {"api_key": SLASHY}, "vllm": {"base_url": "http://127.0.0.1:9/v1"}},
        observe={
            "webhook_url": "https://hooks.example.test/T0/B0/" + HEX64,
            "otlp_headers": {"x-k": UNICODE},
        },
    )
    found = known_from_settings(settings)
    assert {SLASHY, UNICODE, "https://hooks.example.test/T0/B0/" + HEX64} <= set(found)
    assert len(found) == len(set(found))
    assert known_from_settings({"a": [SecretStr("in-a-list-1234")], "b": "plain"}) == ["in-a-list-1234"]


def _logger(masker: Masker) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(MaskingFilter(masker))
    logger = logging.getLogger(f"test.mask.{random.random()}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_log_records_are_masked_in_messages_arguments_and_tracebacks() -> None:
    masker = Masker([SLASHY, UNICODE])
    logger, stream = _logger(masker)
    logger.info("calling with key %s and %r", SLASHY, {"k": UNICODE})
    logger.warning("count %d of %s", 3, quote(SLASHY, safe=""))
    try:
        raise RuntimeError(f"upstream refused {SLASHY!r} ({base64.b64encode(SLASHY.encode()).decode()})")
    except RuntimeError:
        logger.exception("call failed")
    logger.info("password=Hx7pQ2mN9rLk4v stays named")  # pragma: allowlist secret
    out = stream.getvalue()
    for value in (SLASHY, UNICODE):
        for spelling in spellings(value):
            assert spelling not in out
    assert "count 3 of [REDACTED]" in out and "RuntimeError: upstream refused" in out
    assert "Traceback (most recent call last)" in out and out.count(MASK) >= 5
    assert "password=[REDACTED] stays named" in out


def test_an_access_log_record_keeps_its_argument_tuple() -> None:
    """uvicorn's access formatter unpacks ``record.args``: masking must keep it a 5-tuple."""
    from uvicorn.logging import AccessFormatter

    masker = Masker([SLASHY])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    )
    handler.addFilter(MaskingFilter(masker))
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", f"/v1/x?key={quote(SLASHY, safe='')}", "1.1", 200), None,
    )  # fmt: skip
    handler.handle(record)
    assert stream.getvalue() == f'127.0.0.1:5000 - "GET /v1/x?key={MASK} HTTP/1.1" 200 OK\n'


def test_mask_logging_survives_uvicorns_dict_config_and_is_idempotent(
    capsys: pytest.CaptureFixture[str], known: Masker
) -> None:
    from uvicorn.config import LOGGING_CONFIG

    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        first = mask_logging()
        assert mask_logging() is first and handler.filters.count(first) == 1
        logging.config.dictConfig(LOGGING_CONFIG)  # what uvicorn.Config does after us
        known.add(SLASHY)
        logging.getLogger("uvicorn.error").error("refused key %s", SLASHY)
        err = capsys.readouterr().err
        assert f"refused key {MASK}" in err and SLASHY not in err
    finally:
        root.removeHandler(handler)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
            logging.getLogger(name).removeFilter(first)


def test_cost_per_200_character_log_line() -> None:
    """What masking adds to a log line: next to nothing with no secret, tens of µs with 100 (the trie;
    a flat alternation of the same forms costs ~650 µs)."""
    rng = random.Random(5)
    line = (
        "2025-06-30 12:00:00 INFO sophia.gateway: POST /v1/chat/completions model=openai/gpt-4.1-mini team=data "
        "status=200 latency=123.4ms request_id=req_0123456789abcdef cache=miss tokens=1234/567 route=ok xx"
    )[:200]
    alphabet = string.ascii_letters + string.digits + "/+=-_!&"
    timings = {}
    for count in (0, 10, 100):
        masker = Masker(
            "".join(rng.choice(alphabet) for _ in range(rng.randint(16, 64))) for _ in range(count)
        )
        assert masker.mask(line) == line
        started = time.perf_counter()
        for _ in range(2000):
            masker.mask(line)
        timings[count] = (time.perf_counter() - started) / 2000 * 1e6
    print(f"µs per 200-char line: {timings}")
    assert timings[0] < 5 and timings[100] < 400
