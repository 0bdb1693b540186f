"""When the semantic layer pays: embed every request of a namespace, or only a sample of them.

A semantic lookup costs an embedding and, when a neighbour is close, a verifier run: a few
milliseconds of CPU on the request path. It pays back when it answers a request that would
otherwise have gone to a model: ``hit rate x what a miss costs`` (the upstream call's latency).
Per namespace, ``SemanticGate`` measures both sides as the traffic goes:

* **hit rate**: semantic hits among the semantic lookups of the namespace (decayed, so it follows
  the traffic), corrected for sampling: while only one request in ``sample`` is embedded, only
  that share of the stored entries has a vector, so a sampled lookup finds a paraphrase that
  share of the time (the observed rate is divided by it);
* **what a miss costs**: the time from a miss to its answer being stored (the model call that a
  hit would have saved), decayed;
* **what a lookup costs**: the measured time of the semantic lookups (embedding + verifier).

After its first ``warmup`` requests, a namespace whose ``hit rate x miss cost`` stays below ``lookup cost``
embeds one request in ``sample``; the others skip the semantic layer (the exact layer still
answers them) and are stored as exact-only entries. The sampled lookups keep measuring, so a
namespace whose paraphrases come back returns to full semantic lookups by itself.

With a real model behind the gateway (hundreds of milliseconds per call) a fraction of a percent of
semantic hits pays for every lookup; against an upstream that answers instantly (a benchmark) or
traffic without paraphrases, only the sample is embedded.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

#: weight of the newest observation in the decayed averages (about the last 200 events count)
DECAY = 1 / 200


@dataclass(slots=True)
class _Namespace:
    lookups: float = 0.0  # decayed sum of semantic lookups
    hits: float = 0.0  # decayed sum of semantic hits among them
    miss_cost: float = 0.0  # decayed mean seconds from a miss to its stored answer
    vectors: float = 1.0  # decayed share of stored entries that got a vector
    seen: int = 0  # requests planned ever (for the warm-up)
    counter: int = 0  # requests while sampling (every ``sample``-th is embedded)


class SemanticGate:
    """Per-namespace decision: does this request get a semantic lookup (and its answer a vector)?"""

    def __init__(self, sample: int = 16, warmup: int = 64, max_namespaces: int = 10_000) -> None:
        self.sample = max(1, sample)
        self.warmup = warmup
        self.max_namespaces = max_namespaces
        self.lookup_cost = 0.0  # decayed mean seconds of a semantic lookup, over every namespace
        self._spaces: OrderedDict[str, _Namespace] = OrderedDict()

    def _space(self, namespace: str) -> _Namespace:
        space = self._spaces.get(namespace)
        if space is None:
            space = self._spaces[namespace] = _Namespace()
            if len(self._spaces) > self.max_namespaces:
                self._spaces.popitem(last=False)
        else:
            self._spaces.move_to_end(namespace)
        return space

    def hit_rate(self, namespace: str) -> float:
        """The estimated share of this namespace's requests a semantic lookup answers (all embedded)."""
        space = self._spaces.get(namespace)
        if space is None or space.lookups <= 0:
            return 0.0
        return min(1.0, space.hits / space.lookups / max(space.vectors, 1.0 / self.sample))

    def pays(self, namespace: str) -> bool:
        """Whether a semantic lookup is worth its cost here (always, until the warm-up is over)."""
        space = self._spaces.get(namespace)
        if space is None or space.seen <= self.warmup:
            return True
        return self.hit_rate(namespace) * space.miss_cost >= self.lookup_cost

    def plan(self, namespace: str) -> bool:
        """Embed this request? Every one where the semantic layer pays (and during the first ``warmup``
        requests of a namespace), else one in ``sample``."""
        space = self._space(namespace)
        space.seen += 1
        if self.pays(namespace):
            return True
        space.counter += 1
        return space.counter % self.sample == 0

    def looked(self, namespace: str, hit: bool, seconds: float) -> None:
        """A semantic lookup ran (``seconds``: the embedding's and the verifier's compute, not their wait
        for the model thread) and found a hit or not."""
        space = self._space(namespace)
        # Decayed sums: their ratio is the hit rate of about the last 1/DECAY lookups.
        space.lookups = space.lookups * (1.0 - DECAY) + 1.0
        space.hits = space.hits * (1.0 - DECAY) + (1.0 if hit else 0.0)
        self.lookup_cost += (seconds - self.lookup_cost) * (DECAY if self.lookup_cost else 1.0)

    def stored(self, namespace: str, seconds: float | None, with_vector: bool) -> None:
        """A miss's answer was stored ``seconds`` after the miss (its model call), with a vector or not."""
        space = self._space(namespace)
        if seconds is not None:
            space.miss_cost += (seconds - space.miss_cost) * (DECAY if space.miss_cost else 1.0)
        space.vectors += DECAY * ((1.0 if with_vector else 0.0) - space.vectors)

    def snapshot(self) -> dict[str, float | int]:
        """For statistics: namespaces tracked, how many sample, and the mean lookup cost (ms)."""
        sampling = sum(1 for ns in self._spaces if not self.pays(ns))
        return {
            "namespaces": len(self._spaces),
            "sampling": sampling,
            "lookup_ms": round(self.lookup_cost * 1000, 3),
        }
