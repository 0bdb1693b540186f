"""A case (one raw request), the keys behind its placeholders, and how they are filled in."""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import quote

Headers = tuple[tuple[str, str], ...]


class Case(NamedTuple):
    method: str
    path: str
    headers: Headers
    body: bytes
    label: str = ""

    def describe(self, limit: int = 400) -> str:
        """A one-line reproduction (body cut at ``limit`` bytes)."""
        body = self.body if len(self.body) <= limit else self.body[:limit] + b"...(%d bytes)" % len(self.body)
        path = self.path if len(self.path) <= 200 else self.path[:200] + f"...({len(self.path)} chars)"
        heads = " ".join(f"{k}: {v[:60]!r}" for k, v in self.headers)
        return f"{self.method} {path} [{heads}] {body!r}"


async def make_keys(accounts: Any) -> dict[str, str]:
    """The keys behind the placeholders (``sophia.accounts.Accounts``): an admin key, a plain key, a key
    with budgets and (generous) rate limits, and a throwaway key for the admin cases to change."""
    create = accounts.keys.create
    admin, _ = await create(name="fuzz-admin", team="ops", admin=True)
    user, _ = await create(name="fuzz-user", team="qa")
    budget, _ = await create(
        name="fuzz-budget", team="qa", budget_daily_usd=50.0, budget_monthly_usd=500.0, rpm=100_000, tpm=10**9
    )
    victim_secret, victim = await create(name="fuzz-victim", team="qa")
    return {
        "ADMIN": admin,
        "USER": user,
        "BUDGET": budget,
        "VICTIM": victim.id,
        "VICTIM_SECRET": victim_secret,
    }


def fill(case: Case, values: dict[str, str]) -> Case:
    """The case with its ``$NAME`` placeholders replaced (in headers, path and body)."""
    path, body, headers = case.path, case.body, list(case.headers)
    for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):  # $VICTIM_X before $VICTIM
        token = "$" + name
        path = path.replace(token, quote(value, safe=""))
        body = body.replace(token.encode(), value.encode())
        headers = [(k, v.replace(token, value)) for k, v in headers]
    return case._replace(path=path, body=body, headers=tuple(headers))


#: a case's header (taken off before the app sees it): deliver the body in this many pieces
CHUNKS = "x-fuzz-chunks"
