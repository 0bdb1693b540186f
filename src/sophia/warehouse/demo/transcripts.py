"""Transcripts of the recorded calls, with the objections they raise as ground truth.

A call is scripted as greeting, small talk, agenda, a body that depends on the call type (discovery
questions, demo narration, pricing, check-in or renewal talk), objections slotted into the body,
next steps and goodbyes. Objection categories are drawn with weights that follow the account and
the deal: price for small portfolios, AI adoption rising with portfolio size, security in
Enterprise, integration for the PMS vendors that integrate worst, a competitor when the deal has
one, and the reason a lost deal was lost. Each objection is recorded in ``call_objections`` at the
turn that raises it, so search results can be checked against it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from sophia.warehouse.demo import objections as ob
from sophia.warehouse.demo import phrases as ph
from sophia.warehouse.demo.calls import Call
from sophia.warehouse.demo.common import Columns, append_row, stream

#: how many objections a call of each type raises (inclusive range)
_OBJECTION_COUNT = {
    "discovery": (1, 2),
    "demo": (1, 2),
    "negotiation": (1, 3),
    "renewal": (0, 2),
    "check_in": (0, 1),
}
_INTEGRATION_WEIGHT = {
    "Yardi": 1.0,
    "RealPage": 1.2,
    "AppFolio": 0.8,
    "Entrata": 1.5,
    "Buildium": 1.1,
    "ResMan": 2.0,
}
_LOST_REASON_CATEGORY = {
    "price": "price",
    "integration gaps": "integration",
    "AI concerns": "ai_adoption",
    "security review": "security",
    "timing": "timing",
    "no decision": "timing",
    "chose competitor": "competitor",
}
_BODY = {
    "discovery": ((ph.DISCOVERY_QUESTIONS, ph.DISCOVERY_ANSWERS),),
    "demo": ((ph.DEMO_NARRATION, ph.DEMO_REACTIONS),),
    "negotiation": ((ph.PRICING, ph.PRICING_REPLIES), (ph.DISCOVERY_QUESTIONS, ph.DISCOVERY_ANSWERS)),
    "check_in": ((ph.CHECK_IN_LINES, ph.CHECK_IN_REPLIES), (ph.DEMO_NARRATION, ph.DEMO_REACTIONS)),
    "renewal": ((ph.RENEWAL_LINES, ph.RENEWAL_REPLIES), (ph.CHECK_IN_LINES, ph.CHECK_IN_REPLIES)),
}
Line = tuple[str, str, tuple[str, str | None] | None]  # role, text, (category, competitor) raised


class _Script:
    """Draws lines from the banks without repeating one within a call, filling in the placeholders."""

    def __init__(self, rng: np.random.Generator, context: dict[str, str]) -> None:
        self.rng = rng
        self.context = context
        self.used: set[str] = set()

    def say(self, bank: tuple[str, ...], *, capitalize: bool = True) -> str:
        fresh = [line for line in bank if line not in self.used] or list(bank)
        line = fresh[int(self.rng.integers(0, len(fresh)))]
        self.used.add(line)
        text = line.format(**self.context)
        return text[0].upper() + text[1:] if capitalize else text


def _context(call: Call, rng: np.random.Generator) -> dict[str, str]:
    a, deal = call.account, call.deal
    annual = deal.cents / 100 if deal else 0.0
    per_unit = annual / 12 / max(1, a.units) if deal else 1.10
    cities = ph.CITIES[a.region]
    return {
        "rep_first": call.rep.name.split()[0],
        "contact_first": call.contact.name.split()[0],
        "company": a.name,
        "pms": a.pms,
        "competitor": (deal.competitor if deal and deal.competitor else "another vendor"),
        "units": f"{a.units:,}",
        "properties": str(a.properties),
        "price": f"${per_unit:,.2f}",
        "annual": f"${annual:,.0f}" if deal else "your current plan",
        "product": deal.product if deal else "Platform Suite",
        "weekday": ph.WEEKDAYS[int(rng.integers(0, len(ph.WEEKDAYS)))],
        "city": cities[int(rng.integers(0, len(cities)))],
    }


def _categories(call: Call, rng: np.random.Generator) -> list[str]:
    """The objection categories a call raises, weighted by who the account is and how the deal went."""
    a, deal = call.account, call.deal
    weights = {
        "price": {"SMB": 3.0, "Mid-Market": 2.0, "Enterprise": 1.2}[a.segment],
        "integration": 1.4 * _INTEGRATION_WEIGHT[a.pms],
        "ai_adoption": 0.3 * (a.units / 100) ** 0.45,  # bigger portfolios worry more about AI
        "security": {"SMB": 0.3, "Mid-Market": 0.8, "Enterprise": 2.0}[a.segment],
        "timing": 1.0,
        "competitor": 3.0 if deal and deal.competitor else 0.0,
    }
    if call.call_type in ("negotiation", "renewal"):
        weights["price"] *= 1.5
    if deal and deal.lost_reason in _LOST_REASON_CATEGORY:
        category = _LOST_REASON_CATEGORY[deal.lost_reason]
        if weights[category] > 0:
            weights[category] += 2.5
    lo, hi = _OBJECTION_COUNT[call.call_type]
    hi += a.segment == "Enterprise"  # more people on the call, more concerns
    count = int(rng.integers(lo, hi + 1))
    names = list(weights)
    p = np.array([weights[n] for n in names])
    picks = rng.choice(len(names), size=min(count, int((p > 0).sum())), replace=False, p=p / p.sum())
    return [names[int(i)] for i in picks]


def _objection(script: _Script, category: str, competitor: str | None) -> list[Line]:
    rng = script.rng
    named = None
    if category == "price" and competitor and rng.random() < 0.35:
        core, named = script.say(ob.PRICE_VS_COMPETITOR, capitalize=False), competitor
    else:
        core = script.say(ob.OBJECTIONS[category], capitalize=False)
        named = competitor if category == "competitor" else None
    lead = ob.LEAD_INS[int(rng.integers(0, len(ob.LEAD_INS)))]
    text = lead + core
    lines: list[Line] = [("prospect", text[0].upper() + text[1:], (category, named))]
    lines.append(("rep", script.say(ob.RESPONSES[category]), None))
    if rng.random() < 0.5:
        lines.append(("prospect", script.say(ph.OBJECTION_ACKS), None))
    return lines


def _script(call: Call, rng: np.random.Generator) -> list[Line]:
    s = _Script(rng, _context(call, rng))
    deal = call.deal
    competitor = deal.competitor if deal else None
    blocks = [_objection(s, c, competitor) for c in _categories(call, rng)]
    opening: list[Line] = [("rep", s.say(ph.GREETINGS), None), ("prospect", s.say(ph.GREETING_REPLIES), None)]
    if rng.random() < 0.8:
        opening += [("rep", s.say(ph.SMALL_TALK), None), ("prospect", s.say(ph.SMALL_TALK_REPLIES), None)]
    opening.append(("rep", s.say(ph.AGENDA[call.call_type]), None))
    ending: list[Line] = [
        ("rep", s.say(ph.NEXT_STEPS), None),
        ("prospect", s.say(ph.NEXT_STEP_REPLIES), None),
        ("rep", s.say(ph.CLOSINGS), None),
        ("prospect", s.say(ph.CLOSING_REPLIES), None),
    ]
    fixed = len(opening) + len(ending) + sum(len(b) for b in blocks)
    target = int(rng.integers(15, 40))
    sources = _BODY[call.call_type]
    pairs: list[list[Line]] = []
    for k in range(max(2, math.ceil((target - fixed) / 2))):
        reps, prospects = sources[0] if k == 0 else sources[int(rng.integers(0, len(sources)))]
        pairs.append([("rep", s.say(reps), None), ("prospect", s.say(prospects), None)])
    for block in blocks:  # objections come up after the first exchange of the body
        pairs.insert(int(rng.integers(1, len(pairs) + 1)), block)
    return opening + [line for pair in pairs for line in pair] + ending


def _timings(lines: list[Line], duration: int, rng: np.random.Generator) -> list[int]:
    """Increasing start seconds: each turn lasts about as long as its words take, stretched to the call."""
    spans = np.array([len(text.split()) / 2.6 + rng.uniform(1.0, 4.0) for _, text, _ in lines])
    first = float(rng.uniform(2, 15))
    scale = (duration * float(rng.uniform(0.88, 0.97)) - first) / spans.sum()
    starts = first + np.concatenate([[0.0], np.cumsum(spans[:-1] * scale)])
    out: list[int] = []
    for value in starts:
        out.append(max(int(value), out[-1] + 1 if out else 0))
    return out


def transcript_tables(calls: list[Call], seed: int) -> dict[str, Columns]:
    rng = stream(seed, "transcripts")
    turns: Columns = {
        k: [] for k in ("call_id", "turn", "speaker_name", "speaker_role", "start_seconds", "text")
    }
    found: Columns = {k: [] for k in ("call_id", "turn", "category", "competitor")}
    for call in calls:
        if not call.has_transcript:
            continue
        lines = _script(call, rng)
        for turn, ((role, text, raised), start) in enumerate(
            zip(lines, _timings(lines, call.duration, rng), strict=True)
        ):
            name = call.rep.name if role == "rep" else call.contact.name
            append_row(turns, (call.call_id, turn, name, role, start, text))
            if raised is not None:
                append_row(found, (call.call_id, turn, *raised))
    return {"call_transcript_turns": turns, "call_objections": found}


_DOCUMENTS_SQL = """
SELECT c.call_id, c.deal_id, c.account_id, a.name, c.rep_id, r.name, c.started_at, c.call_type,
       a.pms_vendor, a.region, a.segment
FROM calls c JOIN accounts a ON a.account_id = c.account_id JOIN reps r ON r.rep_id = c.rep_id
WHERE c.has_transcript ORDER BY c.call_id
"""


def transcript_documents(duckdb_path: Path) -> Iterator[dict[str, Any]]:
    """Every recorded call as a knowledge document: metadata to filter on and the turns to cite."""
    with duckdb.connect(str(duckdb_path), read_only=True) as con:
        calls = con.execute(_DOCUMENTS_SQL).fetchall()
        rows = con.execute(
            "SELECT call_id, turn, speaker_name, speaker_role, start_seconds, text "
            "FROM call_transcript_turns ORDER BY call_id, turn"
        ).fetchall()
    by_call: dict[int, list[dict[str, Any]]] = {}
    for call_id, turn, speaker, role, start, text in rows:
        by_call.setdefault(call_id, []).append(
            {"turn": turn, "speaker": speaker, "role": role, "start_seconds": start, "text": text}
        )
    for call_id, deal_id, account_id, account, rep_id, rep, started, call_type, pms, region, segment in calls:
        date = started.date().isoformat()
        yield {
            "id": f"call-{call_id}",
            "kind": "transcript",
            "title": f"{call_type.replace('_', '-').capitalize()} call: {account} with {rep}, {date}",
            "metadata": {
                "account_id": account_id,
                "account_name": account,
                "rep_id": rep_id,
                "rep_name": rep,
                "call_id": call_id,
                "deal_id": deal_id,
                "date": date,
                "call_type": call_type,
                "pms_vendor": pms,
                "region": region,
                "segment": segment,
            },
            "turns": by_call.get(call_id, []),
        }
