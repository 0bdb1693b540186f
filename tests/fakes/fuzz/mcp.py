"""JSON-schema-guided values for the MCP tools' arguments, valid (``schema_value``) and made wrong in
the ways the schema suggests (``mutate_arguments``)."""

from __future__ import annotations

import random
from typing import Any

from .mutate import mutate, wild
from .values import MCP_MAX_DEPTH, maybe, text_value

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
        return {k: schema_value(rng, s, k) for k, s in props.items() if k in required or maybe(rng, 0.4)}
    if kind == "array":
        low, high = schema.get("minItems", 0), min(schema.get("maxItems", 4), 4)
        items = schema.get("items", {})
        return [schema_value(rng, items, name) for _ in range(rng.randint(low, max(low, high)))]
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 200)
        text = rng.choice(HINTS[name]) if name in HINTS else text_value(rng)
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
    return text_value(rng)


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
