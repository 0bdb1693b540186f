"""The cache learning from its own traffic: checks, shadow comparisons, and rows shared by instances.

``ResponseCache`` asks the ``Learner`` three things:

* on a lookup, whether an alias learns at all (a budget, or an explicit ``check_rate``), and whether
  this would-be hit is one of the sampled checks;
* on the answer that followed a check or a shadowed miss (``learn``), to compare it with the
  candidate's stored answer and keep the labelled row;
* for ``stats``, what the rows say per alias.

The checks are also the model's audit. Over an alias's recent checks (every instance's), when the
lower end of the served error rate exceeds the budget, the alias is *backstopped*: the learned rule's
would-be hits are withheld and every one is labelled (``held`` rows: the model answers that miss anyway),
until those labels say the rule is back within the budget. The promise then rests on no assumption of
the model (a logistic fit, traffic that does not change faster than it learns) but on its own checks.

Rows go to the model at once and to the store in batches; every ``sync_interval`` the learner
writes its own and reads every other instance's new rows from the store (``CacheStore.observations``),
so all instances fit their models on the same rows.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
from collections import defaultdict, deque
from dataclasses import dataclass, field, replace
from time import time
from typing import TYPE_CHECKING, Any

from sophia.cache.observations import Observation
from sophia.cache.risk import (
    EXACT_SUFFIX,
    LONE_MARGIN,
    SAME_LOGIT,
    Features,
    RiskModel,
    candidate_features,
    logit,
    wilson,
)
from sophia.errors import StorageError

if TYPE_CHECKING:
    import numpy as np

    from sophia.cache.compare import Comparator
    from sophia.cache.entries import Entry, Payload
    from sophia.cache.store import CacheStore
    from sophia.settings.cache import CacheSettings

log = logging.getLogger(__name__)

#: rows read from the store per request
PAGE = 5000
#: the backstop reads an alias's last this many audited would-be hits (checks, and held ones)
AUDIT_WINDOW = 500
#: audited would-be hits before the backstop may trip, and held ones before it may let go
AUDIT_MIN = 10
RELEASE_MIN = 50


def age_features(age_s: float) -> Features:
    """An exact hit's features: its age stands in the logit's place (8 when new, falling by 1.5 per
    e-fold of minutes), so the prior says "young answers hold" and the rows say for how long."""
    minutes = max(age_s, 0.0) / 60.0
    return Features(SAME_LOGIT - 1.5 * math.log1p(minutes), 1.0, LONE_MARGIN, 0.0)


@dataclass(slots=True)
class Pending:
    """A comparison owed once the model has answered this request: a check or a shadowed miss."""

    kind: str  # "check" | "shadow" | "held"
    alias: str
    entry: Entry
    features: Features
    settled: bool = False  # learned from already (an answer settles it once)


@dataclass(slots=True)
class AliasTally:
    """What one alias's rows say (every instance's), for ``sophia cache stats``."""

    checks: int = 0
    checks_wrong: int = 0
    check_cost_usd: float = 0.0
    shadows: int = 0
    shadows_wrong: int = 0
    reports: int = 0
    held: int = 0
    held_wrong: int = 0
    replaced: int = 0
    replaced_different: int = 0
    last: float = 0.0
    audit: deque[int] = field(default_factory=lambda: deque(maxlen=AUDIT_WINDOW))
    audit_wrong: int = 0
    backstop: bool = False

    def add(self, row: Observation) -> None:
        self.last = max(self.last, row.ts)
        if row.kind in ("check", "held"):  # a uniform sample of the rule's would-be hits: the audit
            if len(self.audit) == AUDIT_WINDOW:
                self.audit_wrong -= self.audit[0]
            self.audit.append(row.y)
            self.audit_wrong += row.y
        if row.kind == "check":
            self.checks += 1
            self.checks_wrong += row.y
            self.check_cost_usd += row.cost_usd
        elif row.kind == "held":
            self.held += 1
            self.held_wrong += row.y
        elif row.kind == "replace":
            self.replaced += 1
            self.replaced_different += row.y
        elif row.kind == "shadow":
            self.shadows += 1
            self.shadows_wrong += row.y
        elif row.kind == "report":
            self.reports += 1


@dataclass(slots=True)
class _Local:
    """This instance's counts per alias (requests withheld for a check, lookups shadowed)."""

    served: int = 0
    checks: int = 0
    shadows: int = 0
    held: int = 0


class Learner:
    def __init__(
        self,
        settings: CacheSettings,
        store: CacheStore,
        comparator: Comparator,
        *,
        seed: int | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.comparator = comparator
        self.risk = RiskModel(
            confidence=settings.budget_confidence,
            warm_after=settings.warm_after,
            kept=settings.observations_kept,
            mode=settings.budget_mode,
        )
        self.origin = secrets.token_hex(8)
        self.tallies: dict[str, AliasTally] = defaultdict(AliasTally)
        self.local: dict[str, _Local] = defaultdict(_Local)
        self._random = random.Random(seed)
        self._outbox: list[Observation] = []
        self._cursor = ""
        self._loaded = False
        self._follower: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # -- what an alias does -----------------------------------------------------------------------

    def budget(self, alias: str) -> float | None:
        return self.settings.for_model(alias.removesuffix(EXACT_SUFFIX)).max_error_rate

    def check_rate(self, alias: str) -> float:
        overrides = self.settings.for_model(alias.removesuffix(EXACT_SUFFIX))
        if overrides.check_rate is not None:
            return overrides.check_rate
        return self.settings.check_rate if overrides.max_error_rate is not None else 0.0

    def learns(self, alias: str) -> bool:
        """Does this alias collect labels (a budget, or checks asked for to measure the threshold)?"""
        alias = alias.removesuffix(EXACT_SUFFIX)
        overrides = self.settings.for_model(alias)
        return overrides.max_error_rate is not None or bool(overrides.check_rate)

    def backstopped(self, alias: str) -> bool:
        """Do the alias's audited would-be hits (its last ``AUDIT_WINDOW`` checks and held ones) say that
        the rule serves more wrong answers than the budget allows? It trips when the lower end of their
        error rate (one-sided, at ``budget_confidence``) exceeds the budget, and starts its window afresh;
        it lets go once ``RELEASE_MIN`` held would-be hits since are wrong at most at the budget's rate."""
        budget = self.budget(alias)
        tally = self.tallies.get(alias)
        if budget is None or tally is None:
            return False
        n, wrong = len(tally.audit), tally.audit_wrong
        if tally.backstop:
            if n >= RELEASE_MIN and wrong <= budget * n:
                tally.backstop = False
                log.warning(
                    "cache budget: alias %s is back within its budget (%d wrong of %d held)", alias, wrong, n
                )
        elif n >= AUDIT_MIN and wilson(wrong, n, 2 * self.settings.budget_confidence - 1)[0] > budget:
            tally.backstop = True
            tally.audit.clear()
            tally.audit_wrong = 0
            log.warning(
                "cache budget: alias %s served more wrong answers than its budget allows (%d wrong of %d "
                "checked, budget %.1f%%): withholding its hits until the labels say otherwise",
                alias,
                wrong,
                n,
                100 * budget,
            )
        return tally.backstop

    def checks_now(self, alias: str) -> bool:
        """Is this would-be hit one of the sampled checks?"""
        rate = self.check_rate(alias)
        return rate > 0 and self._random.random() < rate

    def decide(
        self,
        alias: str,
        entries: list[Entry],
        scores: np.ndarray,
        cosines: list[float],
        spreads: np.ndarray,
        judged: list[int],
        threshold: float,
        shadow: bool,
    ) -> tuple[int | None, Features | None, Pending | None]:
        """One semantic lookup of an alias that learns: which candidate to serve (an index into
        ``entries``) with its features, and the comparison owed once the model answers (a sampled
        check withholds the chosen candidate; a miss shadows its best rejected one when ``shadow``)."""
        if not judged:
            return None, None, None
        judged_scores = [float(scores[i]) for i in judged]
        features = candidate_features(
            [SAME_LOGIT if s >= 1.0 else logit(s) for s in judged_scores],
            [cosines[i] for i in judged],
            [float(spreads[i]) for i in judged],
        )
        chosen = self.choose(alias, features, judged_scores, threshold)
        if chosen is not None and judged_scores[chosen] < 1.0 and self.backstopped(alias):
            self.local[alias].held += 1
            return None, None, Pending("held", alias, entries[judged[chosen]], features[chosen])
        if chosen is None:
            best = max(range(len(judged)), key=judged_scores.__getitem__)
            # a candidate the threshold would serve, withheld while the alias is cold, is always labelled:
            # the model answers this miss anyway, and it is the label the cold alias needs to warm up
            if not shadow and judged_scores[best] < threshold:
                return None, None, None
            self.local[alias].shadows += 1
            return None, None, Pending("shadow", alias, entries[judged[best]], features[best])
        if self.checks_now(alias):
            self.local[alias].checks += 1
            return None, None, Pending("check", alias, entries[judged[chosen]], features[chosen])
        return judged[chosen], features[chosen], None

    def choose(
        self, alias: str, features: list[Features], scores: list[float], threshold: float
    ) -> int | None:
        """Which judged candidate to serve (index into ``features``), or None: the learned rule once the
        alias is warm and has a budget; before, the cold rule (``budget_cold``): only the same words, or
        today's threshold rule. Without a budget, the threshold rule."""
        best = max(range(len(scores)), key=scores.__getitem__)
        budget = self.budget(alias)
        if scores[best] >= 1.0:
            # the same words (case and spacing aside) are the question itself, like an exact hit
            return best if scores[best] >= threshold else None
        if budget is not None and self.risk.warm(alias):
            return self.risk.choose(alias, features, budget)
        if budget is not None and self.settings.budget_cold == "withhold":
            return None
        return best if scores[best] >= threshold else None

    def exact(self, alias: str, entry: Entry, now: float) -> Pending | None:
        """An exact hit on data-tagged answers (``metadata.sources``): the answer depends on data that
        may have changed without a bump. A sampled share is checked; once the alias has learned how
        often such answers go out of date with age (``<alias>@exact``), one whose risk at its age is
        over the budget is not served (a free comparison). None: serve it."""
        key = f"{alias}{EXACT_SUFFIX}"
        features = age_features(now - entry.created)
        if self.checks_now(alias):
            self.local[key].checks += 1
            return Pending("check", key, entry, features)
        budget = self.budget(alias)
        if budget is not None and self.risk.warm(key) and self.risk.choose(key, [features], budget) is None:
            self.local[key].shadows += 1
            return Pending("shadow", key, entry, features)
        if self.backstopped(key):
            self.local[key].held += 1
            return Pending("held", key, entry, features)
        self.local[key].served += 1
        return None

    # -- learning ---------------------------------------------------------------------------------

    async def learn(self, pending: Pending, fresh: bytes, cached: Payload | None, cost_usd: float) -> None:
        """Compare the model's fresh answer with the candidate's stored one and keep the labelled row."""
        if cached is None:  # the candidate is gone (purged, replaced): nothing to compare with
            return
        verdict = await self.comparator.same(fresh, cached.body)
        if verdict is None:
            return
        f = pending.features
        self.keep(
            Observation(
                alias=pending.alias,
                namespace=pending.entry.namespace,
                entry_id=pending.entry.id,
                kind=pending.kind,
                ts=time(),
                z=f.z,
                cos=f.cos,
                margin=f.margin,
                spread=f.spread,
                y=0 if verdict else 1,
                cost_usd=cost_usd if pending.kind == "check" else 0.0,
                age=max(time() - pending.entry.created, 0.0),
                origin=self.origin,
            )
        )

    async def learn_replaced(
        self, alias: str, old: Entry, cached: Payload | None, fresh: bytes, now: float
    ) -> None:
        """A new answer stored under an exact key that had one: the same question answered twice. Are
        the two answers the same? On data-tagged answers that is whether an answer of that age was still
        right (a row of ``<alias>@exact``, learned from); on others the model or its sampling is all
        that changed, so a "different" is the comparator's own error on this alias (stats show it).
        ``cached``: the old answer if still in memory, else it is read from the store (gone: no label)."""
        if cached is None:
            try:
                cached = await self.store.fetch(old)
            except StorageError:
                return
            if cached is None:
                return
        verdict = await self.comparator.same(fresh, cached.body)
        if verdict is None:
            return
        age = max(now - old.created, 0.0)
        f = age_features(age)
        self.keep(
            Observation(
                alias=f"{alias}{EXACT_SUFFIX}" if old.tags else alias,
                namespace=old.namespace,
                entry_id=old.id,
                kind="replace",
                ts=now,
                z=f.z,
                cos=f.cos,
                margin=f.margin,
                spread=f.spread,
                y=0 if verdict else 1,
                age=age,
                origin=self.origin,
            )
        )

    def keep(self, row: Observation) -> None:
        """A new row of this instance (stamped so: it is not read back as another's), into the model now,
        into the store with the next sync."""
        if row.origin != self.origin:
            row = replace(row, origin=self.origin)
        self.risk.add([row], self.check_rate)
        self.tallies[row.alias].add(row)
        self._outbox.append(row)

    # -- sharing through the store ----------------------------------------------------------------

    async def load(self) -> None:
        """Read every kept row (all instances') into the model, once."""
        if not self._loaded:
            await self._read()
            self._loaded = True

    async def _read(self) -> int:
        read = 0
        while True:
            rows, self._cursor = await self.store.observations(self._cursor, PAGE)
            theirs = [r for r in rows if r.origin != self.origin]
            self.risk.add(theirs, self.check_rate)
            for row in theirs:
                self.tallies[row.alias].add(row)
            read += len(theirs)
            if len(rows) < PAGE:
                return read

    async def sync(self) -> int:
        """Write this instance's new rows, read everyone else's; returns the rows read."""
        async with self._lock:
            if self._outbox:
                rows, self._outbox = self._outbox, []
                try:
                    await self.store.add_observations(rows)
                except StorageError:
                    self._outbox[:0] = rows[-self.settings.observations_kept :]
                    raise
            return await self._read()

    def follow(self) -> None:
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow(), name="sophia-cache-learning")

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sync_interval)
            try:
                await self.sync()
            except StorageError as exc:
                log.warning("cache learning: could not sync labelled rows (retrying): %s", exc)
            await self.refit()

    async def refit(self) -> None:
        """Refit every model that has new rows, in a worker thread (never on the event loop)."""
        for alias, model in list(self.risk.aliases.items()):
            budget = self.budget(alias)
            if model.stale:
                await asyncio.to_thread(model.fit)
                if budget is not None and self.risk.mode == "average":
                    await asyncio.to_thread(model.line, budget, self.risk.z_c)

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)
            self._follower = None
        if self._outbox:
            try:
                await self.sync()
            except StorageError as exc:
                log.warning("cache learning: %d labelled rows not saved: %s", len(self._outbox), exc)

    # -- reporting --------------------------------------------------------------------------------

    def summary(self, confidence: float = 0.95) -> dict[str, Any]:
        """Per alias with rows (or lookups here): ``summary_of`` each."""
        aliases = set(self.tallies) | set(self.local)
        return {alias: self.summary_of(alias, confidence) for alias in sorted(aliases)}

    def _state(self, alias: str) -> str:
        """Which rule decides: ``backstop`` (its checks found it over the budget), ``learned`` (warm, with a
        budget), ``withhold`` (a budget, cold, withholding all but the same words) or ``threshold``."""
        if self.budget(alias) is None:
            return "threshold"
        if self.backstopped(alias):
            return "backstop"
        if self.risk.warm(alias):
            return "learned"
        return "withhold" if self.settings.budget_cold == "withhold" else "threshold"

    def summary_of(self, alias: str, confidence: float = 0.95) -> dict[str, Any]:
        """Checks and their cost, the served error rate they estimate (checks sample would-be hits
        uniformly, so wrong checks / checks estimates it; Wilson interval), the model's state."""
        tally = self.tallies.get(alias, AliasTally())
        low, high = wilson(tally.checks_wrong, tally.checks, confidence)
        model = self.risk.aliases.get(alias)
        local = self.local.get(alias, _Local())
        return {
            "max_error_rate": self.budget(alias),
            "state": self._state(alias),
            "labelled": 0 if model is None else model.n,
            "checks": tally.checks,
            "checks_wrong": tally.checks_wrong,
            "error_rate": tally.checks_wrong / tally.checks if tally.checks else None,
            "error_interval": [round(low, 4), round(high, 4)] if tally.checks else None,
            "check_cost_usd": round(tally.check_cost_usd, 6),
            "shadows": tally.shadows,
            "shadows_wrong": tally.shadows_wrong,
            "reports": tally.reports,
            "held": tally.held,
            "held_wrong": tally.held_wrong,
            "replaced": tally.replaced,
            "replaced_different": tally.replaced_different,
            "audit": {"wrong": tally.audit_wrong, "of": len(tally.audit)},
            "this_instance": {
                "served": local.served,
                "checks": local.checks,
                "shadows": local.shadows,
                "held": local.held,
            },
        }
