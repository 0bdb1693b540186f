"""The demo company's price list and the effects that shape its numbers, as tables (no branches).

Win-rate effects are logits added together (region + segment + competitor + rep skill + season +
region trend), so each question in docs/business-intelligence.md has a designed, non-trivial answer:
Midwest converts best and Southwest worst but climbs every quarter; EliseAI beats us in Enterprise;
Q4 closes best.
"""

from __future__ import annotations

#: list price per unit per month, in dollars
PRICE = {
    "Platform Suite": 2.40,
    "Leasing AI": 1.10,
    "Maintenance AI": 0.80,
    "Resident Payments": 0.55,
    "Screening": 0.35,
    "Insights": 0.30,
    "Resident Portal": 0.40,
}
#: the product features (product_usage.feature) a plan turns on
FEATURES_OF = {
    "Platform Suite": ("leasing_ai", "maintenance", "reporting"),
    "Leasing AI": ("leasing_ai", "reporting"),
    "Maintenance AI": ("maintenance",),
    "Resident Payments": ("payments", "resident_portal"),
    "Screening": ("screening",),
    "Insights": ("reporting",),
    "Resident Portal": ("resident_portal",),
}
#: the first product bought, by segment
FIRST_PRODUCT = {
    "SMB": {"Leasing AI": 0.4, "Resident Payments": 0.25, "Maintenance AI": 0.2, "Platform Suite": 0.15},
    "Mid-Market": {"Platform Suite": 0.45, "Leasing AI": 0.35, "Maintenance AI": 0.2},
    "Enterprise": {"Platform Suite": 0.6, "Leasing AI": 0.4},
}
#: share of the portfolio a first deal covers (enterprises start with a pilot)
COVERAGE = {"SMB": (0.9, 1.0), "Mid-Market": (0.5, 1.0), "Enterprise": (0.2, 0.7)}
#: days from a new deal's creation to its close
CYCLE_DAYS = {"SMB": (20, 75), "Mid-Market": (45, 130), "Enterprise": (90, 260)}

BASE_WIN = -0.35
REGION_WIN = {
    "Northeast": 0.2,
    "Southeast": -0.05,
    "Midwest": 0.45,
    "Southwest": -0.6,
    "West": 0.1,
    "Canada": -0.25,
}
#: logit per year since 2024-01-01: the Southwest team improves, the Southeast slips
REGION_TREND = {"Southwest": 0.35, "Southeast": -0.2}
SEGMENT_WIN = {"SMB": 0.25, "Mid-Market": 0.0, "Enterprise": -0.3}
QUARTER_WIN = {1: -0.25, 2: 0.0, 3: -0.05, 4: 0.3}
NO_COMPETITOR_WIN = 0.35
COMPETITOR_WIN = {
    "EliseAI": {"SMB": -0.2, "Mid-Market": -0.5, "Enterprise": -1.4},
    "Knock": {"SMB": -0.3, "Mid-Market": -0.3, "Enterprise": -0.2},
    "Funnel": {"SMB": -0.1, "Mid-Market": -0.1, "Enterprise": -0.1},
    "Zuma": {"SMB": 0.1, "Mid-Market": 0.15, "Enterprise": 0.2},
    "Rent Manager AI": {"SMB": 0.35, "Mid-Market": 0.1, "Enterprise": 0.0},
}
#: how often a competitor is in a new deal, and which one
COMPETITOR_SHARE = {"SMB": 0.35, "Mid-Market": 0.55, "Enterprise": 0.75}
COMPETITOR_MIX = {  # EliseAI, Knock, Funnel, Zuma, Rent Manager AI
    "SMB": (0.12, 0.22, 0.12, 0.26, 0.28),
    "Mid-Market": (0.3, 0.25, 0.2, 0.15, 0.1),
    "Enterprise": (0.48, 0.18, 0.2, 0.1, 0.04),
}
#: why new deals are lost when no competitor took them, by segment
LOST_REASONS = ("price", "no decision", "timing", "integration gaps", "AI concerns", "security review")
LOST_MIX = {
    "SMB": (0.45, 0.2, 0.15, 0.1, 0.05, 0.05),
    "Mid-Market": (0.3, 0.25, 0.15, 0.15, 0.1, 0.05),
    "Enterprise": (0.12, 0.2, 0.13, 0.15, 0.22, 0.18),
}
#: why customers do not renew
CHURN_REASONS = ("low adoption", "budget cuts", "chose competitor", "portfolio sold", "price", "AI concerns")
#: churn risk at each renewal, before the rep's and the account's multipliers
CHURN_BASE = {"SMB": 0.16, "Mid-Market": 0.1, "Enterprise": 0.07}
#: expansion opportunities per customer-year
EXPANSION_RATE = {"SMB": 0.3, "Mid-Market": 0.6, "Enterprise": 1.0}

STAGES = ("prospecting", "discovery", "demo", "proposal", "negotiation", "closed_won", "closed_lost")


def annual_cents(units: int, coverage: float, product: str, noise: float) -> int:
    """A year of ``product`` on ``coverage`` of a portfolio, volume-discounted, rounded to $10."""
    discount = min(1.15, (units / 800) ** -0.12)
    dollars = units * coverage * PRICE[product] * discount * 12 * noise
    return max(1_800, round(dollars / 10) * 10) * 100
