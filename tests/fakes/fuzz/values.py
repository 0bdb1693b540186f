"""The fuzzer's pools: the seed, the models and groups the grammar names, and the edge values a mutation
draws from (unicode, numbers, raw number tokens, nesting depths, huge sizes)."""

from __future__ import annotations

import random
import re

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


def text_value(rng: random.Random, words: int = 12) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, words)))


def maybe(rng: random.Random, share: float = 0.3) -> bool:
    return rng.random() < share
