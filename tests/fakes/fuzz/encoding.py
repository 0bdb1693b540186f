"""JSON with what ``json.dumps`` cannot write: raw tokens, repeated keys, lone surrogates."""

from __future__ import annotations

import json
from typing import Any


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
