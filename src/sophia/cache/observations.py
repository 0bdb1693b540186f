"""Observation rows: what the cache learns its wrong-answer risk from (``sophia.cache.risk``).

One row is one labelled would-be hit: the features of a (question, stored entry) pair as the
verifier saw them, and whether serving that entry would have been wrong. Rows are append-only and
carry no text (only numbers and ids), so every instance can read every other instance's rows from
the shared store and fit the same model: there is no state to merge, only rows to read.

Kinds:

* ``check``: a sampled would-be hit; the model was called instead and the answers compared;
* ``shadow``: a miss whose best candidate was rejected; the model was called anyway (it was a
  miss), so comparing its answer with the candidate's costs no model call;
* ``held``: a would-be hit withheld while the alias is backstopped (its checks found it over budget);
  like a shadow it costs no model call, and like a check it samples what the rule would serve;
* ``report``: ``sophia cache report`` of a wrong answer (always wrong; not a random sample);
* ``replace``: a new answer stored under an exact key that had one (``age`` seconds old): the same
  question asked twice, which measures how often the comparator calls one answer two.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

KINDS = ("check", "shadow", "held", "report", "replace")


@dataclass(frozen=True, slots=True)
class Observation:
    alias: str  # the model or alias the request named (the budget's unit)
    namespace: str  # the entry's namespace (tenant, model, system prompt ...)
    entry_id: str  # the stored entry the question was compared with
    kind: str  # one of KINDS
    ts: float  # unix seconds
    z: float  # the verifier's logit, clipped to +-8 (8: the same question)
    cos: float  # cosine of the two questions' embeddings
    margin: float  # z of this candidate minus z of the next judged one (4.0: none)
    spread: float  # |z(a, b) - z(b, a)|: the cross-encoder's disagreement with itself
    y: int  # 1: serving the entry would have been wrong; 0: right
    cost_usd: float = 0.0  # what the check's model call cost (0 for free labels)
    age: float = 0.0  # seconds between the entry's creation and the observation
    origin: str = ""  # the instance that made it (to skip its own rows when following)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, object]) -> Observation:
        """A row read back from a store (values may come back as text or bytes)."""
        out: dict[str, object] = {}
        for f in fields(cls):
            value = raw.get(f.name)
            if isinstance(value, bytes):
                value = value.decode()
            if f.name in ("alias", "namespace", "entry_id", "kind", "origin"):
                out[f.name] = "" if value is None else str(value)
            elif f.name == "y":
                out[f.name] = int(float(value or 0))  # type: ignore[arg-type]
            else:
                out[f.name] = float(value or 0.0)  # type: ignore[arg-type]
        return cls(**out)  # type: ignore[arg-type]
