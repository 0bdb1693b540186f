"""Mutations of the bytes and the envelope: bodies that are not the JSON a route wants, odd
content types, authorizations, headers, methods, paths and query strings, chunked uploads."""

from __future__ import annotations

import random
from urllib.parse import quote

from .case import CHUNKS, Case
from .values import GROUPS


def mangle_body(rng: random.Random, body: bytes) -> tuple[bytes, str]:
    """Bytes that are not the JSON object a route wants."""
    kind = rng.randrange(13)
    if kind == 0:
        return b"", "empty"
    if kind == 1:
        return rng.choice((b" ", b"\n\r\t ", b"\x00" * 8)), "blank"
    if kind == 2:
        cut = rng.randrange(max(len(body), 1))
        return body[:cut], f"truncated@{cut}"
    if kind == 3:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))), "random bytes"
    if kind == 4:
        at = rng.randrange(max(len(body), 1))
        bad = rng.choice((b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"))
        return body[:at] + bad + body[at:], "invalid utf-8"
    if kind == 5:
        return rng.choice((b"[]", b'"x"', b"1", b"null", b"true", b"[{}]", b"{}", b"-0")), "other top-level"
    if kind == 6:
        return b"\xef\xbb\xbf" + body, "bom"
    if kind == 7:
        return body + rng.choice((b"xyz", b"}", b"]", body, b"\x00")), "trailing garbage"
    if kind == 8:
        return rng.choice((b"NaN", b"Infinity", b'{"model": NaN}', b"{'model': 'vllm/ok'}")), "not json"
    if kind == 9:
        return b"model=vllm%2Fok&messages=hi", "form body"
    if kind == 10:
        return body.replace(b'"', b"'", 3), "single quotes"
    if kind == 11:
        return b"\x1f\x8b\x08\x00" + body[:32], "gzip-looking"
    return body.decode("utf-8", "replace").encode("utf-16"), "utf-16"


CONTENT_TYPES = (
    None,
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=utf-16",
    "application/json; charset=\x7f",
    "application/json, application/json",
    "*/*",
    "a" * 4000,
)
AUTHS = (
    None,
    "Bearer",
    "Bearer ",
    "Bearer sk-sophia-notarealkeynotarealkey",
    "Bearer sk-sophia-" + "A" * 40,
    "Basic dXNlcjpwYXNz",
    "bearer $USER",
    "$USER",
    "Bearer $USER extra",
    "Bearer  $USER",
    "Bearer $USER\t",
    "Bearer " + "x" * 4000,
    "Bearer \xff\xfe",
    "Bearer \x00",
    "Bearer $ADMIN",
    "Bearer $USER",
)
EXTRA_HEADERS = (
    ("x-request-id", "\x7f" * 10),
    ("x-request-id", "r" * 4000),
    ("accept", "text/event-stream"),
    ("accept-encoding", "gzip, br, zstd, *;q=0"),
    ("content-encoding", "gzip"),
    ("content-length", "abc"),
    ("content-length", "99999999999999999999"),
    ("content-length", "-1"),
    ("x-forwarded-for", "1.1.1.1, ::1, \xff"),
    ("cookie", "a=b; " * 800),
    ("user-agent", "\x01\x02"),
    ("x-sophia-team", "admin"),
    ("expect", "100-continue"),
    ("authorization", "Bearer $ADMIN"),
    ("x-" + "h" * 200, "v"),
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "FOO")
ODD_PATHS = (
    "/v1/chat/completions/../x",
    "/v1/chat/completions/../../admin/keys",
    "/v1/../admin/keys",
    "/v1/chat/completions%00",
    "/v1/%00/chat/completions",
    "/admin/keys%00",
    "/admin/keys/%2F..%2F..%2Fv1%2Fmodels",
    "/v1//chat/completions",
    "//v1/chat/completions",
    "/V1/CHAT/COMPLETIONS",
    "/v1/chat/completions/",
    "/admin/",
    "/admin",
    "/admin/keys/",
    "/admin/nope",
    "/admin/cache/purge/extra",
    "/admin/keys/a/b",
    "/%76%31/models",
    "/v1/models%20",
    "/v1/chat/completions;a=b",
    "/v1",
    "/",
    "*",
    "/\xff".encode("latin-1").decode("latin-1"),
    "/" + "a" * 8000,
    "/v1/" + "x/" * 2000,
    "/admin/" + "%ff" * 300,
    "/admin/usage?since=%00&group_by=%ff",
    "/admin/usage?since=99999999999999999999d",
    "/admin/usage?since=1e308d",
    "/admin/usage?since=0001-01-01&group_by=,,,",
    "/admin/usage?since=9999-12-31T23:59:59-14:00",
    "/admin/usage?group_by=" + ",".join(GROUPS) * 20,
    "/admin/usage?since=" + "9" * 500 + "d",
    "/admin/usage?since=30d&since=1h&group_by=model&group_by=team",
    "/admin/cache?since=-5d",
    "/admin/keys?include_revoked=" + "1" * 5000,
    "/v1/models?" + "a=1&" * 1000,
)
QUERY_JUNK = ("?a=%ff", "?%00=%00", "?since=nan", "?x=" + "y" * 3000, "?&&&==", "?group_by=;DROP")


def mangle_envelope(rng: random.Random, case: Case) -> tuple[Case, str]:
    """The request line or headers of ``case`` made odd (sizes stay within what a proxy lets through),
    or its body delivered in pieces (``CHUNKS``: chunked transfer encoding, no Content-Length)."""
    kind = rng.randrange(7)
    if kind == 6:
        pieces = rng.choice((2, 3, 17, 1000))
        return case._replace(headers=(*case.headers, (CHUNKS, str(pieces)))), f"body in {pieces} chunks"
    headers = list(case.headers)
    if kind in (0, 1):
        name = "content-type" if kind == 0 else "authorization"
        value = rng.choice(CONTENT_TYPES if kind == 0 else AUTHS)
        headers = [h for h in headers if h[0] != name]
        if value is not None:
            headers.append((name, value))
        return case._replace(headers=tuple(headers)), f"{name} {value!r:.40}"
    if kind == 2:
        extra = rng.choice(EXTRA_HEADERS)
        return case._replace(headers=(*headers, extra)), f"header {extra[0][:30]}"
    if kind == 3:
        method = rng.choice(METHODS)
        return case._replace(method=method), f"method {method}"
    if kind == 4:
        path = rng.choice(ODD_PATHS)
        return case._replace(path=quote(path, safe="/%?&=;,*:+$")), f"path {path[:40]!r}"
    return case._replace(path=case.path + rng.choice(QUERY_JUNK)), "query"
