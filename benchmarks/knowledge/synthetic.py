"""Synthetic notes for the latency and ingest benchmarks: one chunk each (~120 words), varied
sentences about property-management software sales, deterministic for a seed."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

SUBJECTS = (
    "The regional manager",
    "Our leasing team",
    "The CFO",
    "The onsite staff",
    "Their IT lead",
    "The asset manager",
    "The board",
    "Maintenance",
    "The VP of operations",
    "The property owner",
    "Residents",
    "The prospect",
    "Their procurement team",
    "The marketing director",
    "Legal",
)
VERBS = (
    "asked about",
    "pushed back on",
    "wants a demo of",
    "is worried about",
    "compared us on",
    "praised",
    "needs a quote for",
    "escalated",
    "requested a report on",
    "questioned",
    "is evaluating",
    "signed off on",
    "delayed the decision on",
    "raised concerns about",
    "loves",
)
OBJECTS = (
    "the per-unit pricing",
    "after-hours leasing calls",
    "the Yardi integration",
    "guest card sync",
    "the SOC 2 report",
    "fair housing guardrails",
    "maintenance request intake",
    "tour scheduling",
    "the renewal discount",
    "the AI leasing assistant",
    "RealPage data export",
    "payment reminders",
    "the resident portal",
    "screening turnaround",
    "the Entrata interface",
    "occupancy reporting",
    "the twelve month price lock",
    "text message opt-outs",
    "the rollout timeline",
    "EliseAI's offer",
)
TAILS = (
    "before the end of the quarter",
    "for the Chicago portfolio",
    "across all properties",
    "after the last outage",
    "in the next board meeting",
    "for the student housing assets",
    "compared to last year",
    "for about {n} units",
    "at {n} properties",
    "this spring",
    "once the migration is done",
    "with a discount of {p} percent",
    "by next Friday",
    "",
)
REGIONS = ("Northeast", "Southeast", "Midwest", "Southwest", "West", "Canada")


def _sentence(rng: random.Random) -> str:
    tail = rng.choice(TAILS).format(n=rng.randint(200, 40000), p=rng.randint(3, 25))
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {tail}".strip() + "."


def synthetic_documents(n: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` one-chunk notes with account, region and date metadata."""
    rng = random.Random(seed)
    start = dt.date(2024, 1, 1)
    docs = []
    for k in range(n):
        text = " ".join(_sentence(rng) for _ in range(rng.randint(8, 12)))
        docs.append(
            {
                "id": f"note-{seed}-{k}",
                "kind": "note",
                "title": f"Account note {k}",
                "text": text,
                "metadata": {
                    "account_id": rng.randint(1, 500),
                    "region": rng.choice(REGIONS),
                    "date": (start + dt.timedelta(days=rng.randint(0, 1060))).isoformat(),
                },
            }
        )
    return docs
