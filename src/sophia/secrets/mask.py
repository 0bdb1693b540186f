"""Known secret values masked in every output, in every spelling an output may give them.

A secret leaks in more spellings than its own: a ``Basic`` header carries it inside a base64 blob,
a URL percent-encodes it, a JSON log line escapes it, an HTML page entity-escapes it, a traceback
shows its ``repr``. ``Masker`` holds the secret values the running environment knows (``KNOWN``,
the process-wide one: provider keys, webhook URLs, the environment's secrets) and replaces each of
them, and each of its encoded forms (``encoded_forms``), with ``MASK``.

Values shorter than ``MIN_LENGTH`` characters are not masked: a short value ("admin", a port, a
yes/no) is also ordinary text, and masking it everywhere would destroy logs and answers while
protecting nothing an attacker could not guess.

All forms of all values are compiled into one regular expression shaped like a trie (common
prefixes shared), rebuilt when the values change: Python's ``re`` then tries only the branches that
start with the character at hand, where a flat alternation would try every form at every position
(a 200-character line, 100 secrets: 30-70 µs against ~650 µs). Where several forms match at one place
the longest wins, so a whole base64 blob is masked rather than the part that is also an embedded
core.

``mask_credentials`` adds the other half: credential-shaped values nobody told us about, found by
``sophia.secrets.scan.credential_spans`` (the one rule table, shared with ``sophia secrets scan``);
a ``name=value`` pair keeps its name (``password=[REDACTED]``). ``MaskingFilter`` applies it to
log records. ``mask_tree`` applies it to JSON-shaped results (MCP structured content, dashboard data).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from pydantic import BaseModel, SecretBytes, SecretStr

from sophia.secrets.scan import credential_spans

MASK = "[REDACTED]"
#: values shorter than this are never masked (see the module's docstring)
MIN_LENGTH = 8
#: the uvicorn loggers that get the filter themselves (uvicorn replaces their handlers, not their filters)
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

T = TypeVar("T")
_PCT = re.compile(r"%[0-9A-F]{2}")
_URLSAFE = str.maketrans("+/", "-_")
_FORMATTER = logging.Formatter()  # formats a traceback as every handler's formatter would
#: percent-encoding as the encoders in use spell it: Python's ``quote`` (with and without "/" safe),
#: ``quote_plus`` (forms, query strings) and JavaScript's ``encodeURIComponent``
_URL_SAFE_SETS = ("", "/", "!~*'()")


def _embedded_b64(raw: bytes) -> Iterator[str]:
    """The base64 of ``raw`` inside a longer blob (``base64(user + ":" + secret)``), at each of the three
    byte alignments: only the characters that depend on ``raw`` alone (the ones shared with the
    neighbouring bytes differ from blob to blob)."""
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode().rstrip("=")
        first = -(-8 * shift // 6)  # the first character with no bit of the padding in front
        last = 8 * (shift + len(raw)) // 6  # past the last character made of raw's bits only
        yield encoded[first:last]


def encoded_forms(value: str) -> frozenset[str]:
    """``value`` and the spellings outputs give it: base64 (standard and URL-safe, padded or not, and
    embedded in a longer blob), percent-encoded (upper- and lowercase hex), JSON-escaped (ASCII or
    not, ``\\/``), HTML-escaped, hex, and the ``repr`` of it and of its UTF-8 bytes (tracebacks)."""
    raw = value.encode("utf-8", "surrogatepass")
    forms = {value, repr(value)[1:-1], repr(raw)[2:-1], raw.hex(), raw.hex().upper()}
    for ascii_only in (True, False):
        escaped = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        forms.update((escaped, escaped.replace("/", "\\/")))
    for standard in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
        forms.update((standard, standard.rstrip("=")))
    for core in _embedded_b64(raw):
        forms.update((core, core.translate(_URLSAFE)))
    quoted = [quote(value, safe=safe) for safe in _URL_SAFE_SETS] + [quote_plus(value)]
    for spelling in quoted:
        forms.update((spelling, _PCT.sub(lambda m: m.group(0).lower(), spelling)))
    escaped_html = html.escape(value)
    forms.update((escaped_html, html.escape(value, quote=False)))
    forms.add(escaped_html.replace("&#x27;", "&#39;").replace("&quot;", "&#34;"))  # markupsafe's spelling
    return frozenset(form for form in forms if len(form) >= MIN_LENGTH)


def _trie_pattern(forms: Iterable[str]) -> str:
    """One regular expression matching any of ``forms``, the longest where several match at one place."""
    trie: dict[str, Any] = {}
    for form in forms:
        node = trie
        for char in form:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = []
        for char in sorted(c for c in node if c):
            chain, child = [re.escape(char)], node[char]
            while len(child) == 1 and "" not in child:  # a run with no fork and no end: one literal
                ((char, child),) = child.items()
                chain.append(re.escape(char))
            branches.append("".join(chain) + emit(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body  # an end here: go on if a longer form matches

    return emit(trie)


class Masker:
    """Secret values and their encoded forms, masked in text. Safe to use from several threads: a
    change builds the new expression first and swaps it in whole."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        #: goes up at every change (memos of masked text compare it)
        self.version = 0
        self.replace(values)

    @property
    def values(self) -> tuple[str, ...]:
        """The values masked (those of ``MIN_LENGTH`` characters or more), sorted."""
        return tuple(sorted(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def replace(self, values: Iterable[str]) -> None:
        """Mask exactly ``values`` from now on (the environment was loaded or reloaded)."""
        with self._lock:
            self._set(frozenset(_usable(values)))

    def add(self, values: Iterable[str] | str) -> None:
        """Mask ``values`` too (one string or several)."""
        with self._lock:
            self._set(self._values | _usable(values))

    def _set(self, values: frozenset[str]) -> None:
        if values == self._values:
            return
        forms: set[str] = set()
        for value in values:
            forms |= encoded_forms(value)
        pattern = re.compile(_trie_pattern(forms)) if forms else None
        self._values, self._pattern = values, pattern
        self.version += 1

    def mask(self, text: str) -> str:
        """``text`` with every known value, in every form, replaced by ``MASK``."""
        pattern = self._pattern
        if pattern is None or len(text) < MIN_LENGTH:
            return text
        return pattern.sub(MASK, text)

    def leaks(self, text: str) -> bool:
        """Whether ``text`` holds a known value in any of its forms (the tests' question)."""
        pattern = self._pattern
        return pattern is not None and pattern.search(text) is not None


def _usable(values: Iterable[str] | str) -> frozenset[str]:
    if isinstance(values, str):
        values = (values,)
    return frozenset(v for v in values if isinstance(v, str) and len(v) >= MIN_LENGTH)


#: the secret values the running environment knows (settings' SecretStr values, the environment's secrets)
KNOWN = Masker()


def mask_credentials(text: str, masker: Masker | None = None) -> str:
    """``text`` with the known values (``masker``, default ``KNOWN``) and every credential-shaped value
    (``scan.credential_spans``) masked; a ``name=value`` pair keeps its name."""
    if not text:
        return text
    text = (masker or KNOWN).mask(text)
    spans = credential_spans(text)
    if not spans:
        return text
    parts: list[str] = []
    at = 0
    for start, end, _ in spans:
        if end <= at:
            continue
        parts += (text[at : max(start, at)], MASK)
        at = end
    parts.append(text[at:])
    return "".join(parts)


def mask_tree(value: T, masker: Masker | None = None) -> T:
    """A JSON-shaped value (dicts, lists, strings, numbers) with its strings masked as
    ``mask_credentials`` masks text; the same object when nothing needed it.

    The tree is checked as one JSON text, so a secret's name in a key still guards its value in
    ``{"password": "…"}``; the masked text is parsed back when it is still JSON, and otherwise each
    string is masked on its own.
    """
    try:
        dumped = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):  # not JSON-shaped (bytes, objects): mask string by string
        return _mask_strings(value, masker)
    masked = mask_credentials(dumped, masker)
    if masked == dumped:
        return value
    try:
        parsed: T = json.loads(masked)
    except ValueError:  # a mask straddled a quote: fall back to the strings one by one
        return _mask_strings(value, masker)
    return parsed


def _mask_strings(value: Any, masker: Masker | None) -> Any:
    if isinstance(value, str):
        return mask_credentials(value, masker)
    if isinstance(value, dict):
        return {key: _mask_strings(item, masker) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask_strings(item, masker) for item in value)
    return value


def known_from_settings(settings: Any) -> list[str]:
    """Every ``SecretStr`` (and UTF-8 ``SecretBytes``) value in a settings tree: provider keys, webhook
    URLs, OTLP headers … (typed ``Any``: the settings package stands above this one)."""
    return list(dict.fromkeys(_secrets_in(settings)))


def _secrets_in(model: Any) -> Iterator[str]:
    if isinstance(model, SecretStr):
        yield model.get_secret_value()
    elif isinstance(model, SecretBytes):
        try:
            yield model.get_secret_value().decode("utf-8")
        except UnicodeDecodeError:
            return
    elif isinstance(model, BaseModel):
        for name in type(model).model_fields:
            yield from _secrets_in(getattr(model, name))
    elif isinstance(model, dict):
        for item in model.values():
            yield from _secrets_in(item)
    elif isinstance(model, list | tuple | set | frozenset):
        for item in model:
            yield from _secrets_in(item)


class MaskingFilter(logging.Filter):
    """Masks a log record before any handler formats it: its message, its exception's traceback (an
    exception's message and ``repr`` arguments may hold a value) and its stack.

    A record's arguments are masked one by one where that suffices (uvicorn's access formatter reads
    them as a tuple); otherwise the message is rendered, masked, and the arguments dropped.
    """

    def __init__(self, masker: Masker | None = None) -> None:
        super().__init__()
        self.masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        masker = self.masker or KNOWN
        stamp = (id(masker), masker.version)
        if getattr(record, "_sophia_masked", None) == stamp:  # a second handler: done already
            return True
        _mask_message(record, masker)
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_credentials(record.exc_text, masker)
        if record.stack_info:
            record.stack_info = mask_credentials(record.stack_info, masker)
        setattr(record, "_sophia_masked", stamp)  # noqa: B010 - LogRecord declares no such attribute
        return True


def _mask_message(record: logging.LogRecord, masker: Masker) -> None:
    try:
        message = record.getMessage()
    except (TypeError, ValueError, KeyError):  # a broken format string: logging reports it itself
        return
    masked = mask_credentials(message, masker)
    if masked == message:
        return
    if isinstance(record.args, tuple) and record.args:
        msg, args = record.msg, record.args
        record.msg = mask_credentials(str(msg), masker) if isinstance(msg, str) else msg
        record.args = tuple(_mask_arg(arg, masker) for arg in args)
        try:
            if record.getMessage() == masked:
                return
        except (TypeError, ValueError):
            pass
        record.args = args
    record.msg, record.args = masked, None


def _mask_arg(arg: Any, masker: Masker) -> Any:
    """A %-argument masked; one whose text needs no masking is kept as it is (``%d`` still takes it)."""
    text = arg if isinstance(arg, str) else str(arg)
    masked = mask_credentials(text, masker)
    return arg if masked == text else masked


def mask_logging(masker: Masker | None = None, loggers: Iterable[str] = UVICORN_LOGGERS) -> MaskingFilter:
    """Install one ``MaskingFilter`` on the root logger's handlers and on ``loggers`` themselves (the
    filters of a logger survive ``dictConfig``, which uvicorn runs after us); idempotent."""
    root = logging.getLogger()
    current = next(
        (f for h in root.handlers for f in h.filters if isinstance(f, MaskingFilter) and f.masker is masker),
        None,
    )
    masking = current or MaskingFilter(masker)
    for handler in root.handlers:
        if masking not in handler.filters:
            handler.addFilter(masking)
    for name in loggers:
        logger = logging.getLogger(name)
        if masking not in logger.filters:
            logger.addFilter(masking)
    return masking
