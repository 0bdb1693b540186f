"""Model selection: static policies (cheapest, fastest, priority, weighted) and the learned
quality/cost router (``sophia/auto``), its training and its evaluation.

What the gateway uses::

    from sophia.router import load_router, rank, StaticPolicy

    router = load_router("router.bin", model_map={"openai/gpt-4.1": "gpt-4-1106-preview", ...})
    q = router.question(body["messages"])
    decision = router.decide(q, embedding_of(q.text), candidates, quality_target=..., max_price=...)
"""

from sophia.router.artifact import load_router, save_router
from sophia.router.policy import Decision, Scored
from sophia.router.router import LearnedRouter, Question
from sophia.router.static import Needs, Ranking, StaticPolicy, rank

__all__ = [
    "Decision",
    "LearnedRouter",
    "Needs",
    "Question",
    "Ranking",
    "Scored",
    "StaticPolicy",
    "load_router",
    "rank",
    "save_router",
]
