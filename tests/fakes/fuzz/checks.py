"""The oracle: what is wrong with an answer (``problems``), and how findings with one cause group."""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass, field
from typing import Any

from .case import Case
from .values import SECRET_SHAPE, UPSTREAM_FAILING


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
