"""ESC's builtin functions over evaluated arguments (``fn::join``, ``fn::toJSON``, …).

Each takes the scope evaluating it (to evaluate its argument and report errors) and the call.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any, Protocol

from sophia.secrets.esc_syntax import Builtin, Expr, ListExpr
from sophia.secrets.esc_value import (
    Value,
    deep_secret,
    deep_unknown,
    from_plain,
    go_base64_decode,
    to_string,
    unknown,
    value_type,
)

_GO_HTML_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


class Scope(Protocol):
    """What a builtin needs from the environment evaluating it."""

    def eval(self, x: Expr) -> Value: ...

    def error(self, summary: str, path: str) -> None: ...


def _expect(env: Scope, v: Value, kind: str, path: str) -> bool:
    if v.unknown:
        return False
    got = value_type(v)
    if got != kind:
        env.error(f"expected {kind}, got {got}", path)
        return False
    return True


def _fn_join(env: Scope, x: Builtin) -> Value:
    assert isinstance(x.arg, ListExpr)
    delim, items = (env.eval(i) for i in x.arg.items)
    ok = _expect(env, delim, "string", x.arg.items[0].path)
    ok = _expect(env, items, "array", x.arg.items[1].path) and ok
    if not ok:
        return unknown()
    strings: list[str] = []
    for i, item in enumerate(items.v):
        if item.unknown:
            return unknown()
        if not isinstance(item.v, str):
            env.error(f"expected string, got {value_type(item)}", f"{x.arg.items[1].path}[{i}]")
            return unknown()
        strings.append(item.v)
    return Value(delim.v.join(strings), secret=deep_secret(delim) or deep_secret(items))


def _fn_split(env: Scope, x: Builtin) -> Value:
    assert isinstance(x.arg, ListExpr)
    delim, text = (env.eval(i) for i in x.arg.items)
    ok = _expect(env, delim, "string", x.arg.items[0].path)
    ok = _expect(env, text, "string", x.arg.items[1].path) and ok
    if not ok:
        return unknown()
    secret = delim.secret or text.secret
    parts = text.v.split(delim.v) if delim.v else list(text.v)
    return Value([Value(p, secret=secret) for p in parts], secret=secret)


def _fn_concat(env: Scope, x: Builtin) -> Value:
    assert x.arg is not None
    if not isinstance(x.arg, ListExpr):
        _expect(env, env.eval(x.arg), "array", x.arg.path)
        return unknown()
    out: list[Value] = []
    ok, secret = True, False
    for item in x.arg.items:
        v = env.eval(item)
        if not _expect(env, v, "array", item.path):
            ok = False
            continue
        secret = secret or v.secret
        out.extend(v.v)
    return Value(out, secret=secret) if ok else unknown()


def _string_fn(convert: Callable[[str], Any], kind: str) -> Callable[[Scope, Builtin], Value]:
    def run(env: Scope, x: Builtin) -> Value:
        assert x.arg is not None
        v = env.eval(x.arg)
        if not _expect(env, v, "string", x.arg.path):
            return unknown(v.secret)
        try:
            out = convert(v.v)
        except ValueError as exc:  # UnicodeDecodeError and json's errors included
            env.error(f"{kind}: {_go_error(exc)}", x.path)
            return unknown(v.secret)
        result = from_plain(out)
        if v.secret:
            result.secret = True
        return result

    return run


def _b64decode(s: str) -> str:
    return go_base64_decode(s).decode()


def _go_error(exc: ValueError) -> str:
    """Go's wording for the common JSON decoding errors; other messages pass through."""
    if isinstance(exc, json.JSONDecodeError):
        if exc.pos >= len(exc.doc):
            return "unexpected EOF"
        c = exc.doc[exc.pos]
        if exc.msg == "Expecting value":
            return f"invalid character '{c}' looking for beginning of value"
        if exc.msg == "Extra data":
            return f"invalid character '{c}' after top-level value"
        return f"invalid character '{c}'"
    return str(exc)


def _fn_to_json(env: Scope, x: Builtin) -> Value:
    assert x.arg is not None
    v = env.eval(x.arg)
    if deep_unknown(v):
        return unknown(deep_secret(v))
    text = json.dumps(v.reveal(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in _GO_HTML_ESCAPES:  # Go's json.Marshal escapes these
        text = text.replace(char, escaped)
    return Value(text, secret=deep_secret(v))


def _fn_to_string(env: Scope, x: Builtin) -> Value:
    assert x.arg is not None
    v = env.eval(x.arg)
    if deep_unknown(v):
        return unknown(deep_secret(v))
    return Value(to_string(v), secret=deep_secret(v))


def _fn_to_base64(env: Scope, x: Builtin) -> Value:
    assert x.arg is not None
    v = env.eval(x.arg)
    if not _expect(env, v, "string", x.arg.path):
        return unknown(v.secret)
    return Value(base64.b64encode(v.v.encode()).decode(), secret=v.secret)


FUNCTIONS: dict[str, Callable[[Scope, Builtin], Value]] = {
    "fn::join": _fn_join,
    "fn::split": _fn_split,
    "fn::concat": _fn_concat,
    "fn::fromJSON": _string_fn(json.loads, "decoding JSON string"),
    "fn::fromBase64": _string_fn(_b64decode, "decoding base64 string"),
    "fn::toJSON": _fn_to_json,
    "fn::toString": _fn_to_string,
    "fn::toBase64": _fn_to_base64,
}
