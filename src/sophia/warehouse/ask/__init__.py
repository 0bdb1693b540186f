"""ask_data's question understanding: a question to a metric query, a model request, or an abstention.

Pure Python and no model call: the BI MCP tool runs ``vocabulary_queries`` on the warehouse once,
builds the ``Vocabulary`` from the rows, and calls ``interpret`` per question; it asks the gateway's
model only when the answer is ``NeedsModel``. Matching uses the bundled MiniLM encoder.
"""

from __future__ import annotations

from sophia.warehouse.ask.interpret import interpret
from sophia.warehouse.ask.plans import Abstain, Interpretation, MetricAnswerPlan, NeedsModel
from sophia.warehouse.ask.timerange import TimeSpec, parse_time
from sophia.warehouse.ask.vocabulary import Vocabulary, build_vocabulary, vocabulary_queries

__all__ = [
    "Abstain",
    "Interpretation",
    "MetricAnswerPlan",
    "NeedsModel",
    "TimeSpec",
    "Vocabulary",
    "build_vocabulary",
    "interpret",
    "parse_time",
    "vocabulary_queries",
]
