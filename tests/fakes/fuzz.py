"""A grammar-based fuzzer for Sophia's edges (issue 22: "No input gets a 5xx").

Every case starts as a *valid* request drawn from a small grammar, and most are then mutated. The
same seed gives the same cases, in the same order, on every machine (``random.Random(seed)`` only).

Grammar (valid shapes)::

    case       := chat | embeddings | admin_write | admin_read | probe
    chat       := POST /v1/chat/completions | /chat/completions
                  {model, messages: message{1..5}, option*}
    message    := system | developer | user | assistant | tool | function
                  (content: text | part{1..3}; assistant: tool_calls instead; tool: tool_call_id)
    part       := {"type": "text", "text"} | {"type": "image_url", "image_url": {"url", "detail"}}
    option     := tools | tool_choice | parallel_tool_calls | response_format | stop | stream
                | stream_options | n | max_tokens | max_completion_tokens | temperature | top_p
                | presence_penalty | frequency_penalty | logit_bias | logprobs | top_logprobs
                | metadata {task_type, sources, cache, quality_target, max_price} | user | seed
                | service_tier | reasoning_effort
    embeddings := POST /v1/embeddings {model, input: text | [text] | [int] | [[int]],
                  encoding_format?, dimensions?, user?, metadata?}
    admin_write:= POST /admin/keys KeyCreate | PATCH /admin/keys/{id} KeyUpdate
                | DELETE /admin/keys/{id} | POST /admin/cache/purge {tag|model|team|all}
                | POST /admin/cache/bump {tag} | POST /admin/cache/reports {request_id}
    admin_read := GET /admin/keys?include_revoked | /admin/usage?since&group_by
                | /admin/cache?since | /admin/providers
    probe      := GET /v1/models | /models | /health

Mutations (``MUTATED`` of the cases get one to three of them):

* **edge** (a top-level field set to a value at or just past its range: ``max_tokens`` 2**63,
  ``metadata.quality_target`` "nan", 17 ``metadata.sources``, ``rpm`` 2**63; ``FIELD_EDGES``);
* **value** (at a random node of the JSON tree, any depth, the root included): type confusion
  (a list, object, number, bool or null where a string goes and vice versa: ``role`` as a list),
  out-of-range numbers (2**63, -1, 1e308, ``NaN``/``1e400`` literals, NaN-like strings), huge
  strings (to 1 MB; rarely past the 4 MiB body limit), deep nesting (to 300 levels, of any node),
  unicode edge cases (lone surrogates written as JSON escapes ``"\\ud800"``, NUL, RTL override,
  emoji, BOM, noncharacters, invalid UTF-8 bytes), duplicate keys, unknown keys, dropped keys,
  renamed keys, emptied containers;
* **body**: empty, whitespace, non-JSON bytes, truncated JSON, invalid UTF-8, another top-level
  type, ``NaN`` literals, trailing garbage, a BOM;
* **envelope**: content-type, authorization (missing, malformed, the wrong key), absurd headers
  within a sane size (8 KB), the body in pieces (a chunked upload), methods, paths
  (``/v1/chat/completions/../x``, ``%00``, ``//``, upper case, 8 KB paths, encoded slashes) and
  query strings.

``REPEATS`` of the cases send one of the last 20 again (as it was, or a chat body with ``stream``
flipped): the gateway's memo of parsed bodies and the cache's exact hits and replays see weird bodies
too.

A ``Case`` is ``(method, path, headers, body, label)``: ``path`` is the raw request target (percent
escapes as sent, dot segments kept), ``label`` says which production and mutations made it.
Placeholders stand for what only the driver knows: ``$ADMIN`` / ``$USER`` / ``$BUDGET`` (secrets, in
headers; ``make_keys`` creates the keys), ``$VICTIM`` (the id of a throwaway key the admin cases may
update or revoke) and ``$REQUEST_ID`` (a request id the gateway gave out); ``fill`` puts them in.

``edge_sweep`` sends every field edge once, systematically; ``suite`` is a run: the sweep, then
``count`` random cases.

The oracle (``problems``) and the in-process driver (``Driver``, ``RawTarget``) live here too, so
the tests and ``benchmarks/fuzz/run.py`` judge a response the same way; ``shrink`` reduces a failing
case to a small reproduction. ``schema_value``/``mutate`` serve the MCP tools' arguments.
"""

from __future__ import annotations

import json
import logging
import random
import re
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

SEED = 20261202
#: share of cases that are mutated (the rest stay valid: they must succeed, or fail cleanly)
MUTATED = 0.85
#: aliases the fuzz settings add (chains on the fake upstream's always-answering models)
FUZZ_ALIASES = {"sophia/fast": ["ollama/fast"], "sophia/smart": ["vllm/priced", "ollama/ok"]}
CHAT_MODELS = (
    "vllm/ok",
    "ollama/ok",
    "sophia/auto",
    "sophia/fast",
    "sophia/smart",
    "vllm/priced",
    "openai/gpt-4.1-mini",
    "test/fallback-500",
    "ollama/llama3.2:1b",
)
EMBED_MODELS = ("openai/text-embedding-3-small", "openai/text-embedding-3-large", "text-embedding-3-small")
#: models whose fake upstream is told to fail: a 5xx "upstream_error" for them is not a finding
UPSTREAM_FAILING = frozenset({"test/all-bad", "vllm/status-500", "vllm/status-502", "vllm/status-503"})
GROUPS = ("model", "requested_model", "provider", "team", "key", "task_type", "endpoint", "day", "cache")
#: a key's secret as it could leak (the bare prefix, as in "Bearer sk-sophia-…" hints, is no secret)
SECRET_SHAPE = re.compile(r"sk-sophia-[A-Za-z0-9_\-]{12,}")

WORDS = ("hello", "how", "do", "I", "reset", "my", "password", "python", "sort", "a", "list", "why", "is")
WORDS += ("the", "sky", "blue", "summarise", "this", "report", "in", "one", "line", "code", "SQL", "join")
UNICODE = (
    "\ud800",  # lone high surrogate: sent as the JSON escape "\ud800"
    "\udfff",
    "a\ud83d",
    "\ud83d\ude00",  # a surrogate pair written as escapes: a valid emoji
    "\x00",
    "a\x00b",
    "\u202etxt.exe",  # right-to-left override
    "\u200f\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627",
    "😀" * 64,
    "👩‍👩‍👧‍👦",
    "\ufeff",
    "\uffff\ufffe",
    "\U0010ffff",
    "e\u0301" * 100,
    "\r\n\t\x0b\x0c",
    "\u2028\u2029",
    "Z\u0334\u0349\u0308a\u0337l\u0336g\u0335o",
    "\U0001d54f" * 10,  # mathematical double-struck X
    "\x1b[31mred\x1b[0m",
    "'\"; DROP TABLE sophia_usage; --",
    "{{7*7}} ${env:HOME} %s%n",
    "../../etc/passwd",
    "\\u0000",
    "",
    " ",
)
NUMBERS = (0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 1e308, -1e308)
NUMBERS += (5e-324, 0.5, -0.0, 1.5, 3, 65_537)
#: number tokens written verbatim (most are not JSON: NaN, Infinity, 1e400, leading zeros, hex)
RAW_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E2", "-0", "1.0e-400", "00", "01")
RAW_NUMBERS += ("1.", ".5", "+1", "0x10", "1_000", "123456789012345678901234567890")
NAN_STRINGS = ("NaN", "nan", "inf", "-inf", "Infinity", "1e400", "0x1p3", "1,5", "٣", "½", "1e-400")
DEPTHS = (8, 63, 64, 65, 100, 200, 252, 253, 254, 255, 300)
HUGE = (4_096, 4_096, 65_536, 65_536, 300_000, 1_000_000)
BODY_LIMIT = 4 * 1024 * 1024
#: deepest nesting the MCP SDK's client serialises (its pydantic serializer stops near 255 levels)
MCP_MAX_DEPTH = 200


# -- JSON with what json.dumps cannot write ---------------------------------------------------------


class Raw(str):
    """JSON text written verbatim (``NaN``, ``1e400``, a bare escape): lets a body be not quite JSON."""


class Dup(list[tuple[str, Any]]):
    """An object written with its pairs as they are: a key may repeat."""


def encode(value: Any) -> bytes:
    """JSON bytes for ``value``; strings go as UTF-8, or as ``\\u`` escapes when they hold lone surrogates."""
    return _text(value).encode("utf-8")


class _Lit(str):
    """Already-written JSON text on the encoder's stack."""


def _string(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)  # ensure_ascii: lone surrogates become \udXXX escapes
    return json.dumps(value, ensure_ascii=False)


def _text(value: Any) -> str:
    """The JSON text (iterative: 300 levels of nesting need no deep recursion)."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Lit | Raw):
            out.append(str(item))
        elif isinstance(item, str):
            out.append(_string(item))
        elif isinstance(item, Dup | dict):
            pairs = list(item) if isinstance(item, Dup) else list(item.items())
            seq: list[Any] = [_Lit("{")]
            for i, (k, v) in enumerate(pairs):
                seq += [_Lit(("," if i else "") + _string(str(k)) + ":"), v]
            stack.extend(reversed([*seq, _Lit("}")]))
        elif isinstance(item, list | tuple):
            seq = [_Lit("[")]
            for i, v in enumerate(item):
                seq += [_Lit(","), v] if i else [v]
            stack.extend(reversed([*seq, _Lit("]")]))
        elif isinstance(item, float) and item != item:  # NaN
            out.append("NaN")
        else:
            out.append(json.dumps(item))
    return "".join(out)


# -- cases ----------------------------------------------------------------------------------------

Headers = tuple[tuple[str, str], ...]


class Case(NamedTuple):
    method: str
    path: str
    headers: Headers
    body: bytes
    label: str = ""

    def describe(self, limit: int = 400) -> str:
        """A one-line reproduction (body cut at ``limit`` bytes)."""
        body = self.body if len(self.body) <= limit else self.body[:limit] + b"...(%d bytes)" % len(self.body)
        path = self.path if len(self.path) <= 200 else self.path[:200] + f"...({len(self.path)} chars)"
        heads = " ".join(f"{k}: {v[:60]!r}" for k, v in self.headers)
        return f"{self.method} {path} [{heads}] {body!r}"


async def make_keys(accounts: Any) -> dict[str, str]:
    """The keys behind the placeholders (``sophia.accounts.Accounts``): an admin key, a plain key, a key
    with budgets and (generous) rate limits, and a throwaway key for the admin cases to change."""
    create = accounts.keys.create
    admin, _ = await create(name="fuzz-admin", team="ops", admin=True)
    user, _ = await create(name="fuzz-user", team="qa")
    budget, _ = await create(
        name="fuzz-budget", team="qa", budget_daily_usd=50.0, budget_monthly_usd=500.0, rpm=100_000, tpm=10**9
    )
    victim_secret, victim = await create(name="fuzz-victim", team="qa")
    return {
        "ADMIN": admin,
        "USER": user,
        "BUDGET": budget,
        "VICTIM": victim.id,
        "VICTIM_SECRET": victim_secret,
    }


def fill(case: Case, values: dict[str, str]) -> Case:
    """The case with its ``$NAME`` placeholders replaced (in headers, path and body)."""
    path, body, headers = case.path, case.body, list(case.headers)
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):  # $VICTIM_X before $VICTIM
        token = "$" + name
        path = path.replace(token, quote(value, safe=""))
        body = body.replace(token.encode(), value.encode())
        headers = [(k, v.replace(token, value)) for k, v in headers]
    return case._replace(path=path, body=body, headers=tuple(headers))


def _text_value(rng: random.Random, words: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, words)))


def _maybe(rng: random.Random, share: float = 0.3) -> bool:
    return rng.random() < share


def _content(rng: random.Random, images: bool) -> Any:
    if _maybe(rng, 0.7):
        return _text_value(rng)
    parts: list[Any] = [{"type": "text", "text": _text_value(rng)}]
    for _ in range(rng.randint(0, 2)):
        if images and _maybe(rng, 0.5):
            url = rng.choice(("https://example.com/cat.png", "data:image/png;base64,iVBORw0KGgo="))
            parts.append(
                {"type": "image_url", "image_url": {"url": url, "detail": rng.choice(("low", "high"))}}
            )
        else:
            parts.append({"type": "text", "text": _text_value(rng)})
    return parts


def _tool_call(rng: random.Random, i: int) -> dict[str, Any]:
    args = json.dumps({"city": rng.choice(("Paris", "Oslo")), "days": rng.randint(1, 5)})
    return {"id": f"call_{i}", "type": "function", "function": {"name": "weather", "arguments": args}}


def _message(rng: random.Random, role: str) -> dict[str, Any]:
    if role == "assistant" and _maybe(rng, 0.4):
        return {"role": role, "content": None, "tool_calls": [_tool_call(rng, 1)]}
    msg: dict[str, Any] = {"role": role, "content": _content(rng, images=role == "user")}
    if role == "tool":
        msg["tool_call_id"] = "call_1"
    elif role == "function" or (role == "user" and _maybe(rng, 0.1)):
        msg["name"] = "weather" if role == "function" else "alice"
    elif role == "assistant" and _maybe(rng, 0.1):
        msg["refusal"] = None
    return msg


def chat_body(rng: random.Random) -> dict[str, Any]:
    """A valid chat-completions body."""
    roles = [r for r in ("system", "developer") if _maybe(rng, 0.3)]
    for _ in range(rng.randint(0, 2)):
        roles += ["user", rng.choice(("assistant", "assistant", "tool", "function"))]
    roles.append("user")
    body: dict[str, Any] = {"model": rng.choice(CHAT_MODELS), "messages": [_message(rng, r) for r in roles]}
    options: dict[str, Callable[[], Any]] = {
        "tools": lambda: [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Forecast",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": lambda: rng.choice(
            ("auto", "none", "required", {"type": "function", "function": {"name": "weather"}})
        ),
        "parallel_tool_calls": lambda: rng.choice((True, False)),
        "response_format": lambda: rng.choice(
            (
                {"type": "text"},
                {"type": "json_object"},
                {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
            )
        ),
        "stop": lambda: rng.choice(("\n", ["END", "###"], [])),
        "stream": lambda: rng.choice((True, False)),
        "stream_options": lambda: {"include_usage": rng.choice((True, False))},
        "n": lambda: rng.randint(1, 3),
        "max_tokens": lambda: rng.randint(1, 4096),
        "max_completion_tokens": lambda: rng.randint(1, 4096),
        "temperature": lambda: rng.choice((0, 0.2, 0.7, 1, 1.5, 2)),
        "top_p": lambda: rng.choice((0, 0.5, 1)),
        "presence_penalty": lambda: rng.uniform(-2, 2),
        "frequency_penalty": lambda: rng.uniform(-2, 2),
        "logit_bias": lambda: {"50256": -100, "15339": rng.randint(-100, 100)},
        "logprobs": lambda: rng.choice((True, False)),
        "top_logprobs": lambda: rng.randint(0, 20),
        "metadata": lambda: _metadata(rng),
        "user": lambda: rng.choice(("alice", "user-42", "")),
        "seed": lambda: rng.randint(0, 2**31),
        "service_tier": lambda: rng.choice(("auto", "default", "flex")),
        "reasoning_effort": lambda: rng.choice(("low", "medium", "high")),
    }
    for name, make in options.items():
        if _maybe(rng, 0.15):
            body[name] = make()
    return body


def _metadata(rng: random.Random) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if _maybe(rng, 0.5):
        meta["task_type"] = rng.choice(("qa", "code", "summarize", "chat"))
    if _maybe(rng, 0.4):
        meta["sources"] = rng.choice(("crm.deals", "crm.deals,crm.calls", ["crm.deals", "wiki"]))
    if _maybe(rng, 0.4):
        meta["cache"] = rng.choice(("off", "exact", "semantic"))
    if _maybe(rng, 0.2):
        meta["quality_target"] = rng.choice(("0.9", "1.0", "0.5"))
    if _maybe(rng, 0.2):
        meta["max_price"] = rng.choice(("0.01", "0.000001"))
    return meta


def embeddings_body(rng: random.Random) -> dict[str, Any]:
    """A valid embeddings body."""
    kind = rng.randrange(4)
    if kind == 0:
        value: Any = _text_value(rng)
    elif kind == 1:
        value = [_text_value(rng) for _ in range(rng.randint(1, 4))]
    elif kind == 2:
        value = [rng.randint(0, 50_000) for _ in range(rng.randint(1, 8))]
    else:
        value = [[rng.randint(0, 50_000) for _ in range(rng.randint(1, 5))] for _ in range(rng.randint(1, 3))]
    body: dict[str, Any] = {"model": rng.choice(EMBED_MODELS), "input": value}
    if _maybe(rng):
        body["encoding_format"] = rng.choice(("float", "base64"))
    if _maybe(rng, 0.15):
        body["dimensions"] = rng.choice((256, 512, 1536))
    if _maybe(rng, 0.15):
        body["user"] = "alice"
    if _maybe(rng, 0.2):
        body["metadata"] = _metadata(rng)
    return body


def key_create_body(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {"name": f"fuzz-{rng.randrange(10_000)}"}
    optional: dict[str, Callable[[], Any]] = {
        "owner": lambda: "alice@example.com",
        "team": lambda: rng.choice(("qa", "data", "default")),
        "admin": lambda: False,  # an admin key made by the fuzzer would be harmless, but stays out
        "allowed_models": lambda: rng.choice((["vllm/*"], ["openai/gpt-4.1-mini", "sophia/fast"], [])),
        "allowed_tools": lambda: rng.choice((["ai/*"], ["ai/generate"], [])),
        "budget_daily_usd": lambda: rng.choice((0, 1.5, 100)),
        "budget_monthly_usd": lambda: rng.choice((0, 10, 1000)),
        "rpm": lambda: rng.randint(1, 600),
        "tpm": lambda: rng.randint(1, 100_000),
        "metadata": lambda: {"purpose": "fuzz", "ticket": "22"},
    }
    for name, make in optional.items():
        if _maybe(rng):
            body[name] = make()
    return body


def key_update_body(rng: random.Random) -> dict[str, Any]:
    fields = {
        "allowed_models": ["ollama/*"],
        "allowed_tools": ["ai/list_models"],
        "budget_daily_usd": 3.0,
        "budget_monthly_usd": 30,
        "rpm": 120,
        "tpm": 9000,
    }
    return {k: v for k, v in fields.items() if _maybe(rng, 0.4)}


def _key_id(rng: random.Random) -> str:
    return rng.choice(
        ("$VICTIM", "$VICTIM", "key_does_not_exist", "0", "%00", "..%2F..%2Fkeys", "%ff%fe", "a" * 300)
    )


def _since(rng: random.Random) -> str:
    return rng.choice(
        ("30d", "1h", "24h", "7d", "30m", "today", "month", "2026-01-01", "2026-11-01T10:00:00%2B02:00")
    )


# -- productions -----------------------------------------------------------------------------------

JSON_CT = ("content-type", "application/json")


def _auth(who: str) -> tuple[str, str]:
    return ("authorization", f"Bearer ${who}")


def _caller(rng: random.Random) -> str:
    """Whose key a model call carries: budgets and rate limits take code paths a plain key skips."""
    return rng.choices(("USER", "BUDGET", "ADMIN"), (50, 35, 15))[0]


def _chat_case(rng: random.Random) -> tuple[Case, Any]:
    path = rng.choice(("/v1/chat/completions", "/v1/chat/completions", "/chat/completions"))
    return Case("POST", path, (_auth(_caller(rng)), JSON_CT), b"", "chat"), chat_body(rng)


def _embeddings_case(rng: random.Random) -> tuple[Case, Any]:
    path = rng.choice(("/v1/embeddings", "/embeddings"))
    return Case("POST", path, (_auth(_caller(rng)), JSON_CT), b"", "embeddings"), embeddings_body(rng)


def _admin_write_case(rng: random.Random) -> tuple[Case, Any]:
    kind = rng.randrange(6)
    heads = (_auth("ADMIN"), JSON_CT)
    if kind == 0:
        return Case("POST", "/admin/keys", heads, b"", "admin.create"), key_create_body(rng)
    if kind == 1:
        return Case("PATCH", f"/admin/keys/{_key_id(rng)}", heads, b"", "admin.update"), key_update_body(rng)
    if kind == 2:
        return Case("DELETE", f"/admin/keys/{_key_id(rng)}", (_auth("ADMIN"),), b"", "admin.revoke"), None
    if kind == 3:
        spec = rng.choice(
            (
                {"tag": "crm.deals"},
                {"model": "vllm/ok"},
                {"team": "qa"},
                {"all": True},
                {},
                {"tag": "wiki", "team": "qa"},
            )
        )
        return Case("POST", "/admin/cache/purge", heads, b"", "admin.purge"), spec
    if kind == 4:
        tag = rng.choice(("crm.deals", "wiki", "crm.calls"))
        return Case("POST", "/admin/cache/bump", heads, b"", "admin.bump"), {"tag": tag}
    report = {"request_id": rng.choice(("$REQUEST_ID", "$REQUEST_ID", "req_nope"))}
    return Case("POST", "/admin/cache/reports", heads, b"", "admin.report"), report


def _admin_read_case(rng: random.Random) -> tuple[Case, Any]:
    kind = rng.randrange(4)
    if kind == 0:
        query = rng.choice(("", "?include_revoked=1", "?include_revoked=true", "?include_revoked=no"))
        path = "/admin/keys" + query
    elif kind == 1:
        groups = ",".join(rng.sample(GROUPS[:8], rng.randint(1, 3)))
        path = f"/admin/usage?since={_since(rng)}&group_by={groups}"
    elif kind == 2:
        path = f"/admin/cache?since={_since(rng)}"
    else:
        path = "/admin/providers"
    return Case("GET", path, (_auth("ADMIN"),), b"", "admin.read"), None


def _probe_case(rng: random.Random) -> tuple[Case, Any]:
    path = rng.choice(("/v1/models", "/models", "/health", "/v1/health"))
    return Case("GET", path, (_auth(rng.choice(("USER", "ADMIN"))),), b"", "probe"), None


PRODUCTIONS: tuple[tuple[Callable[[random.Random], tuple[Case, Any]], int], ...] = (
    (_chat_case, 45),
    (_embeddings_case, 14),
    (_admin_write_case, 18),
    (_admin_read_case, 13),
    (_probe_case, 10),
)


# -- mutations of JSON values ------------------------------------------------------------------------


def wild(rng: random.Random, depth: int = 0, raw: bool = True) -> Any:
    """Any value of any type (``raw``: also tokens that are not JSON)."""
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice((True, False))
    if kind == 2:
        return rng.choice(NUMBERS)
    if kind == 3:
        return (
            Raw(rng.choice(RAW_NUMBERS))
            if raw
            else rng.choice((*NAN_STRINGS, float("nan"), float("inf"), 2**70))
        )
    if kind == 4:
        return rng.choice(UNICODE)
    if kind == 5:
        return rng.choice((*NAN_STRINGS, "user", "assistant", "text", "image_url", "vllm/ok", "auto"))
    if kind == 6:
        return _text_value(rng, 4)
    if kind in (7, 8):
        return [wild(rng, depth + 1, raw) for _ in range(rng.randrange(4))]
    keys = ("role", "content", "type", "text", "x", "", "__proto__", "model", "url")
    return {rng.choice(keys): wild(rng, depth + 1, raw) for _ in range(rng.randrange(4))}


def confuse(rng: random.Random, value: Any, raw: bool = True) -> Any:
    """A value of another JSON type than ``value``."""
    for _ in range(20):
        other = wild(rng, 1, raw)
        if type(other) is not type(value) and not (isinstance(value, str) and isinstance(other, str)):
            return other
    return [value]


def nest(rng: random.Random, inner: Any, depth: int) -> Any:
    """``inner`` wrapped ``depth`` levels deep in lists and objects (one shape or mixed)."""
    style = rng.randrange(4)
    for level in range(depth):
        shape = style if style < 3 else level % 3
        inner = [inner] if shape == 0 else {"a": inner} if shape == 1 else {"content": inner}
    return inner


def _paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The paths of the nodes of ``value`` (not below 40 levels, nor past the 50th item of a list)."""
    yield here
    if len(here) >= 40:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*here, k))
    elif isinstance(value, list) and not isinstance(value, Dup):
        for i, v in enumerate(value[:50]):
            yield from _paths(v, (*here, i))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _put(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """``value`` with the node at ``path`` replaced (copies along the path; ``_DROP`` removes it)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        out = dict(value)
        child = _put(value[head], rest, new)
        if child is _DROP:
            del out[head]
        else:
            out[head] = child
        return out
    out_list = list(value)
    child = _put(value[head], rest, new)
    if child is _DROP:
        del out_list[head]
    else:
        out_list[head] = child
    return out_list


_DROP = object()


ODD_KEYS = ("x_unknown", "", "__proto__", "constructor", "🦄", "\x00", "a" * 1000, "role")


def mutate(rng: random.Random, value: Any, raw: bool = True, max_depth: int = 300) -> tuple[Any, str]:
    """One mutation at a random node of ``value``; returns (new value, what was done and where)."""
    paths = list(_paths(value))
    path = rng.choice(paths)
    node = _get(value, path)
    where = "/".join(str(p) for p in path) or "<root>"
    ops = ("confuse", "confuse", "number", "huge", "nest", "unicode", "drop", "unknown", "dup", "rename")
    op = rng.choice(ops)
    if (op == "unknown" and not isinstance(node, dict)) or (
        op in ("dup", "rename") and not (isinstance(node, dict) and node)
    ):
        op = "confuse"
    if op == "confuse":
        new: Any = confuse(rng, node, raw)
    elif op == "number":
        new = Raw(rng.choice(RAW_NUMBERS)) if raw and _maybe(rng) else rng.choice(NUMBERS + NAN_STRINGS)
    elif op == "huge":
        size = BODY_LIMIT + 1000 if _maybe(rng, 0.03) else rng.choice(HUGE)  # bytes, about
        unit = rng.choice(("a", "é", "😀 ", "\x00"))
        new = unit * (size // len(unit.encode()))
    elif op == "nest":
        depth = rng.choice([d for d in DEPTHS if d <= max_depth])
        new = nest(rng, node if not _maybe(rng) else wild(rng, 3, raw), depth)
        op = f"nest{depth}"
    elif op == "unicode":
        edge = rng.choice(UNICODE)
        new = rng.choice((edge, node + edge, edge + node)) if isinstance(node, str) else edge
    elif op == "drop":
        if not path:
            return ({} if isinstance(node, dict) else []), "empty <root>"
        return _put(value, path, _DROP), f"drop {where}"
    elif op == "unknown":
        new = {**node, rng.choice(ODD_KEYS): wild(rng, 2, raw)}
    elif op == "rename":  # the same value under another name: "Model", "model ", "\u0000model"…
        old = rng.choice(list(node))
        odd = rng.choice((old.upper(), old + " ", "\x00" + old, old.replace("_", "-"), *ODD_KEYS))
        new = {(odd if k == old else k): v for k, v in node.items()}
        op = f"rename({old!r}->{odd[:12]!r})"
    else:  # dup: the same key twice, the wild value first or last
        key = rng.choice(list(node))
        pairs = list(node.items())
        extra = (key, wild(rng, 2, raw))
        new = Dup([extra, *pairs] if _maybe(rng, 0.5) else [*pairs, extra]) if raw else node
    return _put(value, path, new), f"{op} {where}"


#: values at the edge of what a top-level field allows (or just past it): where range checks and
#: arithmetic on the values live. ``metadata.<name>`` fields go inside ``metadata``.
FIELD_EDGES: dict[str, tuple[Any, ...]] = {
    "max_tokens": (2**31, 2**53, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 10**15, -1, 0, 1.5, True),
    "n": (2**31, 2**63 - 1, 2**63, -1, 0, 128, 1.0),
    "seed": (2**63 - 1, 2**63, 2**64 - 1, -(2**63), -1),
    "top_logprobs": (2**63 - 1, 21, -1),
    "temperature": (-0.0, 2.0000001, 5e-324, 1e308, True, Raw("1e400")),
    "top_p": (-0.0, 1.0000001, 5e-324, Raw("-1e400")),
    "presence_penalty": (-2.0000001, 2, Raw("NaN")),
    "stop": (["a"] * 4, [""] * 5, "", ["\x00"]),
    "logit_bias": ({"50256": 1e308}, {"x": -(2**63)}, {"": None}),
    "input": ("", [""], [[]], [2**63], [[2**64 - 1]], [-1], ["a"] * 2049, [[0] * 100_000]),
    "encoding_format": ("FLOAT", "", None, "base64 "),
    "dimensions": (0, -1, 2**63),
    "metadata.quality_target": ("nan", "inf", "-inf", "-0", "1e400", "1e-400", "", "0", "5", 1e308),
    "metadata.max_price": ("nan", "inf", "-1", "0", "1e400", ""),
    "metadata.sources": (",".join(f"t{i}" for i in range(17)), [""] * 17, ",,,", "a" * 10_000, [["x"]]),
    "metadata.cache": ("OFF", "", "exact ", "none"),
    "metadata.task_type": ("", "x" * 10_000, ["a", "b"], "\x00"),
    "name": ("", "a" * 101, "\x00", " ", "\u202e"),
    "team": ("", "a" * 10_000, "\x00"),
    "rpm": (0, -1, 2**31, 2**63, 10**9 + 1),
    "tpm": (0, 2**63 - 1, 2**64),
    "budget_daily_usd": (-0.0, 5e-324, 1e308, Raw("1e400"), Raw("NaN"), 10**30),
    "budget_monthly_usd": (-1e-300, 1e9, 1e9 + 1),
    "allowed_models": ([""], ["*"], ["a" * 10_000], [None], ["**/../*"]),
    "allowed_tools": ([""], ["*"], ["ai/*" * 1000]),
    "tag": ("", " ", "*", "a" * 10_000, "\x00"),
    "request_id": ("", " ", "$REQUEST_ID ", "a" * 10_000, "%"),
}


FIELD_EDGES["max_completion_tokens"] = FIELD_EDGES["max_tokens"]
_METADATA = tuple(f for f in FIELD_EDGES if f.startswith("metadata."))
#: the fields each production's edges go to (mostly its own; now and then another's)
EDGE_FIELDS = {
    "chat": (
        *("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs", "temperature", "top_p"),
        *("presence_penalty", "stop", "logit_bias", *_METADATA),
    ),
    "embeddings": ("input", "encoding_format", "dimensions", *_METADATA),
    "admin.create": (
        *("name", "team", "rpm", "tpm", "budget_daily_usd", "budget_monthly_usd"),
        *("allowed_models", "allowed_tools"),
    ),
    "admin.update": (
        "rpm",
        "tpm",
        "budget_daily_usd",
        "budget_monthly_usd",
        "allowed_models",
        "allowed_tools",
    ),
    "admin.purge": ("tag", "team"),
    "admin.bump": ("tag",),
    "admin.report": ("request_id",),
}


def edge(rng: random.Random, value: Any, production: str = "") -> tuple[Any, str]:
    """A top-level field of ``value`` (an object) set to one of its ``FIELD_EDGES``: mostly a field
    of its own production, now and then any."""
    if not isinstance(value, dict):
        return value, "edge skipped"
    own = EDGE_FIELDS.get(production, ())
    name = rng.choice(own) if own and _maybe(rng, 0.85) else rng.choice(list(FIELD_EDGES))
    new = rng.choice(FIELD_EDGES[name])
    if name.startswith("metadata."):
        meta = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
        return {**value, "metadata": {**meta, name.split(".", 1)[1]: new}}, f"edge {name}"
    return {**value, name: new}, f"edge {name}"


# -- body, envelope -------------------------------------------------------------------------------


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
    if kind == 0:
        value = rng.choice(CONTENT_TYPES)
        headers = [h for h in headers if h[0] != "content-type"]
        if value is not None:
            headers.append(("content-type", value))
        return case._replace(headers=tuple(headers)), f"content-type {value!r:.40}"
    if kind == 1:
        value = rng.choice(AUTHS)
        headers = [h for h in headers if h[0] != "authorization"]
        if value is not None:
            headers.append(("authorization", value))
        return case._replace(headers=tuple(headers)), f"authorization {value!r:.40}"
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


def _make(rng: random.Random) -> tuple[Case, Any]:
    """One case and the JSON value its body encodes (None when the body is no encoding of one)."""
    productions, weights = zip(*PRODUCTIONS, strict=True)
    case, value = rng.choices(productions, weights)[0](rng)
    notes = [case.label]
    mutated = _maybe(rng, MUTATED)
    if mutated and value is not None:
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            roll = rng.random()
            if roll < 0.3:
                value, note = edge(rng, value, case.label)
                notes.append(note)
            elif roll < 0.8:
                value, note = mutate(rng, value)
                notes.append(note)
    body = encode(value) if value is not None else b""
    if mutated:
        roll = rng.random()
        if roll < 0.15 and body:
            body, note = mangle_body(rng, body)
            notes.append(note)
            value = None
        elif roll < 0.40 or value is None:
            case, note = mangle_envelope(rng, case)
            notes.append(note)
    return case._replace(body=body, label="; ".join(notes)), value


def make_case(rng: random.Random) -> Case:
    """One case: a production, then (``MUTATED`` of the time) one to three mutations."""
    return _make(rng)[0]


#: share of cases that repeat a recent one (the memo of parsed bodies, exact cache hits, replays)
REPEATS = 0.08


def cases(count: int, seed: int = SEED) -> Iterator[Case]:
    """``count`` cases from ``seed`` (the same ones every time). Some repeat one of the last 20 cases,
    as it was or with ``stream`` flipped (a streamed replay of a cached answer, and the reverse)."""
    rng = random.Random(seed)
    recent: list[tuple[Case, Any]] = []
    for _ in range(count):
        if recent and _maybe(rng, REPEATS):
            back = rng.randrange(len(recent))
            case, value = recent[-1 - back]
            if isinstance(value, dict) and "messages" in value and _maybe(rng):
                value = {**value, "stream": not value.get("stream")}
                case = case._replace(body=encode(value), label=f"{case.label}; repeat, stream flipped")
            else:
                case = case._replace(label=f"{case.label}; repeat")
        else:
            case, value = _make(rng)
        recent = [*recent[-19:], (case, value)]
        yield case


def edge_sweep(seed: int = SEED) -> Iterator[Case]:
    """Every ``FIELD_EDGES`` value of every production's ``EDGE_FIELDS``, once on a valid body of that
    production, for each kind of caller a model call can have: the systematic part of a run (a few
    hundred cases), before the random ones."""
    rng = random.Random(seed)
    makers = {
        "chat": _chat_case,
        "embeddings": _embeddings_case,
        "admin.create": _admin_write_case,
        "admin.update": _admin_write_case,
        "admin.purge": _admin_write_case,
        "admin.bump": _admin_write_case,
        "admin.report": _admin_write_case,
    }
    models = ("vllm/priced", "sophia/auto", "openai/gpt-4.1-mini", "sophia/smart")
    for production, fields in EDGE_FIELDS.items():
        callers = ("USER", "BUDGET") if production in ("chat", "embeddings") else ("ADMIN",)
        for name in fields:
            for i, new in enumerate(FIELD_EDGES[name]):
                for who in callers:
                    case, value = makers[production](rng)
                    while case.label != production:  # the admin maker picks one of several shapes
                        case, value = makers[production](rng)
                    if production == "chat":
                        value = {**value, "model": models[i % len(models)]}
                    if name.startswith("metadata."):
                        meta = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
                        value = {**value, "metadata": {**meta, name.split(".", 1)[1]: new}}
                    else:
                        value = {**value, name: new}
                    heads = (*(h for h in case.headers if h[0] != "authorization"), _auth(who))
                    yield case._replace(
                        headers=heads, body=encode(value), label=f"{production}; sweep {name}"
                    )


def suite(count: int, seed: int = SEED) -> Iterator[Case]:
    """A run: the edge sweep, then ``count`` random cases."""
    yield from edge_sweep(seed)
    yield from cases(count, seed)


# -- JSON-schema-guided values (MCP tool arguments) ----------------------------------------------------

#: realistic values for arguments by name (schemas say "string"; these say which strings matter)
HINTS: dict[str, tuple[Any, ...]] = {
    "model": (
        "vllm/ok",
        "ollama/ok",
        "sophia/fast",
        "sophia/smart",
        "sophia/auto",
        "openai/text-embedding-3-small",
    ),
    "since": ("7d", "24h", "today", "month", "2026-01-01", "30m"),
    "until": ("now", "today", "2026-12-31", "1h"),
    "provider": ("vllm", "ollama", "openai", "together"),
    "tag": ("crm.deals", "wiki"),
    "task_type": ("code", "chat", "summarize"),
}


def schema_value(rng: random.Random, schema: dict[str, Any], name: str = "") -> Any:
    """A value valid against ``schema`` (the subset tools use: types, enums, bounds, anyOf, objects)."""
    if "anyOf" in schema or "oneOf" in schema:
        return schema_value(rng, rng.choice(schema.get("anyOf") or schema["oneOf"]), name)
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return {k: schema_value(rng, s, k) for k, s in props.items() if k in required or _maybe(rng, 0.4)}
    if kind == "array":
        low, high = schema.get("minItems", 0), min(schema.get("maxItems", 4), 4)
        items = schema.get("items", {})
        return [schema_value(rng, items, name) for _ in range(rng.randint(low, max(low, high)))]
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 200)
        text = rng.choice(HINTS[name]) if name in HINTS else _text_value(rng)
        text = text[:high]
        return text if len(text) >= low else (text + "x" * low)[:high]
    if kind == "integer":
        low, high = schema.get("minimum", 0), schema.get("maximum", 1000)
        return rng.randint(low, min(high, low + 1000))
    if kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", low + 10)
        value = rng.uniform(low, high)
        return value if value > schema.get("exclusiveMinimum", float("-inf")) else high
    if kind == "boolean":
        return rng.choice((True, False))
    if kind == "null":
        return None
    return _text_value(rng)


#: edge values for arguments by name: what a schema's "string" lets through and code may not expect
EDGES: dict[str, tuple[Any, ...]] = {
    "since": (
        "99999999999999999999d",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01",
        "9999-12-31",
        "0d",
        "-1d",
        "1e308d",
        "nan",
        " Today ",
        "2026-02-30",
    ),
    "model": (
        "",
        " ",
        "/",
        "vllm/",
        "sophia/auto",
        "ollama/" + "x" * 190,
        "openai/text-embedding-3-small",
        "vllm/ok\x00",
    ),
    "provider": ("", " ", "x" * 64, "vllm/ok", "\x00"),
    "prompt": ("\x00", " ", "\n" * 1000, "a" * 200_000, "😀" * 2000, "\u202e" + "ok"),
    "content": ("\x00", " ", "a" * 200_000),
    "system": ("", "a" * 50_000),
    "tag": (" ", "crm.deals" * 22, "*", "%", "\x00"),
    "task_type": ("", "x" * 64, "\x00"),
}
EDGES["until"] = EDGES["since"]


def _bounds(rng: random.Random, schema: dict[str, Any]) -> Any:
    """A value at or just past one of ``schema``'s bounds."""
    if schema.get("type") in ("integer", "number"):
        edges = [
            schema[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in schema
        ]
        values = [v + d for v in edges for d in (-1, 0, 1)] + [
            2**63,
            -(2**63) - 1,
            2**70,
            float("inf"),
            float("nan"),
        ]
        return rng.choice(values)
    if schema.get("type") == "string":
        sizes = [schema[k] + d for k in ("minLength", "maxLength") if k in schema for d in (-1, 0, 1)] or [0]
        return "a" * max(rng.choice(sizes), 0)
    if schema.get("type") == "array":
        sizes = [schema[k] + d for k in ("minItems", "maxItems") if k in schema for d in (-1, 0, 1)] or [0]
        item = schema_value(rng, schema.get("items", {}))
        return [item] * max(rng.choice(sizes), 0)
    return wild(rng, 1, raw=False)


def mutate_arguments(rng: random.Random, args: dict[str, Any], schema: dict[str, Any]) -> tuple[Any, str]:
    """Tool arguments made wrong in a way the schema suggests (edge values, bounds, missing and unknown
    arguments), or by a generic value mutation (``mutate``, Python values only: these travel as JSON)."""
    props: dict[str, Any] = schema.get("properties", {})
    roll = rng.random()
    edged = [k for k in props if k in EDGES]
    if roll < 0.3 and edged:
        name = rng.choice(edged)
        return {**args, name: rng.choice(EDGES[name])}, f"edge {name}"
    if roll < 0.5 and props:
        name = rng.choice(list(props))
        return {**args, name: _bounds(rng, props[name])}, f"bounds {name}"
    if roll < 0.58:
        return {
            **args,
            rng.choice(("unexpected", "__proto__", "", "🦄")): wild(rng, 2, raw=False),
        }, "unknown argument"
    if roll < 0.64 and schema.get("required"):
        name = rng.choice(schema["required"])
        return {k: v for k, v in args.items() if k != name}, f"drop {name}"
    if not props:
        return {"unexpected": wild(rng, 0, raw=False)}, "unknown argument"
    # Arguments are an object on the wire (the SDK client refuses anything else before sending), and
    # it cannot write more than about 250 levels of nesting: mutations stay inside one argument.
    name = rng.choice(list(props))
    value = args[name] if name in args else schema_value(rng, props[name], name)
    new, note = mutate(rng, value, raw=False, max_depth=MCP_MAX_DEPTH)
    return {**args, name: new}, f"{note} (in {name})"


# -- the oracle ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    #: exceptions raised or logged inside the server while it answered (``signature`` each)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def error_shape(body: bytes) -> str | None:
    """None if ``body`` is an OpenAI error object, else what is wrong with it."""
    try:
        data = json.loads(body)
    except ValueError:
        return f"error body is not JSON: {body[:80]!r}"
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return f"error body has no 'error' object: {body[:80]!r}"
    missing = [k for k in ("message", "type", "param", "code") if k not in error]
    if missing or not isinstance(error.get("message"), str) or not isinstance(error.get("type"), str):
        return f"error object lacks {missing or 'string message/type'}: {body[:80]!r}"
    return None


def _model_of(case: Case) -> Any:
    try:
        data = json.loads(case.body)
    except ValueError:
        return None
    return data.get("model") if isinstance(data, dict) else None


def upstream_failure(case: Case, outcome: Outcome) -> bool:
    """A 5xx that the fake upstream was told to produce (a model of ``UPSTREAM_FAILING``)."""
    if outcome.status not in (502, 503, 504) or outcome.errors:
        return False
    model = _model_of(case)
    return isinstance(model, str) and model in UPSTREAM_FAILING and b"upstream_error" in outcome.body


def problems(case: Case, outcome: Outcome, secrets: tuple[str, ...]) -> list[str]:
    """What is wrong with the answer to ``case`` (empty: nothing)."""
    found = [f"exception {e}" for e in outcome.errors]
    if outcome.status >= 500 and not upstream_failure(case, outcome):
        found.append(f"status {outcome.status}")
    text = outcome.body.decode("utf-8", "replace")
    if "Traceback (most recent call last)" in text or 'File "/' in text:
        found.append("traceback text in the body")
    leaked = [s for s in secrets if s and s in text]
    if leaked:
        found.append("a key's secret in the body")
    if outcome.status >= 400:
        if SECRET_SHAPE.search(text):
            found.append("a secret-shaped 'sk-sophia-…' string in an error body")
        if outcome.body or case.method != "HEAD":
            shape = error_shape(outcome.body)
            if shape is not None:
                found.append(shape)
            kind = dict(outcome.headers).get("content-type", "")
            if shape is None and not kind.startswith("application/json"):
                found.append(f"error body sent as content-type {kind!r}")
    return found


def signature(exc: BaseException) -> str:
    """``Type: message`` at the innermost frame in Sophia's source (and the innermost frame overall)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/sophia/" in f.filename and "/tests/" not in f.filename]
    where = ""
    if ours:
        f = ours[-1]
        where = f" at {f.filename.split('/sophia/', 1)[1]}:{f.lineno} ({f.name})"
    if frames and (not ours or frames[-1] is not ours[-1]):
        last = frames[-1]
        where += f" <- {last.filename.rsplit('/', 2)[-2:][-1]}:{last.lineno}"
    message = str(exc).splitlines()[0][:100] if str(exc) else ""
    return f"{type(exc).__name__}: {message}{where}"


#: what uvicorn (httptools) answers, itself, to a request it cannot parse: a control character in a
#: header value, a method it does not know. Only a real server sends it; the app never sees the request.
SERVER_LAYER_400 = b"Invalid HTTP request received."


def finding_key(case: Case, outcome: Outcome, found: list[str]) -> str:
    """Groups findings with one cause: the exception signature, else the route and the problem."""
    if outcome.errors:
        return outcome.errors[0]
    if outcome.body == SERVER_LAYER_400:
        return (
            f"HTTP server layer: {outcome.status} {SERVER_LAYER_400.decode()!r} (plain text, before the app)"
        )
    route = "/".join(case.path.split("?")[0].split("/")[:2]) or "<empty>"
    kinds = sorted({p.split(":")[0] for p in found})
    return f"{route}/… -> {outcome.status}: {', '.join(kinds)}"


# -- the in-process driver ---------------------------------------------------------------------------

RAW_TARGET = "x-fuzz-raw-target"
#: a case's header (taken off before the app sees it): deliver the body in this many pieces
CHUNKS = "x-fuzz-chunks"


def pieces(body: bytes, count: int) -> list[bytes]:
    """``body`` cut into ``count`` pieces (the first one empty, as a client's first frame may be)."""
    size = max(1, -(-len(body) // max(count - 1, 1)))
    return [b"", *(body[i : i + size] for i in range(0, len(body), size))] if body else [b""]


class RawTarget:
    """An ASGI wrapper: takes the request target verbatim from a header (httpx would normalise dot
    segments away), as uvicorn gives it to the app, and records any exception the app lets out."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.errors: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            ours = {RAW_TARGET.encode(), CHUNKS.encode()}
            found = {k: v for k, v in scope["headers"] if k in ours}
            headers = [(k, v) for k, v in scope["headers"] if k not in ours]
            if CHUNKS.encode() in found:  # as a chunked upload arrives: several messages, no length
                headers = [(k, v) for k, v in headers if k != b"content-length"]
                headers.append((b"transfer-encoding", b"chunked"))
                receive = _Pieces(receive, int(found[CHUNKS.encode()]))
            scope = dict(scope, headers=headers)
            target = found.get(RAW_TARGET.encode())
            if target is not None:
                raw = bytes.fromhex(target.decode())
                raw_path, _, query = raw.partition(b"?")
                scope.update(raw_path=raw_path, path=unquote(raw_path.decode("latin-1")), query_string=query)
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            self.errors.append(signature(exc))
            raise


class _Pieces:
    """An ASGI ``receive`` that hands the request body over in pieces."""

    def __init__(self, receive: Any, count: int) -> None:
        self.receive, self.count = receive, count
        self.queue: list[dict[str, Any]] | None = None

    async def __call__(self) -> Any:
        if self.queue is None:
            first = await self.receive()
            if first["type"] != "http.request" or first.get("more_body"):
                return first
            parts = pieces(first.get("body", b""), self.count)
            self.queue = [{"type": "http.request", "body": p, "more_body": True} for p in parts]
            self.queue[-1]["more_body"] = False
        if self.queue:
            return self.queue.pop(0)
        return await self.receive()


class LoggedErrors(logging.Handler):
    """Collects the signatures of exceptions logged with a traceback (the gateway logs its 500s)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(signature(record.exc_info[1]))


@dataclass
class Driver:
    """Sends cases to an app through ``httpx.ASGITransport`` and judges the answers."""

    app: Any
    values: dict[str, str]
    timeout: float = 15.0
    shim: RawTarget = field(init=False)
    logged: LoggedErrors = field(init=False)
    last_request_id: str = "req_none"
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))

    def __post_init__(self) -> None:
        self.shim = RawTarget(self.app)
        self.logged = LoggedErrors()

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.values.items() if k in ("ADMIN", "USER", "BUDGET", "VICTIM_SECRET"))

    def __enter__(self) -> Driver:
        logging.getLogger().addHandler(self.logged)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self.logged)

    def client(self) -> Any:
        import httpx

        transport = httpx.ASGITransport(app=self.shim, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://sophia.test", timeout=self.timeout)

    async def send(self, http: Any, case: Case) -> Outcome:
        import asyncio
        import time

        real = fill(case, {**self.values, "REQUEST_ID": self.last_request_id})
        headers = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in real.headers]
        headers.append((RAW_TARGET.encode(), real.path.encode("latin-1", "replace").hex().encode()))
        self.shim.errors.clear()
        self.logged.errors.clear()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                resp = await http.request(real.method, "/fuzz", headers=headers, content=real.body)
        except TimeoutError:
            return Outcome(
                599, [], b"", [f"no answer within {self.timeout:g}s"], time.perf_counter() - started
            )
        seconds = time.perf_counter() - started
        rid = resp.headers.get("x-request-id")
        if (
            rid
            and resp.status_code == 200
            and (resp.headers.get("x-sophia-cache") != "miss" or _maybe(self.rng))
        ):
            self.last_request_id = rid  # mostly cache hits: what a false-hit report is about
        errors = [*self.shim.errors, *self.logged.errors]
        return Outcome(resp.status_code, list(resp.headers.items()), resp.content, errors, seconds)


# -- shrinking -----------------------------------------------------------------------------------------


def _smaller(value: Any) -> Iterator[Any]:
    """Candidate simplifications of a JSON value, boldest first."""
    for path in list(_paths(value)):
        node = _get(value, path)
        if isinstance(node, dict | list) and len(node) == 1:
            chain, inner = 0, node
            while isinstance(inner, dict | list) and len(inner) == 1:
                inner = next(iter(inner.values())) if isinstance(inner, dict) else inner[0]
                chain += 1
            if chain > 2:
                half = node
                for _ in range(chain // 2):
                    half = next(iter(half.values())) if isinstance(half, dict) else half[0]
                yield _put(value, path, half)
        if path and isinstance(_get(value, path[:-1]), dict | list):
            yield _put(value, path, _DROP)
        if isinstance(node, list) and len(node) > 1:
            yield _put(value, path, node[: len(node) // 2])
        if isinstance(node, str) and len(node) > 16:
            yield _put(value, path, node[:16])


async def shrink(case: Case, still_fails: Callable[[Case], Awaitable[bool]], budget: int = 200) -> Case:
    """A smaller case that still fails the same way (greedy: drop headers, then simplify the body)."""
    tries = 0
    for header in list(case.headers):
        if tries >= budget:
            break
        candidate = case._replace(headers=tuple(h for h in case.headers if h != header))
        tries += 1
        if await still_fails(candidate):
            case = candidate
    try:
        value = json.loads(case.body)
    except ValueError:
        return case
    if encode(value) != case.body:  # duplicate keys or raw tokens would be lost: keep the bytes
        return case
    progress = True
    while progress and tries < budget:
        progress = False
        for candidate_value in _smaller(value):
            tries += 1
            candidate = case._replace(body=encode(candidate_value))
            if await still_fails(candidate):
                value, case, progress = candidate_value, candidate, True
                break
            if tries >= budget:
                break
    return case
