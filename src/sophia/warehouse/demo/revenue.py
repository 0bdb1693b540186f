"""Money that follows the subscriptions: monthly MRR movements, invoices and their payments.

MRR is counted in integer cents from the subscriptions active on each month's last day, so the
identity ending = starting + new + expansion - contraction - churned holds exactly. An account's
change within a month is netted (a price uplift replacing a subscription is an expansion of the
difference). Invoices, numbered in issue order, bill each month's ending MRR on its last day (net 30); payments arrive after
an account-specific delay, so a few accounts run overdue.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from sophia.warehouse.demo.common import END, START, Columns, append_row, month_end, months, stream
from sophia.warehouse.demo.deals import Pipeline, Subscription

_MRR_COLUMNS = (
    "account_id",
    "month",
    "starting_mrr",
    "new_mrr",
    "expansion_mrr",
    "contraction_mrr",
    "churned_mrr",
    "ending_mrr",
)
_METHODS = {
    "SMB": ("credit_card", "ach", "check"),
    "Mid-Market": ("ach", "credit_card", "wire"),
    "Enterprise": ("wire", "ach"),
}


def mrr_rows(pipeline: Pipeline) -> list[tuple[int, dt.date, int, int, int, int, int, int]]:
    """(account_id, month, starting, new, expansion, contraction, churned, ending) in cents."""
    by_account: dict[int, list[Subscription]] = {}
    for sub in pipeline.subscriptions:
        by_account.setdefault(sub.account.account_id, []).append(sub)
    rows = []
    firsts = months()
    for account_id in sorted(by_account):
        subs = by_account[account_id]
        previous = sum(s.mrr_cents for s in subs if s.active(START - dt.timedelta(days=1)))
        for first in firsts:
            ending = sum(s.mrr_cents for s in subs if s.active(month_end(first)))
            if previous == 0 and ending == 0:
                continue
            new = ending if previous == 0 else 0
            churned = previous if ending == 0 else 0
            diff = ending - previous if previous and ending else 0
            rows.append((account_id, first, previous, new, max(diff, 0), max(-diff, 0), churned, ending))
            previous = ending
    return rows


def revenue_tables(pipeline: Pipeline, seed: int) -> dict[str, Columns]:
    rng = stream(seed, "revenue")
    rows = mrr_rows(pipeline)
    mrr: Columns = {k: [] for k in _MRR_COLUMNS}
    for account_id, month, *cents in rows:
        append_row(mrr, (account_id, month, *(c / 100 for c in cents)))
    segments = {s.account.account_id: s.account.segment for s in pipeline.subscriptions}
    payer: dict[int, tuple[float, float, str]] = {}  # account -> (mean delay days, never-pay share, method)
    for account_id in sorted(segments):
        kind = rng.random()
        delay, never = (8.0, 0.0) if kind < 0.7 else (28.0, 0.02) if kind < 0.95 else (55.0, 0.25)
        methods = _METHODS[segments[account_id]]
        payer[account_id] = (delay, never, methods[int(rng.integers(0, len(methods)))])
    invoices: Columns = {
        k: [] for k in ("invoice_id", "account_id", "issued_on", "due_on", "amount", "status")
    }
    payments: list[tuple[dt.date, int, int, dt.date, int, str]] = []
    for account_id, first, *_, ending in sorted(rows, key=lambda r: (r[1], r[0])):
        if ending == 0:
            continue
        invoice_id = len(invoices["invoice_id"]) + 1
        issued = month_end(first)
        due = issued + dt.timedelta(days=30)
        delay, never, method = payer[account_id]
        status = _settle(rng, invoice_id, account_id, issued, ending, delay, never, method, payments)
        append_row(
            invoices,
            (
                invoice_id,
                account_id,
                issued,
                due,
                ending / 100,
                status if status else "open" if due > END else "overdue",
            ),
        )
    return {"mrr_monthly": mrr, "invoices": invoices, "payments": _payments(payments)}


def _settle(
    rng: np.random.Generator,
    invoice_id: int,
    account_id: int,
    issued: dt.date,
    cents: int,
    delay: float,
    never: float,
    method: str,
    payments: list[tuple[dt.date, int, int, dt.date, int, str]],
) -> str | None:
    """Pay an invoice (maybe in two parts): 'paid' or 'void', or None while something is still owed."""
    roll = rng.random()
    if roll < 0.01:
        return "void"
    if roll < 0.01 + never:
        return None
    paid_on = issued + dt.timedelta(days=1 + int(rng.exponential(delay)))
    if rng.random() < 0.04:  # two instalments
        part = round(cents * rng.uniform(0.3, 0.7))
        first_on = issued + dt.timedelta(days=1 + int(rng.exponential(delay / 2)))
        if first_on <= END:
            payments.append(
                (min(first_on, paid_on), invoice_id, account_id, min(first_on, paid_on), part, method)
            )
            cents -= part
    if paid_on > END:
        return None
    payments.append((paid_on, invoice_id, account_id, paid_on, cents, method))
    return "paid"


def _payments(rows: list[tuple[dt.date, int, int, dt.date, int, str]]) -> Columns:
    rows.sort(key=lambda r: (r[0], r[1], r[4]))
    out: Columns = {k: [] for k in ("payment_id", "invoice_id", "account_id", "paid_on", "amount", "method")}
    for i, (_, invoice_id, account_id, paid_on, cents, method) in enumerate(rows):
        for key, value in zip(
            out, (i + 1, invoice_id, account_id, paid_on, cents / 100, method), strict=True
        ):
            out[key].append(value)
    return out
