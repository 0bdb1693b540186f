"""Field edges: values at or just past what a top-level field allows, one at random as a mutation
(``edge``) or all of them systematically (``edge_sweep``)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from .case import Case
from .encoding import Raw, encode
from .grammar import admin_write_case, auth, chat_case, embeddings_case
from .values import SEED, maybe

#: values at the edge of what a top-level field allows (or just past it): where range checks and
#: arithmetic on the values live. ``metadata.<name>`` fields go inside ``metadata``.
FIELD_EDGES: dict[str, tuple[Any, ...]] = {
    "max_tokens": (2**31, 2**53, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 10**15, -1, 0, 1.5, True),
    "n": (2**31, 2**63 - 1, 2**63, -1, 0, 128, 1.0),
    "seed": (2**63 - 1, 2**63, 2**64 - 1, -(2**63), -1),
    "top_logprobs": (2**63 - 1, 21, -1),
    "temperature": (-0.0, 2.0000001, 5e-324, 1e308, True, Raw("1e400")),
    "top_p": (-0.0, 1.0000001, 5e-324, Raw("-1e400")),
    "presence_penalty": (-2.0000001, 2, Raw("NaN")),
    "stop": (["a"] * 4, [""] * 5, "", ["\x00"]),
    "logit_bias": ({"50256": 1e308}, {"x": -(2**63)}, {"": None}),
    "input": ("", [""], [[]], [2**63], [[2**64 - 1]], [-1], ["a"] * 2049, [[0] * 100_000]),
    "encoding_format": ("FLOAT", "", None, "base64 "),
    "dimensions": (0, -1, 2**63),
    "metadata.quality_target": ("nan", "inf", "-inf", "-0", "1e400", "1e-400", "", "0", "5", 1e308),
    "metadata.max_price": ("nan", "inf", "-1", "0", "1e400", ""),
    "metadata.sources": (",".join(f"t{i}" for i in range(17)), [""] * 17, ",,,", "a" * 10_000, [["x"]]),
    "metadata.cache": ("OFF", "", "exact ", "none"),
    "metadata.task_type": ("", "x" * 10_000, ["a", "b"], "\x00"),
    "name": ("", "a" * 101, "\x00", " ", "\u202e"),
    "team": ("", "a" * 10_000, "\x00"),
    "rpm": (0, -1, 2**31, 2**63, 10**9 + 1),
    "tpm": (0, 2**63 - 1, 2**64),
    "budget_daily_usd": (-0.0, 5e-324, 1e308, Raw("1e400"), Raw("NaN"), 10**30),
    "budget_monthly_usd": (-1e-300, 1e9, 1e9 + 1),
    "allowed_models": ([""], ["*"], ["a" * 10_000], [None], ["**/../*"]),
    "allowed_tools": ([""], ["*"], ["ai/*" * 1000]),
    "tag": ("", " ", "*", "a" * 10_000, "\x00"),
    "request_id": ("", " ", "$REQUEST_ID ", "a" * 10_000, "%"),
}


FIELD_EDGES["max_completion_tokens"] = FIELD_EDGES["max_tokens"]
_METADATA = tuple(f for f in FIELD_EDGES if f.startswith("metadata."))
#: the fields each production's edges go to (mostly its own; now and then another's)
EDGE_FIELDS = {
    "chat": (
        *("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs", "temperature", "top_p"),
        *("presence_penalty", "stop", "logit_bias", *_METADATA),
    ),
    "embeddings": ("input", "encoding_format", "dimensions", *_METADATA),
    "admin.create": (
        *("name", "team", "rpm", "tpm", "budget_daily_usd", "budget_monthly_usd"),
        *("allowed_models", "allowed_tools"),
    ),
    "admin.update": (
        "rpm",
        "tpm",
        "budget_daily_usd",
        "budget_monthly_usd",
        "allowed_models",
        "allowed_tools",
    ),
    "admin.purge": ("tag", "team"),
    "admin.bump": ("tag",),
    "admin.report": ("request_id",),
}


def edge(rng: random.Random, value: Any, production: str = "") -> tuple[Any, str]:
    """A top-level field of ``value`` (an object) set to one of its ``FIELD_EDGES``: mostly a field
    of its own production, now and then any."""
    if not isinstance(value, dict):
        return value, "edge skipped"
    own = EDGE_FIELDS.get(production, ())
    name = rng.choice(own) if own and maybe(rng, 0.85) else rng.choice(list(FIELD_EDGES))
    new = rng.choice(FIELD_EDGES[name])
    if name.startswith("metadata."):
        meta = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
        return {**value, "metadata": {**meta, name.split(".", 1)[1]: new}}, f"edge {name}"
    return {**value, name: new}, f"edge {name}"


def edge_sweep(seed: int = SEED) -> Iterator[Case]:
    """Every ``FIELD_EDGES`` value of every production's ``EDGE_FIELDS``, once on a valid body of that
    production, for each kind of caller a model call can have: the systematic part of a run (a few
    hundred cases), before the random ones."""
    rng = random.Random(seed)
    makers = {
        "chat": chat_case,
        "embeddings": embeddings_case,
        "admin.create": admin_write_case,
        "admin.update": admin_write_case,
        "admin.purge": admin_write_case,
        "admin.bump": admin_write_case,
        "admin.report": admin_write_case,
    }
    models = ("vllm/priced", "sophia/auto", "openai/gpt-4.1-mini", "sophia/smart")
    for production, fields in EDGE_FIELDS.items():
        callers = ("USER", "BUDGET") if production in ("chat", "embeddings") else ("ADMIN",)
        for name in fields:
            for i, new in enumerate(FIELD_EDGES[name]):
                for who in callers:
                    case, value = makers[production](rng)
                    while case.label != production:  # the admin maker picks one of several shapes
                        case, value = makers[production](rng)
                    if production == "chat":
                        value = {**value, "model": models[i % len(models)]}
                    if name.startswith("metadata."):
                        meta = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
                        value = {**value, "metadata": {**meta, name.split(".", 1)[1]: new}}
                    else:
                        value = {**value, name: new}
                    heads = (*(h for h in case.headers if h[0] != "authorization"), auth(who))
                    yield case._replace(
                        headers=heads, body=encode(value), label=f"{production}; sweep {name}"
                    )
