"""The random cases: a production, mostly mutated, now and then a repeat; ``suite`` is a run."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from .case import Case
from .edges import edge, edge_sweep
from .encoding import encode
from .envelope import mangle_body, mangle_envelope
from .grammar import PRODUCTIONS
from .mutate import mutate
from .values import MUTATED, SEED, maybe


def _make(rng: random.Random) -> tuple[Case, Any]:
    """One case and the JSON value its body encodes (None when the body is no encoding of one)."""
    productions, weights = zip(*PRODUCTIONS, strict=True)
    case, value = rng.choices(productions, weights)[0](rng)
    notes = [case.label]
    mutated = maybe(rng, MUTATED)
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
        if recent and maybe(rng, REPEATS):
            back = rng.randrange(len(recent))
            case, value = recent[-1 - back]
            if isinstance(value, dict) and "messages" in value and maybe(rng):
                value = {**value, "stream": not value.get("stream")}
                case = case._replace(body=encode(value), label=f"{case.label}; repeat, stream flipped")
            else:
                case = case._replace(label=f"{case.label}; repeat")
        else:
            case, value = _make(rng)
        recent = [*recent[-19:], (case, value)]
        yield case


def suite(count: int, seed: int = SEED) -> Iterator[Case]:
    """A run: the edge sweep, then ``count`` random cases."""
    yield from edge_sweep(seed)
    yield from cases(count, seed)
