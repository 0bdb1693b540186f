"""What ``interpret`` decides about a question: answer it from the metrics, hand it to the model, or abstain.

Three plain records, so the MCP tool can branch on the type and show the caller why: a
``MetricAnswerPlan`` is run without any model call, ``NeedsModel`` says what the model is asked to
fill (a ``query_metrics`` call among ``candidates``, or SQL), ``Abstain`` names what the data lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from sophia.warehouse.metrics import MetricQuery

__all__ = ["Abstain", "Interpretation", "MetricAnswerPlan", "NeedsModel"]


@dataclass(frozen=True)
class MetricAnswerPlan:
    """A ``query_metrics`` call read from the question without a model: run it and show it."""

    query: MetricQuery
    explanation: str
    confidence: float
    #: which words of the question chose what: {"metrics": {...}, "group_by": {...}, "filters": {...}, "time": ...}
    matched: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NeedsModel:
    """The question is about data we have, but its phrasing needs the model.

    ``reason`` is ``"metric"`` (fill a ``query_metrics`` call among ``candidates``) or ``"sql"`` (no
    metric covers it: write SQL over the schema); ``hints`` carries what was understood already
    (time range, filters, group-by, ordering) so the model's call can start from it.
    """

    reason: Literal["metric", "sql"]
    candidates: list[str] = field(default_factory=list)
    hints: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True)
class Abstain:
    """The data cannot answer: ``reason`` names what is missing; ``category`` is one of
    ``off_topic``, ``missing_data``, ``missing_attribute``, ``out_of_range``, ``future``, ``unclear``."""

    reason: str
    category: str = "missing_data"


Interpretation: TypeAlias = MetricAnswerPlan | NeedsModel | Abstain
