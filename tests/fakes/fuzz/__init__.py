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

The package, by part (each module imports only the ones listed before it)::

    values     the seed, models, groups, and the pools mutations draw from (unicode, numbers…)
    encoding   ``encode``: JSON with raw tokens (``Raw``), repeated keys (``Dup``), lone surrogates
    case       ``Case``, ``CHUNKS``, ``make_keys`` and ``fill`` (the placeholders)
    grammar    the valid shapes: ``chat_body``, ``embeddings_body``…, ``PRODUCTIONS``
    mutate     value mutations: ``wild``, ``confuse``, ``nest``, ``mutate``
    edges      ``FIELD_EDGES``: one at random (``edge``), all of them (``edge_sweep``)
    envelope   ``mangle_body``, ``mangle_envelope``
    generate   ``make_case``, ``cases``, ``suite``
    mcp        ``schema_value``, ``mutate_arguments``
    checks     the oracle: ``Outcome``, ``problems``, ``signature``, ``finding_key``
    driver     ``Driver``, ``RawTarget``, ``pieces``, ``shrink``
"""

from __future__ import annotations

from .case import CHUNKS, Case, fill, make_keys
from .checks import Outcome, finding_key, problems
from .driver import Driver, pieces, shrink
from .encoding import encode
from .generate import suite
from .grammar import chat_body, embeddings_body
from .mcp import mutate_arguments, schema_value
from .values import FUZZ_ALIASES, SECRET_SHAPE, SEED

__all__ = [
    "CHUNKS",
    "FUZZ_ALIASES",
    "SECRET_SHAPE",
    "SEED",
    "Case",
    "Driver",
    "Outcome",
    "chat_body",
    "embeddings_body",
    "encode",
    "fill",
    "finding_key",
    "make_keys",
    "mutate_arguments",
    "pieces",
    "problems",
    "schema_value",
    "shrink",
    "suite",
]
