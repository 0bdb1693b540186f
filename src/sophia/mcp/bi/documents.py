"""``search_documents``: hybrid search (full text + vectors) over the knowledge base, every hit cited.

A hit's citation names the document, the speakers and the turn range, and quotes the source span
verbatim, so an agent can show its evidence and a reader can check it.
"""

from __future__ import annotations

from typing import Any

from sophia.knowledge.service import KNOWLEDGE
from sophia.mcp.bi.schemas import Citation, Hit, SearchIn, SearchOut
from sophia.mcp.context import ToolContext
from sophia.mcp.tools import ToolSet

tools = ToolSet()
FILTERS = ("account_id", "rep_id", "call_id", "kind", "source", "speaker_role", "date_from", "date_to")


def filters_of(args: SearchIn) -> dict[str, Any]:
    values = {name: getattr(args, name) for name in FILTERS}
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in values.items() if v is not None}


def hit_out(hit: Any) -> Hit:
    c = hit.citation
    return Hit(
        score=round(float(hit.score), 6),
        citation=Citation(
            document_id=c.document_id,
            title=c.title,
            source=c.source,
            speakers=list(c.speakers or []),
            turn_start=c.turn_start,
            turn_end=c.turn_end,
            start_seconds=c.start_seconds,
            quote=c.quote,
        ),
        metadata=dict(hit.metadata or {}),
    )


@tools.tool(title="Search documents", read_only=True, destructive=False, idempotent=True, open_world=False)
async def search_documents(ctx: ToolContext, args: SearchIn) -> SearchOut:
    """Search call transcripts and documents (keywords + meaning) with filters; each hit cites speakers, turns and the verbatim quote."""
    kb = await ctx.service(KNOWLEDGE)
    hits = await kb.search(args.query, k=args.k, filters=filters_of(args), mode=args.mode)
    return SearchOut(hits=[hit_out(h) for h in hits])
