"""Mutations of JSON values: type confusion, odd numbers, huge strings, deep nesting, unicode edge
cases, dropped, unknown, renamed and duplicate keys, at any node of the tree."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from .encoding import Dup, Raw
from .values import BODY_LIMIT, DEPTHS, HUGE, NAN_STRINGS, NUMBERS, RAW_NUMBERS, UNICODE, maybe, text_value


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
        return text_value(rng, 4)
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


def node_paths(value: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The paths of the nodes of ``value`` (not below 40 levels, nor past the 50th item of a list)."""
    yield here
    if len(here) >= 40:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from node_paths(v, (*here, k))
    elif isinstance(value, list) and not isinstance(value, Dup):
        for i, v in enumerate(value[:50]):
            yield from node_paths(v, (*here, i))


def get_at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def put_at(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """``value`` with the node at ``path`` replaced (copies along the path; ``DROP`` removes it)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    out = dict(value) if isinstance(value, dict) else list(value)
    child = put_at(value[head], rest, new)
    if child is DROP:
        del out[head]
    else:
        out[head] = child
    return out


DROP = object()


ODD_KEYS = ("x_unknown", "", "__proto__", "constructor", "🦄", "\x00", "a" * 1000, "role")


def mutate(rng: random.Random, value: Any, raw: bool = True, max_depth: int = 300) -> tuple[Any, str]:
    """One mutation at a random node of ``value``; returns (new value, what was done and where)."""
    paths = list(node_paths(value))
    path = rng.choice(paths)
    node = get_at(value, path)
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
        new = Raw(rng.choice(RAW_NUMBERS)) if raw and maybe(rng) else rng.choice(NUMBERS + NAN_STRINGS)
    elif op == "huge":
        size = BODY_LIMIT + 1000 if maybe(rng, 0.03) else rng.choice(HUGE)  # bytes, about
        unit = rng.choice(("a", "é", "😀 ", "\x00"))
        new = unit * (size // len(unit.encode()))
    elif op == "nest":
        depth = rng.choice([d for d in DEPTHS if d <= max_depth])
        new = nest(rng, node if not maybe(rng) else wild(rng, 3, raw), depth)
        op = f"nest{depth}"
    elif op == "unicode":
        edge = rng.choice(UNICODE)
        new = rng.choice((edge, node + edge, edge + node)) if isinstance(node, str) else edge
    elif op == "drop":
        if not path:
            return ({} if isinstance(node, dict) else []), "empty <root>"
        return put_at(value, path, DROP), f"drop {where}"
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
        new = Dup([extra, *pairs] if maybe(rng, 0.5) else [*pairs, extra]) if raw else node
    return put_at(value, path, new), f"{op} {where}"
