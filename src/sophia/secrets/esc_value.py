"""The values of ESC evaluation: data with ``secret``/``unknown``/``final`` flags.

Also the conversions every builtin shares: ESC's ``toString`` text, type names and the
ciphertext envelope (``escx``, a version, the payload, a CRC-32 of what precedes it).
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from sophia.secrets.esc_schema import type_name

UNKNOWN = "[unknown]"
SECRET = "[secret]"


@dataclass
class Value:
    """An evaluated value: ``v`` is None/bool/int/float/str, ``list[Value]`` or ``dict[str, Value]``."""

    v: Any = None
    secret: bool = False
    unknown: bool = False
    final: bool = False
    own: tuple[str, ...] | None = None  # keys defined here, not merged in from imports
    rotate_only: bool = False  # unknown only because a rotate-only reference was not resolved

    def is_object(self) -> bool:
        return not self.unknown and isinstance(self.v, dict)

    def reveal(self) -> Any:
        return _plain(self, redact=False)

    def redacted(self) -> Any:
        return _plain(self, redact=True)


def _plain(x: Value, *, redact: bool) -> Any:
    if redact and x.secret:
        return SECRET
    if x.unknown:
        return UNKNOWN
    if isinstance(x.v, list):
        return [_plain(i, redact=redact) for i in x.v]
    if isinstance(x.v, dict):
        return {k: _plain(i, redact=redact) for k, i in x.v.items()}
    return x.v


def from_plain(obj: Any, *, secret: bool = False) -> Value:
    """Wrap plain JSON-like data as a Value tree."""
    if isinstance(obj, Value):
        return obj
    if isinstance(obj, list):
        return Value([from_plain(i) for i in obj], secret=secret)
    if isinstance(obj, dict):
        return Value({str(k): from_plain(i) for k, i in obj.items()}, secret=secret)
    return Value(obj, secret=secret)


def unknown(secret: bool = False) -> Value:
    return Value(None, secret=secret, unknown=True)


def _children(x: Value) -> Any:
    return x.v if isinstance(x.v, list) else x.v.values() if isinstance(x.v, dict) else ()


def deep_secret(x: Value) -> bool:
    """Whether ``x`` or anything inside it is secret."""
    return x.secret or any(deep_secret(i) for i in _children(x))


def deep_unknown(x: Value) -> bool:
    """Whether ``x`` or anything inside it is unknown."""
    return x.unknown or any(deep_unknown(i) for i in _children(x))


def merge(base: Value | None, top: Value) -> Value:
    """Merge ``top`` over ``base``: objects merge key by key, anything else replaces."""
    if base is None or not (base.is_object() and top.is_object()) or base.final:
        return base if base is not None and base.final else top
    out = dict(base.v)
    for k, v in top.v.items():
        out[k] = merge(out.get(k), v)
    return Value(out, secret=top.secret, own=tuple(top.v))


# --- conversions -------------------------------------------------------------------------------


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def to_string(v: Value) -> str:
    """ESC's ``fn::toString`` text of a value (objects as sorted ``"k"="v"`` pairs)."""
    x = v.v
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, float)):
        return _number_text(x)
    if isinstance(x, str):
        return x
    if isinstance(x, list):
        return ",".join(_go_quote(to_string(i)) for i in x)
    keys = sorted(v.own if v.own is not None else x)
    return ",".join(f"{_go_quote(k)}={_go_quote(to_string(x[k]))}" for k in keys)


def _number_text(x: float) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


def value_type(v: Value) -> str:
    """ESC's name for the JSON type of a value (as in ``expected string, got number``)."""
    return type_name(v.v)


_ENVELOPE_MAGIC = b"escx"


def open_envelope(blob: bytes) -> bytes:
    """The payload of an ESC ciphertext: ``escx``, a version, the payload, a CRC-32 of the rest."""
    if len(blob) < 12:
        raise ValueError("EOF")
    if blob[:4] != _ENVELOPE_MAGIC:
        raise ValueError("invalid envelope magic")
    (crc,) = struct.unpack(">I", blob[-4:])
    if zlib.crc32(blob[:-4]) != crc:
        raise ValueError("checksum mismatch")
    return blob[8:-4]


def blocking_unknown(x: Value) -> bool:
    """Whether ``x`` holds an unknown that is not merely an unresolved rotate-only reference."""
    if x.unknown:
        return not x.rotate_only
    if isinstance(x.v, list):
        return any(blocking_unknown(i) for i in x.v)
    if isinstance(x.v, dict):
        return any(blocking_unknown(i) for i in x.v.values())
    return False


def go_base64_decode(text: str) -> bytes:
    """Standard base64 decoding that fails with Go's message (``illegal base64 data at input byte N``)."""
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    stripped = text.replace("\r", "").replace("\n", "")
    body = stripped.rstrip("=")
    for i, c in enumerate(body):
        if c not in alphabet:
            raise ValueError(f"illegal base64 data at input byte {i}")
    if len(stripped) % 4 or len(stripped) - len(body) > 2 or len(body) % 4 == 1:
        raise ValueError(f"illegal base64 data at input byte {len(body) - len(body) % 4}")
    return base64.b64decode(stripped)


def secret_texts(v: Value) -> list[str]:
    """The text of every secret leaf of ``v`` (a leaf under a secret is secret too), each once, in order:
    what a caller masks in its outputs."""
    out: dict[str, None] = {}

    def walk(x: Value, under: bool) -> None:
        secret = under or x.secret
        if x.unknown:
            return
        if isinstance(x.v, list):
            for i in x.v:
                walk(i, secret)
        elif isinstance(x.v, dict):
            for i in x.v.values():
                walk(i, secret)
        elif secret and x.v is not None and (text := to_string(x)):
            out[text] = None

    walk(v, False)
    return list(out)
