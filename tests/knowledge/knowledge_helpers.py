"""Test data for the knowledge room: small, realistic sales-call transcripts and notes, and encoders
that count what they embed (the real MiniLM, or a keyword encoder for crafted rankings)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from sophia.embedder import get_encoder


def _turns(*lines: tuple[str, str, str]) -> list[dict[str, Any]]:
    return [
        {"turn": n, "speaker": speaker, "role": role, "start_seconds": 14.0 * n, "text": text}
        for n, (speaker, role, text) in enumerate(lines)
    ]


DANA, ACME = ("Dana Ruiz", "rep"), ("Priya Shah", "prospect")
TOM, BAYSIDE = ("Tom Becker", "rep"), ("Marcus Lee", "prospect")


def transcripts() -> list[dict[str, Any]]:
    """Three calls shaped like ``sophia.warehouse.demo.transcript_documents`` yields them."""
    return [
        {
            "id": "call-101",
            "kind": "transcript",
            "title": "Discovery call with Acme Residential",
            "metadata": {
                "account_id": 12,
                "account_name": "Acme Residential",
                "rep_id": 3,
                "rep_name": "Dana Ruiz",
                "call_id": 101,
                "deal_id": 55,
                "date": "2025-03-04",
                "call_type": "discovery",
                "pms_vendor": "Yardi",
                "region": "Northeast",
                "segment": "Enterprise",
            },
            "turns": _turns(
                (
                    *DANA,
                    "Thanks for making the time, Priya. How are leasing inquiries handled across your portfolio today?",
                ),
                (
                    *ACME,
                    "Mostly by our onsite teams. After hours we miss a lot of calls, maybe a third of prospects never hear back.",
                ),
                (
                    *DANA,
                    "That is common. Our leasing assistant answers calls, texts and emails around the clock.",
                ),
                (
                    *ACME,
                    "Honestly my board is skeptical about letting an AI talk to residents. They worry it will "
                    "say something wrong about fair housing and we will be liable.",
                ),
                (
                    *DANA,
                    "Every answer is grounded in your own policies, and a person can review any conversation.",
                ),
                (
                    *ACME,
                    "We run Yardi Voyager. Does it write guest cards back into Yardi, or is that another manual step?",
                ),
                (
                    *DANA,
                    "It writes guest cards and appointments straight into Voyager through the certified interface.",
                ),
                (*ACME, "Good. What would this cost us for about twelve thousand units?"),
                (*DANA, "For your size it lands around two dollars per unit per month, with volume tiers."),
                (*ACME, "That is more than we budgeted this year. We would need to see the savings first."),
            ),
        },
        {
            "id": "call-102",
            "kind": "transcript",
            "title": "Negotiation call with Bayside Properties",
            "metadata": {
                "account_id": 40,
                "account_name": "Bayside Properties",
                "rep_id": 7,
                "rep_name": "Tom Becker",
                "call_id": 102,
                "deal_id": 61,
                "date": "2025-09-18",
                "call_type": "negotiation",
                "pms_vendor": "RealPage",
                "region": "West",
                "segment": "Mid-Market",
            },
            "turns": _turns(
                (*TOM, "Marcus, I sent over the revised proposal on Monday. Any thoughts?"),
                (*BAYSIDE, "We are also talking to EliseAI, and their quote came in fifteen percent lower."),
                (
                    *TOM,
                    "Did their quote include maintenance request intake? Ours covers leasing and maintenance.",
                ),
                (*BAYSIDE, "No, leasing only. But our CFO only sees the headline number."),
                (*TOM, "I can offer a twelve month price lock if we sign before the end of the quarter."),
                (*BAYSIDE, "Our security team also needs a SOC 2 report before legal will sign anything."),
                (*TOM, "I will send the SOC 2 Type II report and our data processing agreement today."),
                (*BAYSIDE, "Timing is tricky, we are migrating off OneSite in the spring."),
            ),
        },
        {
            "id": "call-103",
            "kind": "transcript",
            "title": "Check-in call with Acme Residential",
            "metadata": {
                "account_id": 12,
                "account_name": "Acme Residential",
                "rep_id": 3,
                "rep_name": "Dana Ruiz",
                "call_id": 103,
                "deal_id": 55,
                "date": "2026-01-20",
                "call_type": "check_in",
                "pms_vendor": "Yardi",
                "region": "Northeast",
                "segment": "Enterprise",
            },
            "turns": _turns(
                (*DANA, "Three months in, how is the rollout going at the Boston properties?"),
                (
                    *ACME,
                    "Tour bookings are up, and the onsite team likes not answering the phone at midnight.",
                ),
                (*ACME, "One issue: some residents got duplicate maintenance texts after the Yardi sync."),
                (*DANA, "That was a sync retry bug, it is fixed in last week's release."),
                (*ACME, "Great. We may expand to the Chicago portfolio next year if the numbers hold."),
            ),
        },
    ]


NOTE = {
    "id": "note-7",
    "kind": "note",
    "title": "Pricing guidance for Enterprise deals",
    "metadata": {"author": "Revenue Operations", "date": "2025-06-01"},
    "text": (
        "Enterprise pricing starts at two dollars per unit per month.\n\n"
        "Discounts above fifteen percent need approval from the VP of Sales. A twelve month price lock is "
        "allowed once per account.\n\n"
        "Never quote a price below the floor in the rate card. Bundle maintenance intake to defend against "
        "lower leasing-only quotes from competitors."
    ),
}

MARKDOWN = {
    "id": "playbook",
    "kind": "markdown",
    "title": "Objection handling playbook",
    "metadata": {"date": "2025-02-10"},
    "text": (
        "Intro paragraph before any heading.\n\n"
        "# Objections\n\n"
        "## AI adoption\n\n"
        "Boards worry about AI talking to residents. Offer human review of every conversation and show "
        "fair housing guardrails.\n\n"
        "## Integration\n\n"
        "Most prospects run Yardi, RealPage or Entrata. Confirm the certified interface writes guest cards back.\n\n"
        "### Entrata\n\nEntrata sync runs every five minutes.\n"
    ),
}


class CountingEncoder:
    """An encoder that counts the model calls and texts it is asked for, around a real one."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner if inner is not None else get_encoder()
        self.calls = 0
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        return np.asarray(self.inner.encode(texts), dtype=np.float32)

    def reset(self) -> None:
        self.calls = 0
        self.texts.clear()


class KeywordEncoder:
    """A deterministic stand-in: a text containing a marker gets that marker's vector, any other text
    a vector from its words' hashes; everything unit length, 384 wide."""

    def __init__(self, markers: dict[str, Sequence[float]], query: Sequence[float]) -> None:
        self.markers = {m: self._unit(v) for m, v in markers.items()}
        self.query = self._unit(query)

    @staticmethod
    def _unit(values: Sequence[float]) -> np.ndarray:
        out = np.zeros(384, dtype=np.float32)
        out[: len(values)] = values
        return out / np.linalg.norm(out)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            found = [v for m, v in self.markers.items() if m in text]
            if found:
                rows.append(found[0])
            elif "?" in text or len(text.split()) < 6:  # a query
                rows.append(self.query)
            else:
                out = np.zeros(384, dtype=np.float32)
                for word in text.split():
                    out[32 + zlib.crc32(word.encode()) % 300] += 1
                rows.append(out / np.linalg.norm(out))
        return np.stack(rows)
